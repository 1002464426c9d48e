// The ONNX quantization ops that QDQ and QOperator int8 models use, in plain C++:
// QuantizeLinear and DequantizeLinear (per tensor, or per axis from opset 13),
// DynamicQuantizeLinear, MatMulInteger and QLinearMatMul. ConvInteger and QLinearConv
// are in ops/quant_conv.cpp; the helpers they share in ops/quant.hpp.
//
// The arithmetic is the ONNX reference's: float32 x is divided by its scale in float32
// (int32 x in double); the quotient is rounded to nearest, ties to even (2.5 -> 2,
// 3.5 -> 4, -2.5 -> -2), the zero point added and the result saturated to the output
// type. Integer products accumulate in int32, wrapping; QLinearMatMul requantises the
// accumulator by a_scale * b_scale / y_scale (computed in float32, applied in double).
#include "ops/quant.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "ops/elementwise.hpp"
#include "ops/gemm.hpp"
#include "ops/registry.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

namespace quant {

QRange range_of(DType t) { return t == DType::Int8 ? QRange{-128, 127} : QRange{0, 255}; }

int32_t int_value(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::UInt8:
      return t.data<uint8_t>()[i];
    case DType::Int8:
      return t.data<int8_t>()[i];
    case DType::Int32:
      return t.data<int32_t>()[i];
    default:
      throw_internal("quantization op: unexpected zero point type " + dtype_name(t.dtype()));
  }
}

int64_t param_count(const InferContext& ctx, int i, const char* what, int64_t per_axis, const std::string& axis_desc) {
  const Shape& s = ctx.shape(i);
  if (s.empty() || (s.size() == 1 && s[0] == 1)) return 1;
  if (per_axis > 0 && s.size() == 1 && s[0] == per_axis) return per_axis;
  ctx.fail(std::string(what) + " has shape " + shape_str(s) + "; expected a scalar" +
           (per_axis > 0 ? " or a 1-D tensor of " + std::to_string(per_axis) + " values (" + axis_desc + ")" : ""));
}

std::vector<float> read_scales(const Tensor& t, const std::string& where, const char* what) {
  const float* p = t.data<float>();
  std::vector<float> v(p, p + t.numel());
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!(v[i] > 0.f) || !std::isfinite(v[i]))
      throw_invalid(where + ": " + what + "[" + std::to_string(i) + "] = " + std::to_string(v[i]) +
                    "; a scale must be positive and finite");
  return v;
}

void check_scale_input(const InferContext& ctx, int i, const char* what) {
  if (ctx.dtype(i) != DType::Float32)
    ctx.fail(std::string(what) + " has type " + dtype_name(ctx.dtype(i)) + "; a scale is float32");
  if (const Tensor* v = ctx.input(i).value) read_scales(*v, ctx.where(), what);
}

void check_zero_point_type(const InferContext& ctx, int i, const char* what, DType want) {
  if (ctx.dtype(i) != want)
    ctx.fail(std::string(what) + " has type " + dtype_name(ctx.dtype(i)) + "; expected " + dtype_name(want) +
             ", the type of the tensor it belongs to");
}

void check_same_count(const InferContext& ctx, int scale, int zp) {
  if (!ctx.has_input(zp)) return;
  const int64_t a = shape_numel(ctx.shape(scale)), b = shape_numel(ctx.shape(zp));
  if (a != b)
    ctx.fail("the scale (input " + std::to_string(scale) + ", shape " + shape_str(ctx.shape(scale)) +
             ") and the zero point (input " + std::to_string(zp) + ", shape " + shape_str(ctx.shape(zp)) +
             ") must hold as many values");
}

std::vector<int32_t> read_zero_points(const Tensor* t, int64_t count) {
  if (!t) return std::vector<int32_t>(static_cast<std::size_t>(count), 0);
  std::vector<int32_t> v(static_cast<std::size_t>(t->numel()));
  for (int64_t i = 0; i < t->numel(); ++i) v[static_cast<std::size_t>(i)] = int_value(*t, i);
  return v;
}

void require_8bit(const InferContext& ctx, int i, const char* what) {
  if (ctx.dtype(i) != DType::UInt8 && ctx.dtype(i) != DType::Int8)
    ctx.fail(std::string(what) + " has type " + dtype_name(ctx.dtype(i)) + "; expected uint8 or int8");
}

}  // namespace quant

