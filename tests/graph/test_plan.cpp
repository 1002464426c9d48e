// The graph planner (graph/plan.hpp) on small ONNX models built inline: which steps it
// fuses, which kernel family each conv gets, where layouts change, and that every plan
// is valid (each step reads only what an earlier step wrote). Plans are made for fake
// hosts (AVX-512, AVX2-only, no SIMD), so the AVX-512 choices are checked on any
// machine; the same models then run end to end through the public API, isa=reference
// against isa=auto and isa=avx2 (the latter two only where the host has AVX2).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
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
#include "tests/loaders/onnx_test_util.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using graph::ExecutionPlan;
using graph::PlannedStep;
using graph::StepKind;

namespace {

// ------------------------------------------------------------------ fake hosts

jit::HostInfo bare_host() {  // no SIMD at all, one core, 256 KiB L2
  jit::HostInfo h;
  h.l2_bytes = std::size_t{256} << 10;
  h.physical_cores = h.logical_cores = 1;
  return h;
}
jit::HostInfo avx2_host() {
  jit::HostInfo h = bare_host();
  h.avx2 = h.fma = true;
  return h;
}
jit::HostInfo avx512_host() {
  jit::HostInfo h = avx2_host();
  h.avx512f = h.avx512bw = h.avx512vl = h.avx512dq = true;
  return h;
}

Options isa_options(const std::string& isa) {
  Options o;
  o.isa = isa;
  return o;
}

// ------------------------------------------------------------------ model building

void attr_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
void attr_ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
void attr_float(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

// A model under construction: float inputs, random constant weights, named outputs.
struct Net {
  onnx::ModelProto m = testing::empty_model(17);
  uint32_t seed = 7;

  onnx::GraphProto* g() { return m.mutable_graph(); }  // not a member: Nets are copied

  Net& input(const std::string& name, const std::vector<int64_t>& dims) {
    testing::add_tensor_info(g()->mutable_input(), name, onnx::TensorProto::FLOAT, dims);
    return *this;
  }
  Net& output(const std::string& name) {
    g()->add_output()->set_name(name);
    return *this;
  }
  // A constant of seeded values in [-0.5, 0.5).
  std::string weights(const std::string& name, const std::vector<int64_t>& dims) {
    Tensor t = testing::random_tensor(dims, seed++, -0.5f, 0.5f);
    testing::add_float_initializer(g(), name, dims, std::vector<float>(t.data<float>(), t.data<float>() + t.numel()));
    return name;
  }
  std::string ints(const std::string& name, const std::vector<int64_t>& v) {
    auto* t = g()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(v.size()));
    for (int64_t x : v) t->add_int64_data(x);
    return name;
  }
  std::string scalar(const std::string& name, float v) {
    testing::add_float_initializer(g(), name, {}, {v});
    return name;
  }
  // Conv y = x * W + b, W [cout, cin/groups, k, k] (or k x k x k with rank 3), pads on
  // every side.
  onnx::NodeProto* conv(const std::string& x, const std::string& y, int64_t cin, int64_t cout, int64_t k,
                        int64_t groups = 1, int64_t pad = 0, int64_t stride = 1, int spatial = 2) {
    std::vector<int64_t> wdims = {cout, cin / groups};
    for (int i = 0; i < spatial; ++i) wdims.push_back(k);
    const std::string w = weights(y + "_w", wdims), b = weights(y + "_b", {cout});
    auto* n = testing::add_node(g(), "Conv", {x, w, b}, {y}, y + "_conv");
    attr_ints(n, "kernel_shape", std::vector<int64_t>(static_cast<std::size_t>(spatial), k));
    attr_ints(n, "pads", std::vector<int64_t>(static_cast<std::size_t>(2 * spatial), pad));
    attr_ints(n, "strides", std::vector<int64_t>(static_cast<std::size_t>(spatial), stride));
    if (groups != 1) attr_int(n, "group", groups);
    return n;
  }
  onnx::NodeProto* op(const std::string& type, const std::vector<std::string>& ins, const std::string& out) {
    return testing::add_node(g(), type, ins, {out}, out + "_" + type);
  }
  onnx::NodeProto* clip(const std::string& x, const std::string& y, float lo, float hi) {
    return op("Clip", {x, scalar(y + "_lo", lo), scalar(y + "_hi", hi)}, y);
  }
  onnx::NodeProto* hard_sigmoid(const std::string& x, const std::string& y, float alpha, float beta) {
    auto* n = op("HardSigmoid", {x}, y);
    attr_float(n, "alpha", alpha);
    attr_float(n, "beta", beta);
    return n;
  }
  std::string bytes() const { return m.SerializeAsString(); }
};

graph::Graph finalized(const Net& net) {
  graph::Graph g = testing::load(net.m);
  graph::finalize(g, {});
  return g;
}

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
      expect(p.steps[k].kind == StepKind::to_plain || p.steps[k].kind == StepKind::reference,
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

// ------------------------------------------------------------------ the models

// X[1,C,8,8] -> 1x1 Conv (C -> C) -> A, then what `tail` adds, reading "A".
Net conv_then(int64_t c, const std::function<void(Net&)>& tail) {
  Net n;
  n.input("X", {1, c, 8, 8});
  n.conv("X", "A", c, c, 1);
  tail(n);
  return n;
}

Net conv_relu() { return conv_then(16, [](Net& n) { n.op("Relu", {"A"}, "Y"); n.output("Y"); }); }
Net conv_clip() { return conv_then(16, [](Net& n) { n.clip("A", "Y", 0.f, 6.f); n.output("Y"); }); }
// Conv -> one activation node of `type` (a LeakyRelu's alpha is 0.1).
Net conv_act(const std::string& type) {
  return conv_then(16, [=](Net& n) {
    auto* a = n.op(type, {"A"}, "Y");
    if (type == "LeakyRelu") attr_float(a, "alpha", 0.1f);
    n.output("Y");
  });
}
Net conv_silu(bool gate_first) {
  return conv_then(16, [=](Net& n) {
    n.op("Sigmoid", {"A"}, "S");
    n.op("Mul", gate_first ? std::vector<std::string>{"S", "A"} : std::vector<std::string>{"A", "S"}, "Y");
    n.output("Y");
  });
}
Net conv_hard_swish(float alpha) {
  return conv_then(16, [=](Net& n) {
    n.hard_sigmoid("A", "S", alpha, 0.5f);
    n.op("Mul", {"A", "S"}, "Y");
    n.output("Y");
  });
}
// Conv -> Add(R) -> Relu: relu(conv + residual).
Net conv_add_relu() {
  Net n = conv_then(16, [](Net& n) {
    n.op("Add", {"A", "R"}, "B");
    n.op("Relu", {"B"}, "Y");
    n.output("Y");
  });
  n.input("R", {1, 16, 8, 8});
  return n;
}
// Conv -> Relu -> Add(R): relu(conv) + residual.
Net conv_relu_add() {
  Net n = conv_then(16, [](Net& n) {
    n.op("Relu", {"A"}, "B");
    n.op("Add", {"R", "B"}, "Y");
    n.output("Y");
  });
  n.input("R", {1, 16, 8, 8});
  return n;
}
// The conv's output has a second reader.
Net conv_relu_shared() {
  return conv_then(16, [](Net& n) {
    n.op("Relu", {"A"}, "Y");
    n.op("Sigmoid", {"A"}, "Z");
    n.output("Y").output("Z");
  });
}
// The conv's output is a graph output too.
Net conv_relu_output() { return conv_then(16, [](Net& n) { n.op("Relu", {"A"}, "Y"); n.output("A").output("Y"); }); }
// The SiLU gate is read twice.
Net conv_silu_gate_shared() {
  return conv_then(16, [](Net& n) {
    n.op("Sigmoid", {"A"}, "S");
    n.op("Mul", {"A", "S"}, "Y");
    n.output("Y").output("S");
  });
}
// The Add's result (between conv+add and relu) is a graph output: the Add fuses, the Relu
// does not.
Net conv_add_output_relu() {
  Net n = conv_then(16, [](Net& n) {
    n.op("Add", {"A", "R"}, "B");
    n.op("Relu", {"B"}, "Y");
    n.output("B").output("Y");
  });
  n.input("R", {1, 16, 8, 8});
  return n;
}

// One conv of the given geometry on X[1,16,8,8] (or [1,4,6,6,6] for a 3-D conv).
Net one_conv(int64_t k, int64_t groups, int64_t pad, int spatial = 2) {
  Net n;
  n.input("X", spatial == 2 ? std::vector<int64_t>{1, 16, 8, 8} : std::vector<int64_t>{1, 4, 6, 6, 6});
  n.conv("X", "Y", spatial == 2 ? 16 : 4, spatial == 2 ? 16 : 8, k, groups, pad, 1, spatial);
  n.output("Y");
  return n;
}
Net variable_weights() {
  Net n;
  n.input("X", {1, 16, 8, 8}).input("W", {16, 16, 3, 3});
  auto* c = n.op("Conv", {"X", "W"}, "Y");
  attr_ints(c, "pads", {1, 1, 1, 1});
  n.output("Y");
  return n;
}

// A graph input read by two pointwise convs.
Net input_two_convs() {
  Net n;
  n.input("X", {1, 16, 8, 8});
  n.conv("X", "A", 16, 24, 1);
  n.conv("X", "B", 16, 8, 1);
  n.op("Relu", {"A"}, "Y");
  n.op("Relu", {"B"}, "Z");
  n.output("Y").output("Z");
  return n;
}
// A conv read by two reference ops.
Net conv_two_reference_readers() {
  Net n;
  n.input("X", {1, 16, 8, 8});
  n.conv("X", "A", 16, 16, 1);
  auto* t = n.op("Transpose", {"A"}, "T");
  attr_ints(t, "perm", {0, 2, 3, 1});
  auto* s = n.op("Softmax", {"A"}, "S");
  attr_int(s, "axis", 1);
  n.output("T").output("S");
  return n;
}

// Odd channel counts (block tails), batch 2: stem 3x3 s2 (3 -> 17) + Relu, 1x1 (17 -> 40)
// + ReLU6, depthwise 3x3 + SiLU, grouped 3x3 (groups 4) + HardSwish, 1x1 (40 -> 17) +
// Add of the stem's output + Relu, MaxPool, a Softmax output and a pooled output.
Net mixed_net() {
  Net n;
  n.input("X", {2, 3, 13, 11});
  n.conv("X", "c1", 3, 17, 3, 1, 1, 2);
  n.op("Relu", {"c1"}, "r1");
  n.conv("r1", "c2", 17, 40, 1);
  n.clip("c2", "r2", 0.f, 6.f);
  n.conv("r2", "c3", 40, 40, 3, 40, 1);
  n.op("Sigmoid", {"c3"}, "s3");
  n.op("Mul", {"c3", "s3"}, "r3");
  n.conv("r3", "c4", 40, 40, 3, 4, 1);
  n.hard_sigmoid("c4", "s4", 1.f / 6.f, 0.5f);
  n.op("Mul", {"s4", "c4"}, "r4");
  n.conv("r4", "c5", 40, 17, 1);
  n.op("Add", {"c5", "r1"}, "a5");
  n.op("Relu", {"a5"}, "r5");
  auto* mp = n.op("MaxPool", {"r5"}, "p5");
  attr_ints(mp, "kernel_shape", {2, 2});
  attr_ints(mp, "strides", {2, 2});
  auto* sm = n.op("Softmax", {"r5"}, "Y");
  attr_int(sm, "axis", 1);
  n.output("Y").output("p5");
  return n;
}
// Large early activations streamed row by row: a stem conv into its max pool, and a
// pointwise conv into a 5x5 conv into a strided conv that adds a residual computed
// before them (a ResNet bottleneck's shape).
Net row_stream_net() {
  Net n;
  n.input("X", {1, 3, 97, 90});
  n.conv("X", "c1", 3, 48, 3, 1, 1);  // 48 x 97 x 90 floats: 1.6 MiB
  n.op("Relu", {"c1"}, "r1");
  auto* mp = n.op("MaxPool", {"r1"}, "p1");
  attr_ints(mp, "kernel_shape", {3, 3});
  attr_ints(mp, "strides", {2, 2});
  attr_ints(mp, "pads", {1, 1, 1, 1});
  n.conv("p1", "e1", 48, 32, 1);             // a pointwise first stage
  n.op("Relu", {"e1"}, "q1");
  n.conv("q1", "c2", 32, 64, 5, 1, 2);       // 64 x 49 x 45 floats: 550 KiB
  n.op("Relu", {"c2"}, "r2");
  n.conv("r2", "c3", 64, 40, 3, 1, 1, 2);
  n.conv("p1", "side", 48, 40, 3, 1, 1, 2);  // the residual, 40 x 25 x 23, computed last
  n.op("Add", {"c3", "side"}, "a3");
  n.op("Relu", {"a3"}, "Y");
  n.output("Y");
  return n;
}

// A residual from a graph input: relu(conv3x3(conv1x1(X)) + X), then relu(conv(.)) + X,
// with 17 channels and batch 2; HardSigmoid(0.2) * x (not a HardSwish) at the end.
Net residual_net() {
  Net n;
  n.input("X", {2, 17, 7, 9});
  n.conv("X", "c1", 17, 40, 1);
  n.op("Relu", {"c1"}, "r1");
  n.conv("r1", "c2", 40, 17, 3, 1, 1);
  n.op("Add", {"X", "c2"}, "a2");
  n.op("Relu", {"a2"}, "r2");
  n.conv("r2", "c3", 17, 17, 3, 1, 1);
  n.op("Relu", {"c3"}, "r3");
  n.op("Add", {"r3", "X"}, "a3");
  n.conv("a3", "c4", 17, 3, 1);
  n.hard_sigmoid("c4", "s4", 0.2f, 0.5f);
  n.op("Mul", {"c4", "s4"}, "Y");
  n.output("Y");
  return n;
}

// Clip as opset-9 attributes (0, 6), and Clip with only a min of 0 (a ReLU).
Net conv_clip_attributes() {
  Net n;
  n.m = testing::empty_model(9);
  n.input("X", {1, 16, 8, 8});
  n.conv("X", "A", 16, 16, 1);
  auto* c = n.op("Clip", {"A"}, "Y");
  attr_float(c, "min", 0.f);
  attr_float(c, "max", 6.f);
  n.output("Y");
  return n;
}
Net conv_clip_min_only() {
  return conv_then(16, [](Net& n) {
    n.op("Clip", {"A", n.scalar("lo", 0.f)}, "Y");
    n.output("Y");
  });
}

// Batch 1 (the fused blocks' case): an inverted residual 17 -> 40 -> 17 with ReLU6s and
// the input added, a squeeze-excitation (GlobalAveragePool -> 1x1 + Relu -> 1x1 +
// Sigmoid -> Mul), then GlobalAveragePool -> Flatten -> Gemm (a Linear layer).
Net block_net() {
  Net n;
  n.input("X", {1, 17, 9, 7});
  n.conv("X", "e", 17, 40, 1);
  n.clip("e", "er", 0.f, 6.f);
  n.conv("er", "d", 40, 40, 3, 40, 1);
  n.clip("d", "dr", 0.f, 6.f);
  n.conv("dr", "p", 40, 17, 1);
  n.op("Add", {"p", "X"}, "b");
  n.conv("b", "c", 17, 24, 1);
  n.op("Relu", {"c"}, "cr");
  n.op("GlobalAveragePool", {"cr"}, "sq");
  n.conv("sq", "s1", 24, 8, 1);
  n.op("Relu", {"s1"}, "s1r");
  n.conv("s1r", "s2", 8, 24, 1);
  n.op("Sigmoid", {"s2"}, "gate");
  n.op("Mul", {"cr", "gate"}, "se");
  n.op("GlobalAveragePool", {"se"}, "gp");
  n.op("Flatten", {"gp"}, "f");
  auto* fc = n.op("Gemm", {"f", n.weights("fc_w", {10, 24}), n.weights("fc_b", {10})}, "Y");
  attr_int(fc, "transB", 1);
  n.output("Y");
  return n;
}

// Channel moves between blocked tensors, with widths that are no multiple of a block:
// Concat(5 + 7 channels) -> channel shuffle (2 groups) -> Slice of channels 0..4 into a
// 1x1 conv, and Slice 4..12 as a graph output.
Net gather_net() {
  Net n;
  n.input("X", {1, 16, 6, 5});
  n.conv("X", "a", 16, 5, 1);
  n.op("Relu", {"a"}, "ar");
  n.conv("X", "b", 16, 7, 1);
  n.op("Relu", {"b"}, "br");
  auto* cat = n.op("Concat", {"ar", "br"}, "cat");
  attr_int(cat, "axis", 1);
  n.op("Reshape", {"cat", n.ints("shape5", {1, 2, 6, 6, 5})}, "r5");
  auto* t = n.op("Transpose", {"r5"}, "t5");
  attr_ints(t, "perm", {0, 2, 1, 3, 4});
  n.op("Reshape", {"t5", n.ints("shape4", {1, 12, 6, 5})}, "sh");
  n.op("Slice", {"sh", n.ints("s0", {0}), n.ints("e0", {4}), n.ints("ax0", {1})}, "lo");
  n.op("Slice", {"sh", n.ints("s1", {4}), n.ints("e1", {12}), n.ints("ax1", {1})}, "Z");
  n.conv("lo", "Y", 4, 9, 1);
  n.output("Y").output("Z");
  return n;
}

// Odds and ends at batch 2 with 17 channels: a conv without bias, a crop of H and W,
// AveragePool (ceil mode, padding not counted), x * Sigmoid(GlobalAveragePool(x)),
// ReduceMean to [N,C], Flatten -> Gemm with 24 inputs (a whole number of AVX2 blocks
// only) and with 17, and a Gemm reading a 2-D graph input.
Net misc_net() {
  Net n;
  n.input("X", {2, 24, 7, 8}).input("V", {2, 16});
  n.op("Conv", {"X", n.weights("c1_w", {17, 24, 1, 1})}, "c1");
  n.op("Slice", {"c1", n.ints("cs", {1, 2}), n.ints("ce", {6, 7}), n.ints("ca", {2, 3})}, "crop");
  auto* ap = n.op("AveragePool", {"crop"}, "ap");
  attr_ints(ap, "kernel_shape", {3, 3});
  attr_ints(ap, "strides", {2, 2});
  attr_ints(ap, "pads", {1, 1, 1, 1});
  attr_int(ap, "ceil_mode", 1);
  n.op("GlobalAveragePool", {"ap"}, "g");
  n.op("Sigmoid", {"g"}, "gs");
  n.op("Mul", {"gs", "ap"}, "sc");
  auto* rm = n.op("ReduceMean", {"sc"}, "rm");
  attr_ints(rm, "axes", {2, 3});
  attr_int(rm, "keepdims", 0);
  auto* g1 = n.op("Gemm", {"rm", n.weights("g1_w", {5, 17}), n.weights("g1_b", {5})}, "Y17");
  attr_int(g1, "transB", 1);
  n.conv("X", "c2", 24, 24, 1);
  n.op("Relu", {"c2"}, "c2r");
  n.op("GlobalAveragePool", {"c2r"}, "g2");
  n.op("Flatten", {"g2"}, "f2");
  auto* g2 = n.op("Gemm", {"f2", n.weights("g2_w", {6, 24})}, "h");
  attr_int(g2, "transB", 1);
  n.op("Relu", {"h"}, "Y24");
  auto* g3 = n.op("Gemm", {"V", n.weights("g3_w", {3, 16}), n.weights("g3_b", {3})}, "YV");
  attr_int(g3, "transB", 1);
  n.output("Y17").output("Y24").output("YV").output("crop");
  return n;
}

// Concat of a value twice and of a plain graph input, read by a conv and a reference op;
// the graph input is a graph output too.
Net concat_net() {
  Net n;
  n.input("X", {1, 5, 4, 4});
  n.conv("X", "a", 5, 3, 1);
  n.op("Relu", {"a"}, "ar");
  auto* cat = n.op("Concat", {"ar", "ar", "X"}, "cat");
  attr_int(cat, "axis", 1);
  n.conv("cat", "Y", 11, 6, 1);
  auto* sm = n.op("Softmax", {"cat"}, "Z");
  attr_int(sm, "axis", 1);
  n.output("Y").output("Z").output("X");
  return n;
}

// Geometry at batch 2, 17 channels: asymmetric padding, a strided pointwise, a dilated
// depthwise, a dilated dense conv, SAME_UPPER padding; two conv outputs that cannot fuse
// an Add (a graph output, a second reader) added by an eltwise step with its Relu, then
// multiplied; a GlobalMaxPool.
Net geometry_net() {
  Net n;
  n.input("X", {2, 17, 11, 10});
  auto* c1 = n.conv("X", "c1", 17, 17, 3);
  for (auto& a : *c1->mutable_attribute())
    if (a.name() == "pads") {  // top, left, bottom, right
      a.clear_ints();
      for (int64_t v : {0, 0, 1, 1}) a.add_ints(v);
    }
  n.conv("c1", "c2", 17, 9, 1, 1, 0, 2);
  auto* c3 = n.conv("c1", "c3", 17, 17, 3, 17, 2);
  attr_ints(c3, "dilations", {2, 2});
  auto* c4 = n.conv("X", "c4", 17, 8, 3, 1, 2);
  attr_ints(c4, "dilations", {2, 2});
  auto* c5 = n.op("Conv", {"X", n.weights("c5_w", {8, 17, 3, 3}), n.weights("c5_b", {8})}, "c5");
  auto* ap = c5->add_attribute();
  ap->set_name("auto_pad");
  ap->set_type(onnx::AttributeProto::STRING);
  ap->set_s("SAME_UPPER");
  n.op("GlobalMaxPool", {"c5"}, "gmp");
  n.op("Add", {"c4", "c5"}, "e");
  n.op("Relu", {"e"}, "er");
  n.op("Mul", {"er", "c4"}, "m");
  n.output("c2").output("c3").output("c4").output("gmp").output("m");
  return n;
}

// Residual and product operands that are constants of the full shape.
Net constant_operands() {
  Net n;
  n.input("X", {1, 17, 5, 6});
  n.conv("X", "c", 17, 17, 1);
  n.op("Add", {"c", n.weights("K", {1, 17, 5, 6})}, "a");
  n.op("Relu", {"a"}, "r");
  n.op("Mul", {n.weights("M", {1, 17, 5, 6}), "r"}, "Y");
  n.output("Y");
  return n;
}

// DARTS's FactorizedReduce at batch 2: relu(x) -> crop [1:, 1:] (two Slices) -> 1x1 stride 2,
// which folds into the conv; a stride-1 1x1 over another crop, which cannot (the whole
// tensor would give a larger output).
Net crop_net() {
  Net n;
  n.input("X", {2, 24, 14, 14});
  n.conv("X", "c0", 24, 24, 1);
  n.op("Relu", {"c0"}, "r");
  n.op("Slice", {"r", n.ints("rs", {1}), n.ints("re", {14}), n.ints("ra", {2})}, "rows");
  n.op("Slice", {"rows", n.ints("cs", {1}), n.ints("ce", {14}), n.ints("ca", {3})}, "crop");
  n.conv("crop", "Y", 24, 20, 1, 1, 0, 2);
  n.op("Slice", {"r", n.ints("s2", {1, 1}), n.ints("e2", {14, 14}), n.ints("a2", {2, 3})}, "crop2");
  n.conv("crop2", "Z", 24, 20, 1);
  n.output("Y").output("Z");
  return n;
}

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
// or the shortcut (it then runs last, adding d3).
Net bottleneck_net(bool shortcut_written_first) {
  Net n;
  n.input("X", {1, 8, 40, 40});
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

struct NamedNet {
  const char* name;
  Net (*make)();
};
const std::vector<NamedNet>& all_nets() {
  static const std::vector<NamedNet> nets = {
      {"conv_relu", conv_relu},
      {"conv_clip", conv_clip},
      {"conv_silu", [] { return conv_silu(false); }},
      {"conv_silu_gate_first", [] { return conv_silu(true); }},
      {"conv_hard_swish", [] { return conv_hard_swish(1.f / 6.f); }},
      {"conv_hard_sigmoid_0.2", [] { return conv_hard_swish(0.2f); }},
      {"conv_add_relu", conv_add_relu},
      {"conv_relu_add", conv_relu_add},
      {"conv_relu_shared", conv_relu_shared},
      {"conv_relu_output", conv_relu_output},
      {"conv_silu_gate_shared", conv_silu_gate_shared},
      {"conv_add_output_relu", conv_add_output_relu},
      {"pointwise", [] { return one_conv(1, 1, 0); }},
      {"pointwise_padded", [] { return one_conv(1, 1, 1); }},
      {"depthwise", [] { return one_conv(3, 16, 1); }},
      {"grouped", [] { return one_conv(3, 4, 1); }},
      {"dense", [] { return one_conv(3, 1, 1); }},
      {"conv3d", [] { return one_conv(3, 1, 1, 3); }},
      {"variable_weights", variable_weights},
      {"input_two_convs", input_two_convs},
      {"conv_two_reference_readers", conv_two_reference_readers},
      {"mixed_net", mixed_net},
      {"residual_net", residual_net},
      {"conv_clip_attributes", conv_clip_attributes},
      {"conv_clip_min_only", conv_clip_min_only},
      {"block_net", block_net},
      {"gather_net", gather_net},
      {"misc_net", misc_net},
      {"crop_net", crop_net},
      {"concat_net", concat_net},
      {"geometry_net", geometry_net},
      {"constant_operands", constant_operands},
      {"conv_leaky_relu", [] { return conv_act("LeakyRelu"); }},
      {"conv_hard_swish_op", [] { return conv_act("HardSwish"); }},
      {"row_stream_net", row_stream_net},
      {"cells_net", cells_net},
      {"bottleneck_net", [] { return bottleneck_net(false); }},
      {"bottleneck_net_shortcut_first", [] { return bottleneck_net(true); }},
      {"ir_chain_net", ir_chain_net},
  };
  return nets;
}

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
    auto jit = engine.load(path, {});
    auto ref = engine.load(path, isa_options("reference"));
    CHECK_FALSE(mapped(path));  // kept constants were copied out, packed ones dropped
    const Tensor x = testing::random_tensor({1, 32, 9, 9}, 5);
    auto a = jit->session().run({{"X", x}});
    auto b = ref->session().run({{"X", x}});
    CHECK(testing::max_abs_diff(a[0].tensor, b[0].tensor) < 1e-4);
    jit.reset();
    ref.reset();
    CHECK_FALSE(mapped(path));
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
      Session session = model->session();
      for (int run = 0; run < 2; ++run) CHECK(testing::max_abs_diff(session.run(inputs).at(0).tensor, want) <= 1e-4);
    }
  }

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
}
