// The planner's memory choices on small models built inline: steps that free memory run
// early, downsampling shortcuts read late, identity bottlenecks streamed in place,
// inverted-residual blocks over their own input — each checked for what it plans and,
// through the public API, for the arena it reaches and answers equal to isa=reference on
// one to three threads.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "graph/plan.hpp"
#include "tests/graph/plan_test_nets.hpp"

using namespace nnjit;
using namespace nnjit::plan_test;
using graph::ExecutionPlan;
using graph::PlannedStep;
using graph::StepKind;

namespace nnjit::plan_test {

// Two "cells" reading one wide value s0, in the exporter's order: cell A's chain first
// (it widens to 64 channels and back), cell B's 1x1 reduction of s0 last. Run as
// written, s0 stays alive through cell A; run as soon as it can, B's reduction frees it
// before cell A widens.
Net cells_net() {
  Net n;
  n.input("X", {1, 16, 8, 8});
  n.conv("X", "s0", 16, 64, 1);
  n.conv("s0", "a1", 64, 16, 1);
  n.conv("a1", "a2", 16, 64, 1);
  n.conv("a2", "a3", 64, 16, 1);
  n.conv("s0", "b1", 64, 16, 1);
  n.op("Add", {"a3", "b1"}, "Y");
  n.output("Y");
  return n;
}

// Two ResNet bottlenecks at 40x40 (intermediates of 100 KiB: row streams with a 64 KiB
// L2): an identity block relu(c3(c2(c1(s))) + s), then a downsampling block whose
// shortcut is a 1x1 conv of stride 2, relu(d3(d2(d1(y))) + ds(y)). The Add fuses into
// the conv written first: d3 as in torch's ResNet export (the shortcut then runs first),
// or the shortcut (it then runs last, adding d3). `size` x `size` images (40 by default).
Net bottleneck_net(bool shortcut_written_first, int64_t size) {
  Net n;
  n.input("X", {1, 8, size, size});
  n.conv("X", "s0", 8, 32, 1);
  n.op("Relu", {"s0"}, "s");
  n.conv("s", "c1", 32, 16, 1);
  n.op("Relu", {"c1"}, "r1");
  n.conv("r1", "c2", 16, 16, 3, 1, 1);
  n.op("Relu", {"c2"}, "r2");
  n.conv("r2", "c3", 16, 32, 1);
  n.op("Add", {"c3", "s"}, "a");
  n.op("Relu", {"a"}, "y");
  if (shortcut_written_first) n.conv("y", "ds", 32, 64, 1, 1, 0, 2);
  n.conv("y", "d1", 32, 16, 1);
  n.op("Relu", {"d1"}, "q1");
  n.conv("q1", "d2", 16, 16, 3, 1, 1, 2);
  n.op("Relu", {"d2"}, "q2");
  n.conv("q2", "d3", 16, 64, 1);
  if (!shortcut_written_first) n.conv("y", "ds", 32, 64, 1, 1, 0, 2);
  n.op("Add", {"d3", "ds"}, "b");
  n.op("Relu", {"b"}, "Y");
  n.output("Y");
  return n;
}

// Inverted-residual blocks whose input nothing else reads, at 96x24 with 16 channels
// between blocks (144 KiB values): expand -> depthwise -> project; depthwise (5x5) ->
// project, DARTS's separable conv; and one adding its own input (MobileNetV2's).
Net ir_chain_net() {
  Net n;
  n.input("X", {1, 8, 96, 24});
  n.conv("X", "s", 8, 16, 1);
  n.conv("s", "e1", 16, 64, 1);
  n.op("Relu", {"e1"}, "e1r");
  n.conv("e1r", "d1", 64, 64, 3, 64, 1);
  n.op("Relu", {"d1"}, "d1r");
  n.conv("d1r", "b1", 64, 16, 1);
  n.conv("b1", "d2", 16, 16, 5, 16, 2);
  n.conv("d2", "b2", 16, 16, 1);
  n.conv("b2", "e3", 16, 64, 1);
  n.op("Relu", {"e3"}, "e3r");
  n.conv("e3r", "d3", 64, 64, 3, 64, 1);
  n.op("Relu", {"d3"}, "d3r");
  n.conv("d3r", "p3", 64, 16, 1);
  n.op("Add", {"p3", "b2"}, "Y");
  n.output("Y");
  return n;
}

// DARTS's separable conv halves: depthwise (5x5; 3x3 dilated by 2) -> project, both
// reading s (so neither block may write over its input), the second adding the first's
// output; then a strided one (3x3, stride 2) over that graph output. `h` rows of 13
// pixels.
Net sep_conv_net(int64_t h) {
  Net n;
  n.input("X", {1, 8, h, 13});
  n.conv("X", "s", 8, 16, 1);
  n.conv("s", "d1", 16, 16, 5, 16, 2);
  n.conv("d1", "p1", 16, 16, 1);
  n.op("Relu", {"p1"}, "a");
  attr_ints(n.conv("s", "d2", 16, 16, 3, 16, 2), "dilations", {2, 2});
  n.conv("d2", "p2", 16, 16, 1);
  n.op("Add", {"p2", "a"}, "Y");
  n.conv("Y", "d3", 16, 16, 3, 16, 1, 2);
  n.conv("d3", "Z", 16, 16, 1);
  n.output("Y");
  n.output("Z");
  return n;
}

}  // namespace nnjit::plan_test