namespace {

using quant::QRange;

// ---- QuantizeLinear and DequantizeLinear: x, scale (input 1), zero point (input 2,
// optional). Per tensor, or from opset 13 per slice of `axis` (default 1) of x.

// x as [outer, channels, inner]: the scale and zero point of element
// (o * channels + c) * inner + i are their c-th values (their only one per tensor).
struct Slices {
  int64_t outer = 1, channels = 1, inner = 1;
};

bool per_tensor(const Shape& s) { return s.empty() || (s.size() == 1 && s[0] == 1); }

Slices slices_of(const Shape& x, const Shape& scale, const Attributes& attrs) {
  Slices sl;
  if (per_tensor(scale)) {
    sl.inner = shape_numel(x);
    return sl;
  }
  const int r = static_cast<int>(x.size());
  int64_t a = attrs.get_int("axis", 1);
  if (a < 0) a += r;  // infer checked the range
  for (int d = 0; d < r; ++d) (d < a ? sl.outer : d == a ? sl.channels : sl.inner) *= x[d];
  return sl;
}

// Checks scale input 1 and zero point input 2 against x (input 0).
void check_qdq_params(const InferContext& ctx, const char* scale_name, const char* zp_name) {
  quant::check_scale_input(ctx, 1, scale_name);
  const Shape& x = ctx.shape(0);
  const Shape& s = ctx.shape(1);
  int64_t per_axis = 0;
  std::string axis_desc;
  if (!per_tensor(s) && s.size() == 1) {
    if (ctx.opset < 13)
      ctx.fail(std::string(scale_name) + " has shape " + shape_str(s) +
               "; before opset 13 a scale is a scalar (per-axis quantization came with opset 13)");
    const int axis = ctx.axis(ctx.attrs.get_int("axis", 1), ctx.rank(0));
    per_axis = x[static_cast<std::size_t>(axis)];
    axis_desc = "one per slice of axis " + std::to_string(axis) + " of x " + shape_str(x);
  }
  const int64_t n = quant::param_count(ctx, 1, scale_name, per_axis, axis_desc);
  if (ctx.has_input(2)) {
    quant::param_count(ctx, 2, zp_name, n == 1 ? 0 : per_axis, axis_desc);
    quant::check_same_count(ctx, 1, 2);
  }
}

void quantize_infer(InferContext& ctx) {
  ctx.require_inputs(2, 3);
  ctx.require_type(0, {DType::Float32, DType::Int32});
  check_qdq_params(ctx, "y_scale", "y_zero_point");
  DType out = DType::UInt8;  // without a zero point
  if (ctx.has_input(2)) {
    if (ctx.dtype(2) != DType::UInt8 && ctx.dtype(2) != DType::Int8)
      ctx.fail("y_zero_point has type " + dtype_name(ctx.dtype(2)) + "; it gives the output type, uint8 or int8");
    out = ctx.dtype(2);
  }
  ctx.set_output(0, out, ctx.shape(0));
}

template <class X, class Y>
void quantize_slices(const X* x, Y* y, const Slices& sl, const std::vector<float>& scale,
                     const std::vector<int32_t>& zp) {
  const QRange r = quant::range_of(dtype_of<Y>());
  for (int64_t o = 0; o < sl.outer; ++o)
    for (int64_t c = 0; c < sl.channels; ++c) {
      const float s = scale[static_cast<std::size_t>(c)];
      const int32_t z = zp[static_cast<std::size_t>(c)];
      const int64_t base = (o * sl.channels + c) * sl.inner;
      for (int64_t i = base; i < base + sl.inner; ++i) {
        if constexpr (std::is_same_v<X, float>)
          y[i] = static_cast<Y>(quant::quantize(x[i] / s, z, r));
        else  // int32 / float32 is computed in double, as numpy does
          y[i] = static_cast<Y>(quant::quantize(static_cast<double>(x[i]) / s, z, r));
      }
    }
}

void quantize_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const Tensor* zpt = ctx.has(2) ? &ctx.in(2) : nullptr;
  const std::vector<float> scale = quant::read_scales(ctx.in(1), "QuantizeLinear", "y_scale");
  const std::vector<int32_t> zp = quant::read_zero_points(zpt, static_cast<int64_t>(scale.size()));
  const Slices sl = slices_of(x.shape(), ctx.in(1).shape(), ctx.attrs);
  Tensor& y = ctx.out(0);
  ew::dispatch<float, int32_t>(x.dtype(), [&](auto xt) {
    using X = typename decltype(xt)::type;
    ew::dispatch<uint8_t, int8_t>(y.dtype(), [&](auto yt) {
      using Y = typename decltype(yt)::type;
      quantize_slices(x.data<X>(), y.data<Y>(), sl, scale, zp);
    });
  });
}

