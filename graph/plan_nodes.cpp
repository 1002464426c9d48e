// The planner's knowledge of single nodes (see plan_nodes.hpp).
#include "graph/plan_nodes.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <limits>
#include <optional>

#include "jit/isa.hpp"
#include "ops/conv.hpp"
#include "ops/pool.hpp"

namespace nnjit::graph {

namespace {

// A residual Add reading `v` once, with another operand of the same shape.
struct FusedAdd {
  int node = -1;
  int other = -1;
  int out = -1;
};

std::optional<FusedAdd> fused_add(const Graph& g, const Uses& uses, int v) {
  if (!uses.private_to_one(v)) return std::nullopt;
  const int ni = uses.readers[static_cast<std::size_t>(v)][0];
  const Node& n = g.nodes[static_cast<std::size_t>(ni)];
  if (n.op_type != "Add" || n.inputs.size() != 2 || n.outputs.size() != 1) return std::nullopt;
  const int other = n.inputs[0] == v ? n.inputs[1] : n.inputs[0];
  if (other == v || other < 0 || !is_float4d(g, other)) return std::nullopt;
  if (g.values[static_cast<std::size_t>(other)].shape != g.values[static_cast<std::size_t>(v)].shape)
    return std::nullopt;
  return FusedAdd{ni, other, n.outputs[0]};
}

// Chooses the family for a Conv node and plans it with the fused post-ops, or says why
// it cannot run on a JIT kernel.
std::variant<KernelPlan, std::string> plan_conv_kernel(const ops::ConvParams& p, const jit::Activation& act,
                                                      jit::ResidualMode residual, const jit::HostInfo& host) {
  if (p.spatial_rank() != 2) return std::string("only 2-D convolutions have JIT kernels");
  const int64_t kh = p.kernel[0], kw = p.kernel[1];
  if (kh != kw || p.stride[0] != p.stride[1] || p.dilation[0] != p.dilation[1])
    return std::string("non-square kernel, stride or dilation");
  const int k = static_cast<int>(kh), stride = static_cast<int>(p.stride[0]), dilation = static_cast<int>(p.dilation[0]);
  const int64_t pt = p.pad_begin[0], pl = p.pad_begin[1], pb = p.pad_end[0], pr = p.pad_end[1];
  auto to_plan = [](auto planned) -> std::variant<KernelPlan, std::string> {
    if (const std::string* why = std::get_if<std::string>(&planned)) return *why;
    return KernelPlan(std::move(std::get<0>(planned)));
  };
  if (p.depthwise())
    return to_plan(jit::plan_depthwise({.batch = p.batch, .channels = p.in_channels, .height = p.in_size[0],
                                        .width = p.in_size[1], .kernel = k, .stride = stride, .dilation = dilation,
                                        .pad_top = pt, .pad_left = pl, .pad_bottom = pb, .pad_right = pr,
                                        .has_bias = p.has_bias, .activation = act, .residual = residual},
                                       host));
  if (p.groups > 1) {
    if (dilation != 1) return std::string("grouped: dilated grouped convolutions have no JIT kernel");
    return to_plan(jit::plan_grouped({.batch = p.batch, .in_channels = p.in_channels, .out_channels = p.out_channels,
                                      .groups = p.groups, .height = p.in_size[0], .width = p.in_size[1],
                                      .kernel = k, .stride = stride, .pad_top = pt, .pad_left = pl,
                                      .pad_bottom = pb, .pad_right = pr, .has_bias = p.has_bias,
                                      .activation = act, .residual = residual},
                                     host));
  }
  if (k == 1 && pt == 0 && pl == 0 && pb == 0 && pr == 0)
    return to_plan(jit::plan_pointwise({.batch = p.batch, .in_channels = p.in_channels,
                                        .out_channels = p.out_channels, .height = p.in_size[0],
                                        .width = p.in_size[1], .stride = stride, .has_bias = p.has_bias,
                                        .activation = act, .residual = residual},
                                       host));
  return to_plan(jit::plan_dense({.batch = p.batch, .in_channels = p.in_channels, .out_channels = p.out_channels,
                                  .height = p.in_size[0], .width = p.in_size[1], .kernel = k, .stride = stride,
                                  .dilation = dilation, .pad_top = pt, .pad_left = pl, .pad_bottom = pb,
                                  .pad_right = pr, .has_bias = p.has_bias, .activation = act,
                                  .residual = residual},
                                 host));
}

int plan_block(const KernelPlan& plan) {
  return std::visit(
      [](const auto& p) {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, std::monostate>) return 0;
        else return p.block;
      },
      plan);
}

// Node `ni` (a Conv or a Gemm) as a group of its own: its input, weights, bias and output.
ConvGroup single_node_group(const Node& n, int ni, int bias, const char* op) {
  ConvGroup group;
  group.nodes = {ni};
  group.src = n.inputs[0];
  group.weights = n.inputs[1];
  group.bias = bias;
  group.op = op;
  group.out = n.outputs[0];
  return group;
}

}  // namespace

