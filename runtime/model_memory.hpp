// What the engine asks of the memory planner for a model's steps (runtime/memory_plan
// plans values it is given): the in-place requests each step's kernel allows, a step
// order that frees memory early, the arena with the choices that shrink it, and the
// yardstick the memory report compares it with.
//
//   plan_model_memory(m);                             // m.memory, m.aliases
//   std::vector<std::size_t> order = memory_order(m);
//   if (!std::is_sorted(order.begin(), order.end())) reorder_steps(m, order);
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <variant>
#include <vector>

#include "graph/plan.hpp"
#include "runtime/memory_plan.hpp"
#include "runtime/model_impl.hpp"

namespace nnjit::runtime {

// Elements value v's slot holds: its channels rounded up to whole blocks when blocked.
int64_t stored_numel(const ModelImpl& m, int v);

// fn(shape) for a row-stream stage that is a convolution, `none` for its pool.
template <class R, class Fn>
R with_conv_stage(const graph::RowStage& stage, R none, Fn fn) {
  return std::visit(
      [&](const auto& p) -> R {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, jit::PoolPlan>) return none;
        else return fn(p.shape);
      },
      stage);
}

// A permutation of the step indices in which a step that frees more activation bytes
// than it writes runs as soon as its inputs exist (details at the definition).
std::vector<std::size_t> memory_order(const ModelImpl& m);
void reorder_steps(ModelImpl& m, const std::vector<std::size_t>& order);

// The inverted-residual blocks named by their first node that may write over their input
// (InvertedResidualPlan::in_place_ok) do; their buffers value is resized.
void put_blocks_in_place(ModelImpl& m, const std::vector<int>& first_nodes);

// m.memory and m.aliases for the steps as they are, with the Concat aliases and 1x1 convs
// over their input that shrink the arena (m.pointwise_in_place). Without `search`, the
// choices made before (one placement, for trying a change to the steps).
void plan_model_memory(ModelImpl& m, bool search = true);

// The live-set bound of the graph as loaded, one step per node, every tensor in plain
// layout (the memory report's yardstick). Also after the load released the packed
// constants: a value no node produces that is not a graph input is a constant.
std::size_t unfused_live_bound(const ModelImpl& m);

}  // namespace nnjit::runtime
