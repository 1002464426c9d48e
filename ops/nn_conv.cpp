// Conv: shape rule, geometry (ops/conv.hpp) and the direct-convolution reference.
// ConvTranspose: its shape rule and scatter reference (private to this file).
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

TapRows tap_rows(const std::vector<int64_t>& from, const std::vector<int64_t>& to, const SpatialParams& g) {
  const int last = static_cast<int>(from.size()) - 1;
  const int64_t from_w = from[last], to_w = to[last], k_w = g.kernel[last];
  const int64_t stride_w = g.stride[last], dil_w = g.dilation[last], pad_w = g.pad_begin[last];
  TapRows m;
  m.rows = from_w ? SpatialParams::product(from) / from_w : 0;
  m.taps = SpatialParams::product(g.kernel) / k_w;
  m.offset.resize(static_cast<std::size_t>(m.taps * m.rows));
  for (int64_t t = 0; t < m.taps; ++t) {
    for (int64_t row = 0; row < m.rows; ++row) {
      int64_t offset = 0, to_stride = to_w, t_rem = t, row_rem = row;
      for (int a = last - 1; a >= 0 && offset >= 0; --a) {
        const int64_t k = t_rem % g.kernel[a], f = row_rem % from[a];
        t_rem /= g.kernel[a];
        row_rem /= from[a];
        const int64_t o = f * g.stride[a] + k * g.dilation[a] - g.pad_begin[a];
        if (o < 0 || o >= to[a])
          offset = -1;
        else
          offset += o * to_stride;
        to_stride *= to[a];
      }
      m.offset[static_cast<std::size_t>(t * m.rows + row)] = offset;
    }
  }
  m.lo.resize(static_cast<std::size_t>(k_w));
  m.hi.resize(static_cast<std::size_t>(k_w));
  for (int64_t kw = 0; kw < k_w; ++kw) {
    const int64_t shift = kw * dil_w - pad_w;
    m.lo[kw] = std::clamp<int64_t>(ceil_div(-shift, stride_w), 0, from_w);
    m.hi[kw] = std::clamp<int64_t>(ceil_div(to_w - shift, stride_w), m.lo[kw], from_w);
    if (m.hi[kw] > m.lo[kw] && (m.lo[kw] * stride_w + shift < 0 || (m.hi[kw] - 1) * stride_w + shift >= to_w))
      throw_internal("tap_rows: row bounds out of range");
  }
  return m;
}

// conv_loop_nest with the float row (ops/conv.hpp).
void conv_reference(const ConvParams& p, const float* src, const float* weights, const float* bias, float* dst) {
  conv_loop_nest(p, src, weights, bias, dst,
                 [](float* d, const float* s, float w, int64_t n, int64_t stride) { axpy_row(d, s, w, n, stride); });
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

// ConvTranspose, the gradient of Conv with respect to its input. Along each spatial axis,
// input position i seen through kernel tap k lands on output position
//   i * stride + k * dilation - pad_begin,
// and positions outside [0, out_size) are cropped away. X is [N, C, *in_size], W is
// [C, M / group, *kernel], B is [M] and Y is [N, M, *out_size]. The pads may be negative
// when output_shape asks for more than the full result: the extra positions get only
// the bias. The geometry is in SpatialParams' fields, read the other way round.
struct ConvTransposeParams : SpatialParams {
  int64_t batch = 0, in_channels = 0, out_channels = 0, groups = 1;
  std::vector<int64_t> output_padding;

  int64_t in_channels_per_group() const { return in_channels / groups; }
  int64_t out_channels_per_group() const { return out_channels / groups; }
  Shape dst_shape() const {
    Shape s{batch, out_channels};
    s.insert(s.end(), out_size.begin(), out_size.end());
    return s;
  }
};

int64_t checked_mul(int64_t a, int64_t b, const std::string& where, const std::string& what) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw_invalid(where + ": " + what + " overflows");
  return r;
}

int64_t checked_add(int64_t a, int64_t b, const std::string& where, const std::string& what) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) throw_invalid(where + ": " + what + " overflows");
  return r;
}

// floor(a / 2) for any sign of a: the ONNX reference splits a negative total padding
// with Python's floor division.
int64_t floor_half(int64_t a) { return a >= 0 ? a / 2 : -((-a + 1) / 2); }