bool is_float4d(const Graph& g, int v) {
  if (v < 0) return false;
  const Value& val = g.values[static_cast<std::size_t>(v)];
  return val.dtype == DType::Float32 && val.shape_known && val.shape.size() == 4;
}

// The activation node `n` computes from its first input, if the kernels fuse it.
std::optional<jit::Activation> activation_of(const Graph& g, const Node& n) {
  if (!n.domain.empty() && n.domain != "ai.onnx") return std::nullopt;
  if (n.outputs.size() != 1 || n.inputs.empty()) return std::nullopt;
  const std::string& op = n.op_type;
  if (op == "Relu") return jit::Activation::relu();
  if (op == "Sigmoid") return jit::Activation::sigmoid();
  if (op == "HardSwish") return jit::Activation::hard_swish();
  if (op == "LeakyRelu") return jit::Activation::leaky_relu(n.attrs.get_float("alpha", 0.01f));
  if (op == "HardSigmoid")
    return jit::Activation::hard_sigmoid(n.attrs.get_float("alpha", 0.2f), n.attrs.get_float("beta", 0.5f));
  if (op == "Clip") {
    float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    if (g.opset < 11) {
      lo = n.attrs.get_float("min", lo);
      hi = n.attrs.get_float("max", hi);
    } else {
      if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
        auto c = scalar_constant(g, n.inputs[1]);
        if (!c) return std::nullopt;
        lo = *c;
      }
      if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
        auto c = scalar_constant(g, n.inputs[2]);
        if (!c) return std::nullopt;
        hi = *c;
      }
    }
    if (lo == 0.f && std::isinf(hi) && hi > 0) return jit::Activation::relu();
    jit::Activation a = jit::Activation::clip(lo, hi);
    if (a.invalid_reason()) return std::nullopt;
    return a;
  }
  return std::nullopt;
}

