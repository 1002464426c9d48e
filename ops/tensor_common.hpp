// Shared by the shape and data-movement ops (ops/tensor_*.cpp); not used outside them.
//
// Data movement is written once per element *size*, not per type: a Transpose of int64
// and of float64 is the same byte shuffle. The two copy engines below cover most ops:
//
//   affine_copy(src, dst, base, steps);  // dst[i...] = src[base + sum(i_d * steps[d])]
//   indexed_copy(src, dst, maps, fill);  // dst[i...] = src[maps[0][i_0], maps[1][i_1], ...]
//
// Transpose, Slice and Expand are affine; Tile, Pad and nearest Resize are indexed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/op.hpp"

namespace nnjit::ops::tensor_detail {

void register_shape_ops(std::vector<OpSchema>& out);      // ops/tensor_ops.cpp
void register_movement_ops(std::vector<OpSchema>& out);   // ops/tensor_movement.cpp
void register_slice_pad_ops(std::vector<OpSchema>& out);  // ops/tensor_slice_pad.cpp
void register_resize_ops(std::vector<OpSchema>& out);     // ops/tensor_resize.cpp

// Unsupported unless input i has a type a Tensor can store (any but string/undefined).
void require_storable(const InferContext& ctx, int i);

// Copies all bytes of src into dst (equal byte sizes; the shapes may differ).
void copy_all(const Tensor& src, Tensor& dst);

// dst[i_0, ..., i_{r-1}] = src.flat[base + sum_d i_d * steps[d]] over dst's shape;
// steps are in elements and may be zero or negative. src and dst share a dtype.
void affine_copy(const Tensor& src, Tensor& dst, int64_t base, const std::vector<int64_t>& steps);

// dst[i_0, ..., i_{r-1}] = src[maps[0][i_0], ..., maps[r-1][i_{r-1}]], where maps[d] has
// dst.dim(d) entries, each an index into src's dim d or -1 meaning "write fill here".
// fill points at one element of dst's dtype; it may be null when no map holds -1.
void indexed_copy(const Tensor& src, Tensor& dst, const std::vector<std::vector<int64_t>>& maps, const void* fill);

// Writes `value` (one element of dst's dtype) to every element of dst.
void fill_all(Tensor& dst, const void* value);

// The values of constant input i, which must be an int32/int64 tensor of rank <= 1.
std::vector<int64_t> constant_ints(const InferContext& ctx, int i, const char* what);

// Integer-list operands that moved from an attribute to an input at some opset
// (Split's split, Squeeze/Unsqueeze's axes, ...): the attribute below `input_since`,
// the constant input `input` from then on. `present` is false when neither is given.
struct IntList {
  bool present = false;
  std::vector<int64_t> values;
};
IntList attr_or_input_ints(const InferContext& ctx, const char* name, int input, int input_since);
IntList attr_or_input_ints(const ComputeContext& ctx, const char* name, int input, int input_since);

}  // namespace nnjit::ops::tensor_detail
