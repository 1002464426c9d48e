// Conv: shape rule, geometry (ops/conv.hpp) and the direct-convolution reference.
#include <algorithm>

#include "ops/conv.hpp"
#include "ops/nn_schemas.hpp"

namespace nnjit::ops {

Shape ConvParams::src_shape() const {
  Shape s{batch, in_channels};
  s.insert(s.end(), in_size.begin(), in_size.end());
  return s;
}

Shape ConvParams::weights_shape() const {
  Shape s{out_channels, in_channels_per_group()};
  s.insert(s.end(), kernel.begin(), kernel.end());
  return s;
}

Shape ConvParams::dst_shape() const {
  Shape s{batch, out_channels};
  s.insert(s.end(), out_size.begin(), out_size.end());
  return s;
}

int64_t ConvParams::macs() const {
  return batch * out_channels * out_plane() * in_channels_per_group() * kernel_plane();
}

ConvParams resolve_conv(const Attributes& attrs, const Shape& src, const Shape& weights, const Shape* bias,
                        const std::string& where) {
  if (src.size() < 3)
    throw_invalid(where + ": input X has shape " + shape_str(src) + "; Conv needs [N, C, spatial...]");
  if (weights.size() != src.size())
    throw_invalid(where + ": weights W have shape " + shape_str(weights) + ", which does not match the rank of X " +
                  shape_str(src));
  const int64_t groups = attrs.get_int("group", 1);
  const int64_t channels = src[1], out_channels = weights[0];
  if (groups < 1 || channels % groups != 0 || out_channels % groups != 0)
    throw_invalid(where + ": group = " + std::to_string(groups) + " does not divide the " + std::to_string(channels) +
                  " input and " + std::to_string(out_channels) + " output channels");
  if (weights[1] * groups != channels)
    throw_invalid(where + ": weights W " + shape_str(weights) + " expect " + std::to_string(weights[1] * groups) +
                  " input channels (group " + std::to_string(groups) + "), X " + shape_str(src) + " has " +
                  std::to_string(channels));
  const Shape in_size(src.begin() + 2, src.end());
  const Shape kernel(weights.begin() + 2, weights.end());
  if (attrs.has("kernel_shape") && attrs.get_ints("kernel_shape") != kernel)
    throw_invalid(where + ": attribute kernel_shape does not match the weights W " + shape_str(weights));
  if (bias && *bias != Shape{out_channels})
    throw_invalid(where + ": bias B has shape " + shape_str(*bias) + ", expected [" + std::to_string(out_channels) +
                  "]");

  ConvParams p;
  static_cast<SpatialParams&>(p) = resolve_spatial(attrs, in_size, kernel, {}, where);
  p.batch = src[0];
  p.in_channels = channels;
  p.out_channels = out_channels;
  p.groups = groups;
  p.has_bias = bias != nullptr;
  return p;
}

ConvParams resolve_conv(const InferContext& ctx) {
  Shape bias;
  if (ctx.has_input(2)) bias = ctx.shape(2);
  return resolve_conv(ctx.attrs, ctx.shape(0), ctx.shape(1), ctx.has_input(2) ? &bias : nullptr, ctx.where());
}

namespace {

// dst[o] += w * src[o * stride] for o in [0, n): one output row and one kernel tap.
// __restrict lets the compiler vectorise the stride-1 case without alias checks.
// Sanitizer instrumentation per element would stop that vectorisation and make
// ResNet-sized models crawl under ASan; conv_reference checks the bounds of every row
// once, where it computes them.
__attribute__((no_sanitize("address", "undefined"))) void axpy_row(float* __restrict dst, const float* __restrict src,
                                                                   float w, int64_t n, int64_t stride) {
  for (int64_t o = 0; o < n; ++o) dst[o] += w * src[o * stride];
}

}  // namespace

// The loop nest: for every (image, output channel) plane, add each input channel's
// contribution kernel tap by kernel tap, one output row at a time. A "row" is a run of
// outputs along the last spatial axis; everything about the leading spatial axes (which
// input row a kernel tap reads for an output row, or none when it is padding) depends
// only on the geometry, so it is tabulated once up front. Along the last axis each tap
// reads a contiguous range of valid outputs [lo, hi), so the inner loop has no branches.
void conv_reference(const ConvParams& p, const float* src, const float* weights, const float* bias, float* dst) {
  const int r = p.spatial_rank();
  const int last = r - 1;
  const int64_t in_plane = p.in_plane(), out_plane = p.out_plane(), k_plane = p.kernel_plane();
  const int64_t out_w = p.out_size[last], in_w = p.in_size[last], k_w = p.kernel[last];
  const int64_t stride_w = p.stride[last], dil_w = p.dilation[last], pad_w = p.pad_begin[last];
  const int64_t rows = out_w ? out_plane / out_w : 0;  // output rows per plane
  const int64_t taps = k_plane / k_w;                  // kernel taps over the leading axes

  // row_src[t * rows + row]: offset in an input plane of the input row that leading-axes
  // tap t reads for output row `row`, or -1 when that row lies in the padding.
  std::vector<int64_t> row_src(static_cast<std::size_t>(taps * rows));
  for (int64_t t = 0; t < taps; ++t) {
    for (int64_t row = 0; row < rows; ++row) {
      int64_t offset = 0, in_stride = in_w, t_rem = t, row_rem = row;
      for (int a = last - 1; a >= 0 && offset >= 0; --a) {
        const int64_t k = t_rem % p.kernel[a], o = row_rem % p.out_size[a];
        t_rem /= p.kernel[a];
        row_rem /= p.out_size[a];
        const int64_t i = o * p.stride[a] - p.pad_begin[a] + k * p.dilation[a];
        if (i < 0 || i >= p.in_size[a])
          offset = -1;
        else
          offset += i * in_stride;
        in_stride *= p.in_size[a];
      }
      row_src[static_cast<std::size_t>(t * rows + row)] = offset;
    }
  }
  // Along the last axis, tap kw reads input o * stride_w + shift for output o; it is
  // inside the input for o in [lo[kw], hi[kw]).
  std::vector<int64_t> lo(static_cast<std::size_t>(k_w)), hi(static_cast<std::size_t>(k_w));
  for (int64_t kw = 0; kw < k_w; ++kw) {
    const int64_t shift = kw * dil_w - pad_w;
    lo[kw] = std::clamp<int64_t>(ceil_div(-shift, stride_w), 0, out_w);
    hi[kw] = std::clamp<int64_t>(ceil_div(in_w - shift, stride_w), lo[kw], out_w);
    if (hi[kw] > lo[kw] && (lo[kw] * stride_w + shift < 0 || (hi[kw] - 1) * stride_w + shift >= in_w))
      throw_internal("conv_reference: row bounds out of range");
  }

  const int64_t icg = p.in_channels_per_group(), ocg = p.out_channels_per_group();
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t oc = 0; oc < p.out_channels; ++oc) {
      const int64_t g = oc / ocg;
      float* d = dst + (n * p.out_channels + oc) * out_plane;
      std::fill(d, d + out_plane, bias ? bias[oc] : 0.f);
      for (int64_t ic = 0; ic < icg; ++ic) {
        const float* s = src + (n * p.in_channels + g * icg + ic) * in_plane;
        const float* w = weights + (oc * icg + ic) * k_plane;
        for (int64_t t = 0; t < taps; ++t) {
          const int64_t* offsets = &row_src[static_cast<std::size_t>(t * rows)];
          for (int64_t kw = 0; kw < k_w; ++kw) {
            const float wv = w[t * k_w + kw];
            const int64_t shift = kw * dil_w - pad_w, first = lo[kw], count = hi[kw] - lo[kw];
            if (count <= 0) continue;
            for (int64_t row = 0; row < rows; ++row) {
              if (offsets[row] < 0) continue;
              axpy_row(d + row * out_w + first, s + offsets[row] + first * stride_w + shift, wv, count, stride_w);
            }
          }
        }
      }
    }
  }
}

namespace {

void conv_infer(InferContext& ctx) {
  ctx.require_inputs(2, 3);
  ctx.require_type(0, {DType::Float32});
  ctx.require_same_type(0, 1);
  if (ctx.has_input(2)) ctx.require_same_type(0, 2);
  ctx.set_output(0, DType::Float32, resolve_conv(ctx).dst_shape());
}

void conv_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const Tensor& w = ctx.in(1);
  const Tensor* b = ctx.has(2) ? &ctx.in(2) : nullptr;
  const ConvParams p = resolve_conv(ctx.attrs, x.shape(), w.shape(), b ? &b->shape() : nullptr, "Conv");
  conv_reference(p, x.data<float>(), w.data<float>(), b ? b->data<float>() : nullptr, ctx.out(0).data<float>());
}

}  // namespace

void register_conv_ops(std::vector<OpSchema>& out) {
  out.push_back({.name = "Conv", .since_opset = 1, .infer = conv_infer, .compute = conv_compute});
}

}  // namespace nnjit::ops
