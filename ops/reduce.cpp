// Reductions over axes (ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd,
// ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceSumSquare), and the ops that
// pick an index along one axis (ArgMax, ArgMin, and Hardmax, a one-hot ArgMax).
//
// The axes come from the `axes` attribute, or for ReduceSum from opset 13 on from an
// optional int64 input (which must be a constant, since the output shape depends on it);
// the other reductions move axes to an input only at opset 18, past what nnjit accepts.
// Empty axes reduce every axis, unless ReduceSum-13's noop_with_empty_axes makes the op
// an identity. Reducing over zero elements gives the identity of the fold: 0 (Sum, L1,
// L2, SumSquare), 1 (Prod), NaN (float Mean; 0 for integers), the type's lowest value
// for Max (-inf for float) and its highest for Min (+inf), log(0) = -inf for LogSum and
// LogSumExp.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/elementwise.hpp"
#include "ops/registry.hpp"

namespace nnjit::ops {

namespace {

enum class Reduce { Mean, Sum, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

bool axes_from_input(Reduce k, int opset) { return k == Reduce::Sum && opset >= 13; }

// L2, LogSum and LogSumExp of integers would need a rounding rule that ONNX does not
// state (numpy truncates, ONNX Runtime rounds some), so nnjit computes them for float only.
constexpr bool float_only(Reduce k) { return k == Reduce::L2 || k == Reduce::LogSum || k == Reduce::LogSumExp; }

// Which axes of a rank-r input are reduced; all false means none (the no-op case).
std::vector<bool> reduced_axes(const std::vector<int64_t>& axes, int r, bool noop_when_empty,
                               const InferContext* c) {
  std::vector<bool> red(static_cast<std::size_t>(r), axes.empty() && !noop_when_empty);
  for (int64_t a : axes) {
    if (a < -r || a >= r) {
      const std::string msg = "axis " + std::to_string(a) + " is out of range for rank " + std::to_string(r);
      if (c) c->fail(msg);
      throw_invalid(msg);
    }
    const auto d = static_cast<std::size_t>(a < 0 ? a + r : a);
    if (red[d]) {
      const std::string msg = "axis " + std::to_string(a) + " is repeated";
      if (c) c->fail(msg);
      throw_invalid(msg);
    }
    red[d] = true;
  }
  return red;
}

bool noop_with_empty_axes(Reduce k, const Attributes& attrs, int opset) {
  return axes_from_input(k, opset) && attrs.get_int("noop_with_empty_axes", 0) != 0;
}

// keepdims (and ArgMax's select_last_index) are flags: 0 or 1.
bool flag_attr(const InferContext& c, const char* name, int64_t fallback) {
  const int64_t v = c.attrs.get_int(name, fallback);
  if (v != 0 && v != 1) c.fail(std::string(name) + " must be 0 or 1, got " + std::to_string(v));
  return v != 0;
}

template <Reduce K>
void infer_reduce(InferContext& c) {
  const bool from_input = axes_from_input(K, c.opset);
  c.require_inputs(1, from_input ? 2 : 1);
  if (float_only(K))
    c.require_type(0, {DType::Float32});
  else
    c.require_type(0, ew::kNumeric);
  std::vector<int64_t> axes;
  if (from_input && c.has_input(1)) {
    if (c.dtype(1) != DType::Int64) c.fail("axes must be int64, got " + dtype_name(c.dtype(1)));
    if (c.rank(1) != 1) c.fail("axes must be 1-D, got shape " + shape_str(c.shape(1)));
    axes = to_ints(c.constant(1, "axes"));
  } else {
    axes = c.attrs.get_ints("axes");
  }
  const int r = c.rank(0);
  const std::vector<bool> red = reduced_axes(axes, r, noop_with_empty_axes(K, c.attrs, c.opset), &c);
  const bool keepdims = flag_attr(c, "keepdims", 1);
  Shape out;
  for (int d = 0; d < r; ++d) {
    if (!red[static_cast<std::size_t>(d)])
      out.push_back(c.shape(0)[static_cast<std::size_t>(d)]);
    else if (keepdims)
      out.push_back(1);
  }
  c.set_output(0, c.dtype(0), out);
}

// The max (kMax) or min of each output's elements, NaN winning, into dst[0, n_out).
// to_out maps the input's index space onto the output's (0 along reduced dims).
template <bool kMax, class T>
void fold_extreme(const Tensor& x, const std::vector<int64_t>& to_out, T* dst, int64_t n_out) {
  constexpr T kInf = std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : T{0};
  const T start = std::is_floating_point_v<T> ? (kMax ? -kInf : kInf)
                                              : (kMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max());
  for (int64_t i = 0; i < n_out; ++i) dst[i] = start;
  const T* src = x.data<T>();
  ew::for_each_row(x.shape(), {to_out}, [&](int64_t first, const auto& base, const auto& step, int64_t len) {
    T* d = dst + base[0];
    for (int64_t i = 0; i < len; ++i) {
      T& o = d[i * step[0]];
      o = kMax ? ew::max_nan(o, src[first + i]) : ew::min_nan(o, src[first + i]);
    }
  });
}

// One step of the fold: acc combined with one input value v. Float folds run in double
// (closer to the exact result than float's rounding), integer folds in wrapping int64.
template <Reduce K, class Acc>
Acc fold_step(Acc acc, Acc v) {
  if constexpr (std::is_floating_point_v<Acc>) {
    if constexpr (K == Reduce::Prod) return acc * v;
    else if constexpr (K == Reduce::L1) return acc + std::fabs(v);
    else if constexpr (K == Reduce::L2 || K == Reduce::SumSquare) return acc + v * v;
    else if constexpr (K == Reduce::LogSumExp) return acc + std::exp(v);  // v already shifted
    else return acc + v;
  } else {
    if constexpr (K == Reduce::Prod) return ew::wrap_mul(acc, v);
    else if constexpr (K == Reduce::L1) return ew::wrap_add(acc, v < 0 ? ew::wrap_neg(v) : v);
    else if constexpr (K == Reduce::SumSquare) return ew::wrap_add(acc, ew::wrap_mul(v, v));
    else return ew::wrap_add(acc, v);
  }
}

template <Reduce K, class T>
void reduce_typed(const Tensor& x, Tensor& y, const std::vector<bool>& red) {
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  const Shape& in = x.shape();
  // The output as if keepdims were set: same element order as y whatever keepdims is.
  Shape kept = in;
  int64_t count = 1;
  for (std::size_t d = 0; d < in.size(); ++d)
    if (red[d]) {
      count *= in[d];
      kept[d] = 1;
    }
  const std::vector<int64_t> to_out = broadcast_strides(kept, in);  // 0 along reduced dims
  T* dst = y.data<T>();
  const int64_t n_out = y.numel();
  if constexpr (K == Reduce::Max || K == Reduce::Min) {
    fold_extreme<K == Reduce::Max>(x, to_out, dst, n_out);
  } else {
    // LogSumExp subtracts each output's max before exp, so that exp cannot overflow; an
    // infinite or NaN max is not subtracted (exp and the sum then give inf or NaN).
    std::vector<double> shift;
    if constexpr (K == Reduce::LogSumExp) {
      std::vector<T> max(static_cast<std::size_t>(n_out));
      fold_extreme<true>(x, to_out, max.data(), n_out);
      for (T m : max) shift.push_back(std::isfinite(m) ? static_cast<double>(m) : 0.0);
    }
    std::vector<Acc> acc(static_cast<std::size_t>(n_out), K == Reduce::Prod ? Acc{1} : Acc{0});
    const T* src = x.data<T>();
    ew::for_each_row(in, {to_out}, [&](int64_t first, const auto& base, const auto& step, int64_t len) {
      Acc* a = acc.data() + base[0];
      for (int64_t i = 0; i < len; ++i) {
        Acc v = static_cast<Acc>(src[first + i]);
        if constexpr (K == Reduce::LogSumExp) v -= shift[static_cast<std::size_t>(base[0] + i * step[0])];
        a[i * step[0]] = fold_step<K>(a[i * step[0]], v);
      }
    });
    for (int64_t i = 0; i < n_out; ++i) {
      Acc v = acc[static_cast<std::size_t>(i)];
      if constexpr (K == Reduce::Mean) {
        if constexpr (std::is_floating_point_v<T>)
          v /= static_cast<double>(count);  // 0/0 = NaN for an empty reduction
        else
          v = count == 0 ? 0 : v / count;  // truncates toward zero
      } else if constexpr (K == Reduce::L2) {
        v = std::sqrt(v);
      } else if constexpr (K == Reduce::LogSum) {
        v = std::log(v);
      } else if constexpr (K == Reduce::LogSumExp) {
        v = std::log(v) + shift[static_cast<std::size_t>(i)];
      }
      dst[i] = static_cast<T>(v);  // int64 to int32 wraps, as the int32 fold would
    }
  }
}

template <Reduce K>
void compute_reduce(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  std::vector<int64_t> axes =
      axes_from_input(K, c.opset) && c.has(1) ? to_ints(c.in(1)) : c.attrs.get_ints("axes");
  const std::vector<bool> red = reduced_axes(axes, x.rank(), noop_with_empty_axes(K, c.attrs, c.opset), nullptr);
  if constexpr (float_only(K)) {
    reduce_typed<K, float>(x, c.out(0), red);
  } else {
    ew::dispatch<NNJIT_EW_NUMERIC>(x.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      reduce_typed<K, T>(x, c.out(0), red);
    });
  }
}

// ---- ArgMax, ArgMin, Hardmax ----------------------------------------------------------

// A tensor split around one axis: [outer, n, inner], dense row-major.
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};

AxisSplit split_at(const Shape& s, int axis) {
  AxisSplit p;
  for (int d = 0; d < static_cast<int>(s.size()); ++d) {
    const int64_t v = s[static_cast<std::size_t>(d)];
    (d < axis ? p.outer : d == axis ? p.n : p.inner) *= v;
  }
  return p;
}

// The index of the max (kMax) or min of p[0], p[stride], ..., p[(n-1)*stride]; the first
// such index, or with `last` the last. A NaN counts as the extreme, as numpy.argmax has
// it (ONNX's expected outputs come from numpy). n >= 1.
template <bool kMax, class T>
int64_t arg_extreme(const T* p, int64_t n, int64_t stride, bool last) {
  int64_t best = 0;
  T b = p[0];
  for (int64_t i = 1; i < n; ++i) {
    const T v = p[i * stride];
    bool better, tie;
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(b) || std::isnan(v)) {
        better = !std::isnan(b);
        tie = std::isnan(b) && std::isnan(v);
      } else {
        better = kMax ? v > b : v < b;
        tie = v == b;
      }
    } else {
      better = kMax ? v > b : v < b;
      tie = v == b;
    }
    if (better || (last && tie)) {
      best = i;
      b = v;
    }
  }
  return best;
}

