// The planner's small models end to end through the public API: isa=auto and isa=avx2
// (where the host has AVX2) against isa=reference, and a second run of each session; a
// model file's weights packed where they lie in its mapping, which the load lets go.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "loaders/onnx_loader.hpp"
#include "tests/graph/plan_test_nets.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using namespace nnjit::plan_test;

TEST_SUITE("graph") {
  TEST_CASE("plan_graph end to end: isa=auto and isa=avx2 agree with isa=reference") {
    static const Engine engine;
    const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    std::vector<std::string> isas = {"reference"};
    if (has_avx2) isas.insert(isas.end(), {"auto", "avx2"});
    for (const NamedNet& nn : all_nets()) {
      const std::string net_name = nn.name;
      CAPTURE(net_name);
      const std::string bytes = nn.make().bytes();
      std::vector<std::vector<NamedTensor>> results;
      std::vector<NamedTensor> inputs;
      for (const std::string& isa : isas) {
        CAPTURE(isa);
        auto model = engine.load_bytes(bytes.data(), bytes.size(), std::string(nn.name) + ".onnx", "", isa_options(isa));
        if (inputs.empty()) {
          uint32_t seed = 100;
          for (const TensorInfo& in : model->inputs()) inputs.push_back({in.name, testing::random_tensor(in.shape, seed++)});
        }
        if (isa != "reference") {
          bool jit = false;
          for (const StepInfo& s : model->steps()) jit = jit || (s.kernel != "reference" && s.kernel != "reorder");
          const std::string name = nn.name;
          const bool all_reference = name == "conv3d" || name == "variable_weights" || name == "pointwise_padded";
          CHECK_MESSAGE(jit != all_reference, model->plan_report());
        }
        Session session = model->session();
        results.push_back(session.run(inputs));
        // A second run of the same session (its arena holds the first run's values).
        const std::vector<NamedTensor> again = session.run(inputs);
        for (std::size_t k = 0; k < again.size(); ++k)
          CHECK_MESSAGE(testing::max_abs_diff(again[k].tensor, results.back()[k].tensor) == 0,
                        "second run differs at output " << again[k].name);
      }
      const std::vector<NamedTensor>& want = results[0];
      for (std::size_t r = 1; r < results.size(); ++r) {
        CAPTURE(isas[r]);
        REQUIRE(results[r].size() == want.size());
        for (std::size_t k = 0; k < want.size(); ++k) {
          CAPTURE(want[k].name);
          const Tensor& a = results[r][k].tensor;
          const Tensor& b = want[k].tensor;
          REQUIRE(a.shape() == b.shape());
          // Relative to the output's scale: max |got - want| <= 1e-5 max |want|.
          double scale = 0;
          for (int64_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(b.data<float>()[i])));
          const double tol = 1e-5 * std::max(scale, 1e-3);
          int64_t worst = 0;
          double err = 0;
          for (int64_t i = 0; i < a.numel(); ++i) {
            const double d = std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]);
            if (std::isnan(d) || d > err) {
              err = d;
              worst = i;
              if (std::isnan(d)) break;
            }
          }
          CHECK_MESSAGE(err <= tol, "max |err| " << err << " at index " << worst << " (got " << a.data<float>()[worst]
                                                 << ", want " << b.data<float>()[worst] << "), scale " << scale);
        }
      }
    }
  }

  TEST_CASE("torch's nine-node LayerNorm runs as one LayerNormalization, same answers as the nodes") {
    static const Engine engine;
    // LayerNorm over the last axis (scale [C], bias [C]), over the last two (scale
    // [H,C]), with the Add and Mul operands swapped; and a ReduceMean over a middle axis,
    // which is not a LayerNorm over trailing axes and stays as written.
    auto layernorm = [](Net& n, const std::string& x, const std::string& y, std::vector<int64_t> axes,
                        const std::vector<int64_t>& params, bool swapped) {
      auto* m1 = n.op("ReduceMean", {x}, y + "_mean");
      attr_ints(m1, "axes", axes);
      n.op("Sub", {x, y + "_mean"}, y + "_d");
      n.op("Pow", {y + "_d", n.scalar(y + "_two", 2.f)}, y + "_sq");
      auto* m2 = n.op("ReduceMean", {y + "_sq"}, y + "_var");
      attr_ints(m2, "axes", axes);
      n.op("Add", {y + "_var", n.scalar(y + "_eps", 1e-6f)}, y + "_ve");
      n.op("Sqrt", {y + "_ve"}, y + "_std");
      n.op("Div", {y + "_d", y + "_std"}, y + "_n");
      const std::string w = n.weights(y + "_w", params), b = n.weights(y + "_b", params);
      n.op("Mul", swapped ? std::vector<std::string>{w, y + "_n"} : std::vector<std::string>{y + "_n", w}, y + "_s");
      n.op("Add", swapped ? std::vector<std::string>{b, y + "_s"} : std::vector<std::string>{y + "_s", b}, y);
    };
    Net n;
    n.input("X", {2, 5, 24});
    layernorm(n, "X", "A", {-1}, {24}, false);
    layernorm(n, "A", "B", {1, 2}, {5, 24}, true);
    layernorm(n, "B", "Y", {1}, {5, 1}, false);
    n.output("Y");
    const std::string bytes = n.bytes();
    const std::vector<NamedTensor> inputs = {{"X", testing::random_tensor({2, 5, 24}, 3, -2.f, 3.f)}};
    Options as_written;
    as_written.optimize = false;
    auto want_model = engine.load_bytes(bytes.data(), bytes.size(), "ln.onnx", "", as_written);
    auto model = engine.load_bytes(bytes.data(), bytes.size(), "ln.onnx", "");
    int fused = 0, means = 0;
    for (const StepInfo& st : model->steps()) {
      fused += st.op == "LayerNormalization";
      means += st.op == "ReduceMean";
    }
    CHECK_MESSAGE(fused == 2, model->plan_report());
    CHECK_MESSAGE(means == 2, model->plan_report());  // the middle-axis one, as written
    const Tensor want = want_model->session().run(inputs).at(0).tensor;
    CHECK(testing::max_abs_diff(model->session().run(inputs).at(0).tensor, want) <= 1e-5);
  }

  TEST_CASE("a BatchNormalization no Conv takes runs as a depthwise 1x1 conv, its ReLU fused; same answers") {
    static const Engine engine;
    // DenseNet's BN -> ReLU -> Conv on concatenated features; and a BN of a 3-D tensor,
    // which stays a BatchNormalization.
    auto bn = [](Net& n, const std::string& x, const std::string& y, int64_t c) {
      Tensor var = testing::random_tensor({c}, 21, 0.5f, 2.f);
      testing::add_float_initializer(n.g(), y + "_var", {c}, std::vector<float>(var.data<float>(), var.data<float>() + c));
      auto* node = n.op("BatchNormalization", {x, n.weights(y + "_g", {c}), n.weights(y + "_b", {c}),
                                               n.weights(y + "_m", {c}), y + "_var"},
                        y);
      attr_float(node, "epsilon", 1e-3f);
    };
    Net n;
    n.input("X", {1, 8, 9, 9}).input("S", {2, 6, 5});
    n.conv("X", "c1", 8, 12, 1);
    auto* cat = n.op("Concat", {"X", "c1"}, "cat");
    attr_int(cat, "axis", 1);
    bn(n, "cat", "b", 20);
    n.op("Relu", {"b"}, "r");
    n.conv("r", "Y", 20, 16, 3, 1, 1);
    bn(n, "S", "Z", 6);
    n.output("Y").output("Z");
    const std::string bytes = n.bytes();
    const std::vector<NamedTensor> inputs = {{"X", testing::random_tensor({1, 8, 9, 9}, 4)},
                                             {"S", testing::random_tensor({2, 6, 5}, 5)}};
    Options as_written;
    as_written.optimize = false;
    auto want_model = engine.load_bytes(bytes.data(), bytes.size(), "bn.onnx", "", as_written);
    const std::vector<NamedTensor> want = want_model->session().run(inputs);
    for (const std::string isa : {"reference", "auto"}) {
      CAPTURE(isa);
      auto model = engine.load_bytes(bytes.data(), bytes.size(), "bn.onnx", "", isa_options(isa));
      int depthwise = 0, bns = 0;
      for (const StepInfo& st : model->steps()) {
        // The BN's node now a Conv: with the ReLU and a depthwise kernel on the JIT path.
        if (!st.nodes.empty() && st.nodes.front() == "b_BatchNormalization")
          depthwise += isa == "reference" ? st.op == "Conv"
                                          : st.op == "Conv+Relu" && st.kernel.find("depthwise_k1_relu") != std::string::npos;
        bns += st.op == "BatchNormalization";
      }
      CHECK_MESSAGE(bns == 1, model->plan_report());  // the 3-D one
      CHECK_MESSAGE(depthwise == 1, model->plan_report());
      const std::vector<NamedTensor> got = model->session().run(inputs);
      for (std::size_t k = 0; k < got.size(); ++k) CHECK(testing::max_abs_diff(got[k].tensor, want[k].tensor) <= 1e-5);
    }
  }

  TEST_CASE("a model file's weights are packed where they lie, at any alignment, and the file is let go") {
    static const Engine engine;
    // A conv (weights packed) and elementwise constants (kept), all as raw_data big enough
    // to be lifted; the name's length moves the weights until one lies unaligned.
    auto net = [](const std::string& pad) {
      Net n;
      n.input("X", {1, 32, 9, 9});
      n.conv("X", "c" + pad, 32, 64, 3);
      n.op("Add", {"c" + pad, n.weights("K", {1, 64, 7, 7})}, "a");
      n.op("Relu", {"a"}, "r");
      n.op("Mul", {n.weights("M", {1, 64, 7, 7}), "r"}, "Y");
      n.output("Y");
      for (onnx::TensorProto& t : *n.g()->mutable_initializer()) {
        std::string raw(static_cast<std::size_t>(t.float_data_size()) * sizeof(float), '\0');
        std::memcpy(raw.data(), t.float_data().data(), raw.size());
        t.clear_float_data();
        t.set_raw_data(raw);
      }
      return n;
    };
    auto mapped = [](const std::string& path) {
      std::ifstream maps("/proc/self/maps");
      for (std::string line; std::getline(maps, line);)
        if (line.find(path) != std::string::npos) return true;
      return false;
    };
    const testing::TempDir dir;
    const std::string path = dir.file("weights.onnx");
    bool unaligned = false;
    for (std::string pad; !unaligned && pad.size() < 8; pad += "x") {
      dir.write("weights.onnx", net(pad).bytes());
      const graph::Graph g = loaders::load_onnx_file(path);
      for (const graph::Value& v : g.values)
        if (v.constant.defined() && v.constant.nbytes() >= 4096) {
          CHECK(g.file_bytes.holds(v.constant.unaligned_bytes()));  // viewed, not copied
          unaligned = unaligned || !v.constant.aligned();
        }
    }
    REQUIRE(unaligned);
    // A model dropped right after its load waits for the release of the file beside it.
    for (int i = 0; i < 3; ++i) engine.load(path, {}).reset();
    CHECK_FALSE(mapped(path));
    auto jit = engine.load(path, {});
    auto ref = engine.load(path, isa_options("reference"));
    // Kept constants were copied out, packed ones dropped: the file is unmapped, beside
    // the caller (ModelImpl::releasing), while the models live.
    auto unmapped_soon = [&] {
      for (int i = 0; i < 500 && mapped(path); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      return !mapped(path);
    };
    CHECK(unmapped_soon());
    const Tensor x = testing::random_tensor({1, 32, 9, 9}, 5);
    auto a = jit->session().run({{"X", x}});
    auto b = ref->session().run({{"X", x}});
    CHECK(testing::max_abs_diff(a[0].tensor, b[0].tensor) < 1e-4);
    jit.reset();
    ref.reset();
    CHECK_FALSE(mapped(path));
  }
}