namespace {

// GELU as torch exports it (erf form): Mul(Mul(v, Add(Erf(Div(v, sqrt 2)), 1)), 0.5), the
// operands of each Add and Mul in either order, every value between private.
std::optional<FusedActivation> exported_gelu(const Graph& g, const Uses& uses, int v) {
  const auto& readers = uses.readers[static_cast<std::size_t>(v)];
  if (readers.size() != 2) return std::nullopt;
  auto node = [&](int i) -> const Node& { return g.nodes[static_cast<std::size_t>(i)]; };
  auto is = [&](int value, float want, float tol) {
    auto c = scalar_constant(g, value);
    return c && std::fabs(*c - want) <= tol;
  };
  // The one private reader of `value`, if it is a plain `op` with one output.
  auto next = [&](int value, const char* op) -> int {
    if (!uses.private_to_one(value)) return -1;
    const int r = uses.readers[static_cast<std::size_t>(value)][0];
    const Node& n = node(r);
    return n.op_type == op && (n.domain.empty() || n.domain == "ai.onnx") && n.outputs.size() == 1 ? r : -1;
  };
  // The operand of binary node n that is not `value` (-1 unless exactly one is).
  auto other = [&](const Node& n, int value) {
    if (n.inputs.size() != 2) return -1;
    if (n.inputs[0] == value && n.inputs[1] != value) return n.inputs[1];
    if (n.inputs[1] == value && n.inputs[0] != value) return n.inputs[0];
    return -1;
  };
  for (int k = 0; k < 2; ++k) {
    const int di = readers[static_cast<std::size_t>(k)], mi = readers[static_cast<std::size_t>(1 - k)];
    const Node& div = node(di);
    if (div.op_type != "Div" || div.inputs.size() != 2 || div.inputs[0] != v || div.outputs.size() != 1 ||
        !is(div.inputs[1], 1.41421356f, 1e-5f))
      continue;
    const int ei = next(div.outputs[0], "Erf");
    const int ai = ei < 0 ? -1 : next(node(ei).outputs[0], "Add");
    if (ai < 0 || !is(other(node(ai), node(ei).outputs[0]), 1.f, 0.f)) continue;
    const Node& mul = node(mi);
    if (mul.op_type != "Mul" || mul.outputs.size() != 1 || other(mul, v) != node(ai).outputs[0] ||
        next(node(ai).outputs[0], "Mul") != mi)
      continue;
    const int hi = next(mul.outputs[0], "Mul");
    if (hi < 0 || !is(other(node(hi), mul.outputs[0]), 0.5f, 0.f)) continue;
    std::vector<int> nodes = {di, ei, ai, mi, hi};
    std::sort(nodes.begin(), nodes.end());
    return FusedActivation{jit::Activation::gelu(), nodes, node(hi).outputs[0]};
  }
  return std::nullopt;
}

}  // namespace

std::optional<FusedActivation> fused_activation(const Graph& g, const Uses& uses, int v) {
  if (uses.is_output[static_cast<std::size_t>(v)]) return std::nullopt;
  if (auto gelu = exported_gelu(g, uses, v)) return gelu;
  const auto& readers = uses.readers[static_cast<std::size_t>(v)];
  if (readers.size() == 1) {
    const Node& n = g.nodes[static_cast<std::size_t>(readers[0])];
    if (n.inputs[0] != v) return std::nullopt;
    auto act = activation_of(g, n);
    if (!act) return std::nullopt;
    return FusedActivation{*act, {readers[0]}, n.outputs[0]};
  }
  if (readers.size() != 2) return std::nullopt;
  // One reader is the gate (Sigmoid / HardSigmoid of v), the other Mul(v, gate).
  for (int k = 0; k < 2; ++k) {
    const int gi = readers[static_cast<std::size_t>(k)], mi = readers[static_cast<std::size_t>(1 - k)];
    const Node& gate = g.nodes[static_cast<std::size_t>(gi)];
    const Node& mul = g.nodes[static_cast<std::size_t>(mi)];
    if (gate.op_type != "Sigmoid" && gate.op_type != "HardSigmoid") continue;
    if (mul.op_type != "Mul" || mul.inputs.size() != 2 || gate.outputs.size() != 1) continue;
    const int gv = gate.outputs[0];
    if (!((mul.inputs[0] == v && mul.inputs[1] == gv) || (mul.inputs[1] == v && mul.inputs[0] == gv))) continue;
    if (!uses.private_to_one(gv)) continue;
    jit::Activation act = jit::Activation::silu();
    if (gate.op_type == "HardSigmoid") {
      const float alpha = gate.attrs.get_float("alpha", 0.2f), beta = gate.attrs.get_float("beta", 0.5f);
      if (std::fabs(alpha - 1.f / 6.f) > 1e-6f || beta != 0.5f) continue;
      act = jit::Activation::hard_swish();
    }
    return FusedActivation{act, {std::min(gi, mi), std::max(gi, mi)}, mul.outputs[0]};
  }
  return std::nullopt;
}

