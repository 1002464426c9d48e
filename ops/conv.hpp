// A resolved ONNX Conv, and its reference implementation (the oracle for jit/conv).
//
//   ConvParams p = resolve_conv(ctx);                  // at shape inference / planning
//   conv_reference(p, src, weights, bias_or_null, dst);
//
// Layouts are ONNX's: src [batch, in_channels, *in_size], weights [out_channels,
// in_channels / groups, *kernel], bias [out_channels], dst [batch, out_channels,
// *out_size], all dense row-major float32. Any number (>= 1) of spatial axes.
#pragma once

#include <cstdint>
#include <string>

#include "nnjit/tensor.hpp"
#include "ops/op.hpp"
#include "ops/spatial.hpp"

namespace nnjit::ops {

struct ConvParams : SpatialParams {
  int64_t batch = 0;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t groups = 1;
  bool has_bias = false;

  int64_t in_channels_per_group() const { return in_channels / groups; }
  int64_t out_channels_per_group() const { return out_channels / groups; }
  bool depthwise() const { return groups > 1 && groups == in_channels && groups == out_channels; }
  Shape src_shape() const;
  Shape weights_shape() const;
  Shape dst_shape() const;
  // Multiply-adds of one run (for benchmarks and the planner's cost estimates).
  int64_t macs() const;
  bool operator==(const ConvParams&) const = default;
};

// Validates shapes and attributes (group, kernel_shape, strides, dilations, pads,
// auto_pad) and resolves the geometry. `bias` is null when absent. Throws InvalidInput
// prefixed with `where`.
ConvParams resolve_conv(const Attributes& attrs, const Shape& src, const Shape& weights, const Shape* bias,
                        const std::string& where);
// The same, for a Conv node's inputs (0 = X, 1 = W, 2 = B optional).
ConvParams resolve_conv(const InferContext& ctx);

// Direct convolution; bias may be null. dst must not alias src or weights.
void conv_reference(const ConvParams& p, const float* src, const float* weights, const float* bias, float* dst);

}  // namespace nnjit::ops
