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
  // Symbolic dimensions and the values they were bound to, e.g. "batch_size=1".
  const std::vector<std::string>& bound_dims() const;
  // Bytes of constant tensors (weights) the model holds.
  std::size_t weights_bytes() const;
  // Bytes of activation memory one Session allocates.
  std::size_t arena_bytes() const;

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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nnjit
