// finalize() and the rewrite passes, on graphs built by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>

#include "graph/graph.hpp"
#include "graph/passes.hpp"
#include "ops/op.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using graph::Graph;

namespace {

// A tiny builder: values by name, nodes appended in the order given.
struct Builder {
  Graph g;
  explicit Builder(int opset = 13) {
    g.source = "test.onnx";
    g.opset = opset;
  }
  int value(const std::string& name) {
    for (std::size_t i = 0; i < g.values.size(); ++i)
      if (g.values[i].name == name) return static_cast<int>(i);
    graph::Value v;
    v.name = name;
    return g.add_value(v);
  }
  Builder& input(const std::string& name, Shape shape, std::vector<std::string> params = {}) {
    int v = value(name);
    g.values[static_cast<std::size_t>(v)].dtype = DType::Float32;
    g.values[static_cast<std::size_t>(v)].shape = std::move(shape);
    g.values[static_cast<std::size_t>(v)].dim_params = std::move(params);
    g.values[static_cast<std::size_t>(v)].shape_known = true;
    g.inputs.push_back(v);
    return *this;
  }
  Builder& constant(const std::string& name, Tensor t) {
    int v = value(name);
    graph::Value& val = g.values[static_cast<std::size_t>(v)];
    val.dtype = t.dtype();
    val.shape = t.shape();
    val.shape_known = true;
    val.constant = std::move(t);
    return *this;
  }
  Builder& node(const std::string& op, std::vector<std::string> ins, std::vector<std::string> outs,
                ops::Attributes attrs = {}, const std::string& domain = "") {
    graph::Node n;
    n.name = op + "_" + std::to_string(g.nodes.size());
    n.op_type = op;
    n.domain = domain;
    for (auto& i : ins) n.inputs.push_back(i.empty() ? -1 : value(i));
    for (auto& o : outs) {
      int v = value(o);
      n.outputs.push_back(v);
      g.values[static_cast<std::size_t>(v)].producer = static_cast<int>(g.nodes.size());
    }
    n.attrs = std::move(attrs);
    g.nodes.push_back(std::move(n));
    return *this;
  }
  Builder& output(const std::string& name) {
    g.outputs.push_back(value(name));
    return *this;
  }
};

ops::Attribute int_attr(int64_t i) {
  ops::Attribute a;
  a.kind = ops::Attribute::Kind::Int;
  a.i = i;
  return a;
}

std::string unsupported_message(Graph& g) {
  try {
    graph::finalize(g, {});
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::Unsupported);
    return e.what();
  }
  FAIL("finalize accepted an unsupported graph");
  return "";
}

}  // namespace

