// Broadcasting ops over two or more inputs: arithmetic, Pow, comparisons, and the
// variadic Max/Min/Sum/Mean.
#include <climits>
#include <cmath>

#include "ops/elementwise.hpp"

namespace nnjit::ops::ew {

namespace {

// ---- arithmetic: Add, Sub, Mul, Div ---------------------------------------------------

enum class Arith { Add, Sub, Mul, Div };

// Integer division truncates toward zero, as C and ONNX Runtime do. The two cases C++
// leaves undefined (and x86 traps on) get numpy's answers instead of a crash: x / 0 = 0
// and INT_MIN / -1 wraps to INT_MIN.
template <class T>
T int_div(T a, T b) {
  if (b == 0) return 0;
  if (b == -1) return wrap_neg(a);
  return a / b;
}

template <Arith K, class T>
T arith(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if constexpr (K == Arith::Add) return a + b;
    else if constexpr (K == Arith::Sub) return a - b;
    else if constexpr (K == Arith::Mul) return a * b;
    else return a / b;
  } else {
    if constexpr (K == Arith::Add) return wrap_add(a, b);
    else if constexpr (K == Arith::Sub) return wrap_sub(a, b);
    else if constexpr (K == Arith::Mul) return wrap_mul(a, b);
    else return int_div(a, b);
  }
}

void infer_arith(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, kNumeric);
  c.require_same_type(0, 1);
  c.set_output(0, c.dtype(0), broadcast_inputs(c));
}

template <Arith K>
void compute_arith(const ComputeContext& c) {
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    map_binary<T, T, T>(c.in(0), c.in(1), c.out(0), [](T a, T b) { return arith<K>(a, b); });
  });
}

// ---- Pow ------------------------------------------------------------------------------

// base^e with wrapping; a negative exponent gives the truncated 1/base^|e|.
template <class T>
T int_pow(T base, int64_t e) {
  if (e < 0) {
    if (base == 1) return 1;
    if (base == -1) return (e & 1) ? T{-1} : T{1};
    return 0;
  }
  T r = 1;
  while (e) {
    if (e & 1) r = wrap_mul(r, base);
    base = wrap_mul(base, base);
    e >>= 1;
  }
  return r;
}

// The output has the base's type. Mixed types follow numpy, which ONNX's expected
// outputs come from: float^float stays in float, a float with an integer exponent is
// computed in double, an integer base with a float exponent is computed in double and
// truncated.
template <class B, class E>
B pow_one(B base, E e) {
  if constexpr (std::is_same_v<B, float> && std::is_same_v<E, float>)
    return std::pow(base, e);
  else if constexpr (std::is_floating_point_v<B>)
    return static_cast<B>(std::pow(static_cast<double>(base), static_cast<double>(e)));
  else if constexpr (std::is_floating_point_v<E>)
    return saturate_cast<B>(std::pow(static_cast<double>(base), static_cast<double>(e)));
  else
    return int_pow<B>(base, static_cast<int64_t>(e));
}

void infer_pow(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, kNumeric);
  c.require_type(1, kNumeric);
  c.set_output(0, c.dtype(0), broadcast_inputs(c));
}

void compute_pow(const ComputeContext& c) {
  // x ** 2 (LayerNorm's variance as exported) is x * x: what powf gives, at a fraction
  // of its cost.
  const Tensor &x = c.in(0), &e = c.in(1);
  if (x.dtype() == DType::Float32 && e.dtype() == DType::Float32 && e.numel() == 1 && e.data<float>()[0] == 2.f &&
      c.out(0).numel() == x.numel()) {
    const float* px = x.data<float>();
    float* py = c.out(0).data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) py[i] = px[i] * px[i];
    return;
  }
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto base_tag) {
    using B = typename decltype(base_tag)::type;
    dispatch<NNJIT_EW_NUMERIC>(c.in(1).dtype(), [&](auto exp_tag) {
      using E = typename decltype(exp_tag)::type;
      map_binary<B, E, B>(c.in(0), c.in(1), c.out(0), [](B b, E e) { return pow_one(b, e); });
    });
  });
}

// ---- comparisons: Equal, Less, Greater -------------------------------------------------

