// ReduceMean, ReduceSum, ReduceMax.
//
// The axes come from the `axes` attribute, or for ReduceSum from opset 13 on from an
// optional int64 input (which must be a constant, since the output shape depends on it).
// Empty axes reduce every axis, unless ReduceSum-13's noop_with_empty_axes makes the op
// an identity. Reducing over zero elements gives 0 (Sum), NaN (float Mean; 0 for
// integers) or the type's lowest value (Max, -inf for float).
#include <cmath>
#include <limits>

#include "ops/elementwise.hpp"
#include "ops/registry.hpp"

namespace nnjit::ops {

namespace {

enum class Reduce { Mean, Sum, Max };

bool axes_from_input(Reduce k, int opset) { return k == Reduce::Sum && opset >= 13; }

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

template <Reduce K>
void infer_reduce(InferContext& c) {
  const bool from_input = axes_from_input(K, c.opset);
  c.require_inputs(1, from_input ? 2 : 1);
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
  const int64_t keepdims = c.attrs.get_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1) c.fail("keepdims must be 0 or 1, got " + std::to_string(keepdims));
  Shape out;
  for (int d = 0; d < r; ++d) {
    if (!red[static_cast<std::size_t>(d)])
      out.push_back(c.shape(0)[static_cast<std::size_t>(d)]);
    else if (keepdims)
      out.push_back(1);
  }
  c.set_output(0, c.dtype(0), out);
}

// Accumulates in double for float (closer to the exact sum than float's rounding) and
// in wrapping int64 for integers.
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

  const T* src = x.data<T>();
  T* dst = y.data<T>();
  const int64_t n_out = y.numel();
  if constexpr (K == Reduce::Max) {
    const T lowest = std::is_floating_point_v<T> ? -std::numeric_limits<T>::infinity()
                                                 : std::numeric_limits<T>::lowest();
    for (int64_t i = 0; i < n_out; ++i) dst[i] = lowest;
    ew::for_each_row(in, {to_out}, [&](int64_t first, const auto& base, const auto& step, int64_t len) {
      T* d = dst + base[0];
      for (int64_t i = 0; i < len; ++i) d[i * step[0]] = ew::max_nan(d[i * step[0]], src[first + i]);
    });
  } else {
    std::vector<Acc> acc(static_cast<std::size_t>(n_out), Acc{0});
    ew::for_each_row(in, {to_out}, [&](int64_t first, const auto& base, const auto& step, int64_t len) {
      Acc* a = acc.data() + base[0];
      for (int64_t i = 0; i < len; ++i) {
        if constexpr (std::is_floating_point_v<T>)
          a[i * step[0]] += src[first + i];
        else
          a[i * step[0]] = ew::wrap_add<int64_t>(a[i * step[0]], src[first + i]);
      }
    });
    for (int64_t i = 0; i < n_out; ++i) {
      Acc v = acc[static_cast<std::size_t>(i)];
      if constexpr (K == Reduce::Mean) {
        if constexpr (std::is_floating_point_v<T>)
          v /= static_cast<double>(count);  // 0/0 = NaN for an empty reduction
        else
          v = count == 0 ? 0 : v / count;  // truncates toward zero
      }
      dst[i] = static_cast<T>(v);  // int64 to int32 wraps, as the int32 sum would
    }
  }
}

template <Reduce K>
void compute_reduce(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  std::vector<int64_t> axes =
      axes_from_input(K, c.opset) && c.has(1) ? to_ints(c.in(1)) : c.attrs.get_ints("axes");
  const std::vector<bool> red = reduced_axes(axes, x.rank(), noop_with_empty_axes(K, c.attrs, c.opset), nullptr);
  ew::dispatch<NNJIT_EW_NUMERIC>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    reduce_typed<K, T>(x, c.out(0), red);
  });
}

}  // namespace

void register_reduce_ops(std::vector<OpSchema>& out) {
  out.push_back({"ReduceMean", 1, infer_reduce<Reduce::Mean>, compute_reduce<Reduce::Mean>, nullptr});
  out.push_back({"ReduceSum", 1, infer_reduce<Reduce::Sum>, compute_reduce<Reduce::Sum>, nullptr});
  out.push_back({"ReduceMax", 1, infer_reduce<Reduce::Max>, compute_reduce<Reduce::Max>, nullptr});
}

}  // namespace nnjit::ops
