// What the planner's tests share (test_plan.cpp, test_plan_memory.cpp): fake hosts, a
// builder of small ONNX models with seeded weights (Net), and the models of the memory
// tests, which the end-to-end sweep of test_plan.cpp runs too.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "graph/passes.hpp"
#include "jit/host_info.hpp"
#include "loaders/onnx_loader.hpp"
#include "nnjit/nnjit.hpp"
#include "tests/loaders/onnx_test_util.hpp"
#include "tests/test_util.hpp"

namespace nnjit::plan_test {

// ------------------------------------------------------------------ fake hosts

inline jit::HostInfo bare_host() {  // no SIMD at all, one core, 256 KiB L2
  jit::HostInfo h;
  h.l2_bytes = std::size_t{256} << 10;
  h.physical_cores = h.logical_cores = 1;
  return h;
}
inline jit::HostInfo avx2_host() {
  jit::HostInfo h = bare_host();
  h.avx2 = h.fma = true;
  return h;
}
inline jit::HostInfo avx512_host() {
  jit::HostInfo h = avx2_host();
  h.avx512f = h.avx512bw = h.avx512vl = h.avx512dq = true;
  return h;
}

inline Options isa_options(const std::string& isa) {
  Options o;
  o.isa = isa;
  return o;
}

// ------------------------------------------------------------------ model building

inline void attr_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
inline void attr_ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
inline void attr_float(onnx::NodeProto* n, const std::string& name, float v) {
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

inline graph::Graph finalized(const Net& net) {
  graph::Graph g = testing::load(net.m);
  graph::finalize(g, {});
  return g;
}

// The models (plan_test_nets.cpp; the memory tests' in test_plan_memory.cpp).
Net conv_then(int64_t c, const std::function<void(Net&)>& tail);
Net conv_relu();
Net conv_clip();
Net conv_act(const std::string& type);
Net conv_silu(bool gate_first);
Net conv_hard_swish(float alpha);
Net conv_add_relu();
Net conv_relu_add();
Net conv_relu_shared();
Net conv_relu_output();
Net conv_silu_gate_shared();
Net conv_add_output_relu();
Net one_conv(int64_t k, int64_t groups, int64_t pad, int spatial = 2);
Net variable_weights();
Net input_two_convs();
Net conv_two_reference_readers();
Net mixed_net();
Net row_stream_net();
Net residual_net();
Net conv_clip_attributes();
Net conv_clip_min_only();
Net block_net();
Net gather_net();
Net misc_net();
Net linear_net();
Net gelu_net();
Net concat_net();
Net geometry_net();
Net constant_operands();
Net crop_net();
Net cells_net();
Net bottleneck_net(bool shortcut_written_first, int64_t size = 40);
Net ir_chain_net();

// Every model above, by name, for the end-to-end sweep.
struct NamedNet {
  const char* name;
  Net (*make)();
};
const std::vector<NamedNet>& all_nets();

}  // namespace nnjit::plan_test