enum class Cmp { Equal, Less, Greater };

template <Cmp K>
void infer_cmp(InferContext& c) {
  c.require_inputs(2, 2);
  if (K == Cmp::Equal)
    c.require_type(0, {DType::Float32, DType::Int32, DType::Int64, DType::Bool});
  else
    c.require_type(0, kNumeric);
  c.require_same_type(0, 1);
  c.set_output(0, DType::Bool, broadcast_inputs(c));
}

template <Cmp K>
void compute_cmp(const ComputeContext& c) {
  dispatch<NNJIT_EW_NUMERIC, bool>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    map_binary<T, T, bool>(c.in(0), c.in(1), c.out(0), [](T a, T b) {
      if constexpr (K == Cmp::Equal) return a == b;
      else if constexpr (K == Cmp::Less) return a < b;
      else return a > b;
    });
  });
}

// ---- variadic: Max, Min, Sum, Mean ----------------------------------------------------

enum class Fold { Max, Min, Sum, Mean };

template <Fold K>
void infer_fold(InferContext& c) {
  c.require_inputs(1, INT_MAX);
  if (K == Fold::Max || K == Fold::Min)
    c.require_type(0, kNumeric);
  else
    c.require_type(0, {DType::Float32});
  for (int i = 1; i < c.num_inputs(); ++i) c.require_same_type(0, i);
  c.set_output(0, c.dtype(0), broadcast_inputs(c));
}

template <Fold K, class T>
T fold(T a, T b) {
  if constexpr (K == Fold::Max)
    return max_nan(a, b);
  else if constexpr (K == Fold::Min)
    return min_nan(a, b);
  else if constexpr (std::is_floating_point_v<T>)
    return a + b;
  else
    return wrap_add(a, b);
}

// Folds left to right (numpy's order, so float sums round the same way): the output
// first takes op(in0, in1), broadcast to the full shape, then op(output, in_k).
template <Fold K>
void compute_fold(const ComputeContext& c) {
  const int n = static_cast<int>(c.inputs.size());
  Tensor& y = c.out(0);
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto op = [](T a, T b) { return fold<K>(a, b); };
    if (n == 1) {
      map_unary<T, T>(c.in(0), y, [](T v) { return v; });
      return;
    }
    map_binary<T, T, T>(c.in(0), c.in(1), y, op);
    for (int i = 2; i < n; ++i) map_binary<T, T, T>(y, c.in(i), y, op);
    if constexpr (K == Fold::Mean) {
      T* p = y.data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) p[i] /= static_cast<T>(n);
    }
  });
}

}  // namespace

void register_binary_ops(std::vector<OpSchema>& out) {
  out.push_back({"Add", 7, infer_arith, compute_arith<Arith::Add>, nullptr});
  out.push_back({"Sub", 7, infer_arith, compute_arith<Arith::Sub>, nullptr});
  out.push_back({"Mul", 7, infer_arith, compute_arith<Arith::Mul>, nullptr});
  out.push_back({"Div", 7, infer_arith, compute_arith<Arith::Div>, nullptr});
  out.push_back({"Pow", 7, infer_pow, compute_pow, nullptr});
  out.push_back({"Equal", 7, infer_cmp<Cmp::Equal>, compute_cmp<Cmp::Equal>, nullptr});
  out.push_back({"Less", 7, infer_cmp<Cmp::Less>, compute_cmp<Cmp::Less>, nullptr});
  out.push_back({"Greater", 7, infer_cmp<Cmp::Greater>, compute_cmp<Cmp::Greater>, nullptr});
  // Before opset 8 these required equal shapes; broadcasting is a superset of that.
  out.push_back({"Max", 6, infer_fold<Fold::Max>, compute_fold<Fold::Max>, nullptr});
  out.push_back({"Min", 6, infer_fold<Fold::Min>, compute_fold<Fold::Min>, nullptr});
  out.push_back({"Sum", 6, infer_fold<Fold::Sum>, compute_fold<Fold::Sum>, nullptr});
  out.push_back({"Mean", 6, infer_fold<Fold::Mean>, compute_fold<Fold::Mean>, nullptr});
}

}  // namespace nnjit::ops::ew
