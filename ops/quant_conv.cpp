// ConvInteger and QLinearConv: Conv of (x - x_zero_point) and (w - w_zero_point) in
// int32. The geometry and attributes are Conv's (resolve_conv: group, kernel_shape,
// strides, dilations, pads, auto_pad) and so is the loop nest (conv_loop_nest, both in
// ops/conv.hpp), run over int16 copies of x and w with their zero points subtracted
// (8-bit differences lie in [-255, 255]) into an int32 accumulator that wraps. Padding
// stands for the zero point, so it contributes nothing, as in the ONNX reference and
// ONNX Runtime.
//
// x_zero_point is per tensor; w's zero point (and QLinearConv's w_scale) is per tensor or
// per output channel ([M]). QLinearConv adds its optional int32 bias to the accumulator
// and requantises it by x_scale * w_scale[m] / y_scale (ops/quant.hpp).
#include <algorithm>

#include "ops/conv.hpp"
#include "ops/elementwise.hpp"
#include "ops/quant.hpp"

namespace nnjit::ops {

namespace {

using quant::QRange;

// d[o] += w * s[o * stride] for o in [0, n), wrapping (conv_loop_nest's row; it checks the
// bounds once per row, so the row goes without per-element instrumentation).
__attribute__((no_sanitize("address", "undefined"))) void int_axpy_row(int32_t* __restrict d,
                                                                       const int16_t* __restrict s, int16_t w,
                                                                       int64_t n, int64_t stride) {
  for (int64_t o = 0; o < n; ++o) d[o] = quant::wrap_add(d[o], static_cast<int32_t>(w) * s[o * stride]);
}

// The int32 convolution of x (input x_in) and w (input w_in) less their zero points
// (inputs x_zp and w_zp, absent meaning 0), starting from bias (may be null), into acc.
void conv_integer(const ComputeContext& ctx, const ConvParams& p, int x_in, int x_zp, int w_in, int w_zp,
                  const int32_t* bias, int32_t* acc) {
  const Tensor& x = ctx.in(x_in);
  const Tensor& w = ctx.in(w_in);
  const int32_t zx = quant::read_zero_points(ctx.has(x_zp) ? &ctx.in(x_zp) : nullptr, 1)[0];
  const std::vector<int32_t> zw = quant::read_zero_points(ctx.has(w_zp) ? &ctx.in(w_zp) : nullptr, 1);
  std::vector<int16_t> xs(static_cast<std::size_t>(x.numel())), ws(static_cast<std::size_t>(w.numel()));
  ew::dispatch<uint8_t, int8_t>(x.dtype(), [&](auto t) {
    const auto* xp = x.data<typename decltype(t)::type>();
    for (std::size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<int16_t>(xp[i] - zx);
  });
  const int64_t per_oc = p.out_channels ? w.numel() / p.out_channels : 0;  // w values per output channel
  ew::dispatch<uint8_t, int8_t>(w.dtype(), [&](auto t) {
    const auto* wp = w.data<typename decltype(t)::type>();
    for (int64_t oc = 0; oc < p.out_channels; ++oc) {
      const int32_t z = zw[zw.size() == 1 ? 0 : static_cast<std::size_t>(oc)];
      for (int64_t i = oc * per_oc; i < (oc + 1) * per_oc; ++i)
        ws[static_cast<std::size_t>(i)] = static_cast<int16_t>(wp[i] - z);
    }
  });
  conv_loop_nest(p, xs.data(), ws.data(), bias, acc, int_axpy_row);
}

// ---- ConvInteger: x, w, x_zero_point (optional), w_zero_point (optional) -> int32.

void conv_integer_infer(InferContext& ctx) {
  ctx.require_inputs(2, 4);
  quant::require_8bit(ctx, 0, "x");
  quant::require_8bit(ctx, 1, "w");
  const ConvParams p = resolve_conv(ctx.attrs, ctx.shape(0), ctx.shape(1), nullptr, ctx.where());
  if (ctx.has_input(2)) {
    quant::check_zero_point_type(ctx, 2, "x_zero_point", ctx.dtype(0));
    quant::param_count(ctx, 2, "x_zero_point");
  }
  if (ctx.has_input(3)) {
    quant::check_zero_point_type(ctx, 3, "w_zero_point", ctx.dtype(1));
    quant::param_count(ctx, 3, "w_zero_point", p.out_channels,
                       "one per output channel of w " + shape_str(ctx.shape(1)));
  }
  ctx.set_output(0, DType::Int32, p.dst_shape());
}

void conv_integer_compute(const ComputeContext& ctx) {
  const ConvParams p = resolve_conv(ctx.attrs, ctx.in(0).shape(), ctx.in(1).shape(), nullptr, "ConvInteger");
  conv_integer(ctx, p, 0, 2, 1, 3, nullptr, ctx.out(0).data<int32_t>());
}

// ---- QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
// y_zero_point, B (optional, int32 [M]). y_zero_point gives the output type.

void qlinear_conv_infer(InferContext& ctx) {
  ctx.require_inputs(8, 9);
  quant::require_8bit(ctx, 0, "x");
  quant::require_8bit(ctx, 3, "w");
  if (ctx.has_input(8) && ctx.dtype(8) != DType::Int32)
    ctx.fail("bias B has type " + dtype_name(ctx.dtype(8)) + "; expected int32");
  Shape bias;
  if (ctx.has_input(8)) bias = ctx.shape(8);
  const ConvParams p =
      resolve_conv(ctx.attrs, ctx.shape(0), ctx.shape(3), ctx.has_input(8) ? &bias : nullptr, ctx.where());
  const std::string per_oc = "one per output channel of w " + shape_str(ctx.shape(3));
  quant::check_scale_input(ctx, 1, "x_scale");
  quant::param_count(ctx, 1, "x_scale");
  quant::check_zero_point_type(ctx, 2, "x_zero_point", ctx.dtype(0));
  quant::param_count(ctx, 2, "x_zero_point");
  quant::check_scale_input(ctx, 4, "w_scale");
  quant::param_count(ctx, 4, "w_scale", p.out_channels, per_oc);
  quant::check_zero_point_type(ctx, 5, "w_zero_point", ctx.dtype(3));
  quant::param_count(ctx, 5, "w_zero_point", p.out_channels, per_oc);
  quant::check_same_count(ctx, 4, 5);
  quant::check_scale_input(ctx, 6, "y_scale");
  quant::param_count(ctx, 6, "y_scale");
  quant::require_8bit(ctx, 7, "y_zero_point");
  quant::param_count(ctx, 7, "y_zero_point");
  ctx.set_output(0, ctx.dtype(7), p.dst_shape());
}

void qlinear_conv_compute(const ComputeContext& ctx) {
  const char* op = "QLinearConv";
  const Tensor* b = ctx.has(8) ? &ctx.in(8) : nullptr;
  const ConvParams p = resolve_conv(ctx.attrs, ctx.in(0).shape(), ctx.in(3).shape(), b ? &b->shape() : nullptr, op);
  const float sx = quant::read_scales(ctx.in(1), op, "x_scale")[0];
  const std::vector<float> sw = quant::read_scales(ctx.in(4), op, "w_scale");
  const float sy = quant::read_scales(ctx.in(6), op, "y_scale")[0];
  const int32_t zy = quant::read_zero_points(&ctx.in(7), 1)[0];
  Tensor& y = ctx.out(0);
  std::vector<int32_t> acc(static_cast<std::size_t>(y.numel()));
  conv_integer(ctx, p, 0, 2, 3, 5, b ? b->data<int32_t>() : nullptr, acc.data());

  const QRange r = quant::range_of(y.dtype());
  const int64_t plane = p.out_plane();
  void* yp = y.raw();
  for (int64_t n = 0; n < p.batch; ++n)
    for (int64_t oc = 0; oc < p.out_channels; ++oc) {
      const float mult = quant::multiplier(sx, sw[sw.size() == 1 ? 0 : static_cast<std::size_t>(oc)], sy);
      const int64_t base = (n * p.out_channels + oc) * plane;
      for (int64_t i = base; i < base + plane; ++i)
        quant::store(yp, y.dtype(), i, quant::requantize(acc[static_cast<std::size_t>(i)], mult, zy, r));
    }
}

}  // namespace

void register_quant_conv_ops(std::vector<OpSchema>& out) {
  out.push_back(
      {.name = "ConvInteger", .since_opset = 10, .infer = conv_integer_infer, .compute = conv_integer_compute});
  out.push_back(
      {.name = "QLinearConv", .since_opset = 10, .infer = qlinear_conv_infer, .compute = qlinear_conv_compute});
}

}  // namespace nnjit::ops
