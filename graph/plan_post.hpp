// Internal to graph/: what plan.cpp and its post-passes (plan_post.cpp) share.
#pragma once

#include <string>

#include "graph/plan.hpp"

namespace nnjit::graph {

// Value `id` of the graph or of the plan's added values (ids graph.values.size() on).
const Value& plan_value(const Graph& g, const ExecutionPlan& plan, int id);

// Appends `v` to the plan's values, stored with `block` channels a block (0: plain); its id.
int add_value(const Graph& g, ExecutionPlan& plan, Value v, int block);

// A new plain float value of `floats` elements, for a step's own buffers; its id.
int add_scratch(const Graph& g, ExecutionPlan& plan, const std::string& name, int64_t floats);

// ResNet's downsampling blocks, where limits.late_downsample names the shortcut's strided
// 1x1 conv: the main branch runs first, the shortcut's input pixels are compacted in
// place once the main branch has read them, and the shortcut adds the main branch's last
// conv into its own output. Returns the nodes of those last convs (no chain takes them);
// the blocks it could read so but limits do not name go to plan.shortcuts.
std::vector<int> read_downsamples_late(const Graph& g, ExecutionPlan& plan, const jit::HostInfo& host,
                                       const PlanLimits& limits);

// Chains of up to three conv steps (and a max pool), each the only reader of the one
// before, become row-stream steps where a value between them exceeds half the L2. No
// chain takes a step whose first node is in `no_join` after its first stage.
void fuse_row_streams(const Graph& g, ExecutionPlan& plan, const jit::HostInfo& host, int threads,
                      const PlanLimits& limits, const std::vector<int>& no_join = {});

// Crops (spatial Slices) read only by a pointwise conv that, planned on the uncropped
// tensor, gives the same output: the conv reads the uncropped tensor from the crop's first
// pixel on (PlannedStep::src_shift) and the crop goes. Crops of crops compose first.
void fold_crops(const Graph& g, ExecutionPlan& plan, const jit::HostInfo& host);

// Records block-aligned Concats of one image as alias candidates (ExecutionPlan::aliases).
void alias_concats(const Graph& g, ExecutionPlan& plan);

}  // namespace nnjit::graph