// int32 x has no zero point ("it is supposed to be 0").
void check_int32_zero_points(const Tensor& zp, const std::string& where) {
  for (int64_t i = 0; i < zp.numel(); ++i)
    if (zp.data<int32_t>()[i] != 0)
      throw_invalid(where + ": x_zero_point[" + std::to_string(i) + "] = " + std::to_string(zp.data<int32_t>()[i]) +
                    "; int32 x is dequantized without a zero point (it must be 0)");
}

void dequantize_infer(InferContext& ctx) {
  ctx.require_inputs(2, 3);
  ctx.require_type(0, {DType::UInt8, DType::Int8, DType::Int32});
  check_qdq_params(ctx, "x_scale", "x_zero_point");
  if (ctx.has_input(2)) {
    quant::check_zero_point_type(ctx, 2, "x_zero_point", ctx.dtype(0));
    if (ctx.dtype(0) == DType::Int32 && ctx.input(2).value) check_int32_zero_points(*ctx.input(2).value, ctx.where());
  }
  ctx.set_output(0, DType::Float32, ctx.shape(0));
}

template <class X>
void dequantize_slices(const X* x, float* y, const Slices& sl, const std::vector<float>& scale,
                       const std::vector<int32_t>& zp) {
  for (int64_t o = 0; o < sl.outer; ++o)
    for (int64_t c = 0; c < sl.channels; ++c) {
      const float s = scale[static_cast<std::size_t>(c)];
      const int32_t z = zp[static_cast<std::size_t>(c)];
      const int64_t base = (o * sl.channels + c) * sl.inner;
      // x - z is exact for 8-bit x; int32 x has z = 0.
      for (int64_t i = base; i < base + sl.inner; ++i) y[i] = static_cast<float>(static_cast<int64_t>(x[i]) - z) * s;
    }
}

void dequantize_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const Tensor* zpt = ctx.has(2) ? &ctx.in(2) : nullptr;
  const std::vector<float> scale = quant::read_scales(ctx.in(1), "DequantizeLinear", "x_scale");
  if (zpt && x.dtype() == DType::Int32) check_int32_zero_points(*zpt, "DequantizeLinear");
  const std::vector<int32_t> zp = quant::read_zero_points(zpt, static_cast<int64_t>(scale.size()));
  const Slices sl = slices_of(x.shape(), ctx.in(1).shape(), ctx.attrs);
  ew::dispatch<uint8_t, int8_t, int32_t>(x.dtype(), [&](auto xt) {
    using X = typename decltype(xt)::type;
    dequantize_slices(x.data<X>(), ctx.out(0).data<float>(), sl, scale, zp);
  });
}

// ---- DynamicQuantizeLinear: x float32 -> y uint8, y_scale, y_zero_point, computed in
// float32 as the ONNX reference does: the range [min(x), max(x)] widened to include 0,
// y_scale = (max - min) / 255 (1 / 255 when max == min, i.e. x is all zeros or empty),
// y_zero_point = round(saturate(0 - min / y_scale)). NaN elements are left out of the
// range and quantize to 0.

void dynamic_quantize_infer(InferContext& ctx) {
  ctx.require_inputs(1, 1);
  ctx.require_type(0, {DType::Float32});
  ctx.set_output(0, DType::UInt8, ctx.shape(0));
  ctx.set_output(1, DType::Float32, {});
  ctx.set_output(2, DType::UInt8, {});
}

