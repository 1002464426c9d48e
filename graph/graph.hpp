// The IR: values with static shapes and types, nodes (ops), constants.
//
//   Graph g = loaders::load_onnx(bytes, ...);   // as written in the file
//   graph::finalize(g, options);                // bind dims, sort, check ops, infer shapes
//
// Values and nodes are addressed by index. A value is a constant when `constant` is
// defined (an initializer, a Constant node or a folded subgraph). After finalize():
// nodes are in topological order, every live value has a dtype and a static shape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jit/layout.hpp"
#include "nnjit/options.hpp"
#include "nnjit/tensor.hpp"
#include "ops/attributes.hpp"

namespace nnjit::graph {

struct Value {
  std::string name;
  DType dtype = DType::Undefined;
  Shape shape;                          // -1 = not yet known (symbolic until bound)
  std::vector<std::string> dim_params;  // graph inputs: the symbolic name per dim ("" if fixed)
  bool shape_known = false;
  Tensor constant;    // defined => constant
  int producer = -1;  // node index, -1 for graph inputs and constants
};

struct Node {
  std::string name;  // never empty after loading (loader names anonymous nodes)
  std::string op_type;
  std::string domain;       // "" or "ai.onnx" = default
  std::vector<int> inputs;  // value indices; -1 = optional input absent
  std::vector<int> outputs;  // value indices; -1 = optional output not requested
  ops::Attributes attrs;
};

struct Graph {
  std::string source;  // the model file name, for messages
  int opset = 0;       // ai.onnx opset the model imports
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int> inputs;   // graph inputs that are not constants
  std::vector<int> outputs;  // graph outputs
  std::vector<std::string> bound_dims;  // "name=value" for each symbolic dim bound by finalize
  // Problems the loader found that make the model unsupported (an op domain, a data
  // type, a sparse initializer...). finalize() reports them together with its own.
  std::vector<std::string> unsupported;
  // The model's bytes when constants view them (loaders::load_onnx_file maps the file):
  // after load the engine copies out the constants it keeps, so that the model does not
  // hold the file's pages for as long as it lives.
  struct Bytes {
    const std::uint8_t* begin = nullptr;
    std::size_t size = 0;
    bool holds(const void* p) const {
      const auto at = reinterpret_cast<std::uintptr_t>(p), from = reinterpret_cast<std::uintptr_t>(begin);
      return begin != nullptr && at >= from && at - from < size;
    }
  } file_bytes;

  int add_value(Value v) {
    values.push_back(std::move(v));
    return static_cast<int>(values.size()) - 1;
  }
  bool is_constant(int v) const { return v >= 0 && values[static_cast<std::size_t>(v)].constant.defined(); }
};

// A float constant's elements to read once, where they lie: a weight viewing the model
// file unaligned (Tensor::view_unaligned) is read there, not copied to aligned storage.
// A deferred one is computed now.
inline jit::FloatsIn read_floats(const Tensor& t) {
  if (!t.aligned() && t.unaligned_bytes() != nullptr) return jit::FloatsIn::bytes(t.unaligned_bytes());
  return jit::FloatsIn(t.data<float>());
}

// The value of a float32 constant of one element, or nullopt.
inline std::optional<float> scalar_constant(const Graph& g, int v) {
  if (!g.is_constant(v)) return std::nullopt;
  const Tensor& t = g.values[static_cast<std::size_t>(v)].constant;
  if (t.dtype() != DType::Float32 || t.numel() != 1) return std::nullopt;
  return t.data<float>()[0];
}

// Binds symbolic input dims (Options::dims, else Options::default_dim), sorts the nodes
// topologically (InvalidInput naming a node on a cycle), checks that every op, opset,
// attribute and type is supported (one Unsupported error listing every problem), infers
// every shape, and folds nodes whose inputs are all constant.
void finalize(Graph& g, const Options& options);

// Removes nodes whose outputs nobody reads and values nobody references; renumbers.
void remove_dead(Graph& g);

// Op counts, e.g. "Conv x52, Relu x35".
std::string op_counts(const Graph& g);

}  // namespace nnjit::graph