// Validates shapes and attributes and resolves the geometry; throws InvalidInput
// prefixed with `where`.
ConvTransposeParams resolve_conv_transpose(const Attributes& attrs, const Shape& src, const Shape& weights,
                                           const Shape* bias, const std::string& where) {
  if (src.size() < 3)
    throw_invalid(where + ": input X has shape " + shape_str(src) + "; ConvTranspose needs [N, C, spatial...]");
  if (weights.size() != src.size())
    throw_invalid(where + ": weights W have shape " + shape_str(weights) + ", which does not match the rank of X " +
                  shape_str(src));
  const std::size_t r = src.size() - 2;
  ConvTransposeParams p;
  p.batch = src[0];
  p.in_channels = src[1];
  p.groups = attrs.get_int("group", 1);
  if (p.groups < 1 || p.in_channels % p.groups != 0)
    throw_invalid(where + ": group = " + std::to_string(p.groups) + " does not divide the " +
                  std::to_string(p.in_channels) + " input channels");
  if (weights[0] != p.in_channels)
    throw_invalid(where + ": weights W " + shape_str(weights) + " (layout [C, M / group, kernel...]) expect " +
                  std::to_string(weights[0]) + " input channels, X " + shape_str(src) + " has " +
                  std::to_string(p.in_channels));
  p.out_channels = checked_mul(weights[1], p.groups, where, "the output channel count W[1] * group");
  p.in_size.assign(src.begin() + 2, src.end());
  p.kernel.assign(weights.begin() + 2, weights.end());
  for (int64_t i : p.in_size)
    if (i < 1) throw_invalid(where + ": input X " + shape_str(src) + " has an empty spatial axis");
  for (int64_t k : p.kernel)
    if (k < 1 || k > kMaxSpatialValue)
      throw_invalid(where + ": kernel shape " + shape_str(p.kernel) + " (from W) is invalid");
  if (attrs.has("kernel_shape") && attrs.get_ints("kernel_shape") != p.kernel)
    throw_invalid(where + ": attribute kernel_shape does not match the weights W " + shape_str(weights));
  if (bias && *bias != Shape{p.out_channels})
    throw_invalid(where + ": bias B has shape " + shape_str(*bias) + ", expected [" + std::to_string(p.out_channels) +
                  "]");

  p.stride = read_per_axis(attrs, "strides", r, 1, 1, where);
  p.dilation = read_per_axis(attrs, "dilations", r, 1, 1, where);
  p.output_padding = read_per_axis(attrs, "output_padding", r, 0, 0, where);
  for (std::size_t i = 0; i < r; ++i)
    if (p.output_padding[i] >= p.stride[i] && p.output_padding[i] >= p.dilation[i])
      throw_invalid(where + ": output_padding " + shape_str(p.output_padding) +
                    " must be smaller than the stride or the dilation along spatial axis " + std::to_string(i));

  const std::string auto_pad = attrs.get_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    throw_invalid(where + ": auto_pad '" + auto_pad + "' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID");
  std::vector<int64_t> pads(2 * r, 0);
  if (auto_pad == "NOTSET") pads = read_per_axis(attrs, "pads", 2 * r, 0, 0, where);
  // output_shape holds the spatial sizes; like ONNX Runtime, a full [N, M, spatial...]
  // is also accepted and only its spatial part is read.
  std::vector<int64_t> requested;
  if (attrs.has("output_shape")) {
    requested = attrs.get_ints("output_shape");
    if (requested.size() == r + 2) requested.erase(requested.begin(), requested.begin() + 2);
    if (requested.size() != r)
      throw_invalid(where + ": attribute 'output_shape' = " + shape_str(attrs.get_ints("output_shape")) + " has " +
                    std::to_string(attrs.get_ints("output_shape").size()) + " values, expected " + std::to_string(r) +
                    " (one per spatial axis)");
    for (int64_t o : requested)
      if (o < 1 || o > kMaxSpatialValue)
        throw_invalid(where + ": attribute 'output_shape' = " + shape_str(requested) + " has an out-of-range value");
  }

  p.pad_begin.assign(r, 0);
  p.pad_end.assign(r, 0);
  p.out_size.assign(r, 0);
  for (std::size_t i = 0; i < r; ++i) {
    const std::string axis = " along spatial axis " + std::to_string(i);
    // The uncropped extent: stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1.
    const int64_t reach = checked_mul(p.stride[i], p.in_size[i] - 1, where, "stride * (input size - 1)" + axis);
    const int64_t dilated = checked_mul(p.kernel[i] - 1, p.dilation[i], where, "the dilated kernel" + axis);
    const int64_t full = checked_add(checked_add(reach, dilated, where, "the output size" + axis),
                                     p.output_padding[i] + 1, where, "the output size" + axis);
    const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
    if (!requested.empty() || same) {
      // The output size is given (or in * stride for SAME_*), and the pads follow (the
      // spec's formula): the odd element of the total goes to the end for SAME_UPPER,
      // else to the beginning. A negative total (output_shape beyond the full result)
      // is halved with floor division, as the ONNX reference does.
      const int64_t out = !requested.empty()
                              ? requested[i]
                              : checked_mul(p.in_size[i], p.stride[i], where, "input size * stride" + axis);
      const int64_t total = full - out;  // both positive: no overflow
      const int64_t half = floor_half(total);
      p.pad_begin[i] = auto_pad == "SAME_UPPER" ? half : total - half;
      p.pad_end[i] = total - p.pad_begin[i];
      p.out_size[i] = out;
    } else {
      p.pad_begin[i] = pads[i];
      p.pad_end[i] = pads[r + i];
      p.out_size[i] = full - p.pad_begin[i] - p.pad_end[i];  // pads <= 2^32: no overflow
      if (p.out_size[i] < 1)
        throw_invalid(where + ": pads " + shape_str(pads) + " crop away the whole output (size " +
                      std::to_string(full) + ")" + axis);
    }
  }
  return p;
}

