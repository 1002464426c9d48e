// One-input elementwise ops: activations, float math, Abs/Neg, Not, Clip.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "ops/elementwise.hpp"

namespace nnjit::ops::ew {

namespace {

// Clamps with NaN passing through: comparisons with NaN are false, so v stays NaN.
// When lo > hi the result is hi, as numpy.clip (and so ONNX's reference) gives.
template <class T>
T clamp_nan(T v, T lo, T hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

void infer_same(InferContext& c, std::initializer_list<DType> types) {
  c.require_inputs(1, 1);
  c.require_type(0, types);
  c.set_output(0, c.dtype(0), c.shape(0));
}

void infer_float(InferContext& c) { infer_same(c, {DType::Float32}); }
void infer_numeric(InferContext& c) { infer_same(c, kNumeric); }
void infer_bool(InferContext& c) { infer_same(c, {DType::Bool}); }

// Float-only ops with no attributes share one compute, parameterised by the function.
template <float (*F)(float)>
void compute_float(const ComputeContext& c) {
  map_unary<float, float>(c.in(0), c.out(0), F);
}

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }
float tanh_f(float x) { return std::tanh(x); }
float erf_f(float x) { return std::erf(x); }
float exp_f(float x) { return std::exp(x); }
float log_f(float x) { return std::log(x); }
float sqrt_f(float x) { return std::sqrt(x); }
float hard_swish(float x) { return x * clamp_nan(x / 6.f + 0.5f, 0.f, 1.f); }

void compute_relu(const ComputeContext& c) {
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    map_unary<T, T>(c.in(0), c.out(0), [](T v) { return v < T{0} ? T{0} : v; });
  });
}

void compute_leaky_relu(const ComputeContext& c) {
  const float alpha = c.attrs.get_float("alpha", 0.01f);
  map_unary<float, float>(c.in(0), c.out(0), [alpha](float v) { return v < 0.f ? alpha * v : v; });
}

void compute_hard_sigmoid(const ComputeContext& c) {
  const float alpha = c.attrs.get_float("alpha", 0.2f);
  const float beta = c.attrs.get_float("beta", 0.5f);
  map_unary<float, float>(c.in(0), c.out(0),
                          [=](float v) { return clamp_nan(alpha * v + beta, 0.f, 1.f); });
}

void compute_abs(const ComputeContext& c) {
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<T>)
      map_unary<T, T>(c.in(0), c.out(0), [](T v) { return std::fabs(v); });
    else  // |INT_MIN| wraps to INT_MIN, as in numpy
      map_unary<T, T>(c.in(0), c.out(0), [](T v) { return v < 0 ? wrap_neg(v) : v; });
  });
}

void compute_neg(const ComputeContext& c) {
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<T>)
      map_unary<T, T>(c.in(0), c.out(0), [](T v) { return -v; });
    else
      map_unary<T, T>(c.in(0), c.out(0), [](T v) { return wrap_neg(v); });
  });
}

void compute_not(const ComputeContext& c) {
  map_unary<bool, bool>(c.in(0), c.out(0), [](bool v) { return !v; });
}

// Clip: before opset 11 the bounds are float attributes defaulting to -/+FLT_MAX; from
// opset 11 they are optional scalar inputs defaulting to the type's lowest/max.
void infer_clip(InferContext& c) {
  if (c.opset < 11) {
    c.require_inputs(1, 1);
    c.require_type(0, {DType::Float32});
  } else {
    c.require_inputs(1, 3);
    c.require_type(0, kNumeric);
    for (int i = 1; i <= 2; ++i) {
      if (!c.has_input(i)) continue;
      c.require_same_type(0, i);
      if (shape_numel(c.shape(i)) != 1)
        c.fail(std::string(i == 1 ? "min" : "max") + " must be a scalar, got shape " + shape_str(c.shape(i)));
    }
  }
  c.set_output(0, c.dtype(0), c.shape(0));
}

void compute_clip(const ComputeContext& c) {
  if (c.opset < 11) {
    const float lo = c.attrs.get_float("min", -FLT_MAX);
    const float hi = c.attrs.get_float("max", FLT_MAX);
    map_unary<float, float>(c.in(0), c.out(0), [=](float v) { return clamp_nan(v, lo, hi); });
    return;
  }
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T lo = c.has(1) ? c.in(1).data<T>()[0] : std::numeric_limits<T>::lowest();
    const T hi = c.has(2) ? c.in(2).data<T>()[0] : std::numeric_limits<T>::max();
    map_unary<T, T>(c.in(0), c.out(0), [=](T v) { return clamp_nan(v, lo, hi); });
  });
}

}  // namespace

void register_unary_ops(std::vector<OpSchema>& out) {
  out.push_back({"Relu", 6, infer_numeric, compute_relu, nullptr});
  out.push_back({"LeakyRelu", 6, infer_float, compute_leaky_relu, nullptr});
  out.push_back({"Clip", 6, infer_clip, compute_clip, nullptr});
  out.push_back({"Sigmoid", 6, infer_float, compute_float<sigmoid>, nullptr});
  out.push_back({"HardSigmoid", 6, infer_float, compute_hard_sigmoid, nullptr});
  out.push_back({"HardSwish", 14, infer_float, compute_float<hard_swish>, nullptr});
  out.push_back({"Tanh", 6, infer_float, compute_float<tanh_f>, nullptr});
  out.push_back({"Erf", 9, infer_float, compute_float<erf_f>, nullptr});
  out.push_back({"Exp", 6, infer_float, compute_float<exp_f>, nullptr});
  out.push_back({"Log", 6, infer_float, compute_float<log_f>, nullptr});
  out.push_back({"Sqrt", 6, infer_float, compute_float<sqrt_f>, nullptr});
  out.push_back({"Abs", 6, infer_numeric, compute_abs, nullptr});
  out.push_back({"Neg", 6, infer_numeric, compute_neg, nullptr});
  out.push_back({"Not", 1, infer_bool, compute_not, nullptr});
}

}  // namespace nnjit::ops::ew
