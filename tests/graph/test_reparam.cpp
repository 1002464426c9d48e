// graph::reparameterize (RepVGG / MobileOne structural re-parameterisation), on ONNX
// models built inline: the op counts after optimize(), and the outputs through the
// public API with and without optimisation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "graph/passes.hpp"
#include "nnjit/nnjit.hpp"
#include "tests/loaders/onnx_test_util.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;

namespace {

std::vector<float> random_values(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& f : v) f = dist(rng);
  return v;
}

void set_ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& values) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void set_int(onnx::NodeProto* n, const std::string& name, int64_t value) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

struct ConvSpec {
  int64_t out = 0;
  std::vector<int64_t> kernel;  // per spatial axis
  int64_t stride = 1, groups = 1, dilation = 1;
  std::vector<int64_t> pads;  // empty = kernel / 2 on every side
  bool bias = true;
};

// Builds a model with one float input "x"; tracks shapes for the Conv weights.
struct ModelBuilder {
  onnx::ModelProto m = testing::empty_model(13);
  onnx::GraphProto* g = m.mutable_graph();
  std::map<std::string, Shape> shapes;
  uint32_t seed = 100;
  int counter = 0;

  explicit ModelBuilder(const Shape& x) {
    testing::add_tensor_info(g->mutable_input(), "x", onnx::TensorProto::FLOAT, x);
    shapes["x"] = x;
  }
  std::string fresh(const std::string& stem) { return stem + std::to_string(counter++); }
  std::string constant(const std::string& stem, const Shape& dims, float lo, float hi) {
    const std::string name = fresh(stem);
    testing::add_float_initializer(g, name, dims, random_values(shape_numel(dims), seed++, lo, hi));
    return name;
  }

  std::string conv(const std::string& in, const ConvSpec& c) {
    const Shape& s = shapes.at(in);
    const std::size_t rank = s.size() - 2;
    Shape w{c.out, s[1] / c.groups};
    w.insert(w.end(), c.kernel.begin(), c.kernel.end());
    std::vector<int64_t> pads = c.pads;
    if (pads.empty()) {
      for (int half = 0; half < 2; ++half)
        for (int64_t k : c.kernel) pads.push_back(k / 2 * c.dilation);
    }
    std::vector<std::string> ins{in, constant("w", w, -0.5f, 0.5f)};
    if (c.bias) ins.push_back(constant("b", {c.out}, -0.5f, 0.5f));
    const std::string out = fresh("conv");
    auto* n = testing::add_node(g, "Conv", ins, {out}, out);
    set_ints(n, "kernel_shape", c.kernel);
    set_ints(n, "strides", std::vector<int64_t>(rank, c.stride));
    set_ints(n, "pads", pads);
    set_ints(n, "dilations", std::vector<int64_t>(rank, c.dilation));
    set_int(n, "group", c.groups);
    Shape o{s[0], c.out};
    for (std::size_t a = 0; a < rank; ++a)
      o.push_back((s[a + 2] + pads[a] + pads[a + rank] - c.dilation * (c.kernel[a] - 1) - 1) / c.stride + 1);
    shapes[out] = o;
    return out;
  }
  std::string batchnorm(const std::string& in) {
    const Shape& s = shapes.at(in);
    const Shape c{s[1]};
    std::vector<std::string> ins{in, constant("scale", c, 0.5f, 1.5f), constant("shift", c, -0.5f, 0.5f),
                                 constant("mean", c, -0.5f, 0.5f), constant("var", c, 0.5f, 2.f)};
    const std::string out = fresh("bn");
    testing::add_node(g, "BatchNormalization", ins, {out}, out);
    shapes[out] = s;
    return out;
  }
  std::string op(const std::string& type, const std::vector<std::string>& ins) {
    const std::string out = fresh(type == "Add" ? "sum" : "act");
    testing::add_node(g, type, ins, {out}, out);
    shapes[out] = shapes.at(ins[0]);
    return out;
  }
  // Left-nested sum: ((a + b) + c) + ...
  std::string sum(const std::vector<std::string>& terms) {
    std::string acc = terms[0];
    for (std::size_t i = 1; i < terms.size(); ++i) acc = op("Add", {acc, terms[i]});
    return acc;
  }
  void output(const std::string& name) {
    testing::add_tensor_info(g->mutable_output(), name, onnx::TensorProto::FLOAT, {});
  }
  std::string bytes() const { return m.SerializeAsString(); }
};

struct Optimized {
  graph::Graph g;
  std::string report;
  std::string counts;
  int count(const std::string& op) const {
    int n = 0;
    for (const graph::Node& node : g.nodes) n += node.op_type == op;
    return n;
  }
  const graph::Node& only(const std::string& op) const {
    for (const graph::Node& node : g.nodes)
      if (node.op_type == op) return node;
    FAIL("no " << op << " node left: " << counts);
    return g.nodes.front();
  }
};

