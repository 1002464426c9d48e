// A resolved ONNX Conv, and its reference implementation (the oracle for jit/conv).
//
//   ConvParams p = resolve_conv(ctx);                  // at shape inference / planning
//   conv_reference(p, src, weights, bias_or_null, dst);
//
// Layouts are ONNX's: src [batch, in_channels, *in_size], weights [out_channels,
// in_channels / groups, *kernel], bias [out_channels], dst [batch, out_channels,
// *out_size], all dense row-major float32. Any number (>= 1) of spatial axes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

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

// Where kernel taps meet rows, for Conv (outputs reading inputs) and ConvTranspose (inputs
// writing outputs) alike: along each spatial axis, position f of the `from` side meets
// position f * stride + k * dilation - pad_begin of the `to` side. A "row" is a run along
// the last spatial axis; which `to` row a `from` row meets through a tap of the leading
// axes depends only on the geometry, so it is tabulated once up front.
struct TapRows {
  int64_t rows = 0;  // rows in a `from` plane
  int64_t taps = 0;  // kernel taps over the leading axes
  // offset[t * rows + row]: offset in a `to` plane of the row that `from` row `row` meets
  // through leading-axes tap t, or -1 where that falls outside `to`.
  std::vector<int64_t> offset;
  // Along the last axis tap kw stays inside `to` for the `from` positions [lo[kw], hi[kw]).
  std::vector<int64_t> lo, hi;
};
TapRows tap_rows(const std::vector<int64_t>& from, const std::vector<int64_t>& to, const SpatialParams& g);

// The direct-convolution loop nest, for any element types (conv_reference's float one,
// ConvInteger's and QLinearConv's int32 one in ops/quant_conv.cpp): for every (image,
// output channel) plane, fill it with bias[oc] (or zero when bias is null), then add each
// input channel's contribution kernel tap by kernel tap, one output row at a time
// (tap_rows: the input row a tap reads for an output row, or none in the padding, which
// thus contributes nothing). Along the last axis each tap reads a contiguous range of
// valid outputs [lo, hi), so the inner loop has no branches:
//   row(d, s, w, n, stride) adds w * s[o * stride] to d[o] for o in [0, n).
// The bounds of every row are checked once here, where they are computed, so `row` may
// go without sanitizer instrumentation.
template <class Src, class Wt, class Acc, class Row>
void conv_loop_nest(const ConvParams& p, const Src* src, const Wt* weights, const Acc* bias, Acc* dst, Row&& row) {
  const int last = p.spatial_rank() - 1;
  const int64_t in_plane = p.in_plane(), out_plane = p.out_plane(), k_plane = p.kernel_plane();
  const int64_t out_w = p.out_size[last], k_w = p.kernel[last];
  const int64_t stride_w = p.stride[last], dil_w = p.dilation[last], pad_w = p.pad_begin[last];
  const TapRows tr = tap_rows(p.out_size, p.in_size, p);  // which input row each output row reads

  const int64_t icg = p.in_channels_per_group(), ocg = p.out_channels_per_group();
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t oc = 0; oc < p.out_channels; ++oc) {
      const int64_t g = oc / ocg;
      Acc* d = dst + (n * p.out_channels + oc) * out_plane;
      std::fill(d, d + out_plane, bias ? bias[oc] : Acc{0});
      for (int64_t ic = 0; ic < icg; ++ic) {
        const Src* s = src + (n * p.in_channels + g * icg + ic) * in_plane;
        const Wt* w = weights + (oc * icg + ic) * k_plane;
        for (int64_t t = 0; t < tr.taps; ++t) {
          const int64_t* offsets = &tr.offset[static_cast<std::size_t>(t * tr.rows)];
          for (int64_t kw = 0; kw < k_w; ++kw) {
            const Wt wv = w[t * k_w + kw];
            const int64_t shift = kw * dil_w - pad_w, first = tr.lo[kw], count = tr.hi[kw] - tr.lo[kw];
            if (count <= 0) continue;
            for (int64_t r = 0; r < tr.rows; ++r) {
              if (offsets[r] < 0) continue;
              row(d + r * out_w + first, s + offsets[r] + first * stride_w + shift, wv, count, stride_w);
            }
          }
        }
      }
    }
  }
}

}  // namespace nnjit::ops
