// The planner: groups nodes into fused steps, picks a kernel family for each, and
// threads layouts through the graph with the fewest reorders (see plan.hpp).
#include "graph/plan.hpp"
#include "graph/plan_nodes.hpp"
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
    case StepKind::gemm: return "gemm";
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
    const int id = add_value(g_, plan_, std::move(twin), plan_.block_size);
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
  plan.steps.reserve(g.nodes.size() + g.inputs.size() + g.outputs.size());  // a step a node at most, and reorders
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
        PlannedStep s{StepKind::ir_block, {}, (e ? e->op + "+" : "") + d.op + "+" + p.op, {}, {}, {}, b, std::nullopt, {},
                      b.dw_in_output ? "no depthwise buffer: its rows go to a tile's output rows, that tile run last" : ""};
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
      if (n.op_type == "MatMul" || n.op_type == "Gemm") {
        auto free = [&](int m) { return !taken[static_cast<std::size_t>(m)] && group_of[static_cast<std::size_t>(m)] < 0; };
        auto planned = plan_matmul_group(g, uses, static_cast<int>(i), free, host);
        if (auto* grp = std::get_if<ConvGroup>(&planned)) {
          for (int m : grp->nodes) taken[static_cast<std::size_t>(m)] = 1;
          plan.steps.push_back({StepKind::gemm, grp->nodes, grp->op, {layouts.plain(grp->src), grp->weights, grp->bias},
                                {grp->out}, grp->plan, std::nullopt, std::nullopt, {}, ""});
          continue;
        }
        std::string& why = why_reference[i];
        why += (why.empty() ? "" : "; as a gemm: ") + std::get<std::string>(planned);
      }
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