void dynamic_quantize_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const float* xp = x.data<float>();
  float lo = 0.f, hi = 0.f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    lo = std::min(lo, xp[i]);  // a NaN compares false and is skipped
    hi = std::max(hi, xp[i]);
  }
  const QRange r = quant::range_of(DType::UInt8);
  const float scale = (hi == lo ? 1.f : hi - lo) / static_cast<float>(r.hi - r.lo);
  const float initial_zp = static_cast<float>(r.lo) - lo / scale;
  const int32_t zp = quant::quantize(std::clamp(initial_zp, static_cast<float>(r.lo), static_cast<float>(r.hi)), 0, r);
  if (ctx.outputs[0]) {
    uint8_t* y = ctx.out(0).data<uint8_t>();
    for (int64_t i = 0; i < x.numel(); ++i) y[i] = static_cast<uint8_t>(quant::quantize(xp[i] / scale, zp, r));
  }
  if (ctx.outputs.size() > 1 && ctx.outputs[1]) ctx.out(1).data<float>()[0] = scale;
  if (ctx.outputs.size() > 2 && ctx.outputs[2]) ctx.out(2).data<uint8_t>()[0] = static_cast<uint8_t>(zp);
}

// ---- MatMulInteger and QLinearMatMul: numpy.matmul of (a - a_zero_point) and
// (b - b_zero_point), accumulated in int32.
//
// A's zero point (and QLinearMatMul's a_scale) is per tensor or per row of A: a scalar,
// [M] (for A of rank >= 2), or [..., M, 1] broadcasting over A's rows [batch..., M]. B's
// is per tensor or per column: a scalar, [N], or [..., 1, N] broadcasting over B's
// columns [batch..., N]. Either is expanded to one value per row (column) first.

// The shape a per-row (rows = true) or per-column parameter `p` of matrix `m` broadcasts
// over: m without its last (rows) or second-last (columns) dim.
Shape lines_of(const Shape& m, bool rows) {
  Shape t = m;
  if (!t.empty()) t.erase(t.end() - (rows || t.size() == 1 ? 1 : 2));
  return t;
}

// `p` without its unit K dim, as it broadcasts over lines_of(m, rows); nullopt when it
// does not fit.
std::optional<Shape> line_param_shape(const Shape& p, const Shape& m, bool rows) {
  if (shape_numel(p) == 1 && p.size() <= std::max<std::size_t>(m.size(), 1)) return Shape{};  // per tensor
  if (m.size() < 2 || p.empty()) return std::nullopt;
  Shape q = p;
  if (q.size() >= 2) {
    const std::size_t k = rows ? q.size() - 1 : q.size() - 2;
    if (q[k] != 1) return std::nullopt;
    q.erase(q.begin() + static_cast<std::ptrdiff_t>(k));
  }
  const Shape t = lines_of(m, rows);
  if (q.size() > t.size()) return std::nullopt;
  for (std::size_t i = 0; i < q.size(); ++i)
    if (q[i] != 1 && q[i] != t[t.size() - q.size() + i]) return std::nullopt;
  return q;
}

void check_line_param(const InferContext& ctx, int i, const char* what, int matrix, bool rows) {
  if (!line_param_shape(ctx.shape(i), ctx.shape(matrix), rows))
    ctx.fail(std::string(what) + " has shape " + shape_str(ctx.shape(i)) + "; expected a scalar or one value per " +
             (rows ? "row" : "column") + " of " + shape_str(ctx.shape(matrix)) +
             (rows ? " ([M] or [..., M, 1])" : " ([N] or [..., 1, N])"));
}

// One value per row (column) of m, in the order of lines_of(m, rows).
template <class V>
std::vector<V> expand_lines(const std::vector<V>& values, const Shape& p, const Shape& m, bool rows) {
  const Shape q = *line_param_shape(p, m, rows);  // infer checked it fits
  const Shape t = lines_of(m, rows);
  std::vector<V> out(static_cast<std::size_t>(shape_numel(t)));
  for_each_broadcast(t, {broadcast_strides(q, t)}, [&](int64_t e, const std::vector<int64_t>& off) {
    out[static_cast<std::size_t>(e)] = values[static_cast<std::size_t>(off[0])];
  });
  return out;
}

