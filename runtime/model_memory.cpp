#include "runtime/model_memory.hpp"

#include <algorithm>

#include "nnjit/error.hpp"

namespace nnjit::runtime {

int64_t stored_numel(const ModelImpl& m, int v) {
  const graph::Value& val = m.graph.values[static_cast<std::size_t>(v)];
  const int block = m.block[static_cast<std::size_t>(v)];
  if (block == 0) return shape_numel(val.shape);
  return shape_numel(val.shape) / val.shape[1] * jit::blocked_channels(val.shape[1], block);
}

namespace {

// Graph inputs, constants and outputs; every other value is the arena's to allocate.
std::vector<ValueKind> value_kinds(const graph::Graph& g) {
  std::vector<ValueKind> kinds(g.values.size(), ValueKind::Allocate);
  for (std::size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].constant.defined()) kinds[v] = ValueKind::Constant;
  for (int v : g.outputs)
    if (kinds[static_cast<std::size_t>(v)] == ValueKind::Allocate) kinds[static_cast<std::size_t>(v)] = ValueKind::Output;
  for (int v : g.inputs) kinds[static_cast<std::size_t>(v)] = ValueKind::Input;
  return kinds;
}

// Bytes of each value's slot as planned (0 for constants and values of unknown shape).
std::vector<std::size_t> slot_sizes(const ModelImpl& m, const std::vector<ValueKind>& kinds) {
  const graph::Graph& g = m.graph;
  std::vector<std::size_t> sizes(g.values.size(), 0);
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    const graph::Value& val = g.values[v];
    if (kinds[v] != ValueKind::Constant && val.dtype != DType::Undefined && val.shape_known)
      sizes[v] = static_cast<std::size_t>(stored_numel(m, static_cast<int>(v))) * dtype_size(val.dtype);
  }
  return sizes;
}

// A 1x1 conv whose plan lets it write over its own input (jit::pointwise_in_place).
bool pointwise_over_input(const Step& s) {
  const auto* pw = std::get_if<jit::PointwisePlan>(&s.plan);
  return s.kind == graph::StepKind::conv && s.inputs[3] < 0 && pw && s.src_shift == 0 && jit::pointwise_in_place(*pw);
}

// The outputs a step may write over one of its inputs, as its kernel's contract allows:
// an elementwise step over its first operand, a crop compacting its input, a 1x1 conv
// over its input where pointwise_in_place says so, an inverted-residual block over its
// input where its plan says so, a conv (or a row stream's last stage) adding its
// residual before the activation over that residual — which may be the stream's own
// input (RowStreamRunner::run_in_place).
std::vector<InPlaceRequest> inplace_requests(const Step& s) {
  std::vector<InPlaceRequest> r;
  if (s.kind == graph::StepKind::eltwise || s.kind == graph::StepKind::crop) r.push_back({0, 0});
  if (s.kind == graph::StepKind::conv && s.inputs.size() > 3) {
    if (s.inputs[3] >= 0 &&
        std::visit(
            [](const auto& p) {
              if constexpr (std::is_same_v<std::decay_t<decltype(p)>, std::monostate>) return false;
              else if constexpr (requires { p.shape.residual; })
                return p.shape.residual == jit::ResidualMode::before_activation;
              else return false;
            },
            s.plan))
      r.push_back({0, 3});
    if (pointwise_over_input(s)) r.push_back({0, 0});
  }
  if (s.kind == graph::StepKind::ir_block && s.block->in_place) r.push_back({0, 0, s.inputs[7] == s.inputs[0]});
  if (s.kind == graph::StepKind::row_stream && s.inputs.back() >= 0 &&
      (s.inputs.back() != s.inputs.front() || s.stream->over_input_ok) &&
      with_conv_stage(s.stream->stages.back(), false,
                      [](const auto& shape) { return shape.residual == jit::ResidualMode::before_activation; }))
    r.push_back({0, static_cast<int>(s.inputs.size()) - 1, s.inputs.back() == s.inputs.front()});
  return r;
}

}  // namespace

