// The graph planner (graph/plan.hpp) on small ONNX models built inline
// (plan_test_nets.hpp): which steps it fuses, which kernel family each conv gets, where
// layouts change, and that every plan is valid (each step reads only what an earlier
// step wrote). Plans are made for fake hosts (AVX-512, AVX2-only, no SIMD), so the
// AVX-512 choices are checked on any machine; the same models run end to end in
// test_plan_end_to_end.cpp, the memory choices are tested in test_plan_memory.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "graph/graph.hpp"
#include "graph/passes.hpp"
#include "graph/plan.hpp"
#include "jit/host_info.hpp"
#include "loaders/onnx_loader.hpp"
#include "nnjit/nnjit.hpp"
#include "tests/graph/plan_test_nets.hpp"
#include "tests/loaders/onnx_test_util.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using namespace nnjit::plan_test;
using graph::ExecutionPlan;
using graph::PlannedStep;
using graph::StepKind;

namespace {

// ------------------------------------------------------------------ plan inspection

int value_id(const graph::Graph& g, const std::string& name) {
  for (std::size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i].name == name) return static_cast<int>(i);
  FAIL("no value named " << name);
  return -1;
}

std::string value_name(const graph::Graph& g, const ExecutionPlan& p, int v) {
  if (v < 0) return "-";
  const std::size_t i = static_cast<std::size_t>(v);
  if (i < g.values.size()) return g.values[i].name;
  if (i - g.values.size() < p.added_values.size()) return p.added_values[i - g.values.size()].name;
  return "#" + std::to_string(v) + "?";
}

// One line per step, for failure messages.
std::string describe(const graph::Graph& g, const ExecutionPlan& p) {
  std::ostringstream s;
  s << "plan isa=" << p.isa << " block=" << p.block_size << "\n";
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const PlannedStep& st = p.steps[k];
    s << "  #" << k << " " << graph::step_kind_name(st.kind) << " " << st.op << " [" << graph::kernel_plan_name(st.plan)
      << "] (";
    for (int v : st.inputs) s << value_name(g, p, v) << " ";
    s << ") -> (";
    for (int v : st.outputs) s << value_name(g, p, v) << " ";
    s << ")";
    if (!st.reason.empty()) s << " : " << st.reason;
    s << "\n";
  }
  return s.str();
}

int block_of(const ExecutionPlan& p, int v) { return p.block.at(static_cast<std::size_t>(v)); }

