// Resolved ONNX pooling ops, and their reference implementations (the oracles for the
// pooling kernels).
//
//   PoolParams p = resolve_pool(PoolKind::Max, ctx);
//   maxpool_reference(p, src, dst);
//
// Layouts are ONNX's: src [batch, channels, *in_size], dst [batch, channels, *out_size],
// dense row-major. Any number (>= 1) of spatial axes.
#pragma once

#include <cstdint>
#include <string>

#include "nnjit/tensor.hpp"
#include "ops/op.hpp"
#include "ops/spatial.hpp"

namespace nnjit::ops {

enum class PoolKind { Max, Average };

struct PoolParams : SpatialParams {
  PoolKind kind = PoolKind::Max;
  int64_t batch = 0;
  int64_t channels = 0;
  // Average only: divide by the window size including the pads (but never counting the
  // part of a ceil_mode window past the end pad), instead of by the elements inside.
  bool count_include_pad = false;

  Shape src_shape() const;
  Shape dst_shape() const;
  bool operator==(const PoolParams&) const = default;
};

// Validates the input shape and the attributes kernel_shape, strides, pads, auto_pad,
// ceil_mode, dilations (Max) and count_include_pad (Average). Throws InvalidInput
// prefixed with `where`.
PoolParams resolve_pool(PoolKind kind, const Attributes& attrs, const Shape& src, const std::string& where);
PoolParams resolve_pool(PoolKind kind, const InferContext& ctx);

// The largest element of each window (padding never wins). Defined for float, int8_t
// and uint8_t.
template <class T>
void maxpool_reference(const PoolParams& p, const T* src, T* dst);
void avgpool_reference(const PoolParams& p, const float* src, float* dst);

// Mean / max of each of `planes` runs of `plane_size` contiguous elements.
void global_avgpool_reference(int64_t planes, int64_t plane_size, const float* src, float* dst);
void global_maxpool_reference(int64_t planes, int64_t plane_size, const float* src, float* dst);

}  // namespace nnjit::ops