// A Conv node and what follows it, planned as one step; or the reason it stays a
// reference op.
std::variant<ConvGroup, std::string> plan_conv_group(const Graph& g, const Uses& uses, int ni,
                                                     const std::vector<int>& group_of, const jit::HostInfo& host,
                                                     int block) {
  auto free = [&](const std::vector<int>& nodes) {
    for (int m : nodes)
      if (group_of[static_cast<std::size_t>(m)] >= 0) return false;
    return true;
  };
  const Node& n = g.nodes[static_cast<std::size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.size() != 1 || !is_float4d(g, n.inputs[0]) || !is_float4d(g, n.outputs[0]))
    return std::string("not a 2-D float convolution");
  if (!g.is_constant(n.inputs[1])) return std::string("weights are not constant");
  const int bias = n.inputs.size() > 2 ? n.inputs[2] : -1;
  if (bias >= 0 && !g.is_constant(bias)) return std::string("bias is not constant");
  const Value& w = g.values[static_cast<std::size_t>(n.inputs[1])];
  if (w.dtype != DType::Float32) return std::string("weights are not float");
  ops::ConvParams p;
  try {
    const Shape* bias_shape = bias >= 0 ? &g.values[static_cast<std::size_t>(bias)].shape : nullptr;
    p = ops::resolve_conv(n.attrs, g.values[static_cast<std::size_t>(n.inputs[0])].shape, w.shape, bias_shape,
                          "node '" + n.name + "'");
  } catch (const Error& e) {
    return std::string(e.what());
  }

  ConvGroup group = single_node_group(n, ni, bias, "Conv");
  int out = n.outputs[0];
  jit::Activation act;
  jit::ResidualMode mode = jit::ResidualMode::none;
  auto take_activation = [&] {
    if (auto a = fused_activation(g, uses, out); a && free(a->nodes)) {
      act = a->act;
      for (int m : a->nodes) {
        group.nodes.push_back(m);
        group.op += "+" + g.nodes[static_cast<std::size_t>(m)].op_type;
      }
      out = a->out;
      return true;
    }
    return false;
  };
  const bool first_act = take_activation();
  if (auto add = fused_add(g, uses, out); add && free({add->node})) {
    group.nodes.push_back(add->node);
    group.op += "+Add";
    group.residual = add->other;
    out = add->out;
    mode = first_act ? jit::ResidualMode::after_activation : jit::ResidualMode::before_activation;
    if (!first_act) take_activation();
  }
  group.out = out;

  auto planned = plan_conv_kernel(p, act, mode, host);
  if (const std::string* why = std::get_if<std::string>(&planned)) return *why;
  group.plan = std::get<KernelPlan>(planned);
  if (plan_block(group.plan) != block) return std::string("its kernel uses another channel block than the model");
  return group;
}

// Output rows per tile of an inverted-residual block: the two tile buffers of one
// thread fit in half the L2 and take at most an eighth of the block's output (they add
// to the arena's peak where the block's input and output are alive), and each thread
// gets at least one tile. Without an expand, the depthwise rows go to output rows where
// the project can run over them in place (dw_in_output).
InvertedResidualPlan plan_inverted_residual(const jit::PointwisePlan* e, const jit::DepthwisePlan& d,
                                            const jit::PointwisePlan& p, const jit::HostInfo& host, int threads,
                                            bool smallest) {
  InvertedResidualPlan b{e != nullptr, e ? *e : jit::PointwisePlan{}, d, p, 1, 0};
  const int64_t ho = d.shape.out_height(), s = d.shape.stride, dk = d.shape.dilated_kernel();
  const int64_t most = smallest ? 1 : std::max<int64_t>(1, (ho + threads - 1) / threads);
  const double out_bytes = static_cast<double>(p.dst_image_floats()) * 4;
  const double budget = std::min(static_cast<double>(host.l2_bytes) / 2, out_bytes / 8);
  for (int64_t t = 1; t <= most; ++t) {
    InvertedResidualPlan c = b;
    c.tile_rows = t;
    c.expanded_rows = std::min((t - 1) * s + dk, d.shape.height);
    if (t > 1 && static_cast<double>(c.expanded_floats() + c.depthwise_floats()) * 4 > budget) break;
    b = c;
  }
  const int64_t plane = ho * d.shape.out_width();
  b.dw_in_output = !b.has_expand && p.out_blocks == d.blocks && p.block == d.block &&
                   jit::pointwise_in_place(jit::pointwise_pixels(p, b.tile_rows * d.shape.out_width(), plane, plane));
  return b;
}

