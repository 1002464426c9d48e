// What the activation memory plan costs, for `nnjit info` and benchmarks' JSON.
//
//   MemoryReport r = make_memory_report(model.memory, value_names);  // names by value id
//   r.weights_bytes_stored = ...;  r.weights_bytes_packed = ...;      // the caller knows
//   std::cout << r.to_text();      // or r.to_json(): one JSON object, no trailing newline
//
// The figures, all bytes rounded up to kArenaAlign as the plan holds them:
//  - arena_bytes: the arena one Session allocates (the plan's high-water mark).
//  - naive_bytes: every value steps compute plus every scratch buffer, as if nothing were
//    reused (constants and graph inputs excluded: they live outside the arena).
//  - live_bound_bytes: the largest sum of sizes alive at one step, an in-place chain
//    counted once. No plan that places whole tensors (and keeps the same in-place grants)
//    fits in less; arena_bytes / live_bound_bytes says how much placement loses.
//  - peak_step and peak_values: where that bound is reached and what is alive there
//    (values and the step's scratch), largest first.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "runtime/memory_plan.hpp"

namespace nnjit::runtime {

struct MemoryReport {
  struct LiveValue {
    std::string name;  // the value's name, or "scratch of step N"
    std::size_t bytes = 0;
    std::size_t offset = 0;
    ValueKind kind = ValueKind::Allocate;  // Unused for scratch
    std::string in_place_of;               // the donor's name when it shares the donor's bytes here
  };
  struct Denial {
    int step = -1;
    std::string output, input, reason;
  };

  std::size_t arena_bytes = 0;
  std::size_t naive_bytes = 0;
  std::size_t live_bound_bytes = 0;
  std::size_t input_bytes = 0;    // graph inputs: the caller's tensors, outside the arena
  std::size_t scratch_bytes = 0;  // the sum of all steps' scratch (naive, no reuse)
  int scratch_steps = 0;          // steps that have scratch
  int inplace_granted = 0, inplace_denied = 0;
  int concat_inputs_in_place = 0;  // values computed straight into a Concat's output
  int peak_step = -1;
  std::vector<LiveValue> peak_values;
  std::vector<Denial> denials;  // the denied in-place requests and why, in step order
  // Filled by the caller: the weights as the model file stores them, and as the kernels
  // hold them after packing (blocked layouts, padding, quantisation).
  std::size_t weights_bytes_stored = 0, weights_bytes_packed = 0;

  std::string to_text() const;  // lines ending in '\n'
  std::string to_json() const;  // one JSON object
};

// `names[v]` names value v; a missing or empty name reads "#v".
MemoryReport make_memory_report(const MemoryPlan& plan, const std::vector<std::string>& names = {});

}  // namespace nnjit::runtime