// An order of the steps in which a step that frees more activation bytes than it writes runs
// as soon as its inputs exist (the first such step in the plan's order, when several
// are ready), and so do the readers of a value that together free more than they write;
// every other step keeps the plan's order. In a DARTS-style cell network
// the next cell's preprocessing of a cell's output (to a quarter of its size, or by a
// factorized reduce of two strided convs) then runs right after that output's other
// reader instead of a whole cell later, and the big output dies there. The engine keeps
// the order only where it shrinks the arena.
std::vector<std::size_t> memory_order(const ModelImpl& m) {
  const std::vector<ValueKind> kinds = value_kinds(m.graph);
  const std::vector<std::size_t> sizes = slot_sizes(m, kinds);
  const std::size_t n = m.steps.size();
  std::vector<int> producer(sizes.size(), -1), pending(n, 0);
  std::vector<std::vector<int>> inputs(n);            // distinct values each step reads
  std::vector<std::vector<std::size_t>> readers(sizes.size());  // steps not run yet that read each value
  for (std::size_t k = 0; k < n; ++k)
    for (int v : m.steps[k].outputs)
      if (v >= 0) producer[static_cast<std::size_t>(v)] = static_cast<int>(k);
  for (std::size_t k = 0; k < n; ++k) {
    for (int v : m.steps[k].inputs)
      if (v >= 0 && std::find(inputs[k].begin(), inputs[k].end(), v) == inputs[k].end()) inputs[k].push_back(v);
    for (int v : inputs[k]) {
      readers[static_cast<std::size_t>(v)].push_back(k);
      if (producer[static_cast<std::size_t>(v)] >= 0) ++pending[k];
    }
  }
  std::vector<char> is_ready(n, 0);
  auto written = [&](std::size_t k) {
    int64_t bytes = 0;
    for (int v : m.steps[k].outputs)
      if (v >= 0 && kinds[static_cast<std::size_t>(v)] == ValueKind::Allocate)
        bytes += static_cast<int64_t>(sizes[static_cast<std::size_t>(v)]);
    return bytes;
  };
  // What running step k now changes in the bytes alive: what it writes less the values it
  // reads last; or, for a value whose remaining readers are all ready, what they all
  // write less that value, when running them frees more than they take.
  auto net = [&](std::size_t k) {
    int64_t alone = written(k), best = 0;
    for (int v : inputs[k]) {
      const std::vector<std::size_t>& left = readers[static_cast<std::size_t>(v)];
      if (kinds[static_cast<std::size_t>(v)] != ValueKind::Allocate) continue;
      const auto size = static_cast<int64_t>(sizes[static_cast<std::size_t>(v)]);
      if (left.size() == 1) {
        alone -= size;
      } else if (std::all_of(left.begin(), left.end(), [&](std::size_t c) { return is_ready[c] != 0; })) {
        int64_t together = -size;
        for (std::size_t c : left) together += written(c);
        best = std::min(best, together);
      }
    }
    return std::min(alone, best);
  };
  std::vector<std::size_t> ready, order;
  auto make_ready = [&](std::size_t k) {
    ready.push_back(k);
    is_ready[k] = 1;
  };
  for (std::size_t k = 0; k < n; ++k)
    if (pending[k] == 0) make_ready(k);
  // Step k could write over a value that other steps, all ready, still read: it goes
  // after them (among the steps that free memory), to be that value's last reader.
  std::vector<std::vector<int>> could_take(n);  // per step: the inputs it may write over
  for (std::size_t k = 0; k < n; ++k)
    for (const InPlaceRequest& r : inplace_requests(m.steps[k]))
      if (const int v = m.steps[k].inputs[static_cast<std::size_t>(r.input)]; v >= 0) could_take[k].push_back(v);
  auto waits = [&](std::size_t k) {
    for (int v : could_take[k]) {
      const std::vector<std::size_t>& left = readers[static_cast<std::size_t>(v)];
      if (left.size() > 1 && std::all_of(left.begin(), left.end(), [&](std::size_t c) { return is_ready[c] != 0; }))
        return true;
    }
    return false;
  };
  while (!ready.empty()) {
    auto pick = std::min_element(ready.begin(), ready.end());
    int64_t pick_net = net(*pick);
    bool pick_waits = true;
    for (auto it = ready.begin(); it != ready.end(); ++it)
      if (const int64_t b = net(*it); b < 0) {
        const bool w = waits(*it);
        if (pick_net >= 0 || (pick_waits && !w) || (pick_waits == w && *it < *pick)) {
          pick = it;
          pick_net = b;
          pick_waits = w;
        }
      }
    const std::size_t k = *pick;
    ready.erase(pick);
    order.push_back(k);
    for (int v : inputs[k]) std::erase(readers[static_cast<std::size_t>(v)], k);
    for (int v : m.steps[k].outputs)  // steps waiting on k's outputs
      if (v >= 0)
        for (std::size_t c : readers[static_cast<std::size_t>(v)])
          if (--pending[c] == 0) make_ready(c);
  }
  if (order.size() != n) throw_internal("step order: the planned steps do not form a DAG");
  return order;
}

// The inverted-residual blocks named by their first node that may write over their
// input (in_place_ok) do, their buffers value resized (InvertedResidualPlan::buffers_floats).
void put_blocks_in_place(ModelImpl& m, const std::vector<int>& first_nodes) {
  for (Step& s : m.steps)
    if (s.block && s.block->in_place_ok &&
        std::find(first_nodes.begin(), first_nodes.end(), s.nodes.front()) != first_nodes.end()) {
      s.block->in_place = true;
      s.reason = "in place: each tile writes over input rows it and the tiles after it have read";
      m.graph.values[static_cast<std::size_t>(s.outputs[1])].shape = {s.block->buffers_floats(m.options.threads)};
    }
}

