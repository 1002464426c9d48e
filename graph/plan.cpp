// The planner: groups nodes into fused steps, picks a kernel family for each, and
// threads layouts through the graph with the fewest reorders (see plan.hpp).
#include "graph/plan.hpp"
#include "graph/plan_post.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <limits>
#include <optional>

#include "jit/isa.hpp"
#include "ops/conv.hpp"
#include "ops/pool.hpp"

namespace nnjit::graph {

const char* step_kind_name(StepKind kind) {
  switch (kind) {
    case StepKind::reference: return "reference";
    case StepKind::to_blocked: return "to_blocked";
    case StepKind::to_plain: return "to_plain";
    case StepKind::conv: return "conv";
    case StepKind::ir_block: return "ir_block";
    case StepKind::pool: return "pool";
    case StepKind::eltwise: return "eltwise";
    case StepKind::gather: return "gather";
    case StepKind::crop: return "crop";
    case StepKind::se_block: return "se_block";
    case StepKind::row_stream: return "row_stream";
  }
  return "?";
}

namespace {
// fn(plan) for the kernel plan a step holds, or `none` when it holds none.
template <class R, class Fn>
R with_plan(const KernelPlan& plan, R none, Fn fn) {
  return std::visit(
      [&](const auto& p) -> R {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, std::monostate>) return none;
        else return fn(p);
      },
      plan);
}
}  // namespace

std::string kernel_plan_name(const KernelPlan& plan) {
  return with_plan<std::string>(plan, "", [](const auto& p) { return p.name(); });
}

std::string kernel_plan_key(const KernelPlan& plan) {
  return with_plan<std::string>(plan, "", [](const auto& p) { return p.key(); });
}

double kernel_plan_flops(const KernelPlan& plan) {
  return with_plan(plan, 0.0, [](const auto& p) -> double {
    if constexpr (requires { p.shape.flops(); }) return p.shape.flops();
    else return 0.0;  // pooling and elementwise: no multiply-adds
  });
}

namespace {

// Who reads each value, and which values leave the graph.
struct Uses {
  std::vector<std::vector<int>> readers;  // node indices, once per node
  std::vector<char> is_output;