// The plan's invariants: every step input is a graph input, a constant or written by an
// earlier step; each value is written once; layouts agree with step kinds; graph
// outputs end up written and plain (last written by a reorder to plain or a reference
// op); every graph node runs in at most one step. Returns what is broken, one line each.
std::vector<std::string> plan_problems(const graph::Graph& g, const ExecutionPlan& p) {
  std::vector<std::string> bad;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) bad.push_back(what);
    return ok;
  };
  const std::size_t total = g.values.size() + p.added_values.size();
  if (!expect(p.block.size() == total, "block has " + std::to_string(p.block.size()) + " entries for " +
                                           std::to_string(total) + " values"))
    return bad;
  auto name = [&](int v) { return "'" + value_name(g, p, v) + "'"; };
  auto in_range = [&](int v) { return v >= 0 && static_cast<std::size_t>(v) < total; };
  auto block = [&](int v) { return in_range(v) ? block_of(p, v) : -1; };
  std::vector<char> written(total, 0);
  for (int v : g.inputs) written[static_cast<std::size_t>(v)] = 1;
  for (std::size_t v = 0; v < g.values.size(); ++v)
    if (g.is_constant(static_cast<int>(v))) written[v] = 1;
  std::vector<int> node_step(g.nodes.size(), -1);
  if (p.isa == "reference") {
    expect(p.block_size == 0, "a reference plan with block " + std::to_string(p.block_size));
    expect(p.added_values.empty(), "a reference plan adds values");
  } else {
    expect((p.isa == "avx512" && p.block_size == 16) || (p.isa == "avx2" && p.block_size == 8),
           "isa " + p.isa + " with block " + std::to_string(p.block_size));
  }
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const PlannedStep& st = p.steps[k];
    const std::string at = "step #" + std::to_string(k) + " " + graph::step_kind_name(st.kind) + " " + st.op;
    for (int v : st.inputs) {
      if (v < 0) continue;
      if (!expect(in_range(v), at + " reads value id " + std::to_string(v) + ", out of range")) continue;
      expect(written[static_cast<std::size_t>(v)], at + " reads " + name(v) + " before any step writes it");
    }
    for (int v : st.outputs) {
      if (!expect(in_range(v), at + " writes value id " + std::to_string(v) + ", out of range")) continue;
      expect(!written[static_cast<std::size_t>(v)], at + " writes " + name(v) + ", written already");
      written[static_cast<std::size_t>(v)] = 1;
    }
    for (int n : st.nodes) {
      if (!expect(n >= 0 && static_cast<std::size_t>(n) < g.nodes.size(), at + " runs node #" + std::to_string(n)))
        continue;
      expect(node_step[static_cast<std::size_t>(n)] < 0, "node " + g.nodes[static_cast<std::size_t>(n)].name +
                                                            " runs in steps #" +
                                                            std::to_string(node_step[static_cast<std::size_t>(n)]) +
                                                            " and #" + std::to_string(k));
      node_step[static_cast<std::size_t>(n)] = static_cast<int>(k);
    }
    const bool jit_step = st.kind != StepKind::reference && st.kind != StepKind::to_blocked &&
                          st.kind != StepKind::to_plain;
    if (p.isa == "reference") expect(!jit_step, at + " in a reference plan");
    const int out = st.outputs.empty() ? -1 : st.outputs[0];
    switch (st.kind) {
      case StepKind::reference:
        expect(!st.reason.empty(), at + " gives no reason");
        expect(st.nodes.size() == 1, at + " runs " + std::to_string(st.nodes.size()) + " nodes");
        for (int v : st.inputs)
          if (v >= 0) expect(block(v) == 0, at + " reads blocked " + name(v));
        for (int v : st.outputs) expect(block(v) == 0, at + " writes blocked " + name(v));
        break;
      case StepKind::to_blocked:
      case StepKind::to_plain: {
        if (!expect(st.inputs.size() == 1 && st.outputs.size() == 1, at + " is not one value to one")) break;
        const bool to_blocked = st.kind == StepKind::to_blocked;
        expect(block(st.inputs[0]) == (to_blocked ? 0 : p.block_size), at + " reads " + name(st.inputs[0]) +
                                                                          " in the wrong layout");
        expect(block(out) == (to_blocked ? p.block_size : 0), at + " writes " + name(out) + " in the wrong layout");
        expect(st.nodes.empty(), at + " runs nodes");
        break;
      }
      case StepKind::conv: {
        if (!expect(st.inputs.size() == 4 && st.outputs.size() == 1, at + ": not {src, w, b, res} -> {dst}")) break;
        expect(!graph::kernel_plan_name(st.plan).empty(), at + " has no kernel");
        expect(g.is_constant(st.inputs[1]), at + ": weights not constant");
        expect(st.inputs[2] < 0 || g.is_constant(st.inputs[2]), at + ": bias not constant");
        const auto* dense = std::get_if<jit::DensePlan>(&st.plan);
        const bool plain_src = dense && dense->shape.src_nchw;
        expect(block(st.inputs[0]) == (plain_src ? 0 : p.block_size), at + " reads " + name(st.inputs[0]) +
                                                                         " in the wrong layout");
        if (st.inputs[3] >= 0)
          expect(block(st.inputs[3]) == p.block_size, at + " reads residual " + name(st.inputs[3]) + " plain");
        expect(block(out) == p.block_size, at + " writes " + name(out) + " plain");
        break;
      }
      case StepKind::gemm: {
        if (!expect(st.inputs.size() == 3 && st.outputs.size() == 1, at + ": not {a, w, bias} -> {dst}")) break;
        const auto* gp = std::get_if<jit::GemmPlan>(&st.plan);
        if (!expect(gp != nullptr, at + " has no gemm plan")) break;
        expect(g.is_constant(st.inputs[1]), at + ": weights not constant");
        expect(st.inputs[2] < 0 || g.is_constant(st.inputs[2]), at + ": bias not constant");
        expect(gp->shape.has_bias == (st.inputs[2] >= 0), at + ": bias and plan disagree");
        expect(block(st.inputs[0]) == 0 && block(out) == 0, at + " reads or writes a blocked value");
        expect(gp->shape.m * gp->shape.k == shape_numel(g.values[static_cast<std::size_t>(st.inputs[0])].shape) &&
                   gp->shape.m * gp->shape.n == shape_numel(g.values[static_cast<std::size_t>(out)].shape),
               at + ": the plan's M, K, N do not match its values");
        break;
      }
      case StepKind::pool:
      case StepKind::eltwise:
        expect(!graph::kernel_plan_name(st.plan).empty(), at + " has no kernel");
        for (int v : st.inputs)
          if (v >= 0) expect(block(v) == p.block_size, at + " reads plain " + name(v));
        expect(block(out) == p.block_size, at + " writes " + name(out) + " plain");
        break;
      case StepKind::crop:
      case StepKind::gather:
        for (int v : st.inputs) expect(block(v) == p.block_size, at + " reads plain " + name(v));
        expect(block(out) == p.block_size, at + " writes " + name(out) + " plain");
        break;
      case StepKind::ir_block:
        expect(st.block.has_value(), at + " has no block plan");
        expect(block(st.inputs.at(0)) == p.block_size, at + " reads plain " + name(st.inputs.at(0)));
        expect(block(out) == p.block_size, at + " writes " + name(out) + " plain");
        break;
      case StepKind::row_stream: {
        if (!expect(st.stream.has_value() && st.stream->stages.size() >= 2 &&
                        st.inputs.size() == 2 + 2 * st.stream->stages.size() && st.outputs.size() == 2,
                    at + ": no stream plan, or not {src, (w, b) per stage, res} -> {dst, buffers}"))
          break;
        const auto* first = std::get_if<jit::DensePlan>(&st.stream->stages.front());
        const bool plain_src = first && first->shape.src_nchw;
        expect(block(st.inputs[0]) == (plain_src ? 0 : p.block_size), at + " reads " + name(st.inputs[0]) +
                                                                         " in the wrong layout");
        for (std::size_t k = 0; k < st.stream->stages.size(); ++k) {
          const bool pool = std::holds_alternative<jit::PoolPlan>(st.stream->stages[k]);
          expect(pool == (st.inputs[1 + 2 * k] < 0), at + ": stage weights do not match its kind");
          if (!pool) expect(g.is_constant(st.inputs[1 + 2 * k]), at + ": stage weights not constant");
          expect(!pool || k + 1 == st.stream->stages.size(), at + ": a pool before the last stage");
        }
        if (st.inputs.back() >= 0) expect(block(st.inputs.back()) == p.block_size, at + " reads residual plain");
        expect(block(out) == p.block_size, at + " writes " + name(out) + " plain");
        expect(st.stream->tile_rows >= 1 && st.stream->buffer_rows.size() + 1 == st.stream->stages.size(),
               at + ": tiles or buffers missing");
        for (int64_t rows : st.stream->buffer_rows) expect(rows >= 1, at + ": an empty buffer");
        break;
      }
      case StepKind::se_block:
        expect(st.se.has_value(), at + " has no SE plan");
        expect(block(st.inputs.at(0)) == p.block_size, at + " reads plain " + name(st.inputs.at(0)));
        expect(block(out) == p.block_size, at + " writes " + name(out) + " plain");
        break;
    }
  }
  for (int v : g.outputs) {
    if (!expect(written[static_cast<std::size_t>(v)], "graph output " + name(v) + " is never written")) continue;
    expect(block_of(p, v) == 0, "graph output " + name(v) + " is blocked");
    for (std::size_t k = p.steps.size(); k-- > 0;) {
      const auto& outs = p.steps[k].outputs;
      if (std::find(outs.begin(), outs.end(), v) == outs.end()) continue;
      expect(p.steps[k].kind == StepKind::to_plain || p.steps[k].kind == StepKind::reference ||
                 p.steps[k].kind == StepKind::gemm,
             "graph output " + name(v) + " is last written by step #" + std::to_string(k) + ", a " +
                 graph::step_kind_name(p.steps[k].kind) + " step");
      break;
    }
  }
  return bad;
}