TEST_SUITE("graph") {
  TEST_CASE("finalize reports every unsupported op, domain and attribute in one error") {
    Builder b;
    ops::Attributes wrap;
    ops::Attribute mode;
    mode.kind = ops::Attribute::Kind::String;
    mode.s = "wrap";
    wrap.set("mode", mode);
    b.input("x", {1, 4})
        .node("FancyOp", {"x"}, {"a"})
        .node("Relu", {"a"}, {"b"})
        .node("Gelu", {"x"}, {"c"}, {}, "com.microsoft")
        .node("Pad", {"x", "s"}, {"d"}, wrap)
        .node("OtherOp", {"b"}, {"e"})
        .output("e")
        .output("c")
        .output("d");
    b.constant("s", Tensor::from(std::vector<int64_t>{0, 1, 0, 1}, {4}));
    const std::string msg = unsupported_message(b.g);
    CHECK(msg.find("test.onnx") != std::string::npos);
    CHECK(msg.find("unknown op 'FancyOp'") != std::string::npos);
    CHECK(msg.find("FancyOp_0") != std::string::npos);  // the node's name
    CHECK(msg.find("opset 13") != std::string::npos);
    CHECK(msg.find("unknown op 'OtherOp'") != std::string::npos);
    CHECK(msg.find("com.microsoft") != std::string::npos);
    CHECK(msg.find("wrap") != std::string::npos);
  }

  TEST_CASE("finalize reports unsupported types together with unknown ops") {
    Builder b;
    b.input("x", {2});
    b.g.values[0].dtype = DType::Float16;
    b.node("Relu", {"x"}, {"y"}).node("Mystery", {"y"}, {"z"}).output("z");
    const std::string msg = unsupported_message(b.g);
    CHECK(msg.find("float16") != std::string::npos);
    CHECK(msg.find("Mystery") != std::string::npos);
  }

  TEST_CASE("an opset outside 7..17 is unsupported") {
    Builder b(5);
    b.input("x", {2}).node("Relu", {"x"}, {"y"}).output("y");
    CHECK(unsupported_message(b.g).find("opset 5") != std::string::npos);
  }

  TEST_CASE("a cycle is invalid input naming a node on it") {
    Builder b;
    b.input("x", {2})
        .node("Add", {"x", "c"}, {"a"})
        .node("Relu", {"a"}, {"b"})
        .node("Relu", {"b"}, {"c"})
        .output("c");
    try {
      graph::finalize(b.g, {});
      FAIL("no error for a cycle");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::InvalidInput);
      CHECK(std::string(e.what()).find("cycle") != std::string::npos);
    }
  }

  TEST_CASE("nodes out of order are sorted, symbolic dims are bound and reported") {
    Builder b;
    b.input("x", {-1, 3}, {"batch", ""}).node("Relu", {"a"}, {"y"}).node("Neg", {"x"}, {"a"}).output("y");
    Options o;
    o.dims["batch"] = 4;
    graph::finalize(b.g, o);
    REQUIRE(b.g.nodes.size() == 2);
    CHECK(b.g.nodes[0].op_type == "Neg");
    CHECK(b.g.values[static_cast<std::size_t>(b.g.outputs[0])].shape == Shape{4, 3});
    REQUIRE(b.g.bound_dims.size() == 1);
    CHECK(b.g.bound_dims[0] == "batch=4");
  }

  TEST_CASE("a model in topological order keeps its order; one out of order gets the nearest valid order") {
    // k is made by a node from constants (folded after the sort). Program order computes
    // m = a1 * k before n = -a1; a depth-first order from the last ready node would run
    // Neg first and keep a1 and n alive across the Mul.
    auto names = [](const Graph& g) {
      std::string out;
      for (const graph::Node& n : g.nodes) out += n.op_type + " ";
      return out;
    };
    auto build = [](const std::vector<int>& order) {
      Builder b;
      b.input("x", {2, 3}).constant("c", Tensor::from(std::vector<float>{2.f}, {1}));
      const std::vector<std::function<void()>> nodes = {
          [&] { b.node("Relu", {"x"}, {"a1"}); },       [&] { b.node("Neg", {"c"}, {"k"}); },
          [&] { b.node("Mul", {"a1", "k"}, {"m"}); },  [&] { b.node("Neg", {"a1"}, {"n"}); },
          [&] { b.node("Add", {"m", "n"}, {"y"}); }};
      for (int i : order) nodes[static_cast<std::size_t>(i)]();
      b.output("y");
      graph::finalize(b.g, {});
      return b.g;
    };
    CHECK(names(build({0, 1, 2, 3, 4})) == "Relu Mul Neg Add ");
    CHECK(names(build({4, 3, 2, 1, 0})) == "Relu Neg Mul Add ");  // each right after what it waits for
  }

  TEST_CASE("a --dim naming no symbolic dimension is invalid input") {
    Builder b;
    b.input("x", {2}).node("Relu", {"x"}, {"y"}).output("y");
    Options o;
    o.dims["batch"] = 2;
    CHECK_THROWS_AS(graph::finalize(b.g, o), Error);
  }

  TEST_CASE("constant subgraphs fold, Shape folds from shapes alone") {
    Builder b;
    // y = Reshape(x, Concat(Shape(x)[0], [-1]))  -- the shape is known at load.
    b.input("x", {2, 3, 4})
        .node("Shape", {"x"}, {"s"})
        .node("Gather", {"s", "zero"}, {"n"})
        .node("Unsqueeze", {"n", "axes"}, {"n1"})
        .node("Concat", {"n1", "minus1"}, {"shape"}, [] {
          ops::Attributes a;
          a.set("axis", int_attr(0));
          return a;
        }())
        .node("Reshape", {"x", "shape"}, {"y"})
        .output("y");
    b.constant("zero", Tensor::from(std::vector<int64_t>{0}, {}));
    b.constant("axes", Tensor::from(std::vector<int64_t>{0}, {1}));
    b.constant("minus1", Tensor::from(std::vector<int64_t>{-1}, {1}));
    graph::finalize(b.g, {});
    REQUIRE(b.g.nodes.size() == 1);
    CHECK(b.g.nodes[0].op_type == "Reshape");
    CHECK(b.g.values[static_cast<std::size_t>(b.g.outputs[0])].shape == Shape{2, 12});
  }

  TEST_CASE("eliminate_identities forwards inputs and keeps graph outputs") {
    Builder b;
    b.input("x", {2}).node("Identity", {"x"}, {"a"}).node("Relu", {"a"}, {"b"}).node("Dropout", {"b"}, {"y"}).output("y");
    graph::finalize(b.g, {});
    CHECK(graph::eliminate_identities(b.g) == 2);
    REQUIRE(b.g.nodes.size() == 1);
    CHECK(b.g.nodes[0].op_type == "Relu");
    CHECK(b.g.outputs[0] == b.g.nodes[0].outputs[0]);
  }

  TEST_CASE("eliminate_identities: a Dropout in training forwards only with a constant ratio of 0") {
    Tensor train(DType::Bool, {});
    train.data<bool>()[0] = true;
    auto dropout = [&](float ratio) {
      Builder b;
      b.input("x", {2})
          .constant("ratio", Tensor::from(std::vector<float>{ratio}, {}))
          .constant("train", train)
          .node("Dropout", {"x", "ratio", "train"}, {"a"})
          .node("Relu", {"a"}, {"y"})
          .output("y");
      return b;
    };
    Builder zero = dropout(0.f);
    graph::finalize(zero.g, {});
    CHECK(graph::eliminate_identities(zero.g) == 1);
    REQUIRE(zero.g.nodes.size() == 1);
    CHECK(zero.g.nodes[0].op_type == "Relu");
    Builder half = dropout(0.5f);
    CHECK_THROWS_AS(graph::finalize(half.g, {}), Error);  // random dropping: refused
  }

  TEST_CASE("eliminate_identities drops a Relu of a Relu, but not one that is a graph output") {
    Builder b;
    // r1 = Relu(x); r2 = Relu(r1) (forwards r1); r3 = Relu(r2) (forwards too, through the
    // chain); y = Add(r3, x); z = Relu(r1) is a graph output and stays; n = Neg(x),
    // m = Relu(n) (not of a Relu) stays.
    b.input("x", {2})
        .node("Relu", {"x"}, {"r1"})
        .node("Relu", {"r1"}, {"r2"})
        .node("Relu", {"r2"}, {"r3"})
        .node("Add", {"r3", "x"}, {"y"})
        .node("Relu", {"r1"}, {"z"})
        .node("Neg", {"x"}, {"n"})
        .node("Relu", {"n"}, {"m"})
        .output("y")
        .output("z")
        .output("m");
    graph::finalize(b.g, {});
    CHECK(graph::eliminate_identities(b.g) == 2);
    std::vector<std::string> ops;
    for (const graph::Node& n : b.g.nodes) ops.push_back(n.op_type);
    CHECK(ops == std::vector<std::string>{"Relu", "Add", "Relu", "Neg", "Relu"});
    const graph::Node& add = b.g.nodes[1];
    CHECK(add.inputs[0] == b.g.nodes[0].outputs[0]);  // reads r1
    CHECK(b.g.values[static_cast<std::size_t>(b.g.outputs[1])].name == "z");
  }

  TEST_CASE("fold_batchnorm matches Conv then BatchNormalization") {
    const int64_t c = 3, k = 4;
    Tensor x = testing::random_tensor({1, c, 5, 5}, 1);
    Builder b;
    b.input("x", {1, c, 5, 5})
        .node("Conv", {"x", "w", "bias"}, {"y"})
        .node("BatchNormalization", {"y", "scale", "shift", "mean", "var"}, {"z"})
        .output("z");
    b.constant("w", testing::random_tensor({k, c, 3, 3}, 2));
    b.constant("bias", testing::random_tensor({k}, 3));
    b.constant("scale", testing::random_tensor({k}, 4, 0.5f, 2.f));
    b.constant("shift", testing::random_tensor({k}, 5));
    b.constant("mean", testing::random_tensor({k}, 6));
    b.constant("var", testing::random_tensor({k}, 7, 0.5f, 2.f));
    graph::finalize(b.g, {});

    // Runs the graph's nodes with their reference ops.
    auto run = [&](const Graph& g) {
      std::vector<Tensor> vals(g.values.size());
      for (std::size_t v = 0; v < g.values.size(); ++v) vals[v] = g.values[v].constant;
      vals[static_cast<std::size_t>(g.inputs[0])] = x;
      for (const graph::Node& n : g.nodes) {
        ops::ComputeContext ctx{n.attrs, g.opset, {}, {}};
        for (int v : n.inputs) ctx.inputs.push_back(v >= 0 ? &vals[static_cast<std::size_t>(v)] : nullptr);
        for (int v : n.outputs) {
          vals[static_cast<std::size_t>(v)] = Tensor(g.values[static_cast<std::size_t>(v)].dtype,
                                                     g.values[static_cast<std::size_t>(v)].shape);
          ctx.outputs.push_back(&vals[static_cast<std::size_t>(v)]);
        }
        ops::find_schema(n.op_type)->compute(ctx);
      }
      return vals[static_cast<std::size_t>(g.outputs[0])];
    };
    Tensor before = run(b.g);
    CHECK(graph::fold_batchnorm(b.g) == 1);
    REQUIRE(b.g.nodes.size() == 1);
    CHECK(b.g.nodes[0].op_type == "Conv");
    Tensor after = run(b.g);
    CHECK(testing::max_abs_diff(before, after) < 1e-5);
  }
}