  explicit Uses(const Graph& g) : readers(g.values.size()), is_output(g.values.size(), 0) {
    for (std::size_t i = 0; i < g.nodes.size(); ++i)
      for (int v : g.nodes[i].inputs) {
        if (v < 0) continue;
        auto& r = readers[static_cast<std::size_t>(v)];
        if (r.empty() || r.back() != static_cast<int>(i)) r.push_back(static_cast<int>(i));
      }
    for (int v : g.outputs) is_output[static_cast<std::size_t>(v)] = 1;
  }
  // Read by exactly one node, and not a graph output: it may live inside a fused step.
  bool private_to_one(int v) const {
    return readers[static_cast<std::size_t>(v)].size() == 1 && !is_output[static_cast<std::size_t>(v)];
  }
};

bool is_float4d(const Graph& g, int v) {
  if (v < 0) return false;
  const Value& val = g.values[static_cast<std::size_t>(v)];
  return val.dtype == DType::Float32 && val.shape_known && val.shape.size() == 4;
}

std::optional<float> scalar_constant(const Graph& g, int v) {
  if (!g.is_constant(v)) return std::nullopt;
  const Tensor& t = g.values[static_cast<std::size_t>(v)].constant;
  if (t.dtype() != DType::Float32 || t.numel() != 1) return std::nullopt;
  return t.data<float>()[0];
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

// An activation applied to `v` by the nodes reading it: a single activation node, or the
// exported gating forms v * Sigmoid(v) (SiLU) and v * HardSigmoid(v; 1/6, 1/2) (HardSwish).
struct FusedActivation {
  jit::Activation act;
  std::vector<int> nodes;  // in graph order
  int out = -1;
};

std::optional<FusedActivation> fused_activation(const Graph& g, const Uses& uses, int v) {
  if (uses.is_output[static_cast<std::size_t>(v)]) return std::nullopt;
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

// A planned convolution group: the conv node, what is fused after it, the kernel plan.
struct ConvGroup {
  std::vector<int> nodes;
  int src = -1, weights = -1, bias = -1, residual = -1, out = -1;
  KernelPlan plan;
  std::string op;
};

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
  return with_plan(plan, 0, [](const auto& p) { return p.block; });
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

  ConvGroup group;
  group.nodes = {ni};
  group.src = n.inputs[0];
  group.weights = n.inputs[1];
  group.bias = bias;
  group.op = "Conv";
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
// gets at least one tile.
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

using ChannelTable = std::vector<std::pair<int, int64_t>>;

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

// ShuffleNet's channel shuffle ending at Reshape node `ri`: Reshape(x [N,C,H,W] ->
// [N,g,C/g,H,W]) -> Transpose(0,2,1,3,4) -> Reshape([N,C,H,W]), the values between
// private. Returns x, the two earlier nodes and the table.
struct Shuffle {
  int x = -1;
  std::vector<int> nodes;  // first reshape, transpose
  ChannelTable table;
};
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
  ConvGroup group;
  group.nodes = {ni};
  group.src = n.inputs[0];
  group.weights = n.inputs[1];
  group.bias = bias;
  group.op = "Gemm";
  group.out = n.outputs[0];
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

// Threads layouts through the steps: a value id names one layout; the other layout is a
// twin made on first demand by a reorder step.
class LayoutTracker {
 public:
  LayoutTracker(const Graph& g, ExecutionPlan& plan) : g_(g), plan_(plan) {
    const std::size_t n = g.values.size();
    twin_.assign(n, -1);
    plain_ready_.assign(n, 1);
    plan_.block.assign(n, 0);
  }

  // Whether `v` exists in blocked layout already.
  bool has_blocked(int v) const { return twin_[static_cast<std::size_t>(v)] >= 0; }
  // The blocked id of `v`, converting it first if it exists only in plain layout.
  int blocked(int v) {
    if (twin_[static_cast<std::size_t>(v)] >= 0) return twin_[static_cast<std::size_t>(v)];
    const int b = make_twin(v);
    plan_.steps.push_back({StepKind::to_blocked, {}, "Reorder", {v}, {b}, {}, std::nullopt, std::nullopt, {}, "to nChw" + block_tag()});
    return b;
  }
  // The plain id of `v`, converting it first if it exists only in blocked layout.
  int plain(int v) {
    if (!plain_ready_[static_cast<std::size_t>(v)]) {
      plan_.steps.push_back(
          {StepKind::to_plain, {}, "Reorder", {twin_[static_cast<std::size_t>(v)]}, {v}, {}, std::nullopt, std::nullopt, {}, "to nchw"});
      plain_ready_[static_cast<std::size_t>(v)] = 1;
    }
    return v;
  }
  // A new plain float value of `floats` elements, for a step's own buffers.
  int scratch(const std::string& name, int64_t floats) {
    const int id = add_scratch(g_, plan_, name, floats);
    twin_.push_back(-1);
    plain_ready_.push_back(1);
    return id;
  }
  // `v` is about to be written in blocked layout: returns the id the step writes.
  int produce_blocked(int v) {
    plain_ready_[static_cast<std::size_t>(v)] = 0;
    return make_twin(v);
  }

 private:
  int make_twin(int v) {
    Value twin = g_.values[static_cast<std::size_t>(v)];
    twin.name += "@nChw" + block_tag();
    twin.constant = Tensor();
    twin.producer = -1;
    const int id = static_cast<int>(g_.values.size() + plan_.added_values.size());
    plan_.added_values.push_back(std::move(twin));
    plan_.block.push_back(plan_.block_size);
    twin_[static_cast<std::size_t>(v)] = id;
    return id;
  }
  std::string block_tag() const { return std::to_string(plan_.block_size) + "c"; }

  const Graph& g_;
  ExecutionPlan& plan_;
  std::vector<int> twin_;
  std::vector<char> plain_ready_;
};

// Plans node `ni` as a pool or eltwise step on blocked tensors when its (first) input
// exists in blocked layout already; fuses an activation that follows an Add/Mul.
// Returns whether it emitted a step.
bool emit_blocked_op(const Graph& g, const Uses& uses, const Node& n, int ni, const jit::HostInfo& host,
                     ExecutionPlan& plan, LayoutTracker& layouts, std::vector<char>& taken) {
  if (n.outputs.size() != 1) return false;
  int a = n.inputs[0], b = n.inputs.size() == 2 ? n.inputs[1] : -1;
  const bool binary = (n.op_type == "Add" || n.op_type == "Mul") && b >= 0;
  if (!is_float4d(g, a) || (binary && !is_float4d(g, b))) return false;
  if (!layouts.has_blocked(a) && !(binary && layouts.has_blocked(b))) return false;
  auto shape_of = [&](int v) -> const Shape& { return g.values[static_cast<std::size_t>(v)].shape; };
  auto emit = [&](const KernelPlan& kplan, StepKind kind, std::vector<int> nodes, std::string op,
                  std::vector<int> in, int out) {
    std::vector<int> ins;
    for (int v : in) ins.push_back(v >= 0 ? layouts.blocked(v) : -1);
    plan.steps.push_back({kind, std::move(nodes), std::move(op), std::move(ins), {layouts.produce_blocked(out)}, kplan,
                          std::nullopt, std::nullopt, {}, ""});
    return true;
  };
  if (n.op_type == "Slice" && g.opset >= 10 && n.inputs.size() >= 3 && is_float4d(g, n.outputs[0])) {
    // A crop of H and W: where it starts; the output shape says where it ends.
    auto starts = constant_ints(g, n.inputs[1]);
    std::optional<std::vector<int64_t>> axes;
    if (n.inputs.size() > 3 && n.inputs[3] >= 0) axes = constant_ints(g, n.inputs[3]);
    else if (starts) {
      axes = std::vector<int64_t>(starts->size());
      for (std::size_t k = 0; k < axes->size(); ++k) (*axes)[k] = static_cast<int64_t>(k);
    }
    bool unit_steps = true;
    if (n.inputs.size() > 4 && n.inputs[4] >= 0) {
      auto steps = constant_ints(g, n.inputs[4]);
      unit_steps = steps && std::all_of(steps->begin(), steps->end(), [](int64_t v) { return v == 1; });
    }
    if (!starts || !axes || axes->size() != starts->size() || !unit_steps) return false;
    const Shape &xs = shape_of(a), &ys = shape_of(n.outputs[0]);
    if (xs[0] != ys[0] || xs[1] != ys[1]) return false;
    int64_t top = 0, left = 0;
    for (std::size_t k = 0; k < axes->size(); ++k) {
      const int64_t axis = (*axes)[k] < 0 ? (*axes)[k] + 4 : (*axes)[k];
      if (axis != 2 && axis != 3) return false;
      const int64_t dim = xs[static_cast<std::size_t>(axis)];
      int64_t st = (*starts)[k];
      st = std::clamp<int64_t>(st < 0 ? st + dim : st, 0, dim);
      (axis == 2 ? top : left) = st;
    }
    if (top + ys[2] > xs[2] || left + ys[3] > xs[3]) return false;
    plan.steps.push_back({StepKind::crop, {ni}, "Slice", {layouts.blocked(a)}, {layouts.produce_blocked(n.outputs[0])},
                          {}, std::nullopt, std::nullopt, {{0, top}, {0, left}}, ""});
    return true;
  }
  if (auto ps = pool_shape(g, n)) {
    auto planned = jit::plan_pool(*ps, host);
    if (auto* p = std::get_if<jit::PoolPlan>(&planned); p && p->block == plan.block_size)
      return emit(*p, StepKind::pool, {ni}, n.op_type, {a}, n.outputs[0]);
    return false;
  }
  if (!is_float4d(g, n.outputs[0])) return false;
  std::vector<int> nodes = {ni};
  std::string op = n.op_type;
  int out = n.outputs[0];
  jit::EltwiseShape es;
  if (auto act = activation_of(g, n)) {
    es.op = jit::EltwiseOp::unary;
    es.activation = *act;
    b = -1;
  } else if (binary && shape_of(a) == shape_of(b)) {
    es.op = n.op_type == "Add" ? jit::EltwiseOp::add : jit::EltwiseOp::mul;
    // An activation reading only the result (ResNet's Add -> Relu) runs in the same pass.
    if (auto f = fused_activation(g, uses, out)) {
      bool free = true;
      for (int m : f->nodes) free = free && !taken[static_cast<std::size_t>(m)] && m > ni;
      if (free) {
        es.activation = f->act;
        for (int m : f->nodes) {
          taken[static_cast<std::size_t>(m)] = 1;
          nodes.push_back(m);
          op += "+" + g.nodes[static_cast<std::size_t>(m)].op_type;
        }
        out = f->out;
      }
    }
  } else if (binary && n.op_type == "Mul") {  // squeeze-excitation: x * s[N,C,1,1], either order
    if (shape_of(a)[2] * shape_of(a)[3] == 1 && shape_of(b)[2] * shape_of(b)[3] != 1) std::swap(a, b);
    const Shape &xs = shape_of(a), &ss = shape_of(b);
    if (ss[0] != xs[0] || ss[1] != xs[1] || ss[2] != 1 || ss[3] != 1 || shape_of(out) != xs) return false;
    es.op = jit::EltwiseOp::scale_channels;
  } else {
    return false;
  }
  const Shape& xs = shape_of(a);
  es.batch = xs[0];
  es.channels = xs[1];
  es.plane = xs[2] * xs[3];
  auto planned = jit::plan_eltwise(es, host);
  auto* p = std::get_if<jit::EltwisePlan>(&planned);
  if (!p || p->block != plan.block_size) {
    for (std::size_t k = 1; k < nodes.size(); ++k) taken[static_cast<std::size_t>(nodes[k])] = 0;
    return false;
  }
  return emit(*p, StepKind::eltwise, nodes, op, {a, b}, out);
}

}  // namespace

ExecutionPlan plan_graph(const Graph& g, const jit::HostInfo& probed, const Options& options,
                         const PlanLimits& limits) {
  ExecutionPlan plan;
  jit::HostInfo host = probed;
  if (options.isa == "avx2") host = jit::restrict_isa(host, jit::Isa::avx2);
  const bool jit_on = options.isa != "reference" && jit::host_has(host, jit::Isa::avx2);
  plan.isa = !jit_on ? "reference" : jit::host_has(host, jit::Isa::avx512) ? "avx512" : "avx2";
  plan.block_size = !jit_on ? 0 : jit::isa_block(jit::host_has(host, jit::Isa::avx512) ? jit::Isa::avx512 : jit::Isa::avx2);

  const Uses uses(g);
  // Pass 1: group nodes. A group runs at its last node, where every input it reads
  // (through any of its nodes) has been written.
  std::vector<int> group_of(g.nodes.size(), -1);
  std::vector<ConvGroup> groups;
  std::vector<std::string> why_reference(g.nodes.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (group_of[i] >= 0) continue;
    const Node& n = g.nodes[i];
    if ((n.op_type != "Conv" && n.op_type != "Gemm") || !(n.domain.empty() || n.domain == "ai.onnx")) continue;
    if (!jit_on) {
      why_reference[i] = options.isa == "reference" ? "isa=reference" : "the host has no AVX2";
      continue;
    }
    auto planned = n.op_type == "Conv" ? plan_conv_group(g, uses, static_cast<int>(i), group_of, host, plan.block_size)
                                       : plan_gemm_group(g, uses, static_cast<int>(i), group_of, host, plan.block_size);
    if (const std::string* why = std::get_if<std::string>(&planned)) {
      why_reference[i] = *why;
      continue;
    }
    ConvGroup grp = std::get<ConvGroup>(std::move(planned));
    for (int m : grp.nodes) group_of[static_cast<std::size_t>(m)] = static_cast<int>(groups.size());
    groups.push_back(std::move(grp));
  }

  // Pass 1b: expand -> depthwise -> project chains (each link private) become one
  // inverted-residual step, anchored at the project group's last node.
  struct IrChain {
    int expand = -1, depthwise = -1, project = -1;
  };
  std::vector<IrChain> chains;
  std::vector<int> chain_of(groups.size(), -1);
  auto group_writing = [&](int v) -> int {
    const int producer = g.values[static_cast<std::size_t>(v)].producer;
    if (producer < 0 || group_of[static_cast<std::size_t>(producer)] < 0) return -1;
    const int gi = group_of[static_cast<std::size_t>(producer)];
    return groups[static_cast<std::size_t>(gi)].out == v ? gi : -1;
  };
  for (std::size_t pi = 0; pi < groups.size() && jit_on; ++pi) {
    const ConvGroup& proj = groups[pi];
    const auto* pp = std::get_if<jit::PointwisePlan>(&proj.plan);
    if (!pp || pp->shape.stride != 1 || pp->shape.batch != 1 || !uses.private_to_one(proj.src)) continue;
    const int di = group_writing(proj.src);
    if (di < 0 || chain_of[static_cast<std::size_t>(di)] >= 0) continue;
    const ConvGroup& dw = groups[static_cast<std::size_t>(di)];
    const auto* dp = std::get_if<jit::DepthwisePlan>(&dw.plan);
    if (!dp || dw.residual >= 0) continue;
    if (dp->shape.batch != 1) continue;
    // With no private pointwise expand before it, the depthwise reads the block's input.
    int ei = uses.private_to_one(dw.src) ? group_writing(dw.src) : -1;
    if (ei >= 0) {
      const ConvGroup& ex = groups[static_cast<std::size_t>(ei)];
      const auto* ep = std::get_if<jit::PointwisePlan>(&ex.plan);
      if (chain_of[static_cast<std::size_t>(ei)] >= 0 || !ep || ep->shape.stride != 1 || ex.residual >= 0) ei = -1;
    }
    chain_of[pi] = chain_of[static_cast<std::size_t>(di)] = static_cast<int>(chains.size());
    if (ei >= 0) chain_of[static_cast<std::size_t>(ei)] = static_cast<int>(chains.size());
    chains.push_back({ei, di, static_cast<int>(pi)});
  }

  // Pass 1c: squeeze-excitation blocks, anchored at their Mul.
  struct SeBlock {
    int x = -1, pool_node = -1, reduce = -1, expand = -1;  // reduce / expand: group indices
    SqueezeExcitePlan plan;
  };
  std::vector<std::optional<SeBlock>> se_at(g.nodes.size());
  std::vector<char> in_se(groups.size(), 0);
  auto small_pointwise = [&](int gi) -> const jit::PointwisePlan* {
    if (gi < 0 || chain_of[static_cast<std::size_t>(gi)] >= 0 || in_se[static_cast<std::size_t>(gi)]) return nullptr;
    const ConvGroup& c = groups[static_cast<std::size_t>(gi)];
    const auto* p = std::get_if<jit::PointwisePlan>(&c.plan);
    if (!p || c.residual >= 0 || p->shape.height != 1 || p->shape.width != 1 || !uses.private_to_one(c.out))
      return nullptr;
    return p;
  };
  for (std::size_t i = 0; i < g.nodes.size() && jit_on; ++i) {
    const Node& n = g.nodes[i];
    if (n.op_type != "Mul" || n.inputs.size() != 2 || n.outputs.size() != 1 || group_of[i] >= 0) continue;
    for (int k = 0; k < 2; ++k) {
      const int x = n.inputs[static_cast<std::size_t>(k)], gate = n.inputs[static_cast<std::size_t>(1 - k)];
      if (!is_float4d(g, x) || !is_float4d(g, n.outputs[0])) continue;
      const int ei = group_writing(gate);
      const jit::PointwisePlan* ep = small_pointwise(ei);
      if (!ep) continue;
      const int ri = group_writing(groups[static_cast<std::size_t>(ei)].src);
      const jit::PointwisePlan* rp = small_pointwise(ri);
      if (!rp) continue;
      const int pooled = groups[static_cast<std::size_t>(ri)].src;
      const int pi = g.values[static_cast<std::size_t>(pooled)].producer;
      if (pi < 0 || group_of[static_cast<std::size_t>(pi)] >= 0 || !uses.private_to_one(pooled)) continue;
      const Node& pn = g.nodes[static_cast<std::size_t>(pi)];
      if (pn.op_type != "GlobalAveragePool" || pn.inputs[0] != x) continue;
      const int xp = g.values[static_cast<std::size_t>(x)].producer;
      if (xp < 0 || group_of[static_cast<std::size_t>(xp)] < 0) continue;  // x must be blocked already
      const Shape& xs = g.values[static_cast<std::size_t>(x)].shape;
      if (g.values[static_cast<std::size_t>(n.outputs[0])].shape != xs) continue;
      auto pool = jit::plan_pool({.batch = xs[0], .channels = xs[1], .height = xs[2], .width = xs[3],
                                  .kind = jit::PoolKind::global_avg},
                                 host);
      auto scale = jit::plan_eltwise({.batch = xs[0], .channels = xs[1], .plane = xs[2] * xs[3],
                                      .op = jit::EltwiseOp::scale_channels},
                                     host);
      auto* pp = std::get_if<jit::PoolPlan>(&pool);
      auto* sp = std::get_if<jit::EltwisePlan>(&scale);
      if (!pp || !sp || pp->block != plan.block_size || sp->block != plan.block_size) continue;
      in_se[static_cast<std::size_t>(ri)] = in_se[static_cast<std::size_t>(ei)] = 1;
      se_at[i] = SeBlock{x, pi, ri, ei, {*pp, *rp, *ep, *sp}};
      break;
    }
  }

  // Pass 2: emit steps at each group's last node, threading layouts.
  LayoutTracker layouts(g, plan);
  std::vector<char> taken(g.nodes.size(), 0);  // nodes an earlier eltwise step fused
  // Values written by gather steps: per channel, the {value, channel} it copies.
  std::map<int, std::vector<std::pair<int, int64_t>>> gathered;
  // Channel shuffles, by their last node; their first two nodes wait for it.
  std::vector<std::optional<Shuffle>> shuffles(g.nodes.size());
  for (std::size_t i = 0; i < g.nodes.size() && jit_on; ++i)
    if (group_of[i] < 0)
      if (auto sh = channel_shuffle(g, uses, static_cast<int>(i))) {
        for (int m : sh->nodes) taken[static_cast<std::size_t>(m)] = 1;
        shuffles[i] = std::move(sh);
      }
  auto emit_reference = [&](int ni) {
    const Node& n = g.nodes[static_cast<std::size_t>(ni)];
    PlannedStep s{StepKind::reference, {ni}, n.op_type, {}, n.outputs, {}, std::nullopt, std::nullopt, {}, ""};
    for (int v : n.inputs) s.inputs.push_back(v >= 0 ? layouts.plain(v) : v);
    s.reason = why_reference[static_cast<std::size_t>(ni)].empty() ? "no JIT kernel for " + n.op_type + " yet"
                                                                    : why_reference[static_cast<std::size_t>(ni)];
    plan.steps.push_back(std::move(s));
  };
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    if (se_at[i]) taken[static_cast<std::size_t>(se_at[i]->pool_node)] = 1;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (taken[i]) continue;
    if (group_of[i] >= 0 && in_se[static_cast<std::size_t>(group_of[i])]) continue;  // runs in its SE step
    if (const auto& se = se_at[i]) {
      const ConvGroup& r = groups[static_cast<std::size_t>(se->reduce)];
      const ConvGroup& e = groups[static_cast<std::size_t>(se->expand)];
      PlannedStep s{StepKind::se_block, {se->pool_node}, "SE[GlobalAveragePool+" + r.op + "+" + e.op + "+Mul]", {}, {},
                    {}, std::nullopt, se->plan, {}, ""};
      for (const ConvGroup* c : {&r, &e}) s.nodes.insert(s.nodes.end(), c->nodes.begin(), c->nodes.end());
      s.nodes.push_back(static_cast<int>(i));
      std::sort(s.nodes.begin(), s.nodes.end());
      s.inputs = {layouts.blocked(se->x), r.weights, r.bias, e.weights, e.bias};
      const int dst = layouts.produce_blocked(n.outputs[0]);
      const int buffers = layouts.scratch(g.values[static_cast<std::size_t>(n.outputs[0])].name + "@se",
                                          2 * se->plan.pooled_floats() + se->plan.reduced_floats());
      s.outputs = {dst, buffers};
      plan.steps.push_back(std::move(s));
      continue;
    }
    if (group_of[i] >= 0) {
      const ConvGroup& grp = groups[static_cast<std::size_t>(group_of[i])];
      if (grp.nodes.back() != static_cast<int>(i)) continue;
      if (const int ci = chain_of[static_cast<std::size_t>(group_of[i])]; ci >= 0) {
        const IrChain& ch = chains[static_cast<std::size_t>(ci)];
        if (ch.project != group_of[i]) continue;  // the chain runs at its project's last node
        const ConvGroup* e = ch.expand >= 0 ? &groups[static_cast<std::size_t>(ch.expand)] : nullptr;
        const ConvGroup& d = groups[static_cast<std::size_t>(ch.depthwise)];
        const ConvGroup& p = grp;
        InvertedResidualPlan b = plan_inverted_residual(e ? &std::get<jit::PointwisePlan>(e->plan) : nullptr,
                                                        std::get<jit::DepthwisePlan>(d.plan),
                                                        std::get<jit::PointwisePlan>(p.plan), host, options.threads,
                                                        limits.smallest_tiles);
        {  // in place (InvertedResidualPlan::in_place)?
          const jit::DepthwiseShape& ds = b.depthwise.shape;
          const int src = e ? e->src : d.src;
          const int64_t in_blocks = e ? b.expand.in_blocks : b.depthwise.blocks;
          const auto& readers = uses.readers[static_cast<std::size_t>(src)];
          const bool only_block = std::all_of(readers.begin(), readers.end(), [&](int r) {
            return std::find(grp.nodes.begin(), grp.nodes.end(), r) != grp.nodes.end() ||
                   (e && std::find(e->nodes.begin(), e->nodes.end(), r) != e->nodes.end()) ||
                   std::find(d.nodes.begin(), d.nodes.end(), r) != d.nodes.end();
          });
          b.in_place_ok = ds.stride == 1 && ds.out_height() == ds.height && ds.out_width() == ds.width &&
                       b.project.out_blocks <= in_blocks && only_block && !uses.is_output[static_cast<std::size_t>(src)] &&
                       (options.threads == 1 || b.tile_rows >= std::max(ds.pad_top, ds.pad_bottom));
        }
        PlannedStep s{StepKind::ir_block, {}, (e ? e->op + "+" : "") + d.op + "+" + p.op, {}, {}, {}, b, std::nullopt, {}, ""};
        for (const ConvGroup* c : {e, &d, &p})
          if (c) s.nodes.insert(s.nodes.end(), c->nodes.begin(), c->nodes.end());
        std::sort(s.nodes.begin(), s.nodes.end());
        s.inputs = {layouts.blocked(e ? e->src : d.src), e ? e->weights : -1, e ? e->bias : -1, d.weights, d.bias,
                    p.weights, p.bias, p.residual >= 0 ? layouts.blocked(p.residual) : -1};
        const int dst = layouts.produce_blocked(p.out);
        const int buffers = layouts.scratch(g.values[static_cast<std::size_t>(p.out)].name + "@tiles",
                                            b.buffers_floats(options.threads));
        s.outputs = {dst, buffers};
        plan.steps.push_back(std::move(s));
        continue;
      }
      // A dense conv reading a tensor that exists only in plain layout (the image, for
      // the stems) reads it as it is rather than through a reorder.
      KernelPlan kplan = grp.plan;
      int src = -1;
      if (const auto* dp = std::get_if<jit::DensePlan>(&grp.plan); dp && !layouts.has_blocked(grp.src)) {
        jit::DenseShape shape = dp->shape;
        shape.src_nchw = true;
        auto nchw = jit::plan_dense(shape, host);
        if (auto* p = std::get_if<jit::DensePlan>(&nchw); p && p->block == plan.block_size) {
          kplan = *p;
          src = layouts.plain(grp.src);
        }
      }
      if (src < 0) src = layouts.blocked(grp.src);
      const int res = grp.residual >= 0 ? layouts.blocked(grp.residual) : -1;
      const int dst = layouts.produce_blocked(grp.out);
      plan.steps.push_back({StepKind::conv, grp.nodes, grp.op, {src, grp.weights, grp.bias, res}, {dst}, kplan, std::nullopt, std::nullopt, {}, ""});
      continue;
    }
    if (jit_on && (n.domain.empty() || n.domain == "ai.onnx")) {
      // Channel data movement stays blocked when some input already is.
      std::vector<int> ins = n.inputs;
      std::vector<int> fused = {static_cast<int>(i)};
      std::optional<ChannelTable> table;
      if (const auto& sh = shuffles[i]) {
        table = sh->table;
        ins = {sh->x};
        fused.insert(fused.begin(), sh->nodes.begin(), sh->nodes.end());
      } else {
        table = channel_table(g, n);
        if (n.op_type == "Slice" || n.op_type == "Reshape") ins.resize(1);
      }
      if (table && std::any_of(ins.begin(), ins.end(), [&](int v) { return layouts.has_blocked(v); })) {
        PlannedStep s{StepKind::gather, fused, n.op_type == "Reshape" ? "ChannelShuffle" : n.op_type, {}, {}, {},
                      std::nullopt, std::nullopt, {}, ""};
        // A gather of gathered values reads their sources directly (Concat -> shuffle ->
        // Slice is one copy); a gather nobody reads then is dropped at the end.
        for (const auto& [k, ch] : *table) {
          const int v = layouts.blocked(ins[static_cast<std::size_t>(k)]);
          const auto def = limits.compose_gathers ? gathered.find(v) : gathered.end();
          if (def != gathered.end()) plan.composed_gathers = true;
          const auto [src, src_ch] = def == gathered.end() ? std::pair<int, int64_t>{v, ch}
                                                           : def->second[static_cast<std::size_t>(ch)];
          auto at = std::find(s.inputs.begin(), s.inputs.end(), src);
          if (at == s.inputs.end()) at = s.inputs.insert(s.inputs.end(), src);
          s.channels.push_back({static_cast<int>(at - s.inputs.begin()), src_ch});
        }
        s.outputs = {layouts.produce_blocked(n.outputs[0])};
        auto& def = gathered[s.outputs[0]];
        for (const auto& [k, ch] : s.channels) def.push_back({s.inputs[static_cast<std::size_t>(k)], ch});
        plan.steps.push_back(std::move(s));
        continue;
      }
      if (const auto& sh = shuffles[i])  // not gathered after all: its first nodes run here
        for (int m : sh->nodes) emit_reference(m);
    }
    if (jit_on && !n.inputs.empty() && n.inputs[0] >= 0 && (n.domain.empty() || n.domain == "ai.onnx")) {
      if (emit_blocked_op(g, uses, n, static_cast<int>(i), host, plan, layouts, taken)) continue;
    }
    emit_reference(static_cast<int>(i));
  }
  for (int v : g.outputs) layouts.plain(v);

  // Gathers whose output no later step reads (their readers gathered from their sources).
  std::vector<char> read(g.values.size() + plan.added_values.size(), 0);
  for (std::size_t k = plan.steps.size(); k-- > 0;) {
    PlannedStep& st = plan.steps[k];
    if (st.kind == StepKind::gather && !read[static_cast<std::size_t>(st.outputs[0])]) {
      plan.steps.erase(plan.steps.begin() + static_cast<std::ptrdiff_t>(k));
      continue;
    }
    for (int v : st.inputs)
      if (v >= 0) read[static_cast<std::size_t>(v)] = 1;
  }
  if (jit_on) {
    const std::vector<int> tails = read_downsamples_late(g, plan, host, limits);
    fuse_row_streams(g, plan, host, options.threads, limits, tails);
    fold_crops(g, plan, host);
    alias_concats(g, plan);
  }
  return plan;
}

}  // namespace nnjit::graph