// select_last_index came with opset 12; before, the attribute does not exist.
bool select_last(const Attributes& attrs, int opset) {
  return opset >= 12 && attrs.get_int("select_last_index", 0) != 0;
}

void infer_arg(InferContext& c) {
  c.require_inputs(1, 1);
  c.require_type(0, ew::kNumeric);
  const int r = c.rank(0);
  const int axis = c.axis(c.attrs.get_int("axis", 0), r);
  const bool keepdims = flag_attr(c, "keepdims", 1);
  if (c.opset >= 12) flag_attr(c, "select_last_index", 0);
  Shape out = c.shape(0);
  if (keepdims)
    out[static_cast<std::size_t>(axis)] = 1;
  else
    out.erase(out.begin() + axis);
  if (c.shape(0)[static_cast<std::size_t>(axis)] == 0 && shape_numel(out) != 0)
    c.fail("cannot take the arg of an empty axis " + std::to_string(axis) + " of shape " + shape_str(c.shape(0)));
  c.set_output(0, DType::Int64, out);
}

template <bool kMax>
void compute_arg(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const int r = x.rank();
  const int64_t a = c.attrs.get_int("axis", 0);
  const AxisSplit s = split_at(x.shape(), static_cast<int>(a < 0 ? a + r : a));
  const bool last = select_last(c.attrs, c.opset);
  int64_t* dst = c.out(0).data<int64_t>();
  if (s.n == 0) return;  // then the output is empty too (infer refuses the rest)
  ew::dispatch<NNJIT_EW_NUMERIC>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = x.data<T>();
    for (int64_t o = 0; o < s.outer; ++o)
      for (int64_t i = 0; i < s.inner; ++i)
        dst[o * s.inner + i] = arg_extreme<kMax>(src + o * s.n * s.inner + i, s.n, s.inner, last);
  });
}