void reorder_steps(ModelImpl& m, const std::vector<std::size_t>& order) {
  std::vector<Step> steps;
  steps.reserve(order.size());
  for (std::size_t k : order) steps.push_back(std::move(m.steps[k]));
  m.steps = std::move(steps);
}

void plan_model_memory(ModelImpl& m, bool search) {
  const std::vector<ValueKind> kinds = value_kinds(m.graph);
  const std::vector<std::size_t> sizes = slot_sizes(m, kinds);
  std::vector<StepValues> steps;
  for (const Step& s : m.steps) steps.push_back({s.inputs, s.outputs, inplace_requests(s), 0});
  bool pointwise = search || m.pointwise_in_place;  // 1x1 convs over their input asked for
  // Concats whose inputs are computed into their output: all the candidates at first,
  // then each dropped if that shrinks the arena (an output living from its first input
  // on can cost more than the copy saves). Their gathers then read and write nothing.
  std::vector<int> parents;
  for (const ValueAlias& a : m.alias_candidates)
    if (std::find(parents.begin(), parents.end(), a.parent) == parents.end()) parents.push_back(a.parent);
  auto plan_with = [&](const std::vector<char>& on) {
    std::vector<ValueAlias> aliases;
    std::vector<StepValues> sv = steps;
    for (std::size_t k = 0; k < m.steps.size() && !pointwise; ++k)
      if (pointwise_over_input(m.steps[k])) sv[k].inplace.clear();
    for (std::size_t p = 0; p < parents.size(); ++p) {
      if (!on[p]) continue;
      for (const ValueAlias& a : m.alias_candidates)
        if (a.parent == parents[p]) aliases.push_back(a);
      for (std::size_t k = 0; k < m.steps.size(); ++k)
        if (m.steps[k].kind == graph::StepKind::gather && m.steps[k].outputs.at(0) == parents[p]) sv[k] = {};
    }
    return std::pair{plan_memory(sizes, kinds, sv, aliases), aliases};
  };
  std::vector<char> taken(parents.size(), 1);
  if (!search)  // the Concats taken before
    for (std::size_t p = 0; p < parents.size(); ++p)
      taken[p] = std::any_of(m.aliases.begin(), m.aliases.end(), [&](const ValueAlias& a) { return a.parent == parents[p]; });
  auto best = plan_with(taken);
  // Most often no Concat output outlives its inputs by much: when taking them all is no
  // worse than taking none, that is the answer.
  const bool try_each = search && !parents.empty() && [&] {
    auto none = plan_with(std::vector<char>(parents.size(), 0));
    return none.first.arena_bytes < best.first.arena_bytes;
  }();
  for (std::size_t p = 0; try_each && p < parents.size(); ++p) {
    taken[p] = 0;
    auto without = plan_with(taken);
    if (without.first.arena_bytes < best.first.arena_bytes) best = std::move(without);
    else taken[p] = 1;
  }
  // A 1x1 conv over its own input joins two values into one block, which can place worse
  // than two (efficientnet_b0, squeezenet1_1): all of them dropped, where that is smaller.
  if (search && std::any_of(best.first.inplace.begin(), best.first.inplace.end(), [&](const InPlaceDecision& d) {
        return d.granted && pointwise_over_input(m.steps[static_cast<std::size_t>(d.step)]);
      })) {
    pointwise = false;
    if (auto without = plan_with(taken); without.first.arena_bytes < best.first.arena_bytes) best = std::move(without);
    else pointwise = true;
  }
  m.memory = std::move(best.first);
  m.aliases = std::move(best.second);
  m.pointwise_in_place = pointwise;
}

std::size_t unfused_live_bound(const ModelImpl& m) {
  const graph::Graph& g = m.graph;
  std::vector<ValueKind> kinds = value_kinds(g);
  for (std::size_t v = 0; v < m.graph_values; ++v)
    if (g.values[v].producer < 0 && kinds[v] != ValueKind::Input) kinds[v] = ValueKind::Constant;
  std::vector<std::size_t> plain(g.values.size(), 0);
  for (std::size_t v = 0; v < m.graph_values; ++v)
    if (kinds[v] != ValueKind::Constant && g.values[v].dtype != DType::Undefined && g.values[v].shape_known)
      plain[v] = static_cast<std::size_t>(shape_numel(g.values[v].shape)) * dtype_size(g.values[v].dtype);
  std::vector<StepValues> per_node;
  for (const graph::Node& n : g.nodes) per_node.push_back({n.inputs, n.outputs, {}, 0});
  return plan_memory(plain, kinds, per_node).live_bound;
}

}  // namespace nnjit::runtime