void check_plan(const graph::Graph& g, const ExecutionPlan& p, const std::string& what) {
  const std::vector<std::string> bad = plan_problems(g, p);
  std::string lines;
  for (const std::string& b : bad) lines += "  " + b + "\n";
  CHECK_MESSAGE(bad.empty(), what << ": invalid plan\n" << lines << describe(g, p));
}

// Plans `g` and checks the plan's invariants.
ExecutionPlan plan_checked(const graph::Graph& g, const jit::HostInfo& host, const Options& o = {}) {
  ExecutionPlan p = graph::plan_graph(g, host, o);
  check_plan(g, p, "isa=" + o.isa + " host=" + jit::isa_name(host));
  // A pure function: the same plan again, to the kernel keys.
  const ExecutionPlan again = graph::plan_graph(g, host, o);
  std::string keys, keys_again;
  for (const PlannedStep& s : p.steps) keys += graph::kernel_plan_key(s.plan) + ";";
  for (const PlannedStep& s : again.steps) keys_again += graph::kernel_plan_key(s.plan) + ";";
  CHECK_MESSAGE(describe(g, again) == describe(g, p), "planning twice differs");
  CHECK(keys_again == keys);
  return p;
}

// The step that writes graph value `value` (the one whose nodes include its producer).
const PlannedStep* step_running(const graph::Graph& g, const ExecutionPlan& p, const std::string& value) {
  const int producer = g.values[static_cast<std::size_t>(value_id(g, value))].producer;
  for (const PlannedStep& s : p.steps)
    if (std::find(s.nodes.begin(), s.nodes.end(), producer) != s.nodes.end()) return &s;
  return nullptr;
}

// The one conv step of a plan (a model with one Conv).
const PlannedStep& the_conv(const graph::Graph& g, const ExecutionPlan& p) {
  const PlannedStep* found = nullptr;
  int count = 0;
  for (const PlannedStep& s : p.steps)
    if (s.kind == StepKind::conv) found = &s, ++count;
  REQUIRE_MESSAGE(count == 1, describe(g, p));
  return *found;
}