// dst[i * stride] += w * src[i] for i in [0, n): one input row and one kernel tap.
void scatter_row(float* __restrict dst, const float* __restrict src, float w, int64_t n, int64_t stride) {
  for (int64_t i = 0; i < n; ++i) dst[i * stride] += w * src[i];
}

// The loop nest mirrors conv_reference, with input and output swapped: every input row
// is scattered, kernel tap by kernel tap, into the output row it reaches (tap_rows); along
// the last axis each tap lands inside the output for a contiguous range of inputs [lo, hi).
void conv_transpose_reference(const ConvTransposeParams& p, const float* src, const float* weights, const float* bias,
                              float* dst) {
  const int last = p.spatial_rank() - 1;
  const int64_t in_plane = p.in_plane(), out_plane = p.out_plane(), k_plane = p.kernel_plane();
  const int64_t in_w = p.in_size[last], k_w = p.kernel[last];
  const int64_t stride_w = p.stride[last], dil_w = p.dilation[last], pad_w = p.pad_begin[last];
  const TapRows tr = tap_rows(p.in_size, p.out_size, p);  // which output row each input row reaches

  const int64_t icg = p.in_channels_per_group(), ocg = p.out_channels_per_group();
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t oc = 0; oc < p.out_channels; ++oc) {
      const int64_t g = oc / ocg, m = oc % ocg;
      float* d = dst + (n * p.out_channels + oc) * out_plane;
      std::fill(d, d + out_plane, bias ? bias[oc] : 0.f);
      for (int64_t ic = g * icg; ic < (g + 1) * icg; ++ic) {
        const float* s = src + (n * p.in_channels + ic) * in_plane;
        const float* w = weights + (ic * ocg + m) * k_plane;
        for (int64_t t = 0; t < tr.taps; ++t) {
          const int64_t* offsets = &tr.offset[static_cast<std::size_t>(t * tr.rows)];
          for (int64_t kw = 0; kw < k_w; ++kw) {
            const float wv = w[t * k_w + kw];
            const int64_t shift = kw * dil_w - pad_w, first = tr.lo[kw], count = tr.hi[kw] - tr.lo[kw];
            if (count <= 0) continue;
            for (int64_t row = 0; row < tr.rows; ++row) {
              if (offsets[row] < 0) continue;
              scatter_row(d + offsets[row] + first * stride_w + shift, s + row * in_w + first, wv, count, stride_w);
            }
          }
        }
      }
    }
  }
}

void conv_transpose_infer(InferContext& ctx) {
  ctx.require_inputs(2, 3);
  ctx.require_type(0, {DType::Float32});
  ctx.require_same_type(0, 1);
  if (ctx.has_input(2)) ctx.require_same_type(0, 2);
  Shape bias;
  if (ctx.has_input(2)) bias = ctx.shape(2);
  const ConvTransposeParams p =
      resolve_conv_transpose(ctx.attrs, ctx.shape(0), ctx.shape(1), ctx.has_input(2) ? &bias : nullptr, ctx.where());
  ctx.set_output(0, DType::Float32, p.dst_shape());
}

void conv_transpose_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const Tensor& w = ctx.in(1);
  const Tensor* b = ctx.has(2) ? &ctx.in(2) : nullptr;
  const ConvTransposeParams p =
      resolve_conv_transpose(ctx.attrs, x.shape(), w.shape(), b ? &b->shape() : nullptr, "ConvTranspose");
  conv_transpose_reference(p, x.data<float>(), w.data<float>(), b ? b->data<float>() : nullptr,
                           ctx.out(0).data<float>());
}

}  // namespace

void register_conv_ops(std::vector<OpSchema>& out) {
  out.push_back({.name = "Conv", .since_opset = 1, .infer = conv_infer, .compute = conv_compute});
  out.push_back(
      {.name = "ConvTranspose", .since_opset = 1, .infer = conv_transpose_infer, .compute = conv_transpose_compute});
}

}  // namespace nnjit::ops
