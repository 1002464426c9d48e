// Internal to graph/: what plan.cpp and its post-passes (plan_post.cpp) share.
#pragma once

#include <string>

#include "graph/plan.hpp"

namespace nnjit::graph {

// Value `id` of the graph or of the plan's added values (ids graph.values.size() on).
const Value& plan_value(const Graph& g, const ExecutionPlan& plan, int id);

// A new plain float value of `floats` elements, for a step's own buffers; its id.
int add_scratch(const Graph& g, ExecutionPlan& plan, const std::string& name, int64_t floats);

// Chains of up to three conv steps (and a max pool), each the only reader of the one
// before, become row-stream steps where a value between them exceeds half the L2.
void fuse_row_streams(const Graph& g, ExecutionPlan& plan, const jit::HostInfo& host, int threads,
                      const PlanLimits& limits);

// Crops (spatial Slices) read only by a pointwise conv that, planned on the uncropped
// tensor, gives the same output: the conv reads the uncropped tensor from the crop's first
// pixel on (PlannedStep::src_shift) and the crop goes. Crops of crops compose first.
void fold_crops(const Graph& g, ExecutionPlan& plan, const jit::HostInfo& host);

// Records block-aligned Concats of one image as alias candidates (ExecutionPlan::aliases).
void alias_concats(const Graph& g, ExecutionPlan& plan);

}  // namespace nnjit::graph