// A pooling node as a blocked pool kernel's shape, if one fits it.
std::optional<jit::PoolShape> pool_shape(const Graph& g, const Node& n) {
  if (n.outputs.size() != 1 || n.inputs.empty() || !is_float4d(g, n.inputs[0])) return std::nullopt;
  const Shape& in = g.values[static_cast<std::size_t>(n.inputs[0])].shape;
  const Shape& out = g.values[static_cast<std::size_t>(n.outputs[0])].shape;
  if (!g.values[static_cast<std::size_t>(n.outputs[0])].shape_known || !(out.size() == 4 || out.size() == 2))
    return std::nullopt;
  jit::PoolShape s{.batch = in[0], .channels = in[1], .height = in[2], .width = in[3]};
  const std::string& op = n.op_type;
  if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
    s.kind = op == "GlobalAveragePool" ? jit::PoolKind::global_avg : jit::PoolKind::global_max;
    return s;
  }
  if (op == "ReduceMean") {  // over H and W, kept: a global average
    std::vector<int64_t> axes = n.attrs.get_ints("axes");
    for (int64_t& a : axes) a = a < 0 ? a + 4 : a;
    std::sort(axes.begin(), axes.end());
    if (n.inputs.size() > 1 || axes != std::vector<int64_t>{2, 3}) return std::nullopt;  // [N,C,1,1] or [N,C]
    s.kind = jit::PoolKind::global_avg;
    return s;
  }
  if ((op != "MaxPool" && op != "AveragePool") || out.size() != 4) return std::nullopt;
  ops::PoolParams p;
  try {
    p = ops::resolve_pool(op == "MaxPool" ? ops::PoolKind::Max : ops::PoolKind::Average, n.attrs, in,
                          "node '" + n.name + "'");
  } catch (const Error&) {
    return std::nullopt;
  }
  if (p.spatial_rank() != 2 || p.dilation[0] != 1 || p.dilation[1] != 1) return std::nullopt;
  if (p.kernel[0] > jit::kPoolMaxKernel || p.kernel[1] > jit::kPoolMaxKernel || p.stride[0] > jit::kPoolMaxStride ||
      p.stride[1] > jit::kPoolMaxStride)
    return std::nullopt;
  s.kind = op == "MaxPool" ? jit::PoolKind::max : jit::PoolKind::avg;
  s.kernel_h = static_cast<int>(p.kernel[0]);
  s.kernel_w = static_cast<int>(p.kernel[1]);
  s.stride_h = static_cast<int>(p.stride[0]);
  s.stride_w = static_cast<int>(p.stride[1]);
  s.pad_top = p.pad_begin[0];
  s.pad_left = p.pad_begin[1];
  s.pad_bottom = p.pad_end[0];
  s.pad_right = p.pad_end[1];
  s.out_height = p.out_size[0];
  s.out_width = p.out_size[1];
  s.count_include_pad = p.count_include_pad;
  return s;
}

std::optional<std::vector<int64_t>> constant_ints(const Graph& g, int v) {
  if (!g.is_constant(v)) return std::nullopt;
  const Tensor& t = g.values[static_cast<std::size_t>(v)].constant;
  std::vector<int64_t> out;
  if (t.dtype() == DType::Int64) out.assign(t.data<int64_t>(), t.data<int64_t>() + t.numel());
  else if (t.dtype() == DType::Int32) out.assign(t.data<int32_t>(), t.data<int32_t>() + t.numel());
  else return std::nullopt;
  return out;
}