TEST_SUITE("graph") {
  TEST_CASE("a step that frees more than it writes runs as soon as it can, where that shrinks the arena") {
    static const Engine engine;
    const std::string bytes = cells_net().bytes();
    for (const std::string isa : {"reference", "auto"}) {
      CAPTURE(isa);
      auto model = engine.load_bytes(bytes.data(), bytes.size(), "cells_net.onnx", "", isa_options(isa));
      auto step_of = [&](const std::string& node) {
        const auto& steps = model->steps();
        for (std::size_t k = 0; k < steps.size(); ++k)
          for (const std::string& n : steps[k].nodes)
            if (n == node) return static_cast<int>(k);
        return -1;
      };
      // b1 (s0's last reader: 16 channels for 64) moves up before a2 widens again.
      CHECK_MESSAGE(step_of("b1_conv") < step_of("a2_conv"), model->plan_report());
      CHECK(step_of("a1_conv") < step_of("b1_conv"));
      // In the written order s0 (64 channels), a1 and a2 (64) are alive at a2; moved,
      // at most two 16-channel values and one 64-channel one are (fp32, 8x8).
      const std::size_t plane = 8 * 8 * sizeof(float);
      CHECK(model->arena_bytes() <= (64 + 16 + 16) * plane + 1024);
    }
  }

  TEST_CASE("plan_graph: a downsampling shortcut read late runs after the main branch, on X's compacted pixels") {
    for (const bool written_first : {false, true}) {
      CAPTURE(written_first);
      const graph::Graph g = finalized(bottleneck_net(written_first));
      jit::HostInfo host = avx512_host();
      host.l2_bytes = std::size_t{64} << 10;
      int ds_node = -1;
      for (std::size_t i = 0; i < g.nodes.size(); ++i)
        if (g.nodes[i].name == "ds_conv") ds_node = static_cast<int>(i);
      REQUIRE(ds_node >= 0);
      graph::PlanLimits late;
      late.late_downsample = {ds_node};
      const ExecutionPlan as_loaded = graph::plan_graph(g, host, {}), p = graph::plan_graph(g, host, {}, late);
      auto find = [&](const ExecutionPlan& plan, const std::string& op) {
        for (std::size_t k = 0; k < plan.steps.size(); ++k)
          if (plan.steps[k].op == op) return static_cast<int>(k);
        return -1;
      };
      CHECK(find(as_loaded, "Subsample") < 0);
      // Read late: main branch (a two-stage row stream up to d3's input), the subsample,
      // d3 alone, then the shortcut (stride 1 now) adding d3, and the Relu.
      const int crop = find(p, "Subsample"), d3 = find(p, "Conv"), ds = find(p, "Conv+Add+Relu");
      REQUIRE_MESSAGE(crop >= 0, "no subsample step");
      REQUIRE(d3 == crop + 1);
      REQUIRE(ds == crop + 2);
      const PlannedStep& c = p.steps[static_cast<std::size_t>(crop)];
      CHECK(c.kind == StepKind::crop);
      CHECK(c.channels == std::vector<std::pair<int, int64_t>>{{0, 0}, {0, 0}, {0, 2}});
      CHECK(p.added_values.at(static_cast<std::size_t>(c.outputs[0]) - g.values.size()).shape == Shape{1, 32, 20, 20});
      const PlannedStep& main = p.steps[static_cast<std::size_t>(crop - 1)];
      CHECK(main.kind == StepKind::row_stream);
      CHECK(main.stream->stages.size() == 2);
      CHECK(main.inputs[0] == c.inputs[0]);  // the crop runs after X's last other reader
      const PlannedStep& d3s = p.steps[static_cast<std::size_t>(d3)];
      CHECK(d3s.nodes.size() == 1);
      const auto& d3p = std::get<jit::PointwisePlan>(d3s.plan);
      CHECK(d3p.shape.residual == jit::ResidualMode::none);
      CHECK(d3p.shape.activation.kind == jit::ActivationKind::none);
      const PlannedStep& sc = p.steps[static_cast<std::size_t>(ds)];
      const auto& dsp = std::get<jit::PointwisePlan>(sc.plan);
      CHECK(dsp.shape.stride == 1);
      CHECK(dsp.shape.height == 20);
      CHECK(dsp.shape.residual == jit::ResidualMode::before_activation);
      CHECK(dsp.shape.activation.kind == jit::ActivationKind::relu);
      CHECK(sc.inputs[0] == c.outputs[0]);
      CHECK(sc.inputs[3] == d3s.outputs[0]);
      CHECK(sc.nodes.size() == 3);  // ds, the Add, the Relu
      CHECK(p.added_values.at(static_cast<std::size_t>(sc.outputs[0]) - g.values.size()).name.rfind("Y@", 0) == 0);
    }
  }

  TEST_CASE("bottlenecks: shortcuts read late, identity blocks streamed in place, on 1 to 3 threads; same answers") {
    static const Engine engine;
    for (const bool written_first : {false, true}) {
      CAPTURE(written_first);
      const std::string bytes = bottleneck_net(written_first).bytes();
      auto want_model = engine.load_bytes(bytes.data(), bytes.size(), "bottleneck_net.onnx", "", isa_options("reference"));
      const std::vector<NamedTensor> inputs = {{"X", testing::random_tensor({1, 8, 40, 40}, 5)}};
      const Tensor want = want_model->session().run(inputs).at(0).tensor;
      if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return;
      std::size_t arena[4] = {};
      for (int threads : {1, 2, 3}) {
        CAPTURE(threads);
        Options o;
        o.threads = threads;
        o.host = {{"l2", "64K"}};
        auto model = engine.load_bytes(bytes.data(), bytes.size(), "bottleneck_net.onnx", "", o);
        arena[threads] = model->arena_bytes();
        bool subsample = false, identity_stream = false;
        for (const StepInfo& s : model->steps()) {
          subsample = subsample || s.op == "Subsample";
          // relu(c3(c2(c1(s))) + s): three stages, the output over s.
          identity_stream = identity_stream || (s.kernel.rfind("row_stream[", 0) == 0 && s.nodes.front() == "c1_conv" &&
                                                s.nodes.back() == "y_Relu");
        }
        // (On three threads the identity stream's six sets of row buffers make its step
        // the peak: reading the shortcut late would not shrink the arena.)
        CHECK_MESSAGE(subsample == (threads < 3), model->plan_report());
        CHECK_MESSAGE(identity_stream, model->plan_report());
        Session session = model->session();
        CHECK(testing::max_abs_diff(session.run(inputs).at(0).tensor, want) <= 1e-5);
        CHECK(testing::max_abs_diff(session.run(inputs).at(0).tensor, want) <= 1e-5);  // the arena reused
      }
      // The stem's step is the peak (s, 200 KiB, and the input reordered to 16-channel
      // blocks, 100 KiB); the blocks add nothing to it (c1, D: 100 KiB each).
      for (int threads : {1, 2}) CHECK(arena[threads] == (32 + 16) * 40 * 40 * 4);
    }
  }

  TEST_CASE("a stream whose first stage reads rows above its own (Fused-MBConv) is not run over its input") {
    // EfficientNetV2's Fused-MBConv: y = s + c2(silu(c1(s))), c1 3x3, c2 1x1. Row r of
    // c1 reads s's row r - 1, which the tile before wrote over had the output taken s's
    // bytes (found on efficientnet_v2_s: the block's output off by 2.4 of 3.0).
    static const Engine engine;
    Net n;
    n.input("X", {1, 8, 40, 40});
    n.conv("X", "s", 8, 16, 1);
    n.conv("s", "c1", 16, 64, 3, 1, 1);
    n.op("Sigmoid", {"c1"}, "g1");
    n.op("Mul", {"c1", "g1"}, "m1");
    n.conv("m1", "c2", 64, 16, 1);
    n.op("Add", {"c2", "s"}, "Y");
    n.output("Y");
    const std::string bytes = n.bytes();
    const std::vector<NamedTensor> inputs = {{"X", testing::random_tensor({1, 8, 40, 40}, 9)}};
    auto reference = engine.load_bytes(bytes.data(), bytes.size(), "fused_mbconv.onnx", "", isa_options("reference"));
    const Tensor want = reference->session().run(inputs).at(0).tensor;
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return;
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      Options o;
      o.threads = threads;
      o.host = {{"l2", "64K"}};
      auto model = engine.load_bytes(bytes.data(), bytes.size(), "fused_mbconv.onnx", "", o);
      bool stream = false;
      for (const StepInfo& st : model->steps()) stream = stream || st.kernel.rfind("row_stream[", 0) == 0;
      CHECK_MESSAGE(stream, model->plan_report());  // streamed still, into its own bytes
      Session session = model->session();
      for (int run = 0; run < 3; ++run) CHECK(testing::max_abs_diff(session.run(inputs).at(0).tensor, want) <= 1e-5);
    }
  }

  TEST_CASE("a shortcut read late on odd sizes: the subsample takes rows and columns 0, 2, ..., the last") {
    static const Engine engine;
    for (const int64_t size : {39, 23}) {
      CAPTURE(size);
      const std::string bytes = bottleneck_net(false, size).bytes();
      const std::vector<NamedTensor> inputs = {{"X", testing::random_tensor({1, 8, size, size}, 6)}};
      auto reference = engine.load_bytes(bytes.data(), bytes.size(), "bottleneck_net.onnx", "", isa_options("reference"));
      const Tensor want = reference->session().run(inputs).at(0).tensor;
      if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return;
      for (int threads : {1, 2}) {
        CAPTURE(threads);
        Options o;
        o.threads = threads;
        o.host = {{"l2", "64K"}};
        auto model = engine.load_bytes(bytes.data(), bytes.size(), "bottleneck_net.onnx", "", o);
        bool subsample = false;
        for (const StepInfo& st : model->steps()) subsample = subsample || st.op == "Subsample";
        CHECK_MESSAGE(subsample, model->plan_report());
        CHECK(testing::max_abs_diff(model->session().run(inputs).at(0).tensor, want) <= 1e-5);
      }
    }
  }

  TEST_CASE("inverted-residual blocks write over their input, on one and two threads; same answers") {
    const graph::Graph g = finalized(ir_chain_net());
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      Options o;
      o.threads = threads;
      const ExecutionPlan p = graph::plan_graph(g, avx512_host(), o);
      int blocks = 0;
      for (const PlannedStep& st : p.steps)
        if (st.kind == StepKind::ir_block) {
          ++blocks;
          CHECK(st.block->in_place_ok);
          CHECK_FALSE(st.block->in_place);  // the engine's to turn on
        }
      CHECK(blocks == 3);
    }
    static const Engine engine;
    const std::string bytes = ir_chain_net().bytes();
    const std::vector<NamedTensor> inputs = {{"X", testing::random_tensor({1, 8, 96, 24}, 9)}};
    auto reference = engine.load_bytes(bytes.data(), bytes.size(), "ir_chain_net.onnx", "", isa_options("reference"));
    const Tensor want = reference->session().run(inputs).at(0).tensor;
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return;
    for (int threads : {1, 2, 3}) {
      CAPTURE(threads);
      Options o;
      o.threads = threads;
      // On threads only under a memory limit (in place, a block runs in three rounds).
      if (threads > 1) o.max_arena_bytes = std::size_t{1} << 30;
      auto model = engine.load_bytes(bytes.data(), bytes.size(), "ir_chain_net.onnx", "", o);
      // One thread: the peak is the output's reorder (Y blocked and plain); a block over
      // its own input needs one 16-channel value and its buffers, not its input and its
      // output. On threads, each worker's buffers (two pairs in place) weigh more: the
      // engine puts the blocks in place where that still shrinks the arena.
      int in_place = 0;
      for (const StepInfo& st : model->steps()) in_place += st.reason.rfind("in place", 0) == 0;
      CHECK_MESSAGE(in_place == (threads < 3 ? 3 : 0), model->plan_report());
      constexpr std::size_t value = 16 * 96 * 24 * 4;
      if (threads == 1) CHECK_MESSAGE(model->arena_bytes() <= 2 * value, model->memory_report() << model->plan_report());
      // Runs on threads: the steps' Balances move their splits as they learn this host.
      Session session = model->session();
      for (int run = 0; run < (threads > 1 ? 12 : 2); ++run)
        CHECK(testing::max_abs_diff(session.run(inputs).at(0).tensor, want) <= 1e-4);
    }
  }

  TEST_CASE("blocks without an expand keep their depthwise rows in their output, on 1 to 3 threads; same answers") {
    static const Engine engine;
    for (int64_t h : {37, 8, 1}) {  // tiles of 4 rows and a last one of 1; 2 tiles; 1 tile
      CAPTURE(h);
      const std::string bytes = sep_conv_net(h).bytes();
      const std::vector<NamedTensor> inputs = {{"X", testing::random_tensor({1, 8, h, 13}, 5)}};
      auto reference = engine.load_bytes(bytes.data(), bytes.size(), "sep_conv_net.onnx", "", isa_options("reference"));
      const std::vector<NamedTensor> want = reference->session().run(inputs);
      for (const std::string isa : {"auto", "avx2"}) {
        if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return;
        for (int threads : {1, 2, 3}) {
          CAPTURE(isa);
          CAPTURE(threads);
          Options o = isa_options(isa);
          o.threads = threads;
          auto model = engine.load_bytes(bytes.data(), bytes.size(), "sep_conv_net.onnx", "", o);
          // Every block runs without a depthwise buffer: the arena holds s, the first two
          // blocks' outputs, or Y and Z and their plain twins, no more.
          int blocks = 0;
          for (const StepInfo& st : model->steps())
            blocks += st.reason.rfind("no depthwise buffer", 0) == 0;
          CHECK_MESSAGE(blocks == 3, model->plan_report());
          const std::size_t value = 16 * static_cast<std::size_t>(h) * 13 * 4;
          CHECK_MESSAGE(model->arena_bytes() <= 3 * value, model->memory_report() << model->plan_report());
          Session session = model->session();
          for (int run = 0; run < 2; ++run) {
            const std::vector<NamedTensor> got = session.run(inputs);
            for (std::size_t i = 0; i < want.size(); ++i) CHECK(testing::max_abs_diff(got.at(i).tensor, want[i].tensor) <= 1e-4);
          }
        }
      }
    }
  }
}
