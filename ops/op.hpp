// What an op is: its shape rule and its reference implementation.
//
// Every ONNX op nnjit claims has one OpSchema. `infer` gives output types and shapes
// from input types/shapes (and constant input values where the shape depends on them);
// `compute` is the reference implementation in plain C++ — the oracle every JIT kernel
// is tested against — writing into outputs the executor preallocated with the inferred
// shapes. `check` lists attribute values nnjit does not support (so that the loader can
// report every problem of a model at once).
//
// Contract for compute: inputs are never modified; outputs have exactly the inferred
// dtype and shape and may hold garbage on entry; compute must not keep pointers.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "nnjit/tensor.hpp"
#include "ops/attributes.hpp"

namespace nnjit::ops {

struct InputInfo {
  DType dtype = DType::Undefined;  // Undefined = optional input absent
  Shape shape;
  const Tensor* value = nullptr;  // set when the input is a constant
  bool present() const { return dtype != DType::Undefined; }
};

struct OutputInfo {
  DType dtype = DType::Undefined;
  Shape shape;
};

class InferContext {
 public:
  InferContext(std::string node, std::string op_type, int opset, const Attributes& attrs,
               std::vector<InputInfo> inputs, int num_outputs);

  const Attributes& attrs;
  const int opset;

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  bool has_input(int i) const { return i < num_inputs() && inputs_[i].present(); }
  // Throws InvalidInput if input i is absent.
  const InputInfo& input(int i) const;
  const Shape& shape(int i) const { return input(i).shape; }
  DType dtype(int i) const { return input(i).dtype; }
  int rank(int i) const { return static_cast<int>(input(i).shape.size()); }
  // The constant value of input i; throws Unsupported if it is computed at run time.
  const Tensor& constant(int i, const char* what) const;

  void set_output(int i, DType dtype, Shape shape);
  const std::vector<OutputInfo>& outputs() const { return outputs_; }

  // Checks the number of inputs given (counting absent optional ones) is in [lo, hi].
  void require_inputs(int lo, int hi) const;
  // Throws Unsupported unless input i's dtype is one of `allowed`.
  void require_type(int i, std::initializer_list<DType> allowed) const;
  // Throws InvalidInput unless inputs i and j have the same dtype.
  void require_same_type(int i, int j) const;
  // Normalises a possibly negative axis for a tensor of rank r; InvalidInput if out of range.
  int axis(int64_t a, int r, const char* what = "axis") const;

  [[noreturn]] void fail(const std::string& message) const;         // InvalidInput
  [[noreturn]] void unsupported(const std::string& message) const;  // Unsupported
  std::string where() const;  // "node 'conv1' (Conv)"

 private:
  std::string node_, op_type_;
  std::vector<InputInfo> inputs_;
  std::vector<OutputInfo> outputs_;
};

struct ComputeContext {
  const Attributes& attrs;
  int opset;
  std::vector<const Tensor*> inputs;  // nullptr = optional input absent
  std::vector<Tensor*> outputs;
  const Tensor& in(int i) const;
  bool has(int i) const { return i < static_cast<int>(inputs.size()) && inputs[i] != nullptr; }
  Tensor& out(int i) const { return *outputs.at(static_cast<std::size_t>(i)); }
};

struct OpSchema {
  std::string_view name;
  int since_opset = 1;  // oldest ai.onnx opset whose semantics this schema implements
  void (*infer)(InferContext&) = nullptr;
  void (*compute)(const ComputeContext&) = nullptr;
  // Appends a description of each unsupported attribute value; may be null.
  void (*check)(const Attributes&, int opset, std::vector<std::string>& problems) = nullptr;
  // compute reads only its inputs' shapes and types, never their values (Shape): the
  // graph can fold it as soon as the shapes are known.
  bool reads_shapes_only = false;
};

// The schema for an op of the default (ai.onnx) domain, or nullptr.
const OpSchema* find_schema(std::string_view op_type);
// Every op nnjit claims, sorted.
std::vector<std::string> supported_ops();

// The lowest and highest ai.onnx opsets nnjit accepts.
constexpr int kMinOpset = 7;
constexpr int kMaxOpset = 17;

}  // namespace nnjit::ops