// Concat over channels (any widths) or a Slice of channels (step 1) as a channel table.
std::optional<ChannelTable> channel_table(const Graph& g, const Node& n) {
  if (n.outputs.size() != 1 || n.inputs.empty() || n.inputs[0] < 0) return std::nullopt;
  const Value& ov = g.values[static_cast<std::size_t>(n.outputs[0])];
  ChannelTable t;
  // Flatten / Reshape of [N,C,1,1] to [N,C] (a classifier's input): the same blocks.
  if ((n.op_type == "Flatten" || n.op_type == "Reshape") && is_float4d(g, n.inputs[0]) && ov.shape_known &&
      ov.dtype == DType::Float32 && ov.shape.size() == 2) {
    const Shape& in = g.values[static_cast<std::size_t>(n.inputs[0])].shape;
    if (in[2] != 1 || in[3] != 1 || ov.shape[0] != in[0] || ov.shape[1] != in[1]) return std::nullopt;
    for (int64_t c = 0; c < in[1]; ++c) t.push_back({0, c});
    return t;
  }
  if (!is_float4d(g, n.outputs[0])) return std::nullopt;
  const Shape& out = ov.shape;
  if (n.op_type == "Concat") {
    const int64_t axis = n.attrs.get_int("axis", 1);
    if (axis != 1 && axis != -3) return std::nullopt;
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      if (!is_float4d(g, n.inputs[k])) return std::nullopt;
      for (int64_t c = 0; c < g.values[static_cast<std::size_t>(n.inputs[k])].shape[1]; ++c)
        t.push_back({static_cast<int>(k), c});
    }
    return t;
  }
  if (n.op_type == "Slice" && g.opset >= 10 && n.inputs.size() >= 3 && is_float4d(g, n.inputs[0])) {
    const Shape& in = g.values[static_cast<std::size_t>(n.inputs[0])].shape;
    auto starts = constant_ints(g, n.inputs[1]);
    std::optional<std::vector<int64_t>> axes = std::vector<int64_t>{0};
    if (n.inputs.size() > 3 && n.inputs[3] >= 0) axes = constant_ints(g, n.inputs[3]);
    if (n.inputs.size() > 4 && n.inputs[4] >= 0) {
      auto steps = constant_ints(g, n.inputs[4]);
      if (!steps || steps->size() != 1 || (*steps)[0] != 1) return std::nullopt;
    }
    if (!starts || !axes || starts->size() != 1 || axes->size() != 1) return std::nullopt;
    if ((*axes)[0] != 1 && (*axes)[0] != -3) return std::nullopt;
    if (in[0] != out[0] || in[2] != out[2] || in[3] != out[3]) return std::nullopt;
    int64_t start = (*starts)[0];
    start = std::clamp<int64_t>(start < 0 ? start + in[1] : start, 0, in[1]);
    if (start + out[1] > in[1]) return std::nullopt;
    for (int64_t c = 0; c < out[1]; ++c) t.push_back({0, start + c});
    return t;
  }
  return std::nullopt;
}

std::optional<Shuffle> channel_shuffle(const Graph& g, const Uses& uses, int ri) {
  const Node& r2 = g.nodes[static_cast<std::size_t>(ri)];
  if (r2.op_type != "Reshape" || r2.outputs.size() != 1 || !is_float4d(g, r2.outputs[0])) return std::nullopt;
  const int tv = r2.inputs[0];
  const int ti = g.values[static_cast<std::size_t>(tv)].producer;
  if (ti < 0 || !uses.private_to_one(tv)) return std::nullopt;
  const Node& tr = g.nodes[static_cast<std::size_t>(ti)];
  if (tr.op_type != "Transpose" || tr.attrs.get_ints("perm") != std::vector<int64_t>{0, 2, 1, 3, 4}) return std::nullopt;
  const int rv = tr.inputs[0];
  const int r1i = g.values[static_cast<std::size_t>(rv)].producer;
  if (r1i < 0 || !uses.private_to_one(rv)) return std::nullopt;
  const Node& r1 = g.nodes[static_cast<std::size_t>(r1i)];
  if (r1.op_type != "Reshape" || !is_float4d(g, r1.inputs[0])) return std::nullopt;
  const Shape& x = g.values[static_cast<std::size_t>(r1.inputs[0])].shape;
  const Shape& five = g.values[static_cast<std::size_t>(rv)].shape;
  const Shape& y = g.values[static_cast<std::size_t>(r2.outputs[0])].shape;
  if (five.size() != 5 || five[0] != x[0] || five[1] * five[2] != x[1] || five[3] != x[2] || five[4] != x[3] || y != x)
    return std::nullopt;
  Shuffle s{r1.inputs[0], {r1i, ti}, {}};
  const int64_t groups = five[1], per = five[2];
  s.table.resize(static_cast<std::size_t>(x[1]));
  for (int64_t i = 0; i < groups; ++i)
    for (int64_t j = 0; j < per; ++j) s.table[static_cast<std::size_t>(j * groups + i)] = {0, i * per + j};
  return s;
}