// acc[M, N] = (a - za[row]) * (b - zb[col]) over one pair of matrices, wrapping in int32.
// sums is N int64 of scratch: products of 8-bit differences (at most 255 * 255) cannot
// overflow it, and its low 32 bits are the wrapped int32 sum.
template <class A, class B>
void int_matmul(const A* a, const B* b, int64_t M, int64_t N, int64_t K, const int32_t* za, const int32_t* zb,
                int64_t* sums, int32_t* acc) {
  for (int64_t i = 0; i < M; ++i) {
    std::fill(sums, sums + N, int64_t{0});
    for (int64_t k = 0; k < K; ++k) {
      const int64_t av = static_cast<int64_t>(a[i * K + k]) - za[i];
      const B* brow = b + k * N;
      for (int64_t j = 0; j < N; ++j) sums[j] += av * (static_cast<int64_t>(brow[j]) - zb[j]);
    }
    for (int64_t j = 0; j < N; ++j) acc[i * N + j] = static_cast<int32_t>(static_cast<uint32_t>(sums[j]));
  }
}

// Runs int_matmul over every broadcast pair of matrices; calls
// done(batch_index, a_matrix, b_matrix, acc) with each [M, N] accumulator.
template <class Done>
void int_matmul_batches(const Tensor& a, const Tensor& b, const MatMulShapes& s, const std::vector<int32_t>& za,
                        const std::vector<int32_t>& zb, Done&& done) {
  const std::vector<std::vector<int64_t>> strides{broadcast_strides(s.a_batch, s.batch),
                                                  broadcast_strides(s.b_batch, s.batch)};
  std::vector<int64_t> sums(static_cast<std::size_t>(s.N));
  std::vector<int32_t> acc(static_cast<std::size_t>(s.M * s.N));
  ew::dispatch<uint8_t, int8_t>(a.dtype(), [&](auto at) {
    using A = typename decltype(at)::type;
    ew::dispatch<uint8_t, int8_t>(b.dtype(), [&](auto bt) {
      using B = typename decltype(bt)::type;
      const A* ap = a.data<A>();
      const B* bp = b.data<B>();
      for_each_broadcast(s.batch, strides, [&](int64_t e, const std::vector<int64_t>& off) {
        int_matmul(ap + off[0] * s.M * s.K, bp + off[1] * s.K * s.N, s.M, s.N, s.K, &za[off[0] * s.M],
                   &zb[off[1] * s.N], sums.data(), acc.data());
        done(e, off[0], off[1], acc.data());
      });
    });
  });
}

void matmul_integer_infer(InferContext& ctx) {
  ctx.require_inputs(2, 4);
  quant::require_8bit(ctx, 0, "A");
  quant::require_8bit(ctx, 1, "B");
  const MatMulShapes s = matmul_shapes(ctx.shape(0), ctx.shape(1), ctx.where());
  if (ctx.has_input(2)) {
    quant::check_zero_point_type(ctx, 2, "a_zero_point", ctx.dtype(0));
    check_line_param(ctx, 2, "a_zero_point", 0, true);
  }
  if (ctx.has_input(3)) {
    quant::check_zero_point_type(ctx, 3, "b_zero_point", ctx.dtype(1));
    check_line_param(ctx, 3, "b_zero_point", 1, false);
  }
  ctx.set_output(0, DType::Int32, s.out);
}

// The zero points of matrix input `matrix`, one per row (column), from input `i` (absent: 0).
std::vector<int32_t> line_zero_points(const ComputeContext& ctx, int i, int matrix, bool rows) {
  const Shape& m = ctx.in(matrix).shape();
  if (!ctx.has(i)) return std::vector<int32_t>(static_cast<std::size_t>(shape_numel(lines_of(m, rows))), 0);
  return expand_lines(quant::read_zero_points(&ctx.in(i), 0), ctx.in(i).shape(), m, rows);
}

void matmul_integer_compute(const ComputeContext& ctx) {
  const Tensor& a = ctx.in(0);
  const Tensor& b = ctx.in(1);
  const MatMulShapes s = matmul_shapes(a.shape(), b.shape(), "MatMulInteger");
  int32_t* y = ctx.out(0).data<int32_t>();
  const int64_t mn = s.M * s.N;
  int_matmul_batches(a, b, s, line_zero_points(ctx, 2, 0, true), line_zero_points(ctx, 3, 1, false),
                     [&](int64_t e, int64_t, int64_t, const int32_t* acc) { std::copy(acc, acc + mn, y + e * mn); });
}