// Hardmax: 1 at the first max along the axis, 0 elsewhere. Before opset 13 the input is
// coerced to 2-D at `axis` (default 1), as Softmax's was; from 13 the op works along
// `axis` (default -1).
AxisSplit hardmax_split(const Shape& x, const Attributes& attrs, int opset, const std::string& where) {
  const int r = static_cast<int>(x.size());
  const int64_t a = attrs.get_int("axis", opset < 13 ? 1 : -1);
  if (a < -r || a >= r)
    throw_invalid(where + ": axis " + std::to_string(a) + " is out of range for input " + shape_str(x));
  const int axis = static_cast<int>(a < 0 ? a + r : a);
  AxisSplit s = split_at(x, axis);
  if (opset < 13) {
    s.n *= s.inner;
    s.inner = 1;
  }
  return s;
}

void infer_hardmax(InferContext& c) {
  c.require_inputs(1, 1);
  c.require_type(0, {DType::Float32});
  hardmax_split(c.shape(0), c.attrs, c.opset, c.where());
  c.set_output(0, DType::Float32, c.shape(0));
}

void compute_hardmax(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  Tensor& y = c.out(0);
  const AxisSplit s = hardmax_split(x.shape(), c.attrs, c.opset, "Hardmax");
  const float* src = x.data<float>();
  float* dst = y.data<float>();
  std::fill_n(dst, y.numel(), 0.f);
  if (s.n == 0) return;
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < s.inner; ++i) {
      const int64_t base = o * s.n * s.inner + i;
      dst[base + arg_extreme<true>(src + base, s.n, s.inner, false) * s.inner] = 1.f;
    }
}

}  // namespace