Optimized optimized(const ModelBuilder& b) {
  Optimized o{testing::load(b.m), "", ""};
  graph::finalize(o.g, {});
  o.report = graph::optimize(o.g);
  o.counts = graph::op_counts(o.g);
  return o;
}

// Runs the model through the public API with and without optimisation; every output must
// agree within 1e-5 of its largest magnitude.
void check_same_outputs(const ModelBuilder& b, const std::string& isa = "auto") {
  const std::string bytes = b.bytes();
  Engine engine;
  auto plain = engine.load_bytes(bytes.data(), bytes.size(), "block.onnx", ".", {.isa = isa, .optimize = false});
  auto fast = engine.load_bytes(bytes.data(), bytes.size(), "block.onnx", ".", {.isa = isa, .optimize = true});
  const Tensor x = testing::random_tensor(b.shapes.at("x"), 7);
  auto want = plain->session().run({{"x", x}});
  auto got = fast->session().run({{"x", x}});
  REQUIRE(want.size() == got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    const Tensor& r = want[i].tensor;
    const Tensor& t = got[i].tensor;
    REQUIRE(r.shape() == t.shape());
    double max_ref = 0;
    for (int64_t j = 0; j < r.numel(); ++j) max_ref = std::max(max_ref, std::fabs(double{r.data<float>()[j]}));
    for (int64_t j = 0; j < r.numel(); ++j) {
      const double d = std::fabs(double{r.data<float>()[j]} - double{t.data<float>()[j]});
      if (!(d <= 1e-5 * max_ref)) {
        FAIL_CHECK("output " << want[i].name << " [isa=" << isa << "] differs at " << j << ": "
                             << t.data<float>()[j] << " vs " << r.data<float>()[j] << " (max|ref| " << max_ref
                             << ")");
        break;
      }
    }
    CHECK(max_ref > 0);
  }
}

const graph::Value& value_of(const graph::Graph& g, int v) { return g.values[static_cast<std::size_t>(v)]; }

}  // namespace