// QLinearMatMul: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
// y_zero_point, all required. y is per tensor; its zero point gives the output type.
void qlinear_matmul_infer(InferContext& ctx) {
  ctx.require_inputs(8, 8);
  quant::require_8bit(ctx, 0, "a");
  quant::require_8bit(ctx, 3, "b");
  const MatMulShapes s = matmul_shapes(ctx.shape(0), ctx.shape(3), ctx.where());
  const struct {
    int scale, zp, matrix;
    const char *scale_name, *zp_name;
    bool rows;
  } lines[] = {{1, 2, 0, "a_scale", "a_zero_point", true}, {4, 5, 3, "b_scale", "b_zero_point", false}};
  for (const auto& l : lines) {
    quant::check_scale_input(ctx, l.scale, l.scale_name);
    check_line_param(ctx, l.scale, l.scale_name, l.matrix, l.rows);
    quant::check_zero_point_type(ctx, l.zp, l.zp_name, ctx.dtype(l.matrix));
    check_line_param(ctx, l.zp, l.zp_name, l.matrix, l.rows);
    quant::check_same_count(ctx, l.scale, l.zp);
  }
  quant::check_scale_input(ctx, 6, "y_scale");
  quant::param_count(ctx, 6, "y_scale");
  quant::require_8bit(ctx, 7, "y_zero_point");
  quant::param_count(ctx, 7, "y_zero_point");
  ctx.set_output(0, ctx.dtype(7), s.out);
}

void qlinear_matmul_compute(const ComputeContext& ctx) {
  const Tensor& a = ctx.in(0);
  const Tensor& b = ctx.in(3);
  const MatMulShapes s = matmul_shapes(a.shape(), b.shape(), "QLinearMatMul");
  const char* op = "QLinearMatMul";
  const std::vector<float> sa =
      expand_lines(quant::read_scales(ctx.in(1), op, "a_scale"), ctx.in(1).shape(), a.shape(), true);
  const std::vector<float> sb =
      expand_lines(quant::read_scales(ctx.in(4), op, "b_scale"), ctx.in(4).shape(), b.shape(), false);
  const float sy = quant::read_scales(ctx.in(6), op, "y_scale")[0];
  const int32_t zy = quant::read_zero_points(&ctx.in(7), 1)[0];
  Tensor& y = ctx.out(0);
  const QRange r = quant::range_of(y.dtype());
  void* yp = y.raw();
  int_matmul_batches(a, b, s, line_zero_points(ctx, 2, 0, true), line_zero_points(ctx, 5, 3, false),
                     [&](int64_t e, int64_t am, int64_t bm, const int32_t* acc) {
                       for (int64_t i = 0; i < s.M; ++i)
                         for (int64_t j = 0; j < s.N; ++j) {
                           const float mult = quant::multiplier(sa[static_cast<std::size_t>(am * s.M + i)],
                                                                sb[static_cast<std::size_t>(bm * s.N + j)], sy);
                           quant::store(yp, y.dtype(), (e * s.M + i) * s.N + j,
                                        quant::requantize(acc[i * s.N + j], mult, zy, r));
                         }
                     });
}

}  // namespace

void register_quant_ops(std::vector<OpSchema>& out) {
  out.push_back({.name = "QuantizeLinear", .since_opset = 10, .infer = quantize_infer, .compute = quantize_compute});
  out.push_back(
      {.name = "DequantizeLinear", .since_opset = 10, .infer = dequantize_infer, .compute = dequantize_compute});
  out.push_back({.name = "DynamicQuantizeLinear",
                 .since_opset = 11,
                 .infer = dynamic_quantize_infer,
                 .compute = dynamic_quantize_compute});
  out.push_back(
      {.name = "MatMulInteger", .since_opset = 10, .infer = matmul_integer_infer, .compute = matmul_integer_compute});
  out.push_back(
      {.name = "QLinearMatMul", .since_opset = 10, .infer = qlinear_matmul_infer, .compute = qlinear_matmul_compute});
  register_quant_conv_ops(out);
}

}  // namespace nnjit::ops