// Gemm with constant weights (Linear: transB = 1, alpha = beta = 1, bias [N] or [1,N])
// as a pointwise convolution of M 1x1 images: [M,K] rows are K-channel pixels, which
// is the blocked layout of a plane of one pixel. A following activation is fused.
std::variant<ConvGroup, std::string> plan_gemm_group(const Graph& g, const Uses& uses, int ni,
                                                     const std::vector<int>& group_of, const jit::HostInfo& host,
                                                     int block) {
  const Node& n = g.nodes[static_cast<std::size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return std::string("not a Gemm of two inputs");
  auto is_float2d = [&](int v) {
    const Value& val = g.values[static_cast<std::size_t>(v)];
    return val.dtype == DType::Float32 && val.shape_known && val.shape.size() == 2;
  };
  if (!is_float2d(n.inputs[0]) || !is_float2d(n.outputs[0])) return std::string("not a 2-D float Gemm");
  if (!g.is_constant(n.inputs[1]) || !is_float2d(n.inputs[1])) return std::string("weights are not constant");
  if (n.attrs.get_int("transA", 0) != 0 || n.attrs.get_int("transB", 0) != 1 || n.attrs.get_float("alpha", 1.f) != 1.f ||
      n.attrs.get_float("beta", 1.f) != 1.f)
    return std::string("only transB=1, alpha=beta=1 Gemms (Linear layers) have a JIT kernel");
  const Shape& a = g.values[static_cast<std::size_t>(n.inputs[0])].shape;
  const Shape& w = g.values[static_cast<std::size_t>(n.inputs[1])].shape;
  const int bias = n.inputs.size() > 2 ? n.inputs[2] : -1;
  if (bias >= 0) {
    const Value& b = g.values[static_cast<std::size_t>(bias)];
    if (!g.is_constant(bias) || b.dtype != DType::Float32 || shape_numel(b.shape) != w[0] ||
        (b.shape.size() == 2 && b.shape[0] != 1))
      return std::string("bias is not a constant [N] vector");
  }
  if (a[0] > 1 && a[1] % block != 0) return std::string("rows of K not a multiple of the channel block");
  ConvGroup group = single_node_group(n, ni, bias, "Gemm");
  jit::Activation act;
  if (auto f = fused_activation(g, uses, group.out)) {
    bool free = true;
    for (int m : f->nodes) free = free && group_of[static_cast<std::size_t>(m)] < 0;
    if (free) {
      act = f->act;
      for (int m : f->nodes) {
        group.nodes.push_back(m);
        group.op += "+" + g.nodes[static_cast<std::size_t>(m)].op_type;
      }
      group.out = f->out;
    }
  }
  auto planned = jit::plan_pointwise({.batch = a[0], .in_channels = a[1], .out_channels = w[0], .height = 1,
                                      .width = 1, .has_bias = bias >= 0, .activation = act},
                                     host);
  if (auto* why = std::get_if<std::string>(&planned)) return *why;
  group.plan = std::get<jit::PointwisePlan>(planned);
  if (plan_block(group.plan) != block) return std::string("its kernel uses another channel block than the model");
  return group;
}

std::variant<ConvGroup, std::string> plan_matmul_group(const Graph& g, const Uses& uses, int ni,
                                                       const std::function<bool(int)>& free, const jit::HostInfo& host) {
  const Node& n = g.nodes[static_cast<std::size_t>(ni)];
  const bool gemm = n.op_type == "Gemm";
  auto value = [&](int v) -> const Value& { return g.values[static_cast<std::size_t>(v)]; };
  auto is_float = [&](int v) { return v >= 0 && value(v).dtype == DType::Float32 && value(v).shape_known; };
  if (n.inputs.size() < 2 || n.outputs.size() != 1 || !is_float(n.inputs[0]) || !is_float(n.outputs[0]))
    return std::string("not a float product of known shapes");
  const Shape& a = value(n.inputs[0]).shape;
  if (a.size() < 2 || (gemm && a.size() != 2)) return std::string("A is not a matrix or a stack of rows");
  if (!g.is_constant(n.inputs[1]) || !is_float(n.inputs[1]) || value(n.inputs[1]).shape.size() != 2)
    return std::string("weights are not a constant float matrix");
  const Shape& w = value(n.inputs[1]).shape;
  const bool trans_b = gemm && n.attrs.get_int("transB", 0) != 0;
  const int64_t k = a.back(), cols = trans_b ? w[0] : w[1];
  if ((trans_b ? w[1] : w[0]) != k) return std::string("weights do not match A's last axis");
  if (k < 1 || cols < 1 || shape_numel(a) < 1) return std::string("an empty product");
  if (gemm && n.attrs.get_int("transA", 0) != 0) return std::string("transA = 1");
  // A bias of N floats: Gemm's C, or a constant added to the MatMul's product.
  auto is_bias = [&](int v) {
    if (!g.is_constant(v) || !is_float(v) || shape_numel(value(v).shape) != cols) return false;
    const Shape& b = value(v).shape;
    return std::all_of(b.begin(), b.end() - 1, [](int64_t d) { return d == 1; });
  };
  ConvGroup group;
  group.nodes = {ni};
  group.op = n.op_type;
  group.src = n.inputs[0];
  group.weights = n.inputs[1];
  group.out = n.outputs[0];
  if (gemm && n.inputs.size() > 2 && n.inputs[2] >= 0) {
    if (!is_bias(n.inputs[2]) || value(n.inputs[2]).shape.size() > 2) return std::string("C is not a constant [N] or [1,N]");
    group.bias = n.inputs[2];
  }
  if (!gemm && uses.private_to_one(group.out)) {
    const int ai = uses.readers[static_cast<std::size_t>(group.out)][0];
    const Node& add = g.nodes[static_cast<std::size_t>(ai)];
    if (add.op_type == "Add" && add.inputs.size() == 2 && free(ai) && is_float(add.outputs[0]) &&
        value(add.outputs[0]).shape == value(group.out).shape) {
      const int other = add.inputs[add.inputs[0] == group.out ? 1 : 0];
      if (other != group.out && is_bias(other) && value(other).shape.size() <= a.size()) {
        group.nodes.push_back(ai);
        group.op += "+Add";
        group.bias = other;
        group.out = add.outputs[0];
      }
    }
  }
  jit::Activation act;
  if (auto f = fused_activation(g, uses, group.out); f && std::all_of(f->nodes.begin(), f->nodes.end(), free)) {
    act = f->act;
    for (int m : f->nodes) {
      group.nodes.push_back(m);
      group.op += "+" + g.nodes[static_cast<std::size_t>(m)].op_type;
    }
    group.out = f->out;
  }
  auto planned = jit::plan_gemm(
      {.m = shape_numel(a) / k, .k = k, .n = cols, .has_bias = group.bias >= 0, .activation = act}, host);
  if (auto* why = std::get_if<std::string>(&planned)) return *why;
  group.plan = std::get<jit::GemmPlan>(planned);
  return group;
}

}  // namespace nnjit::graph
