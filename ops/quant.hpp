// Shared by the quantization ops (ops/quant.cpp, ops/quant_conv.cpp); private to ops/.
//
// A quantized value q of type uint8/int8 stands for (q - zero_point) * scale. Scales and
// zero points come per tensor (a scalar, or a 1-D tensor of one value) or per slice of
// one axis (a 1-D tensor, one value per slice); they may be graph inputs computed at run
// time, so their shapes are checked by infer and their values by compute (by infer as
// well when they are constants):
//
//   const int64_t n = quant::param_count(ctx, 1, "y_scale", channels, "axis 1 of x [1,3,8,8]");
//   quant::check_scales_if_constant(ctx, 1, "y_scale");
//   ...
//   std::vector<float> s = quant::read_scales(ctx.in(1), "QuantizeLinear", "y_scale");  // in compute
//   int32_t q = quant::quantize(x / s[c], zp[c], quant::range_of(DType::UInt8));
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "nnjit/tensor.hpp"
#include "ops/op.hpp"

namespace nnjit::ops::quant {

// The values a quantized type holds: [0, 255] for uint8, [-128, 127] for int8.
struct QRange {
  int32_t lo = 0, hi = 0;
};
QRange range_of(DType t);

// saturate(round_half_to_even(v) + zero_point) in r. NaN gives r.lo (as ONNX Runtime's
// x86 kernels do; vcvtps2dq's "integer indefinite" saturates there too), +-inf the bound.
// Relies on the default rounding mode (to nearest, ties to even) for std::nearbyint.
inline int32_t quantize(double v, int32_t zero_point, QRange r) {
  const double q = std::nearbyint(v) + zero_point;
  if (!(q >= r.lo)) return r.lo;  // NaN too
  if (q > r.hi) return r.hi;
  return static_cast<int32_t>(q);
}
// The float32 quotient rounded as float32 (what the ONNX reference computes for float x).
inline int32_t quantize(float v, int32_t zero_point, QRange r) {
  return quantize(static_cast<double>(std::nearbyint(v)), zero_point, r);
}

// Element i of a uint8/int8/int32 tensor as int32.
int32_t int_value(const Tensor& t, int64_t i);

// Checks the shape of scale or zero point input i (named `what`): a scalar or a 1-D
// tensor of one value is per tensor (returns 1); where per_axis > 0, a 1-D tensor of
// per_axis values is per axis (returns per_axis), `axis_desc` naming that axis in the
// error ("axis 1 of x [1,3,8,8]"). InvalidInput for anything else.
int64_t param_count(const InferContext& ctx, int i, const char* what, int64_t per_axis = 0,
                    const std::string& axis_desc = "");
// InvalidInput unless scale input i (named `what`) is float32 and, when it is a constant,
// holds only positive finite values.
void check_scale_input(const InferContext& ctx, int i, const char* what);
// InvalidInput unless input i (named `what`) is uint8 or int8.
void require_8bit(const InferContext& ctx, int i, const char* what);
// InvalidInput unless zero point input i (named `what`) has the type `want`.
void check_zero_point_type(const InferContext& ctx, int i, const char* what, DType want);
// InvalidInput unless the scale input `scale` and zero point input `zp` (when present)
// hold the same number of values.
void check_same_count(const InferContext& ctx, int scale, int zp);

// The scales of `t` (float32), each checked to be positive and finite; otherwise
// InvalidInput prefixed with `where` (the op's name in compute) and naming `what`.
std::vector<float> read_scales(const Tensor& t, const std::string& where, const char* what);
// The zero points of `t` as int32, or `count` zeros when t is null (an absent input).
std::vector<int32_t> read_zero_points(const Tensor* t, int64_t count);

// Requantisation of an int32 accumulator, as the ONNX reference computes QLinearMatMul
// and QLinearConv: the multiplier a_scale * b_scale / y_scale in float32, the product in
// double, then quantize().
inline float multiplier(float a_scale, float b_scale, float y_scale) { return a_scale * b_scale / y_scale; }
inline int32_t requantize(int32_t acc, float mult, int32_t zero_point, QRange r) {
  return quantize(static_cast<double>(acc) * static_cast<double>(mult), zero_point, r);
}

// acc + a * b with two's complement wrap-around: "the accumulation may overflow if and
// only if in 32 bits" (ONNX), and C++ signed overflow is undefined.
inline int32_t wrap_add(int32_t acc, int32_t v) {
  return static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(v));
}

// Writes v (already in range) as element i of a uint8/int8 tensor's storage.
inline void store(void* data, DType t, int64_t i, int32_t v) {
  if (t == DType::UInt8)
    static_cast<uint8_t*>(data)[i] = static_cast<uint8_t>(v);
  else
    static_cast<int8_t*>(data)[i] = static_cast<int8_t>(v);
}

}  // namespace nnjit::ops::quant

namespace nnjit::ops {
void register_quant_conv_ops(std::vector<OpSchema>& out);  // ops/quant_conv.cpp: ConvInteger, QLinearConv
}  // namespace nnjit::ops
