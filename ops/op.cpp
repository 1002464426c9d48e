#include "ops/op.hpp"

#include <algorithm>

namespace nnjit::ops {

InferContext::InferContext(std::string node, std::string op_type, int opset_, const Attributes& attrs_,
                           std::vector<InputInfo> inputs, int num_outputs)
    : attrs(attrs_),
      opset(opset_),
      node_(std::move(node)),
      op_type_(std::move(op_type)),
      inputs_(std::move(inputs)),
      outputs_(static_cast<std::size_t>(num_outputs)) {}

std::string InferContext::where() const { return "node '" + node_ + "' (" + op_type_ + ")"; }

void InferContext::fail(const std::string& message) const { throw_invalid(where() + ": " + message); }
void InferContext::unsupported(const std::string& message) const { throw_unsupported(where() + ": " + message); }

const InputInfo& InferContext::input(int i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is required but absent");
  return inputs_[static_cast<std::size_t>(i)];
}

const Tensor& InferContext::constant(int i, const char* what) const {
  const InputInfo& in = input(i);
  if (!in.value) unsupported(std::string("input ") + std::to_string(i) + " (" + what + ") must be a constant");
  return *in.value;
}

void InferContext::set_output(int i, DType dtype, Shape shape) {
  if (i >= num_outputs()) return;  // optional output not requested
  shape_numel(shape);              // rejects negative dims and overflow
  outputs_[static_cast<std::size_t>(i)] = {dtype, std::move(shape)};
}

void InferContext::require_inputs(int lo, int hi) const {
  if (num_inputs() < lo || num_inputs() > hi)
    fail("expects " + std::to_string(lo) + (lo == hi ? "" : ".." + std::to_string(hi)) + " inputs, got " +
         std::to_string(num_inputs()));
}

void InferContext::require_type(int i, std::initializer_list<DType> allowed) const {
  DType t = dtype(i);
  if (std::find(allowed.begin(), allowed.end(), t) == allowed.end())
    unsupported("input " + std::to_string(i) + " has type " + dtype_name(t) + ", which nnjit does not support here");
}

void InferContext::require_same_type(int i, int j) const {
  if (dtype(i) != dtype(j))
    fail("inputs " + std::to_string(i) + " and " + std::to_string(j) + " have different types (" +
         dtype_name(dtype(i)) + " vs " + dtype_name(dtype(j)) + ")");
}

int InferContext::axis(int64_t a, int r, const char* what) const {
  if (a < -r || a >= r)
    fail(std::string(what) + " " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
  return static_cast<int>(a < 0 ? a + r : a);
}

const Tensor& ComputeContext::in(int i) const {
  const Tensor* t = inputs.at(static_cast<std::size_t>(i));
  if (!t) throw_internal("reference op: input " + std::to_string(i) + " absent");
  return *t;
}

}  // namespace nnjit::ops
