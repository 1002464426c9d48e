// Engine, Model and Session: load -> optimize -> plan -> compile, then run.
//
//   nnjit::Engine engine;                                  // probes the host once
//   auto model = engine.load("mobilenet_v2.onnx", {.threads = 2});
//   nnjit::Session session = model->session();             // one per worker thread
//   auto outputs = session.run({{"input", nnjit::Tensor::from(data, {1, 3, 224, 224})}});
//
// Contracts: a Model is immutable after load and may be shared by any number of threads;
// a Session is used by one thread at a time. Nothing is compiled or allocated for
// activations inside run(); outputs are fresh tensors the caller owns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nnjit/options.hpp"
#include "nnjit/tensor.hpp"

namespace nnjit {

struct TensorInfo {
  std::string name;
  DType dtype = DType::Undefined;
  Shape shape;
};

// Milliseconds spent in each load phase.
struct LoadTimes {
  double parse = 0, optimize = 0, plan = 0, compile = 0, total = 0;
};

// One figure of the host probe and where it came from
// ("cpuinfo", "cpuid", "sysfs", "cgroup", "override", "default").
struct HostFigure {
  std::string name;
  std::string value;
  std::string source;
};

// One step of a model's execution plan, as `nnjit info` and the profiler show it.
struct StepInfo {
  std::string op;                  // op type, or the fused pattern, e.g. "Conv+Relu"
  std::vector<std::string> nodes;  // the graph nodes the step runs
  std::string kernel;              // the generated kernel's name, or "reference", "reorder"
  std::string reason;              // why this kernel, when not the default choice
  std::string shape;               // of the step's first output, e.g. "[1,32,112,112]"
  std::string layout;              // of that output: "nchw", "nChw16c", "nChw8c"
  std::string plan;                // the kernel's plan key: shape, tiles, ISA
  std::string split;               // how threads share the step, e.g. "rows/2"; "" = one thread
  double flops = 0;                // floating-point operations per run (multiply-add = 2)
  double bytes = 0;                // bytes read and written per run (activations + weights)
  const void* code = nullptr;      // the generated code, when the step runs one
  std::size_t code_size = 0;
};

// Timings of one run, filled in when a RunProfile is passed to Session::run.
struct StepTiming {
  std::size_t step = 0;     // index into Model::steps()
  double start_us = 0;      // since the run began
  double duration_us = 0;
};
struct RunProfile {
  double start_us = 0;  // since the Session was created (steady clock)
  double total_us = 0;
  std::vector<StepTiming> steps;  // one per executed step, in order
};

// The host's measured peaks, for rooflines (nnjit profile).
struct HostPeaks {
  double fma_gflops = 0;        // one core, the widest FMA the kernels use
  double memory_gb_per_s = 0;   // one core streaming reads from a 64 MiB buffer
};

class Session;
struct ModelImpl;

class Model : public std::enable_shared_from_this<Model> {
 public:
  explicit Model(std::unique_ptr<ModelImpl> impl);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  // A new run state (its own activation memory). Cheap compared with load.
  Session session() const;

  const LoadTimes& load_times() const;
  // Op counts by type, in the model as loaded and as executed.
  std::string summary() const;
  // One line per execution step: nodes, kernel, shapes, and why that kernel.
  std::string plan_report() const;
  // Writes each generated kernel the plan uses to DIR as <n>_<kernel>.bin and .s
  // (objdump's disassembly, headed by the plan and the nodes it serves); returns how many.
  int dump_kernels(const std::string& dir) const;
  // Symbolic dimensions and the values they were bound to, e.g. "batch_size=1".
  const std::vector<std::string>& bound_dims() const;
  // Bytes the model holds for its weights: the packed copies the kernels read, and the
  // constants some step reads as they are (those only packed are dropped after packing).
  std::size_t weights_bytes() const;
  // Bytes of activation memory one Session allocates.
  std::size_t arena_bytes() const;
  // The activation memory plan, before any run: arena bytes, the naive sum, the live-set
  // bounds, weights stored and packed, the peak step and what is alive there.
  std::string memory_report() const;
  // The execution plan, one entry per step, in run order.
  const std::vector<StepInfo>& steps() const;

  const ModelImpl& impl() const { return *impl_; }

 private:
  std::unique_ptr<ModelImpl> impl_;
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Runs the model. Inputs are matched by name; every graph input must be given once,
  // with the model's dtype and shape. Returns the graph outputs in model order.
  std::vector<NamedTensor> run(const std::vector<NamedTensor>& inputs);
  // The same, recording each step's time into `profile` (when not null). Profiling
  // off costs one branch per step.
  std::vector<NamedTensor> run(const std::vector<NamedTensor>& inputs, RunProfile* profile);

  const Model& model() const { return *model_; }

 private:
  struct State;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<State> state_;
};

class Engine {
 public:
  Engine();
  ~Engine();

  // Parse, optimise, plan and compile a model. Throws nnjit::Error.
  std::shared_ptr<const Model> load(const std::string& path, const Options& options = {}) const;
  // The same from bytes in memory; `name` is used in messages, `base_dir` resolves
  // external data files.
  std::shared_ptr<const Model> load_bytes(const void* data, std::size_t size, const std::string& name,
                                          const std::string& base_dir, const Options& options = {}) const;

  // What the host probe found, each figure with its source.
  std::vector<HostFigure> host_figures() const;
  // Measures the FMA peak and memory bandwidth of one core (~0.1 s).
  HostPeaks measure_peaks() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nnjit
