// More one-input math and activations (rounding, trigonometry, the ELU family, Softplus,
// Shrink, Sign, IsNaN/IsInf) and PRelu. Same machinery as ops/elementwise_unary.cpp.
#include <algorithm>
#include <cmath>

#include "ops/elementwise.hpp"
#include "ops/registry.hpp"

namespace nnjit::ops {

namespace {

using ew::dispatch;
using ew::map_unary;

void infer_same(InferContext& c, std::initializer_list<DType> types) {
  c.require_inputs(1, 1);
  c.require_type(0, types);
  c.set_output(0, c.dtype(0), c.shape(0));
}

void infer_float(InferContext& c) { infer_same(c, {DType::Float32}); }
void infer_numeric(InferContext& c) { infer_same(c, ew::kNumeric); }

template <float (*F)(float)>
void compute_float(const ComputeContext& c) {
  map_unary<float, float>(c.in(0), c.out(0), F);
}

// Round half to even, whatever the FPU's rounding mode is.
float round_even(float x) {
  const float r = std::round(x);  // half away from zero
  if (std::fabs(x - std::trunc(x)) == 0.5f) return 2.f * std::round(x / 2.f);
  return r;
}

float reciprocal(float x) { return 1.f / x; }
float floor_f(float x) { return std::floor(x); }
float ceil_f(float x) { return std::ceil(x); }
float sin_f(float x) { return std::sin(x); }
float cos_f(float x) { return std::cos(x); }
float tan_f(float x) { return std::tan(x); }
float asin_f(float x) { return std::asin(x); }
float acos_f(float x) { return std::acos(x); }
float atan_f(float x) { return std::atan(x); }
float sinh_f(float x) { return std::sinh(x); }
float cosh_f(float x) { return std::cosh(x); }
float asinh_f(float x) { return std::asinh(x); }
float acosh_f(float x) { return std::acosh(x); }
float atanh_f(float x) { return std::atanh(x); }
// ln(1 + e^x), written so that e^x cannot overflow for large x.
float softplus(float x) { return x > 0.f ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
float softsign(float x) { return x / (1.f + std::fabs(x)); }

void compute_elu(const ComputeContext& c) {
  const float alpha = c.attrs.get_float("alpha", 1.f);
  map_unary<float, float>(c.in(0), c.out(0), [=](float x) { return x < 0.f ? alpha * std::expm1(x) : x; });
}

void compute_selu(const ComputeContext& c) {
  const float alpha = c.attrs.get_float("alpha", 1.67326319217681884765625f);
  const float gamma = c.attrs.get_float("gamma", 1.05070102214813232421875f);
  map_unary<float, float>(c.in(0), c.out(0),
                          [=](float x) { return x <= 0.f ? gamma * alpha * std::expm1(x) : gamma * x; });
}

void infer_celu(InferContext& c) {
  infer_float(c);
  if (c.attrs.get_float("alpha", 1.f) == 0.f) c.fail("alpha must not be 0");
}

void compute_celu(const ComputeContext& c) {
  const float alpha = c.attrs.get_float("alpha", 1.f);
  map_unary<float, float>(c.in(0), c.out(0), [=](float x) {
    return std::max(0.f, x) + std::min(0.f, alpha * std::expm1(x / alpha));
  });
}

void compute_thresholded_relu(const ComputeContext& c) {
  const float alpha = c.attrs.get_float("alpha", 1.f);
  map_unary<float, float>(c.in(0), c.out(0), [=](float x) { return x > alpha ? x : 0.f; });
}

// Shrink of an integer input computes in double and truncates toward zero, as numpy's
// astype (which gives ONNX's expected outputs) does.
void compute_shrink(const ComputeContext& c) {
  const double lambd = c.attrs.get_float("lambd", 0.5f);
  const double bias = c.attrs.get_float("bias", 0.f);
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    map_unary<T, T>(c.in(0), c.out(0), [=](T v) {
      const double x = static_cast<double>(v);
      const double y = x < -lambd ? x + bias : x > lambd ? x - bias : 0.0;
      if constexpr (std::is_floating_point_v<T>)
        return static_cast<T>(y);
      else
        return ew::saturate_cast<T>(y);
    });
  });
}

// Sign of NaN is NaN, as numpy has it.
void compute_sign(const ComputeContext& c) {
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    map_unary<T, T>(c.in(0), c.out(0), [](T v) { return v > T{0} ? T{1} : v < T{0} ? T{-1} : v; });
  });
}

