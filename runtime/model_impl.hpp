// What a loaded Model holds: the optimised graph, the execution plan, the memory plan.
// Immutable after Engine::load; Sessions only read it.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "graph/graph.hpp"
#include "graph/plan.hpp"
#include "jit/host_info.hpp"
#include "nnjit/engine.hpp"
#include "ops/op.hpp"
#include "runtime/memory_plan.hpp"

namespace nnjit {

namespace runtime {

class ThreadPool;

using KernelFn = std::function<void(const ops::ComputeContext&)>;

// One step of the execution plan: the graph nodes it covers and the kernel that runs them.
struct Step {
  std::vector<int> nodes;  // indices into the graph's nodes
  std::string op;          // op type (or fused name)
  std::vector<int> inputs, outputs;
  const ops::Attributes* attrs = nullptr;
  std::string kernel;  // kernel name, e.g. "reference"
  std::string reason;  // why this kernel, when it is not the default choice
  std::string split;   // how threads share the step ("" = the calling thread alone)
  graph::StepKind kind = graph::StepKind::reference;
  graph::KernelPlan plan;
  std::optional<graph::InvertedResidualPlan> block;  // ir_block steps
  std::optional<graph::SqueezeExcitePlan> se;         // se_block steps
  std::optional<graph::RowStreamPlan> stream;         // row_stream steps
  std::vector<std::pair<int, int64_t>> channels;     // gather steps
  int64_t src_shift = 0;                             // pointwise conv steps: see graph::PlannedStep
  std::size_t packed_bytes = 0;  // weights this step packed at compile
  const void* code = nullptr;  // the generated kernel, for the profiler
  std::size_t code_size = 0;
  KernelFn run;
};

}  // namespace runtime

struct ModelImpl {
  graph::Graph graph;
  Options options;
  jit::HostInfo host;  // the probe's figures with Options::host applied
  std::vector<TensorInfo> inputs, outputs;
  std::vector<int> block;  // per value: 0 = plain layout, else channels per block
  std::string isa;         // the kernels' ISA: avx512, avx2 or reference
  // The Engine's pool for options.threads workers (null for one thread); shared by every
  // model of that Engine with that many threads, and by their sessions.
  std::shared_ptr<runtime::ThreadPool> pool;
  std::string loaded_counts, optimize_report;
  std::vector<runtime::Step> steps;
  std::size_t graph_values = 0;  // values of the optimised graph; the plan's twins come after
  // What Model::steps() shows, one per step: described on first use, not at load (the
  // strings and figures cost a load ~0.4 ms on DARTS' 150 steps and run nothing).
  const std::vector<StepInfo>& step_infos() const;
  mutable std::once_flag described;
  mutable std::vector<StepInfo> described_steps;
  // The memory report's yardstick (runtime::unfused_live_bound), on first use.
  std::size_t unfused_bound() const;
  mutable std::once_flag unfused_once;
  mutable std::size_t unfused_bound_bytes = 0;
  // Concat inputs that may be written straight into the Concat's output (the plan's
  // candidates), and those the memory plan took: their gather steps do nothing.
  std::vector<runtime::ValueAlias> alias_candidates, aliases;
  bool composed_gathers = false;  // some gather of the plan reads another's sources
  std::vector<int> shortcuts;     // downsampling shortcuts the plan could read late (graph::ExecutionPlan)
  runtime::MemoryPlan memory;
  bool pointwise_in_place = true;  // 1x1 convs over their own input, where allowed (plan_model_memory)
  LoadTimes times;
  std::size_t weights_bytes = 0;         // what Model::weights_bytes() says: stored + packed
  std::size_t weights_stored_bytes = 0;  // constants still held as loaded (the rest were packed)
  // Lets go of what the load dropped (release_packed_constants) beside the caller: the
  // last view of a mapped model file unmaps it, ~4 ms for ResNet-50's 100 MB (every page
  // table entry the packers filled in). Joined when the model goes.
  std::thread releasing;

  ModelImpl() = default;
  ModelImpl(const ModelImpl&) = delete;
  ModelImpl& operator=(const ModelImpl&) = delete;
  ~ModelImpl() {
    if (releasing.joinable()) releasing.join();
  }
};

}  // namespace nnjit