int count_kind(const ExecutionPlan& p, StepKind kind) {
  return static_cast<int>(std::count_if(p.steps.begin(), p.steps.end(), [&](const PlannedStep& s) { return s.kind == kind; }));
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("graph") {
  TEST_CASE("plan_graph fuses activations and residual Adds into the conv step") {
    for (const jit::HostInfo& host : {avx2_host(), avx512_host()}) {
      CAPTURE(jit::isa_name(host));
      struct Case {
        const char* name;
        Net net;
        const char* op;
        const char* kernel;  // in the kernel's name
      };
      const Case cases[] = {
          {"relu", conv_relu(), "Conv+Relu", "_relu_"},
          {"clip", conv_clip(), "Conv+Clip", "_clip_"},
          {"silu x*s", conv_silu(false), "Conv+Sigmoid+Mul", "_silu_"},
          {"silu s*x", conv_silu(true), "Conv+Sigmoid+Mul", "_silu_"},
          {"hard_swish", conv_hard_swish(1.f / 6.f), "Conv+HardSigmoid+Mul", "_hard_swish_"},
          {"res_relu", conv_add_relu(), "Conv+Add+Relu", "_res_relu_"},
          {"relu_res", conv_relu_add(), "Conv+Relu+Add", "_relu_res_"},
          {"clip attributes", conv_clip_attributes(), "Conv+Clip", "_clip_"},
          {"clip min only", conv_clip_min_only(), "Conv+Clip", "_relu_"},
          {"leaky_relu", conv_act("LeakyRelu"), "Conv+LeakyRelu", "_leaky_relu_"},
          {"sigmoid", conv_act("Sigmoid"), "Conv+Sigmoid", "_sigmoid_"},
          {"hard_sigmoid", conv_act("HardSigmoid"), "Conv+HardSigmoid", "_hard_sigmoid_"},
          {"HardSwish", conv_act("HardSwish"), "Conv+HardSwish", "_hard_swish_"},
      };
      for (const Case& c : cases) {
        CAPTURE(c.name);
        const graph::Graph g = finalized(c.net);
        const ExecutionPlan p = plan_checked(g, host);
        const PlannedStep& conv = the_conv(g, p);
        const std::string kernel = graph::kernel_plan_name(conv.plan);
        CHECK_MESSAGE(conv.op == c.op, describe(g, p));
        CHECK_MESSAGE(contains(kernel, c.kernel), kernel);
        CHECK_MESSAGE(conv.nodes.size() == g.nodes.size(), "every node runs in the conv step\n" << describe(g, p));
        // Nothing but reorders around the one fused step.
        CHECK_MESSAGE(count_kind(p, StepKind::reference) + count_kind(p, StepKind::eltwise) == 0, describe(g, p));
        CHECK(count_kind(p, StepKind::to_plain) == 1);
        if (contains(c.name, "res")) {
          CHECK(conv.inputs[3] >= 0);
          CHECK(conv.inputs[3] != conv.inputs[0]);
        } else {
          CHECK(conv.inputs[3] == -1);
        }
      }
    }
  }

  TEST_CASE("plan_graph runs MatMul and Gemm with constant weights as gemm steps on plain tensors") {
    for (const jit::HostInfo& host : {avx2_host(), avx512_host()}) {
      CAPTURE(jit::isa_name(host));
      const graph::Graph g = finalized(linear_net());
      const ExecutionPlan p = plan_checked(g, host);
      std::vector<std::string> ops, kernels;
      for (const PlannedStep& st : p.steps)
        if (st.kind == StepKind::gemm) {
          ops.push_back(st.op);
          kernels.push_back(graph::kernel_plan_name(st.plan));
        }
      // The bias Adds (either operand order) and the activations fused; the product that
      // is a graph output keeps its Relu apart.
      const std::vector<std::string> want = {"MatMul+Add+Relu", "MatMul+Add", "MatMul", "Gemm+Sigmoid"};
      CHECK_MESSAGE(ops == want, describe(g, p));
      REQUIRE(kernels.size() == 4);
      CHECK(contains(kernels[0], "_relu_"));
      CHECK(contains(kernels[3], "_sigmoid_"));
      for (const std::string& k : kernels) CHECK(contains(k, jit::isa_name(host)));
      const auto& first = std::get<jit::GemmPlan>(
          std::find_if(p.steps.begin(), p.steps.end(), [](const PlannedStep& st) { return st.kind == StepKind::gemm; })
              ->plan);
      CHECK(first.shape.m == 15);  // [1,3,5] rows
      CHECK(first.shape.k == 40);
      CHECK(first.shape.n == 33);
      CHECK(first.shape.has_bias);
      CHECK(count_kind(p, StepKind::to_blocked) + count_kind(p, StepKind::to_plain) == 0);  // plain throughout
    }
    // Weights computed at run time: a reference MatMul that says why.
    Net n;
    n.input("A", {4, 8}).input("B", {8, 3});
    n.op("MatMul", {"A", "B"}, "Y");
    n.output("Y");
    const graph::Graph g = finalized(n);
    const ExecutionPlan p = plan_checked(g, avx512_host());
    REQUIRE(p.steps.size() == 1);
    CHECK(p.steps[0].kind == StepKind::reference);
    CHECK_MESSAGE(contains(p.steps[0].reason, "weights are not a constant"), p.steps[0].reason);
  }

  TEST_CASE("plan_graph fuses torch's five-node GELU into the gemm and conv steps before it") {
    for (const jit::HostInfo& host : {avx2_host(), avx512_host()}) {
      CAPTURE(jit::isa_name(host));
      const graph::Graph g = finalized(gelu_net());
      const ExecutionPlan p = plan_checked(g, host);
      std::vector<std::string> fused;
      int erf_reference = 0;
      for (const PlannedStep& st : p.steps) {
        if (st.kind == StepKind::gemm || st.kind == StepKind::conv)
          fused.push_back(st.op + " " + graph::kernel_plan_name(st.plan));
        erf_reference += st.kind == StepKind::reference && st.op == "Erf";
      }
      REQUIRE_MESSAGE(fused.size() == 3, describe(g, p));
      CHECK_MESSAGE(contains(fused[0], "MatMul+Add+Div+Erf+Add+Mul+Mul f32_gemm_gelu_"), fused[0]);
      CHECK_MESSAGE(contains(fused[1], "Conv+Div+Erf+Add+Mul+Mul f32_pointwise_gelu_"), fused[1]);
      CHECK_MESSAGE(fused[2].rfind("MatMul f32_gemm_", 0) == 0, fused[2]);  // divides by 2: not GELU
      CHECK(erf_reference == 1);
    }
  }

  TEST_CASE("plan_graph does not fuse through values with other readers or graph outputs") {
    const jit::HostInfo host = avx2_host();
    {
      INFO("HardSigmoid(alpha 0.2) * x is not a HardSwish");
      const graph::Graph g = finalized(conv_hard_swish(0.2f));
      const ExecutionPlan p = plan_checked(g, host);
      const PlannedStep& conv = the_conv(g, p);
      CHECK_MESSAGE(conv.op == "Conv", describe(g, p));
      CHECK_FALSE(contains(graph::kernel_plan_name(conv.plan), "hard_swish"));
      CHECK(step_running(g, p, "S") != &conv);
      CHECK(step_running(g, p, "Y") != &conv);
    }
    for (auto make : {conv_relu_shared, conv_relu_output}) {
      const graph::Graph g = finalized(make());
      const ExecutionPlan p = plan_checked(g, host);
      const PlannedStep& conv = the_conv(g, p);
      CHECK_MESSAGE(conv.op == "Conv", describe(g, p));
      CHECK_FALSE(contains(graph::kernel_plan_name(conv.plan), "relu"));
      const PlannedStep* relu = step_running(g, p, "Y");
      REQUIRE(relu);
      CHECK(relu != &conv);
    }
    {
      INFO("the SiLU gate is a graph output");
      const graph::Graph g = finalized(conv_silu_gate_shared());
      const ExecutionPlan p = plan_checked(g, host);
      const PlannedStep& conv = the_conv(g, p);
      CHECK_MESSAGE(conv.op == "Conv", describe(g, p));
      CHECK_FALSE(contains(graph::kernel_plan_name(conv.plan), "silu"));
    }
    {
      INFO("Conv + Add fuse; the Add's output is a graph output, so the Relu runs apart");
      const graph::Graph g = finalized(conv_add_output_relu());
      const ExecutionPlan p = plan_checked(g, host);
      const PlannedStep& conv = the_conv(g, p);
      CHECK_MESSAGE(conv.op == "Conv+Add", describe(g, p));
      CHECK_FALSE(contains(graph::kernel_plan_name(conv.plan), "relu"));
      CHECK(step_running(g, p, "Y") != &conv);
    }
  }

  TEST_CASE("plan_graph picks the conv family from the geometry") {
    for (const jit::HostInfo& host : {avx2_host(), avx512_host()}) {
      CAPTURE(jit::isa_name(host));
      auto family = [&](const Net& net) {
        const graph::Graph g = finalized(net);
        const ExecutionPlan p = plan_checked(g, host);
        const PlannedStep& conv = the_conv(g, p);
        CHECK(conv.op == "Conv");
        return conv.plan;
      };
      const graph::KernelPlan pw = family(one_conv(1, 1, 0));
      CHECK(std::holds_alternative<jit::PointwisePlan>(pw));
      CHECK(contains(graph::kernel_plan_name(pw), "pointwise"));
      const graph::KernelPlan dw = family(one_conv(3, 16, 1));
      CHECK(std::holds_alternative<jit::DepthwisePlan>(dw));
      CHECK(contains(graph::kernel_plan_name(dw), "depthwise"));
      const graph::KernelPlan gr = family(one_conv(3, 4, 1));
      CHECK(std::holds_alternative<jit::GroupedPlan>(gr));
      CHECK(contains(graph::kernel_plan_name(gr), "grouped"));
      const graph::KernelPlan dense = family(one_conv(3, 1, 1));
      CHECK(std::holds_alternative<jit::DensePlan>(dense));
      CHECK(contains(graph::kernel_plan_name(dense), "dense"));
      const int block = jit::has_avx512(host) ? 16 : 8;
      CHECK(std::get<jit::PointwisePlan>(pw).block == block);
      CHECK(std::get<jit::DepthwisePlan>(dw).block == block);
      CHECK(std::get<jit::GroupedPlan>(gr).block == block);
      CHECK(std::get<jit::DensePlan>(dense).block == block);

      // A padded 1x1 is no pointwise, and the dense family generates 3x3, 5x5 and 7x7 only.
      for (const auto& [what, net, reason] : {std::tuple{"3-D conv", one_conv(3, 1, 1, 3), "2-D"},
                                              std::tuple{"padded 1x1", one_conv(1, 1, 1), "dense"},
                                              std::tuple{"weights from an input", variable_weights(), "constant"}}) {
        CAPTURE(what);
        const graph::Graph g = finalized(net);
        const ExecutionPlan p = plan_checked(g, host);
        CHECK(count_kind(p, StepKind::conv) == 0);
        const PlannedStep* s = step_running(g, p, "Y");
        REQUIRE(s);
        CHECK(s->kind == StepKind::reference);
        CHECK(s->op == "Conv");
        CHECK_MESSAGE(contains(s->reason, reason), s->reason);
        CHECK_MESSAGE(count_kind(p, StepKind::to_blocked) + count_kind(p, StepKind::to_plain) == 0, describe(g, p));
      }
    }
  }

  TEST_CASE("plan_graph threads layouts: one reorder per value and direction, plain graph outputs") {
    for (const jit::HostInfo& host : {avx2_host(), avx512_host()}) {
      CAPTURE(jit::isa_name(host));
      const int block = jit::has_avx512(host) ? 16 : 8;
      {
        INFO("a graph input read by two convs is reordered once");
        const graph::Graph g = finalized(input_two_convs());
        const ExecutionPlan p = plan_checked(g, host);
        CHECK(p.block_size == block);
        CHECK(count_kind(p, StepKind::conv) == 2);
        const int x = value_id(g, "X");
        int reorders_of_x = 0;
        for (const PlannedStep& s : p.steps)
          if (s.kind == StepKind::to_blocked && s.inputs[0] == x) ++reorders_of_x;
        CHECK_MESSAGE(reorders_of_x == 1, describe(g, p));
        CHECK_MESSAGE(count_kind(p, StepKind::to_blocked) == 1, describe(g, p));
        CHECK_MESSAGE(count_kind(p, StepKind::to_plain) == 2, describe(g, p));  // Y and Z
        for (const PlannedStep& s : p.steps)
          if (s.kind == StepKind::conv) {
            CHECK(s.op == "Conv+Relu");
            CHECK(block_of(p, s.outputs[0]) == block);
          }
      }
      {
        INFO("a conv read by two reference ops is reordered to plain once");
        const graph::Graph g = finalized(conv_two_reference_readers());
        const ExecutionPlan p = plan_checked(g, host);
        const int a = value_id(g, "A");
        int to_plain_a = 0;
        for (const PlannedStep& s : p.steps)
          if (s.kind == StepKind::to_plain && s.outputs[0] == a) ++to_plain_a;
        CHECK_MESSAGE(to_plain_a == 1, describe(g, p));
        CHECK_MESSAGE(count_kind(p, StepKind::to_plain) == 1, describe(g, p));
        CHECK(count_kind(p, StepKind::reference) == 2);
        for (const PlannedStep& s : p.steps)
          if (s.kind == StepKind::reference) {
            CHECK_MESSAGE((s.op == "Transpose" || s.op == "Softmax"), s.op);
            CHECK(s.inputs[0] == a);
          }
      }
      {
        INFO("mixed net: every conv runs a JIT kernel, the pool too; outputs plain");
        const graph::Graph g = finalized(mixed_net());
        const ExecutionPlan p = plan_checked(g, host);
        CHECK_MESSAGE(count_kind(p, StepKind::conv) == 5, describe(g, p));
        const PlannedStep* pool = step_running(g, p, "p5");
        REQUIRE(pool);
        CHECK_MESSAGE(pool->kind == StepKind::pool, describe(g, p));
        CHECK(step_running(g, p, "r5")->op == "Conv+Add+Relu");
        CHECK(contains(graph::kernel_plan_name(step_running(g, p, "r3")->plan), "silu"));
        CHECK(contains(graph::kernel_plan_name(step_running(g, p, "r4")->plan), "hard_swish"));
        CHECK(step_running(g, p, "Y")->kind == StepKind::reference);
      }
    }
  }

  TEST_CASE("plan_graph runs no JIT step with isa=reference or on a host without AVX2") {
    struct Case {
      const char* what;
      jit::HostInfo host;
      Options options;
      const char* reason;
    };
    const Case cases[] = {
        {"isa=reference on AVX-512", avx512_host(), isa_options("reference"), "isa=reference"},
        {"isa=reference on AVX2", avx2_host(), isa_options("reference"), "isa=reference"},
        {"no SIMD, isa=auto", bare_host(), isa_options("auto"), "AVX2"},
        {"no SIMD, isa=avx2", bare_host(), isa_options("avx2"), "AVX2"},
    };
    for (const Case& c : cases) {
      CAPTURE(c.what);
      for (const NamedNet& nn : all_nets()) {
        const std::string net_name = nn.name;
      CAPTURE(net_name);
        const graph::Graph g = finalized(nn.make());
        const ExecutionPlan p = plan_checked(g, c.host, c.options);
        CHECK(p.isa == "reference");
        CHECK(p.block_size == 0);
        CHECK_MESSAGE(count_kind(p, StepKind::reference) == static_cast<int>(p.steps.size()), describe(g, p));
        CHECK(p.steps.size() == g.nodes.size());
        for (const PlannedStep& s : p.steps)
          if (s.op == "Conv") CHECK_MESSAGE(contains(s.reason, c.reason), s.reason);
      }
    }
  }

  TEST_CASE("plan_graph: the block size follows the host and isa option") {
    const graph::Graph g = finalized(mixed_net());
    struct Case {
      jit::HostInfo host;
      const char* isa;
      const char* want_isa;
      int block;
    };
    for (const Case& c : {Case{avx512_host(), "auto", "avx512", 16}, Case{avx512_host(), "avx512", "avx512", 16},
                          Case{avx512_host(), "avx2", "avx2", 8}, Case{avx2_host(), "auto", "avx2", 8},
                          Case{avx2_host(), "avx2", "avx2", 8}}) {
      CAPTURE(jit::isa_name(c.host));
      CAPTURE(c.isa);
      const ExecutionPlan p = plan_checked(g, c.host, isa_options(c.isa));
      CHECK(p.isa == c.want_isa);
      CHECK(p.block_size == c.block);
      for (const PlannedStep& s : p.steps) {
        if (s.kind == StepKind::conv) CHECK_MESSAGE(contains(graph::kernel_plan_name(s.plan), "__" + p.isa), graph::kernel_plan_name(s.plan));
        for (int v : s.outputs) CHECK((block_of(p, v) == 0 || block_of(p, v) == c.block));
      }
      for (const graph::Value& v : p.added_values)
        if (!contains(v.name, "@tiles") && !contains(v.name, "@se"))
          CHECK_MESSAGE(contains(v.name, "@nChw" + std::to_string(c.block) + "c"), v.name);
    }
  }

  TEST_CASE("plan_graph: every plan of the small models and the zoo is valid") {
    const std::vector<std::pair<jit::HostInfo, Options>> setups = {
        {avx512_host(), isa_options("auto")}, {avx2_host(), isa_options("auto")}, {avx512_host(), isa_options("avx2")},
        {avx2_host(), isa_options("reference")}, {bare_host(), isa_options("auto")}};
    for (const NamedNet& nn : all_nets()) {
      const std::string net_name = nn.name;
      CAPTURE(net_name);
      const graph::Graph g = finalized(nn.make());
      for (const auto& [host, options] : setups) plan_checked(g, host, options);
      graph::Graph optimized = g;
      graph::optimize(optimized);
      for (const auto& [host, options] : setups) plan_checked(optimized, host, options);
    }
    const std::filesystem::path zoo = NNJIT_ZOO_DIR;
    if (!std::filesystem::is_directory(zoo)) return;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(zoo))
      if (e.path().extension() == ".onnx") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    int ir_blocks = 0;  // MobileNetV2 has them
    for (const auto& f : files) {
      CAPTURE(f.filename().string());
      graph::Graph g = loaders::load_onnx_file(f.string());
      graph::finalize(g, {});
      graph::optimize(g);  // as Engine::load plans it
      for (const jit::HostInfo& host : {avx512_host(), avx2_host()}) {
        const ExecutionPlan p = plan_checked(g, host);
        CHECK_MESSAGE(count_kind(p, StepKind::conv) + count_kind(p, StepKind::ir_block) > 0, describe(g, p));
      }
      // Inverted-residual tiles: at least a row; beyond one row, the two tile buffers fit
      // half the (fake) 256 KiB L2 and an eighth of the block's output; one row each
      // with the smallest tiles the memory limit asks for.
      for (const bool smallest : {false, true}) {
        CAPTURE(smallest);
        const ExecutionPlan p = graph::plan_graph(g, avx2_host(), {}, {.smallest_tiles = smallest});
        check_plan(g, p, smallest ? "smallest tiles" : "default tiles");
        for (const PlannedStep& s : p.steps) {
          if (s.kind != StepKind::ir_block || !s.block) continue;
          ++ir_blocks;
          const graph::InvertedResidualPlan& b = *s.block;
          CAPTURE(s.op);
          CHECK(b.tile_rows >= 1);
          CHECK(b.tile_rows <= b.depthwise.shape.out_height());
          if (smallest) CHECK(b.tile_rows == 1);
          if (b.tile_rows > 1) {
            const double bytes = static_cast<double>(b.expanded_floats() + b.depthwise_floats()) * 4;
            CHECK(bytes <= (256 << 10) / 2);
            CHECK(bytes <= static_cast<double>(b.project.dst_image_floats()) * 4 / 8);
          }
          if (b.has_expand) {
            const int64_t rows = (b.tile_rows - 1) * b.depthwise.shape.stride + b.depthwise.shape.dilated_kernel();
            CHECK(b.expanded_rows == std::min(rows, b.depthwise.shape.height));
          }
        }
      }
    }
    if (std::filesystem::exists(zoo / "mobilenet_v2.onnx")) CHECK(ir_blocks > 0);
  }

  TEST_CASE("plan_graph: fused blocks and channel moves on blocked tensors") {
    for (const jit::HostInfo& host : {avx2_host(), avx512_host()}) {
      CAPTURE(jit::isa_name(host));
      {
        const graph::Graph g = finalized(block_net());
        const ExecutionPlan p = plan_checked(g, host);
        const PlannedStep* ir = step_running(g, p, "b");
        REQUIRE(ir);
        CHECK_MESSAGE(ir->kind == StepKind::ir_block, describe(g, p));
        CHECK(ir->nodes.size() == 6);  // 3 Conv, 2 Clip, Add
        CHECK(ir->inputs.at(7) == ir->inputs.at(0));  // the residual is the block's input
        const PlannedStep* se = step_running(g, p, "se");
        REQUIRE(se);
        CHECK_MESSAGE(se->kind == StepKind::se_block, describe(g, p));
        CHECK(step_running(g, p, "gate") == se);
        CHECK(step_running(g, p, "sq") == se);
        const PlannedStep* fc = step_running(g, p, "Y");
        REQUIRE(fc);
        CHECK_MESSAGE(fc->kind == StepKind::conv, describe(g, p));
        CHECK(std::holds_alternative<jit::PointwisePlan>(fc->plan));
        CHECK(count_kind(p, StepKind::reference) == 0);
      }
      {
        // Activations over half the L2 stream into the one step that reads them.
        const graph::Graph g = finalized(row_stream_net());
        const ExecutionPlan p = plan_checked(g, host);
        const PlannedStep* stem = step_running(g, p, "p1");
        REQUIRE(stem);
        CHECK_MESSAGE(stem->kind == StepKind::row_stream, describe(g, p));
        CHECK(stem->nodes.size() == 3);  // Conv, Relu, MaxPool
        REQUIRE(stem->stream);
        REQUIRE(stem->stream->stages.size() == 2);
        CHECK(std::holds_alternative<jit::PoolPlan>(stem->stream->stages[1]));
        CHECK(std::get<jit::DensePlan>(stem->stream->stages[0]).shape.src_nchw);  // the image, read as given
        CHECK(stem->stream->buffers_floats() * 4 <= static_cast<int64_t>(host.l2_bytes) / 2);
        const PlannedStep* tail = step_running(g, p, "Y");
        REQUIRE(tail);
        CHECK_MESSAGE(tail->kind == StepKind::row_stream, describe(g, p));
        REQUIRE(tail->stream);
        // pointwise -> 5x5 -> strided 3x3 with the residual
        REQUIRE(tail->stream->stages.size() == 3);
        CHECK(std::holds_alternative<jit::PointwisePlan>(tail->stream->stages[0]));
        CHECK(std::holds_alternative<jit::DensePlan>(tail->stream->stages[2]));
        CHECK(tail->inputs.back() == step_running(g, p, "side")->outputs.at(0));  // the residual
        CHECK(step_running(g, p, "c2") == tail);
        CHECK(step_running(g, p, "e1") == tail);
        // A tensor that fits in half the L2 is not streamed.
        const ExecutionPlan roomy = plan_checked(g, [&] {
          jit::HostInfo big = host;
          big.l2_bytes = std::size_t{64} << 20;
          return big;
        }());
        CHECK_MESSAGE(count_kind(roomy, StepKind::row_stream) == 0, describe(g, roomy));
      }
      {
        const graph::Graph g = finalized(gather_net());
        const ExecutionPlan p = plan_checked(g, host);
        CHECK_MESSAGE(count_kind(p, StepKind::reference) == 0, describe(g, p));
        CHECK_MESSAGE(count_kind(p, StepKind::to_plain) == 2, describe(g, p));
        // Concat -> shuffle -> Slice reads the convs' outputs directly: one copy each.
        for (const char* v : {"lo", "Z"}) {
          CAPTURE(v);
          const PlannedStep* s = step_running(g, p, v);
          REQUIRE(s);
          CHECK_MESSAGE(s->kind == StepKind::gather, describe(g, p));
          for (int in : s->inputs) {
            const std::string n = value_name(g, p, in);
            CHECK_MESSAGE((contains(n, "ar@") || contains(n, "br@")), n);
          }
        }
      }
    }
  }

  TEST_CASE("plan_graph: eltwise and pool steps on blocked conv outputs") {
    for (const jit::HostInfo& host : {avx2_host(), avx512_host()}) {
      CAPTURE(jit::isa_name(host));
      const graph::Graph g = finalized(geometry_net());
      const ExecutionPlan p = plan_checked(g, host);
      CHECK_MESSAGE(count_kind(p, StepKind::conv) == 5, describe(g, p));
      CHECK_MESSAGE(count_kind(p, StepKind::reference) == 0, describe(g, p));
      const PlannedStep* add = step_running(g, p, "er");
      REQUIRE(add);
      CHECK_MESSAGE(add->kind == StepKind::eltwise, describe(g, p));
      CHECK(add->op == "Add+Relu");
      CHECK(step_running(g, p, "e") == add);
      CHECK(step_running(g, p, "m")->kind == StepKind::eltwise);
      CHECK(step_running(g, p, "gmp")->kind == StepKind::pool);
      CHECK(std::holds_alternative<jit::DepthwisePlan>(step_running(g, p, "c3")->plan));
      CHECK(std::holds_alternative<jit::PointwisePlan>(step_running(g, p, "c2")->plan));
    }
  }

  TEST_CASE("plan_graph: the plan checker catches broken plans") {
    const graph::Graph g = finalized(mixed_net());
    const ExecutionPlan good = graph::plan_graph(g, avx2_host(), {});
    REQUIRE(plan_problems(g, good).empty());
    {
      ExecutionPlan p = good;  // the last step first: it reads what is not written yet
      std::rotate(p.steps.rbegin(), p.steps.rbegin() + 1, p.steps.rend());
      CHECK(!plan_problems(g, p).empty());
    }
    {
      ExecutionPlan p = good;  // no reorder back to plain for a graph output
      auto last_to_plain = std::find_if(p.steps.rbegin(), p.steps.rend(),
                                        [](const PlannedStep& s) { return s.kind == StepKind::to_plain; });
      REQUIRE(last_to_plain != p.steps.rend());
      p.steps.erase(std::next(last_to_plain).base());
      CHECK(!plan_problems(g, p).empty());
    }
    {
      ExecutionPlan p = good;  // a value written twice
      p.steps.push_back(p.steps.back());
      CHECK(!plan_problems(g, p).empty());
    }
    {
      ExecutionPlan p = good;  // a conv writing a plain value
      for (PlannedStep& s : p.steps)
        if (s.kind == StepKind::conv) {
          p.block[static_cast<std::size_t>(s.outputs[0])] = 0;
          break;
        }
      CHECK(!plan_problems(g, p).empty());
    }
  }

  TEST_CASE("a model keeps only the constants some step reads as loaded; packed ones are dropped") {
    static const Engine engine;
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return;
    auto stored = [](const std::string& report) {
      const auto at = report.find("weights: ");
      REQUIRE(at != std::string::npos);
      return report.substr(at + 9, report.find(" stored", at) - at - 9);
    };
    {  // a conv and its relu: the weights live only packed
      const std::string bytes = conv_relu().bytes();
      auto model = engine.load_bytes(bytes.data(), bytes.size(), "conv_relu.onnx", "", {});
      CHECK(stored(model->memory_report()) == "0 B");
      CHECK(model->weights_bytes() > 0);  // the packed copy
    }
    {  // constants an elementwise step reads at run time stay, and the answers do not change
      const std::string bytes = constant_operands().bytes();
      auto jit = engine.load_bytes(bytes.data(), bytes.size(), "constant_operands.onnx", "", {});
      auto ref = engine.load_bytes(bytes.data(), bytes.size(), "constant_operands.onnx", "", isa_options("reference"));
      CHECK(stored(jit->memory_report()) != "0 B");
      const Tensor x = testing::random_tensor({1, 17, 5, 6}, 3);
      auto a = jit->session().run({{"X", x}});
      auto b = ref->session().run({{"X", x}});
      CHECK(testing::max_abs_diff(a[0].tensor, b[0].tensor) < 1e-4);
    }
  }

  TEST_CASE("plan_graph: a crop read by a strided pointwise conv is folded into it") {
    for (const jit::HostInfo& host : {avx2_host(), avx512_host()}) {
      CAPTURE(jit::isa_name(host));
      const graph::Graph g = finalized(crop_net());
      const ExecutionPlan p = plan_checked(g, host);
      const PlannedStep* y = step_running(g, p, "Y");
      REQUIRE(y);
      CHECK_MESSAGE(y->op == "Slice+Slice+Conv", describe(g, p));
      CHECK(y->src_shift == 14 + 1);  // one row and one column in
      const auto src = static_cast<std::size_t>(y->inputs[0]);
      REQUIRE(src >= g.values.size());  // the relu's blocked twin, not the crop's
      CHECK(p.added_values[src - g.values.size()].name.rfind("r@", 0) == 0);
      const auto& shape = std::get<jit::PointwisePlan>(y->plan).shape;
      CHECK(shape.height == 14);
      CHECK(shape.out_height() == 7);
      CHECK(count_kind(p, StepKind::crop) == 1);  // crop2: stride 1 over 14 rows gives 14, not 13
      CHECK(step_running(g, p, "Z")->src_shift == 0);
    }
  }
}