void infer_float_to_bool(InferContext& c) {
  c.require_inputs(1, 1);
  c.require_type(0, {DType::Float32});
  c.set_output(0, DType::Bool, c.shape(0));
}

void compute_isnan(const ComputeContext& c) {
  map_unary<float, bool>(c.in(0), c.out(0), [](float v) { return std::isnan(v); });
}

void compute_isinf(const ComputeContext& c) {
  const bool pos = c.attrs.get_int("detect_positive", 1) != 0;
  const bool neg = c.attrs.get_int("detect_negative", 1) != 0;
  map_unary<float, bool>(c.in(0), c.out(0), [=](float v) { return std::isinf(v) && (v > 0 ? pos : neg); });
}

// ---- PRelu: y = x < 0 ? slope * x : x, with slope broadcast to x's shape (one way only).

void infer_prelu(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, ew::kNumeric);
  c.require_same_type(0, 1);
  const Shape b = ew::broadcast_inputs(c);
  if (b != c.shape(0))
    c.fail("slope of shape " + shape_str(c.shape(1)) + " does not broadcast to X's shape " + shape_str(c.shape(0)));
  c.set_output(0, c.dtype(0), c.shape(0));
}

void compute_prelu(const ComputeContext& c) {
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ew::map_binary<T, T, T>(c.in(0), c.in(1), c.out(0), [](T x, T slope) {
      if constexpr (std::is_floating_point_v<T>)
        return x < T{0} ? slope * x : x;
      else
        return x < T{0} ? ew::wrap_mul(slope, x) : x;
    });
  });
}

}  // namespace

void register_math_extra_ops(std::vector<OpSchema>& out) {
  out.push_back({"Reciprocal", 6, infer_float, compute_float<reciprocal>, nullptr});
  out.push_back({"Floor", 6, infer_float, compute_float<floor_f>, nullptr});
  out.push_back({"Ceil", 6, infer_float, compute_float<ceil_f>, nullptr});
  out.push_back({"Round", 11, infer_float, compute_float<round_even>, nullptr});
  out.push_back({"Sin", 7, infer_float, compute_float<sin_f>, nullptr});
  out.push_back({"Cos", 7, infer_float, compute_float<cos_f>, nullptr});
  out.push_back({"Tan", 7, infer_float, compute_float<tan_f>, nullptr});
  out.push_back({"Asin", 7, infer_float, compute_float<asin_f>, nullptr});
  out.push_back({"Acos", 7, infer_float, compute_float<acos_f>, nullptr});
  out.push_back({"Atan", 7, infer_float, compute_float<atan_f>, nullptr});
  out.push_back({"Sinh", 9, infer_float, compute_float<sinh_f>, nullptr});
  out.push_back({"Cosh", 9, infer_float, compute_float<cosh_f>, nullptr});
  out.push_back({"Asinh", 9, infer_float, compute_float<asinh_f>, nullptr});
  out.push_back({"Acosh", 9, infer_float, compute_float<acosh_f>, nullptr});
  out.push_back({"Atanh", 9, infer_float, compute_float<atanh_f>, nullptr});
  out.push_back({"Softplus", 1, infer_float, compute_float<softplus>, nullptr});
  out.push_back({"Softsign", 1, infer_float, compute_float<softsign>, nullptr});
  out.push_back({"Elu", 6, infer_float, compute_elu, nullptr});
  out.push_back({"Selu", 6, infer_float, compute_selu, nullptr});
  out.push_back({"Celu", 12, infer_celu, compute_celu, nullptr});
  out.push_back({"ThresholdedRelu", 10, infer_float, compute_thresholded_relu, nullptr});
  out.push_back({"Shrink", 9, infer_numeric, compute_shrink, nullptr});
  out.push_back({"Sign", 9, infer_numeric, compute_sign, nullptr});
  out.push_back({"IsNaN", 9, infer_float_to_bool, compute_isnan, nullptr});
  out.push_back({"IsInf", 10, infer_float_to_bool, compute_isinf, nullptr});
  out.push_back({"PRelu", 7, infer_prelu, compute_prelu, nullptr});
}

}  // namespace nnjit::ops
