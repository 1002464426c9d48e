// Activation memory, planned once at load (TFLite's arena planner, ORT's allocation plan).
//
// One record per value: {size, first_step, last_step, offset, kind}. Values computed by a
// step live in one arena per Session at base + offset; placement is largest first into the
// best-fitting gap among values whose lifetimes overlap; the arena size is the high-water
// mark. Contract: two values whose [first_step, last_step] ranges overlap never overlap in
// memory; graph outputs live until the end of the run.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace nnjit::runtime {

enum class ValueKind { Unused, Input, Constant, Allocate, Output };

struct ValuePlan {
  ValueKind kind = ValueKind::Unused;
  std::size_t size = 0;  // bytes, rounded up to the arena alignment
  int first_step = -1, last_step = -1;
  std::size_t offset = 0;
};

// What the planner needs to know of one step: the values it reads and writes.
struct StepValues {
  std::vector<int> inputs, outputs;
};

struct MemoryPlan {
  std::vector<ValuePlan> values;  // indexed by value id
  std::size_t arena_bytes = 0;    // the high-water mark
  std::size_t naive_bytes = 0;    // sum of all arena values, as if none were reused
  std::size_t live_bound = 0;     // largest sum of sizes alive at one step
  int peak_step = -1;             // the step where live_bound is reached
};

constexpr std::size_t kArenaAlign = 64;

// `sizes[v]` is value v's size in bytes; `kinds[v]` says which values are inputs,
// constants or outputs (Allocate for the rest that steps produce).
MemoryPlan plan_memory(const std::vector<std::size_t>& sizes, const std::vector<ValueKind>& kinds,
                       const std::vector<StepValues>& steps);

}  // namespace nnjit::runtime