TEST_SUITE("graph") {
  TEST_CASE("reparameterize: 3x3 + 1x1 + BatchNormalization identity become one Conv") {
    // RepVGG's training-time block: both Convs carry a BN (folded first), x a bare BN.
    ModelBuilder b({1, 8, 10, 10});
    const std::string dense = b.batchnorm(b.conv("x", {.out = 8, .kernel = {3, 3}, .bias = false}));
    const std::string point = b.batchnorm(b.conv("x", {.out = 8, .kernel = {1, 1}, .bias = false}));
    const std::string id = b.batchnorm("x");
    const std::string s = b.sum({dense, point, id});
    b.output(b.op("Relu", {s}));

    Optimized o = optimized(b);
    INFO(o.report << " / " << o.counts);
    CHECK(o.report.find("batchnorms folded 2") != std::string::npos);
    CHECK(o.report.find("blocks reparameterised 1") != std::string::npos);
    CHECK(o.counts == "Conv x1, Relu x1");
    const graph::Node& conv = o.only("Conv");
    // The merged Conv produces the sum's value (its name kept); pads are the 3x3's.
    CHECK(value_of(o.g, conv.outputs[0]).name == s);
    CHECK(conv.attrs.get_ints("pads") == std::vector<int64_t>{1, 1, 1, 1});
    REQUIRE(conv.inputs.size() == 3);
    CHECK(value_of(o.g, conv.inputs[1]).shape == Shape{8, 8, 3, 3});
    check_same_outputs(b);
    check_same_outputs(b, "reference");
  }

  TEST_CASE("reparameterize: two-branch blocks") {
    ModelBuilder b({1, 16, 9, 9});
    std::string s;
    SUBCASE("1x1 + 3x3") {
      s = b.sum({b.conv("x", {.out = 16, .kernel = {1, 1}}), b.conv("x", {.out = 16, .kernel = {3, 3}})});
    }
    SUBCASE("x + 3x3") { s = b.sum({"x", b.conv("x", {.out = 16, .kernel = {3, 3}})}); }
    SUBCASE("3x3 + BatchNormalization(x)") {
      s = b.sum({b.conv("x", {.out = 16, .kernel = {3, 3}}), b.batchnorm("x")});
    }
    SUBCASE("1x1 + x (no k x k at all)") { s = b.sum({b.conv("x", {.out = 16, .kernel = {1, 1}}), "x"}); }
    b.output(b.op("Relu", {s}));
    Optimized o = optimized(b);
    INFO(o.report << " / " << o.counts);
    CHECK(o.report.find("blocks reparameterised 1") != std::string::npos);
    CHECK(o.counts == "Conv x1, Relu x1");
    CHECK(value_of(o.g, o.only("Conv").outputs[0]).name == s);
    check_same_outputs(b);
  }

  TEST_CASE("reparameterize: stride 2 (3x3 + 1x1, no identity) and odd sizes") {
    ModelBuilder b({2, 4, 13, 11});
    const std::string s = b.sum({b.conv("x", {.out = 8, .kernel = {3, 3}, .stride = 2}),
                                 b.conv("x", {.out = 8, .kernel = {1, 1}, .stride = 2})});
    b.output(b.op("Relu", {s}));
    Optimized o = optimized(b);
    INFO(o.report << " / " << o.counts);
    CHECK(o.counts == "Conv x1, Relu x1");
    CHECK(o.only("Conv").attrs.get_ints("strides") == std::vector<int64_t>{2, 2});
    CHECK(value_of(o.g, o.only("Conv").outputs[0]).shape == Shape{2, 8, 7, 6});
    check_same_outputs(b);
  }

  TEST_CASE("reparameterize: grouped and depthwise blocks with a BatchNormalization identity") {
    int64_t groups = 2;
    SUBCASE("groups 2") { groups = 2; }
    SUBCASE("depthwise") { groups = 8; }
    ModelBuilder b({1, 8, 7, 7});
    const std::string s = b.sum({b.conv("x", {.out = 8, .kernel = {3, 3}, .groups = groups}),
                                 b.conv("x", {.out = 8, .kernel = {1, 1}, .groups = groups}), b.batchnorm("x")});
    b.output(b.op("Relu", {s}));
    Optimized o = optimized(b);
    INFO(o.report << " / " << o.counts);
    CHECK(o.counts == "Conv x1, Relu x1");
    CHECK(o.only("Conv").attrs.get_int("group", 1) == groups);
    check_same_outputs(b);
  }

  TEST_CASE("reparameterize: 5x5 + 3x3 + 1x1 + x merge at the centre of a 5x5") {
    ModelBuilder b({1, 8, 8, 8});
    const std::string s = b.sum({b.conv("x", {.out = 8, .kernel = {3, 3}}), "x",
                                 b.conv("x", {.out = 8, .kernel = {5, 5}, .bias = false}),
                                 b.conv("x", {.out = 8, .kernel = {1, 1}})});
    b.output(s);
    Optimized o = optimized(b);
    INFO(o.report << " / " << o.counts);
    CHECK(o.counts == "Conv x1");
    const graph::Node& conv = o.only("Conv");
    CHECK(conv.attrs.get_ints("pads") == std::vector<int64_t>{2, 2, 2, 2});
    CHECK(conv.attrs.get_ints("kernel_shape") == std::vector<int64_t>{5, 5});
    CHECK(o.g.outputs[0] == conv.outputs[0]);
    check_same_outputs(b);
  }

  TEST_CASE("reparameterize: Conv1d block (3 + 1 + x)") {
    ModelBuilder b({1, 6, 20});
    const std::string s =
        b.sum({b.conv("x", {.out = 6, .kernel = {3}}), b.conv("x", {.out = 6, .kernel = {1}}), "x"});
    b.output(b.op("Relu", {s}));
    Optimized o = optimized(b);
    INFO(o.report << " / " << o.counts);
    CHECK(o.counts == "Conv x1, Relu x1");
    check_same_outputs(b);
  }

  TEST_CASE("reparameterize: a value inside the block with another reader stops the merge") {
    ModelBuilder b({1, 8, 6, 6});
    const std::string dense = b.conv("x", {.out = 8, .kernel = {3, 3}});
    const std::string point = b.conv("x", {.out = 8, .kernel = {1, 1}});
    const std::string id = b.batchnorm("x");
    std::string inner;
    SUBCASE("a branch Conv is read elsewhere") {
      b.output(b.op("Relu", {b.sum({dense, point, id})}));
      b.output(b.op("Sigmoid", {point}));
      Optimized o = optimized(b);
      INFO(o.report << " / " << o.counts);
      CHECK(o.report.find("blocks reparameterised 0") != std::string::npos);
      CHECK(o.count("Add") == 2);
      // The branch Convs, and the BN, unmerged, as a depthwise 1x1 Conv (batchnorm_to_conv).
      CHECK(o.count("Conv") == 3);
      CHECK(o.report.find("batchnorms as depthwise 1x1 1") != std::string::npos);
      check_same_outputs(b);
    }
    SUBCASE("a branch Conv is a graph output") {
      b.output(b.op("Relu", {b.sum({dense, point, id})}));
      b.output(dense);
      Optimized o = optimized(b);
      INFO(o.report << " / " << o.counts);
      CHECK(o.report.find("blocks reparameterised 0") != std::string::npos);
      CHECK(o.count("Add") == 2);
      check_same_outputs(b);
    }
    SUBCASE("the BN identity is read elsewhere") {
      b.output(b.op("Relu", {b.sum({dense, point, id})}));
      b.output(b.op("Relu", {id}));
      Optimized o = optimized(b);
      INFO(o.report << " / " << o.counts);
      // The two Convs below the inner Add still merge; the outer Add stays.
      CHECK(o.report.find("blocks reparameterised 1") != std::string::npos);
      CHECK(o.count("Conv") == 2);  // the merged one, and the BN as a depthwise 1x1 Conv
      CHECK(o.count("Add") == 1);
      CHECK(o.count("BatchNormalization") == 0);
      CHECK(o.report.find("batchnorms as depthwise 1x1 1") != std::string::npos);
      check_same_outputs(b);
    }
    SUBCASE("the inner sum is a graph output: only the part below it merges") {
      inner = b.sum({dense, point});
      b.output(b.op("Relu", {b.op("Add", {inner, id})}));
      b.output(inner);
      Optimized o = optimized(b);
      INFO(o.report << " / " << o.counts);
      CHECK(o.report.find("blocks reparameterised 1") != std::string::npos);
      CHECK(o.count("Conv") == 2);  // the merged one, and the BN as a depthwise 1x1 Conv
      CHECK(o.count("Add") == 1);
      CHECK(std::any_of(o.g.nodes.begin(), o.g.nodes.end(), [&](const graph::Node& n) {
        return n.op_type == "Conv" && value_of(o.g, n.outputs[0]).name == inner;
      }));
      check_same_outputs(b);
    }
  }

  TEST_CASE("reparameterize: what is not a block stays as it is") {
    ModelBuilder b({1, 8, 10, 10});
    std::string s;
    SUBCASE("Convs read different inputs") {
      const std::string y = b.op("Relu", {"x"});
      s = b.sum({b.conv("x", {.out = 8, .kernel = {3, 3}}), b.conv(y, {.out = 8, .kernel = {1, 1}})});
    }
    SUBCASE("a residual around a Conv of another value") {
      const std::string y = b.conv("x", {.out = 8, .kernel = {3, 3}});
      const std::string z = b.op("Relu", {y});
      s = b.sum({b.conv(z, {.out = 8, .kernel = {3, 3}}), "x"});
    }
    SUBCASE("a dilated 3x3") {
      s = b.sum({b.conv("x", {.out = 8, .kernel = {3, 3}, .dilation = 2}), b.conv("x", {.out = 8, .kernel = {1, 1}})});
    }
    SUBCASE("a 3x3 padded off centre") {
      s = b.sum({b.conv("x", {.out = 8, .kernel = {3, 3}, .pads = {0, 0, 2, 2}}),
                 b.conv("x", {.out = 8, .kernel = {1, 1}})});
    }
    SUBCASE("an even kernel") {
      s = b.sum({b.conv("x", {.out = 8, .kernel = {2, 2}, .pads = {0, 0, 1, 1}}), "x"});
    }
    SUBCASE("different groups") {
      s = b.sum({b.conv("x", {.out = 8, .kernel = {3, 3}, .groups = 2}), b.conv("x", {.out = 8, .kernel = {1, 1}})});
    }
    b.output(b.op("Relu", {s}));
    Optimized o = optimized(b);
    INFO(o.report << " / " << o.counts);
    CHECK(o.report.find("blocks reparameterised 0") != std::string::npos);
    CHECK(o.count("Add") == 1);
    check_same_outputs(b);
  }

  TEST_CASE("reparameterize: repvgg_net keeps one Conv per block and no Add or BatchNormalization") {
    const std::string path = std::string(NNJIT_ZOO_DIR) + "/repvgg_net.onnx";
    if (!std::filesystem::exists(path)) {
      MESSAGE(path << " is missing (scripts/export-zoo.sh); skipped");
      return;
    }
    graph::Graph g = loaders::load_onnx_file(path);
    graph::finalize(g, {});
    const std::string report = graph::optimize(g);
    INFO(report << "\n" << graph::op_counts(g));
    CHECK(report.find("blocks reparameterised 22") != std::string::npos);
    int convs = 0, adds = 0, norms = 0;
    for (const graph::Node& n : g.nodes) {
      convs += n.op_type == "Conv";
      adds += n.op_type == "Add";
      norms += n.op_type == "BatchNormalization";
    }
    CHECK(convs == 22);
    CHECK(adds == 0);
    CHECK(norms == 0);
  }
}
