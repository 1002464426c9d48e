// Helpers shared by the elementwise op group (ops/elementwise*.cpp) and the reductions.
// Private to ops/: type dispatch, numpy-style loops, and integer arithmetic that wraps
// instead of overflowing (C++ signed overflow is undefined; numpy and ONNX Runtime wrap).
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "nnjit/tensor.hpp"
#include "ops/op.hpp"
#include "ops/util.hpp"

namespace nnjit::ops::ew {

template <class T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}) for the T among Ts whose dtype is t. Infer has already refused
// other types, so reaching the end is a bug.
template <class... Ts, class F>
void dispatch(DType t, F&& f) {
  const bool done = ((t == dtype_of<Ts>() ? (f(Tag<Ts>{}), true) : false) || ...);
  if (!done) throw_internal("reference op: unexpected element type " + dtype_name(t));
}

// The types the math ops compute in (float32, int32, int64), for dispatch and require_type.
#define NNJIT_EW_NUMERIC float, int32_t, int64_t
// Every element type a reference op can hold (Cast, Where, Identity move these).
#define NNJIT_EW_ALL float, double, int64_t, int32_t, int8_t, uint8_t, bool
inline constexpr std::initializer_list<DType> kNumeric = {DType::Float32, DType::Int32, DType::Int64};
inline constexpr std::initializer_list<DType> kAllTypes = {DType::Float32, DType::Float64, DType::Int64,
                                                           DType::Int32,   DType::Int8,    DType::UInt8,
                                                           DType::Bool};
// Cast and CastLike convert the 16-bit floats too (through float32).
inline constexpr std::initializer_list<DType> kCastTypes = {DType::Float32, DType::Float64, DType::Int64,
                                                            DType::Int32,   DType::Int8,    DType::UInt8,
                                                            DType::Bool,    DType::Float16, DType::BFloat16};

// Wrapping integer arithmetic (two's complement, as numpy computes it).
template <class T>
T wrap_add(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
}
template <class T>
T wrap_sub(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) - static_cast<U>(b));
}
template <class T>
T wrap_mul(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(a) * static_cast<U>(b));
}
template <class T>
T wrap_neg(T a) {
  return wrap_sub(T{0}, a);
}

// Float to integer: truncation toward zero; NaN gives 0 and out-of-range values
// saturate, where C++ would leave the result undefined.
template <class I, class F>
I saturate_cast(F v) {
  if (std::isnan(v)) return 0;
  if (v <= static_cast<F>(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  if (v >= static_cast<F>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return static_cast<I>(v);
}

// Numpy's maximum/minimum: a NaN in either operand gives NaN.
template <class T>
T max_nan(T a, T b) {
  if constexpr (std::is_floating_point_v<T>)
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? a : b;
  return a < b ? b : a;
}
template <class T>
T min_nan(T a, T b) {
  if constexpr (std::is_floating_point_v<T>)
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? a : b;
  return b < a ? b : a;
}

// Applies op to each element: y[i] = op(x[i]). Safe when y aliases x.
template <class T, class R, class Op>
void map_unary(const Tensor& x, Tensor& y, Op op) {
  const T* src = x.data<T>();
  R* dst = y.data<R>();
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) dst[i] = op(src[i]);
}

// Walks `shape` one innermost row at a time, where for_each_broadcast would call back
// per element: f(first, base, step, len) covers elements [first, first + len) of
// `shape`, and input k's element i of the row is at base[k] + i * step[k]. strides[k]
// are input k's strides over `shape` (0 along broadcast dims).
template <class F>
void for_each_row(const Shape& shape, std::vector<std::vector<int64_t>> strides, F&& f) {
  const std::size_t k = strides.size();
  std::vector<int64_t> step(k, 0);
  if (shape.empty()) {  // rank 0: one row of one element
    f(int64_t{0}, step, step, int64_t{1});
    return;
  }
  const int64_t len = shape.back();
  if (len == 0) return;
  for (std::size_t i = 0; i < k; ++i) {
    step[i] = strides[i].back();
    strides[i].pop_back();
  }
  const Shape outer(shape.begin(), shape.end() - 1);
  for_each_broadcast(outer, strides,
                     [&](int64_t row, const std::vector<int64_t>& base) { f(row * len, base, step, len); });
}

// y = op(a, b) with numpy broadcasting; y already has the broadcast shape.
template <class A, class B, class R, class Op>
void map_binary(const Tensor& a, const Tensor& b, Tensor& y, Op op) {
  const A* pa = a.data<A>();
  const B* pb = b.data<B>();
  R* py = y.data<R>();
  const Shape& out = y.shape();
  const int64_t n = y.numel();
  const bool a_full = a.shape() == out, b_full = b.shape() == out;
  if (a_full && b_full) {
    for (int64_t i = 0; i < n; ++i) py[i] = op(pa[i], pb[i]);
  } else if (a_full && b.numel() == 1) {
    const B s = pb[0];
    for (int64_t i = 0; i < n; ++i) py[i] = op(pa[i], s);
  } else if (b_full && a.numel() == 1) {
    const A s = pa[0];
    for (int64_t i = 0; i < n; ++i) py[i] = op(s, pb[i]);
  } else {
    for_each_row(out, {broadcast_strides(a.shape(), out), broadcast_strides(b.shape(), out)},
                 [&](int64_t first, const std::vector<int64_t>& base, const std::vector<int64_t>& step, int64_t len) {
                   const A* ra = pa + base[0];
                   const B* rb = pb + base[1];
                   R* ry = py + first;
                   for (int64_t i = 0; i < len; ++i) ry[i] = op(ra[i * step[0]], rb[i * step[1]]);
                 });
  }
}

// The broadcast shape of inputs [first, num_inputs) of c; InvalidInput names the node.
Shape broadcast_inputs(const InferContext& c, int first = 0);

// Registration of the files that make up the elementwise group.
void register_unary_ops(std::vector<OpSchema>& out);   // elementwise_unary.cpp
void register_binary_ops(std::vector<OpSchema>& out);  // elementwise_binary.cpp
void register_misc_ops(std::vector<OpSchema>& out);    // elementwise_misc.cpp: Cast, Where, Identity, Dropout

}  // namespace nnjit::ops::ew