void register_reduce_ops(std::vector<OpSchema>& out) {
  out.push_back({"ReduceMean", 1, infer_reduce<Reduce::Mean>, compute_reduce<Reduce::Mean>, nullptr});
  out.push_back({"ReduceSum", 1, infer_reduce<Reduce::Sum>, compute_reduce<Reduce::Sum>, nullptr});
  out.push_back({"ReduceMax", 1, infer_reduce<Reduce::Max>, compute_reduce<Reduce::Max>, nullptr});
  out.push_back({"ReduceMin", 1, infer_reduce<Reduce::Min>, compute_reduce<Reduce::Min>, nullptr});
  out.push_back({"ReduceProd", 1, infer_reduce<Reduce::Prod>, compute_reduce<Reduce::Prod>, nullptr});
  out.push_back({"ReduceL1", 1, infer_reduce<Reduce::L1>, compute_reduce<Reduce::L1>, nullptr});
  out.push_back({"ReduceL2", 1, infer_reduce<Reduce::L2>, compute_reduce<Reduce::L2>, nullptr});
  out.push_back({"ReduceLogSum", 1, infer_reduce<Reduce::LogSum>, compute_reduce<Reduce::LogSum>, nullptr});
  out.push_back({"ReduceLogSumExp", 1, infer_reduce<Reduce::LogSumExp>, compute_reduce<Reduce::LogSumExp>, nullptr});
  out.push_back({"ReduceSumSquare", 1, infer_reduce<Reduce::SumSquare>, compute_reduce<Reduce::SumSquare>, nullptr});
  out.push_back({"ArgMax", 1, infer_arg, compute_arg<true>, nullptr});
  out.push_back({"ArgMin", 1, infer_arg, compute_arg<false>, nullptr});
  out.push_back({"Hardmax", 1, infer_hardmax, compute_hardmax, nullptr});
}

}  // namespace nnjit::ops
