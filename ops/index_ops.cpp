// Ops that index, rearrange or make tensors from shapes: Size, CastLike, GatherElements,
// Trilu, CumSum, DepthToSpace, SpaceToDepth, EyeLike, OneHot, TopK, GatherND, ScatterND,
// ScatterElements and Scatter (its name before opset 11).
//
// Element types follow the elementwise group: ops that only move elements take every type
// a reference op can hold (ew::kAllTypes; DepthToSpace/SpaceToDepth, GatherND and the
// scatters without a reduction any storable type, being byte shuffles), ops that add take
// float32/int32/int64 (the scatter reductions float64 too). TopK sorts the numeric types.
// An index outside its dim is refused at run time, naming the op, index and dim.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "ops/elementwise.hpp"
#include "ops/registry.hpp"
#include "ops/tensor_common.hpp"

namespace nnjit::ops {

namespace {

using ew::dispatch;

// keepdims-like flags: 0 or 1.
bool flag_attr(const InferContext& c, const char* name, int64_t fallback) {
  const int64_t v = c.attrs.get_int(name, fallback);
  if (v != 0 && v != 1) c.fail(std::string(name) + " must be 0 or 1, got " + std::to_string(v));
  return v != 0;
}

// Indices and axes are int32 or int64 in every op here; another type is a malformed model.
void require_index_type(const InferContext& c, int i, const char* what) {
  if (c.dtype(i) != DType::Int32 && c.dtype(i) != DType::Int64)
    c.fail(std::string(what) + " must be int32 or int64, got " + dtype_name(c.dtype(i)));
}

// ---- Size: the element count, an int64 scalar --------------------------------------------

void infer_size(InferContext& c) {
  c.require_inputs(1, 1);
  c.set_output(0, DType::Int64, {});
}

void compute_size(const ComputeContext& c) { c.out(0).data<int64_t>()[0] = c.in(0).numel(); }

// ---- CastLike (opset 15): Cast to the second input's type ------------------------------

void infer_cast_like(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, ew::kCastTypes);
  c.require_type(1, ew::kCastTypes);
  c.set_output(0, c.dtype(1), c.shape(0));
}

// Cast's reference converts input 0 to its output's type and reads no attribute, so it
// computes CastLike as it stands: one conversion rule for both ops.
void compute_cast_like(const ComputeContext& c) {
  const OpSchema* cast = find_schema("Cast");
  if (!cast) throw_internal("CastLike: no Cast schema");
  cast->compute(c);
}

// ---- GatherElements: out[i...] = data[i...] with index[i...] in place of i_axis -----------

// Data (input 0) and the integer indices (input 1) of GatherElements and ScatterElements:
// the same rank, at least 1, and indices no larger than data but along `axis`.
void require_element_indices(const InferContext& c) {
  require_index_type(c, 1, "indices");
  const int r = c.rank(0);
  if (r < 1) c.fail("data must have rank >= 1");
  if (c.rank(1) != r)
    c.fail("indices " + shape_str(c.shape(1)) + " must have the rank of data " + shape_str(c.shape(0)));
  const int axis = c.axis(c.attrs.get_int("axis", 0), r);
  for (int d = 0; d < r; ++d)
    if (d != axis && c.shape(1)[static_cast<std::size_t>(d)] > c.shape(0)[static_cast<std::size_t>(d)])
      c.fail("indices " + shape_str(c.shape(1)) + " exceed data " + shape_str(c.shape(0)) + " in dim " +
             std::to_string(d));
}

void infer_gather_elements(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, ew::kAllTypes);
  require_element_indices(c);
  c.set_output(0, c.dtype(0), c.shape(1));
}

// The offset in data of the element each index addresses: its own coordinates, with the
// index in place of the one along `axis` (attribute, negative allowed). Indices outside
// [-n, n) for that axis of size n are refused, naming `op`.
std::vector<int64_t> element_offsets(const ComputeContext& c, const Tensor& data, const Tensor& indices, const char* op) {
  const int64_t a = c.attrs.get_int("axis", 0);
  const auto axis = static_cast<std::size_t>(a < 0 ? a + data.rank() : a);
  std::vector<int64_t> st = strides_of(data.shape());
  const int64_t axis_stride = st[axis], n = data.shape()[axis];
  st[axis] = 0;
  std::vector<int64_t> offsets(static_cast<std::size_t>(indices.numel()));
  for_each_broadcast(indices.shape(), {st}, [&](int64_t e, const std::vector<int64_t>& off) {
    int64_t k = int_at(indices, e);
    if (k < -n || k >= n)
      throw_invalid(std::string(op) + ": index " + std::to_string(k) + " is out of range for axis " +
                    std::to_string(axis) + " of size " + std::to_string(n));
    if (k < 0) k += n;
    offsets[static_cast<std::size_t>(e)] = off[0] + k * axis_stride;
  });
  return offsets;
}

void compute_gather_elements(const ComputeContext& c) {
  const Tensor& data = c.in(0);
  Tensor& y = c.out(0);  // the shape of the indices
  const std::vector<int64_t> offset = element_offsets(c, data, c.in(1), "GatherElements");
  dispatch<NNJIT_EW_ALL>(data.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = data.data<T>();
    T* dst = y.data<T>();
    for (std::size_t e = 0; e < offset.size(); ++e) dst[e] = src[offset[e]];
  });
}

// ---- Trilu (opset 14): keep the upper or lower triangle of the last two dims -----------

// k moves the diagonal; it may be computed at run time, as the output's shape does not
// depend on it.
void infer_trilu(InferContext& c) {
  c.require_inputs(1, 2);
  c.require_type(0, ew::kAllTypes);
  if (c.rank(0) < 2) c.fail("input must have rank >= 2, got shape " + shape_str(c.shape(0)));
  if (c.has_input(1)) {
    if (c.dtype(1) != DType::Int64) c.fail("k must be int64, got " + dtype_name(c.dtype(1)));
    if (shape_numel(c.shape(1)) != 1) c.fail("k must be a scalar, got shape " + shape_str(c.shape(1)));
  }
  flag_attr(c, "upper", 1);
  c.set_output(0, c.dtype(0), c.shape(0));
}

void compute_trilu(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  Tensor& y = c.out(0);
  const int64_t k = c.has(1) ? int_at(c.in(1), 0) : 0;
  const bool upper = c.attrs.get_int("upper", 1) != 0;
  const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
  const int64_t plane = rows * cols, planes = plane ? x.numel() / plane : 0;
  dispatch<NNJIT_EW_ALL>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t e = p * plane + i * cols + j;
          const bool keep = upper ? j - i >= k : j - i <= k;
          dst[e] = keep ? src[e] : T{};
        }
  });
}

// ---- CumSum: running sums along an axis -------------------------------------------------

// The axis may be computed at run time (the output's shape does not depend on it); it is
// checked here when it is a constant, and in compute otherwise.
int cumsum_axis(const Tensor& axis, int r, const std::string& where) {
  const int64_t a = int_at(axis, 0);
  if (a < -r || a >= r)
    throw_invalid(where + ": axis " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
  return static_cast<int>(a < 0 ? a + r : a);
}

void infer_cumsum(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, ew::kNumeric);
  require_index_type(c, 1, "axis");
  if (c.rank(1) > 1 || shape_numel(c.shape(1)) != 1) c.fail("axis must be a scalar, got shape " + shape_str(c.shape(1)));
  if (c.input(1).value) cumsum_axis(*c.input(1).value, c.rank(0), c.where());
  flag_attr(c, "exclusive", 0);
  flag_attr(c, "reverse", 0);
  c.set_output(0, c.dtype(0), c.shape(0));
}

// Sums run in double for float (closer to exact than float's rounding) and in wrapping
// int64 for integers. Each element is read before its output is written, so y may alias x.
void compute_cumsum(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const int axis = cumsum_axis(c.in(1), x.rank(), "CumSum");
  const bool exclusive = c.attrs.get_int("exclusive", 0) != 0;
  const bool reverse = c.attrs.get_int("reverse", 0) != 0;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  const int64_t n = x.dim(axis);
  dispatch<NNJIT_EW_NUMERIC>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
    const T* src = x.data<T>();
    T* dst = c.out(0).data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        Acc acc = 0;
        for (int64_t t = 0; t < n; ++t) {
          const int64_t e = (o * n + (reverse ? n - 1 - t : t)) * inner + i;
          const Acc v = static_cast<Acc>(src[e]);
          Acc next;
          if constexpr (std::is_floating_point_v<T>)
            next = acc + v;
          else
            next = ew::wrap_add(acc, v);
          dst[e] = static_cast<T>(exclusive ? acc : next);  // int64 to int32 wraps
          acc = next;
        }
      }
  });
}

// ---- DepthToSpace and SpaceToDepth -------------------------------------------------------

// Both are a transpose of a 6-D view: the output is written as [N, C', H, bs, W, bs]
// (DepthToSpace) or [N, bs, bs, C, H', W'] (SpaceToDepth), each element fetched from the
// input at an affine offset.

int64_t blocksize_attr(const InferContext& c) {
  if (!c.attrs.has("blocksize")) c.fail("attribute 'blocksize' is required");
  const int64_t bs = c.attrs.get_int("blocksize", 0);
  if (bs < 1) c.fail("blocksize must be >= 1, got " + std::to_string(bs));
  return bs;
}

// DCR (depth, column, row) is the only mode before opset 11 and the default after.
bool crd_mode(const Attributes& attrs, int opset) {
  return opset >= 11 && attrs.get_string("mode", "DCR") == "CRD";
}

void infer_depth_to_space(InferContext& c) {
  c.require_inputs(1, 1);
  tensor_detail::require_storable(c, 0);
  if (c.rank(0) != 4) c.fail("input must be [N, C, H, W], got shape " + shape_str(c.shape(0)));
  const int64_t bs = blocksize_attr(c);
  if (c.opset >= 11) {
    const std::string mode = c.attrs.get_string("mode", "DCR");
    if (mode != "DCR" && mode != "CRD") c.fail("mode must be DCR or CRD, got '" + mode + "'");
  }
  const Shape& s = c.shape(0);
  if (s[1] % (bs * bs) != 0)
    c.fail("channels " + std::to_string(s[1]) + " are not a multiple of blocksize^2 = " + std::to_string(bs * bs));
  if (s[2] > INT64_MAX / bs || s[3] > INT64_MAX / bs) c.fail("the output is too large");
  c.set_output(0, c.dtype(0), {s[0], s[1] / (bs * bs), s[2] * bs, s[3] * bs});
}

void compute_depth_to_space(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const int64_t bs = c.attrs.get_int("blocksize", 1);
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), Co = C / (bs * bs), HW = H * W;
  Tensor y6 = c.out(0).reshaped({N, Co, H, bs, W, bs});
  // Steps of x along y6's dims [n, c', h, i, w, j]: DCR reads channel (i * bs + j) * C' + c',
  // CRD reads channel (c' * bs + i) * bs + j.
  const std::vector<int64_t> steps = crd_mode(c.attrs, c.opset)
                                         ? std::vector<int64_t>{C * HW, bs * bs * HW, W, bs * HW, 1, HW}
                                         : std::vector<int64_t>{C * HW, HW, W, bs * Co * HW, 1, Co * HW};
  tensor_detail::affine_copy(x, y6, 0, steps);
}

void infer_space_to_depth(InferContext& c) {
  c.require_inputs(1, 1);
  tensor_detail::require_storable(c, 0);
  if (c.rank(0) != 4) c.fail("input must be [N, C, H, W], got shape " + shape_str(c.shape(0)));
  const int64_t bs = blocksize_attr(c);
  const Shape& s = c.shape(0);
  if (s[2] % bs != 0 || s[3] % bs != 0)
    c.fail("height and width of " + shape_str(s) + " are not multiples of blocksize " + std::to_string(bs));
  if (s[1] > INT64_MAX / bs / bs) c.fail("the output is too large");
  c.set_output(0, c.dtype(0), {s[0], s[1] * bs * bs, s[2] / bs, s[3] / bs});
}

void compute_space_to_depth(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const int64_t bs = c.attrs.get_int("blocksize", 1);
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  // Output channel (i * bs + j) * C + c holds x[n, c, h * bs + i, w * bs + j].
  Tensor y6 = c.out(0).reshaped({N, bs, bs, C, H / bs, W / bs});
  tensor_detail::affine_copy(x, y6, 0, {C * H * W, W, 1, H * W, bs * W, bs});
}

// ---- EyeLike (opset 9): ones on diagonal k of a 2-D tensor shaped like the input --------

bool is_reference_type(int64_t t) {
  for (DType d : ew::kAllTypes)
    if (static_cast<int64_t>(d) == t) return true;
  return false;
}

void infer_eye_like(InferContext& c) {
  c.require_inputs(1, 1);
  c.require_type(0, ew::kAllTypes);
  if (c.rank(0) != 2) c.fail("input must be 2-D, got shape " + shape_str(c.shape(0)));
  DType out = c.dtype(0);
  if (c.attrs.has("dtype")) {
    const int64_t t = c.attrs.get_int("dtype", 0);
    if (!is_reference_type(t)) c.unsupported("dtype " + dtype_name(static_cast<DType>(t)) + " is not supported");
    out = static_cast<DType>(t);
  }
  c.set_output(0, out, c.shape(0));
}

void compute_eye_like(const ComputeContext& c) {
  Tensor& y = c.out(0);
  const int64_t rows = y.dim(0), cols = y.dim(1);
  // Clamped first so that i + k cannot overflow; a diagonal outside the matrix is empty.
  const int64_t k = std::clamp<int64_t>(c.attrs.get_int("k", 0), -rows, cols);
  dispatch<NNJIT_EW_ALL>(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* dst = y.data<T>();
    std::fill_n(dst, y.numel(), T{});
    for (int64_t i = std::max<int64_t>(0, -k); i < rows && i + k < cols; ++i) dst[i * cols + i + k] = T{1};
  });
}

// ---- OneHot (opset 9): values[1] where the index points, values[0] elsewhere ------------

// depth may be any numeric scalar; a float depth is truncated, as ONNX Runtime does.
int64_t onehot_depth(const Tensor& t, const std::string& where) {
  if (t.numel() != 1) throw_invalid(where + ": depth must be a scalar, got shape " + shape_str(t.shape()));
  const double d = number_at(t, 0);
  if (!(d >= 1 && d < 1e12)) throw_invalid(where + ": depth must be >= 1, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

int onehot_axis(const Attributes& attrs, int in_rank, const std::string& where) {
  const int64_t a = attrs.get_int("axis", -1);
  const int r = in_rank + 1;  // the output's rank
  if (a < -r || a >= r) throw_invalid(where + ": axis " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
  return static_cast<int>(a < 0 ? a + r : a);
}

void infer_onehot(InferContext& c) {
  c.require_inputs(3, 3);
  c.require_type(0, ew::kNumeric);
  c.require_type(1, {DType::Float32, DType::Int32, DType::Int64});
  c.require_type(2, ew::kAllTypes);
  if (c.rank(2) != 1 || c.shape(2)[0] != 2)
    c.fail("values must be [off_value, on_value], got shape " + shape_str(c.shape(2)));
  // The output's shape depends on depth, so it must be known at load.
  const int64_t depth = onehot_depth(c.constant(1, "depth"), c.where());
  Shape out = c.shape(0);
  out.insert(out.begin() + onehot_axis(c.attrs, c.rank(0), c.where()), depth);
  c.set_output(0, c.dtype(2), out);
}

// An index in [-depth, depth) selects a position (negative ones count from the end); any
// other leaves its row all off. A float index is truncated toward zero, as ONNX Runtime does.
void compute_onehot(const ComputeContext& c) {
  const Tensor& indices = c.in(0);
  const Tensor& values = c.in(2);
  Tensor& y = c.out(0);
  const int64_t depth = onehot_depth(c.in(1), "OneHot");
  const int axis = onehot_axis(c.attrs, indices.rank(), "OneHot");
  int64_t inner = 1;
  for (int d = axis; d < indices.rank(); ++d) inner *= indices.dim(d);
  std::vector<int64_t> hot(static_cast<std::size_t>(indices.numel()), -1);
  dispatch<NNJIT_EW_NUMERIC>(indices.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = indices.data<T>();
    for (std::size_t e = 0; e < hot.size(); ++e) {
      int64_t k;
      if constexpr (std::is_floating_point_v<T>) {
        if (!(std::fabs(p[e]) < 1e15f)) continue;  // NaN, inf, and far out of range
        k = static_cast<int64_t>(p[e]);
      } else {
        k = p[e];
      }
      if (k < -depth || k >= depth) continue;
      hot[e] = k < 0 ? k + depth : k;
    }
  });
  dispatch<NNJIT_EW_ALL>(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T off = values.data<T>()[0], on = values.data<T>()[1];
    T* dst = y.data<T>();
    std::fill_n(dst, y.numel(), off);
    for (std::size_t e = 0; e < hot.size(); ++e) {
      if (hot[e] < 0) continue;
      const int64_t o = static_cast<int64_t>(e) / inner, i = static_cast<int64_t>(e) % inner;
      dst[(o * depth + hot[e]) * inner + i] = on;
    }
  });
}

// ---- TopK: the k largest (or smallest) along an axis, with their indices ----------------

// The order TopK lists elements in: larger first (smaller first when !largest), the lower
// index first among equals. NaN counts as larger than every number (as ONNX Runtime and
// numpy's sort do), so it leads with largest and trails without; NaNs keep index order.
template <class T>
bool topk_before(T va, int64_t a, T vb, int64_t b, bool largest) {
  if constexpr (std::is_floating_point_v<T>) {
    const bool na = std::isnan(va), nb = std::isnan(vb);
    if (na || nb) return na != nb ? (largest ? na : nb) : a < b;
  }
  if (va < vb || vb < va) return largest ? vb < va : va < vb;
  return a < b;
}

// TopK's element types: the numeric ones a reference op can hold (not bool).
#define NNJIT_TOPK_TYPES float, double, int64_t, int32_t, int8_t, uint8_t
constexpr std::initializer_list<DType> kTopKTypes = {DType::Float32, DType::Float64, DType::Int64,
                                                     DType::Int32,   DType::Int8,    DType::UInt8};

// K is the attribute k before opset 10 and a one-element int64 input after; a K outside
// [0, n] is refused (K = 0 gives empty outputs).
int64_t topk_k(const Attributes& attrs, int opset, const Tensor* k_input, int64_t n, const std::string& where) {
  int64_t k;
  if (opset < 10) {
    if (!attrs.has("k")) throw_invalid(where + ": attribute 'k' is required");
    k = attrs.get_int("k", 0);
  } else {
    if (k_input->dtype() != DType::Int64)
      throw_invalid(where + ": K must be int64, got " + dtype_name(k_input->dtype()));
    if (k_input->rank() > 1 || k_input->numel() != 1)
      throw_invalid(where + ": K must hold one value, got shape " + shape_str(k_input->shape()));
    k = int_at(*k_input, 0);
  }
  if (k < 0 || k > n)
    throw_invalid(where + ": K = " + std::to_string(k) + " is outside [0, " + std::to_string(n) +
                  "], the size of the axis");
  return k;
}

void infer_topk(InferContext& c) {
  c.require_inputs(c.opset < 10 ? 1 : 2, c.opset < 10 ? 1 : 2);
  c.require_type(0, kTopKTypes);
  if (c.rank(0) < 1) c.fail("X must have rank >= 1");
  const int axis = c.axis(c.attrs.get_int("axis", -1), c.rank(0));
  if (c.opset >= 11) {
    flag_attr(c, "largest", 1);
    flag_attr(c, "sorted", 1);
  }
  // The outputs' shape depends on K, so it must be known at load.
  Shape out = c.shape(0);
  const std::size_t a = static_cast<std::size_t>(axis);
  out[a] = topk_k(c.attrs, c.opset, c.opset < 10 ? nullptr : &c.constant(1, "K"), out[a], c.where());
  c.set_output(0, c.dtype(0), out);
  c.set_output(1, DType::Int64, out);
}

// sorted = 0 leaves the order to the implementation; this one sorts anyway.
void compute_topk(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  Tensor* values = c.outputs.size() > 0 ? c.outputs[0] : nullptr;
  Tensor* indices = c.outputs.size() > 1 ? c.outputs[1] : nullptr;
  const int64_t a = c.attrs.get_int("axis", -1);
  const int axis = static_cast<int>(a < 0 ? a + x.rank() : a);
  const int64_t n = x.dim(axis);
  const int64_t k = topk_k(c.attrs, c.opset, c.opset < 10 ? nullptr : &c.in(1), n, "TopK");
  const bool largest = c.opset < 11 || c.attrs.get_int("largest", 1) != 0;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  if (k == 0 || outer == 0 || inner == 0) return;  // n may be huge when X is empty
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  dispatch<NNJIT_TOPK_TYPES>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = x.data<T>();
    T* vdst = values ? values->data<T>() : nullptr;
    int64_t* idst = indices ? indices->data<int64_t>() : nullptr;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* row = src + o * n * inner + i;  // element t at row[t * inner]
        std::iota(order.begin(), order.end(), int64_t{0});
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t p, int64_t q) {
          return topk_before(row[p * inner], p, row[q * inner], q, largest);
        });
        for (int64_t t = 0; t < k; ++t) {
          const int64_t e = (o * k + t) * inner + i, at = order[static_cast<std::size_t>(t)];
          if (vdst) vdst[e] = row[at * inner];
          if (idst) idst[e] = at;
        }
      }
  });
}

// ---- GatherND and ScatterND: slices addressed by index tuples ----------------------------

// The element offset in data of the slice each index tuple points at. indices' last dim
// holds the tuples, each indexing data's dims [batch, batch + m); indices' first `batch`
// dims walk together with data's. Negative indices count from the end; any index outside
// [-size, size) is refused.
std::vector<int64_t> tuple_offsets(const Shape& data_shape, const Tensor& indices, int batch, const char* op) {
  const int64_t m = indices.dim(indices.rank() - 1);
  const std::vector<int64_t> st = strides_of(data_shape);
  int64_t batches = 1;
  for (int d = 0; d < batch; ++d) batches *= data_shape[static_cast<std::size_t>(d)];
  const int64_t tuples = m ? indices.numel() / m : 0, per_batch = batches ? tuples / batches : 0;
  const int64_t batch_stride = batch ? st[static_cast<std::size_t>(batch - 1)] : 0;
  std::vector<int64_t> offsets(static_cast<std::size_t>(tuples));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = t / per_batch * batch_stride;
    for (int64_t j = 0; j < m; ++j) {
      const auto d = static_cast<std::size_t>(batch + j);
      int64_t v = int_at(indices, t * m + j);
      if (v < -data_shape[d] || v >= data_shape[d])
        throw_invalid(std::string(op) + ": index " + std::to_string(v) + " is out of range for dim " +
                      std::to_string(d) + " of data " + shape_str(data_shape));
      if (v < 0) v += data_shape[d];
      off += v * st[d];
    }
    offsets[static_cast<std::size_t>(t)] = off;
  }
  return offsets;
}

// Data (input 0) and integer indices (input 1) both of rank >= 1.
void require_nd_ranks(const InferContext& c) {
  require_index_type(c, 1, "indices");
  if (c.rank(0) < 1) c.fail("data must have rank >= 1");
  if (c.rank(1) < 1) c.fail("indices must have rank >= 1");
}

// The length m of the index tuples (indices' last dim), which must be in [1, r - batch]
// for data of rank r.
int64_t tuple_size(const InferContext& c, int batch) {
  const int64_t m = c.shape(1).back();
  if (m < 1 || m > c.rank(0) - batch)
    c.fail("the last dim of indices " + shape_str(c.shape(1)) + " must be in [1, " + std::to_string(c.rank(0) - batch) +
           "] for data " + shape_str(c.shape(0)) + (batch ? " and batch_dims " + std::to_string(batch) : ""));
  return m;
}

// batch_dims exists from opset 12.
int gathernd_batch(const Attributes& attrs, int opset) {
  return opset < 12 ? 0 : static_cast<int>(attrs.get_int("batch_dims", 0));
}

void infer_gathernd(InferContext& c) {
  c.require_inputs(2, 2);
  tensor_detail::require_storable(c, 0);
  require_nd_ranks(c);
  const int64_t b = c.opset < 12 ? 0 : c.attrs.get_int("batch_dims", 0);
  if (b < 0 || b >= std::min(c.rank(0), c.rank(1)))
    c.fail("batch_dims " + std::to_string(b) + " must be in [0, min(rank(data), rank(indices))), data " +
           shape_str(c.shape(0)) + ", indices " + shape_str(c.shape(1)));
  const int batch = static_cast<int>(b);
  const Shape &data = c.shape(0), &idx = c.shape(1);
  if (!std::equal(data.begin(), data.begin() + batch, idx.begin()))
    c.fail("the first " + std::to_string(batch) + " dims (batch_dims) of data " + shape_str(data) + " and indices " +
           shape_str(idx) + " differ");
  const int64_t m = tuple_size(c, batch);
  Shape out(idx.begin(), idx.end() - 1);
  out.insert(out.end(), data.begin() + batch + m, data.end());
  c.set_output(0, c.dtype(0), out);
}

// Byte copies: GatherND moves whole slices, whatever the element type.
void compute_gathernd(const ComputeContext& c) {
  const Tensor& data = c.in(0);
  Tensor& y = c.out(0);
  const int batch = gathernd_batch(c.attrs, c.opset);
  const std::vector<int64_t> offsets = tuple_offsets(data.shape(), c.in(1), batch, "GatherND");
  const std::size_t slice = offsets.empty() ? 0 : y.nbytes() / offsets.size(), es = dtype_size(data.dtype());
  const auto* src = static_cast<const unsigned char*>(data.raw());
  auto* dst = static_cast<unsigned char*>(y.raw());
  for (std::size_t t = 0; t < offsets.size(); ++t)
    if (slice) std::memcpy(dst + t * slice, src + static_cast<std::size_t>(offsets[t]) * es, slice);
}

// Scatter reductions: updates overwrite (none) or combine with what is there. Integers
// wrap; max and min pass NaN on, as numpy's maximum and minimum do.
enum class Reduction { None, Add, Mul, Max, Min };

// The attribute exists from opset 16 (none, add, mul); max and min join at opset 18.
Reduction scatter_reduction(const Attributes& attrs, int opset, const std::string& where) {
  if (opset < 16) return Reduction::None;
  const std::string r = attrs.get_string("reduction", "none");
  if (r == "none") return Reduction::None;
  if (r == "add") return Reduction::Add;
  if (r == "mul") return Reduction::Mul;
  if ((r == "max" || r == "min") && opset < 18)
    throw_invalid(where + ": reduction '" + r + "' needs opset 18, the model has opset " + std::to_string(opset));
  if (r == "max") return Reduction::Max;
  if (r == "min") return Reduction::Min;
  throw_invalid(where + ": reduction must be none, add, mul, max or min, got '" + r + "'");
}

// What an element becomes when an update reaches it.
template <class T>
T combine(Reduction red, T old, T update) {
  switch (red) {
    case Reduction::Add:
      if constexpr (std::is_floating_point_v<T>)
        return old + update;
      else
        return ew::wrap_add(old, update);
    case Reduction::Mul:
      if constexpr (std::is_floating_point_v<T>)
        return old * update;
      else
        return ew::wrap_mul(old, update);
    case Reduction::Max: return ew::max_nan(old, update);
    case Reduction::Min: return ew::min_nan(old, update);
    case Reduction::None: break;
  }
  return update;
}

// The types a scatter reduction computes in; without one, any storable type moves.
#define NNJIT_SCATTER_MATH_TYPES float, double, int32_t, int64_t
void require_scatter_types(const InferContext& c, Reduction red) {
  if (red == Reduction::None)
    tensor_detail::require_storable(c, 0);
  else
    c.require_type(0, {DType::Float32, DType::Float64, DType::Int32, DType::Int64});
  c.require_same_type(0, 2);
}

// y = data, then slice t of updates (`slice` elements) goes to y at offsets[t] in order,
// so that with reduction none the last of duplicate indices wins.
void scatter_slices(const Tensor& data, const Tensor& updates, Tensor& y, const std::vector<int64_t>& offsets,
                    int64_t slice, Reduction red) {
  if (!y.same_storage(data)) tensor_detail::copy_all(data, y);
  if (red == Reduction::None) {
    const std::size_t es = dtype_size(y.dtype()), bytes = static_cast<std::size_t>(slice) * es;
    const auto* src = static_cast<const unsigned char*>(updates.raw());
    auto* dst = static_cast<unsigned char*>(y.raw());
    for (std::size_t t = 0; t < offsets.size(); ++t)
      if (bytes) std::memcpy(dst + static_cast<std::size_t>(offsets[t]) * es, src + t * bytes, bytes);
    return;
  }
  dispatch<NNJIT_SCATTER_MATH_TYPES>(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = updates.data<T>();
    T* dst = y.data<T>();
    for (std::size_t t = 0; t < offsets.size(); ++t)
      for (int64_t s = 0; s < slice; ++s) {
        T& d = dst[offsets[t] + s];
        d = combine(red, d, src[static_cast<int64_t>(t) * slice + s]);
      }
  });
}

void infer_scatternd(InferContext& c) {
  c.require_inputs(3, 3);
  require_scatter_types(c, scatter_reduction(c.attrs, c.opset, c.where()));
  require_nd_ranks(c);
  const int64_t m = tuple_size(c, 0);
  const Shape &data = c.shape(0), &idx = c.shape(1);
  Shape want(idx.begin(), idx.end() - 1);
  want.insert(want.end(), data.begin() + m, data.end());
  if (c.shape(2) != want)
    c.fail("updates " + shape_str(c.shape(2)) + " must have shape " + shape_str(want) + " (indices " + shape_str(idx) +
           " into data " + shape_str(data) + ")");
  c.set_output(0, c.dtype(0), data);
}

void compute_scatternd(const ComputeContext& c) {
  const Tensor& data = c.in(0);
  const std::vector<int64_t> offsets = tuple_offsets(data.shape(), c.in(1), 0, "ScatterND");
  const int64_t slice = offsets.empty() ? 0 : c.in(2).numel() / static_cast<int64_t>(offsets.size());
  scatter_slices(data, c.in(2), c.out(0), offsets, slice, scatter_reduction(c.attrs, c.opset, "ScatterND"));
}

// ---- ScatterElements (and Scatter, its name before opset 11) ------------------------------

// y = data, then y[i...] with indices[i...] in place of i_axis receives updates[i...]:
// GatherElements run backwards. `reduces` is false for Scatter, which has no reduction.
void infer_scatter_elements_as(InferContext& c, bool reduces) {
  c.require_inputs(3, 3);
  require_scatter_types(c, reduces ? scatter_reduction(c.attrs, c.opset, c.where()) : Reduction::None);
  require_element_indices(c);
  if (c.shape(2) != c.shape(1))
    c.fail("updates " + shape_str(c.shape(2)) + " must have the shape of indices " + shape_str(c.shape(1)));
  c.set_output(0, c.dtype(0), c.shape(0));
}

void scatter_elements_as(const ComputeContext& c, Reduction red, const char* op) {
  scatter_slices(c.in(0), c.in(2), c.out(0), element_offsets(c, c.in(0), c.in(1), op), 1, red);
}

void infer_scatter_elements(InferContext& c) { infer_scatter_elements_as(c, true); }
void infer_scatter(InferContext& c) { infer_scatter_elements_as(c, false); }
void compute_scatter_elements(const ComputeContext& c) {
  scatter_elements_as(c, scatter_reduction(c.attrs, c.opset, "ScatterElements"), "ScatterElements");
}
void compute_scatter(const ComputeContext& c) { scatter_elements_as(c, Reduction::None, "Scatter"); }

}  // namespace

void register_index_ops(std::vector<OpSchema>& out) {
  out.push_back({"Size", 1, infer_size, compute_size, nullptr, /*reads_shapes_only=*/true});
  out.push_back({"CastLike", 15, infer_cast_like, compute_cast_like, nullptr});
  out.push_back({"GatherElements", 11, infer_gather_elements, compute_gather_elements, nullptr});
  out.push_back({"Trilu", 14, infer_trilu, compute_trilu, nullptr});
  out.push_back({"CumSum", 11, infer_cumsum, compute_cumsum, nullptr});
  out.push_back({"DepthToSpace", 1, infer_depth_to_space, compute_depth_to_space, nullptr});
  out.push_back({"SpaceToDepth", 1, infer_space_to_depth, compute_space_to_depth, nullptr});
  out.push_back({"EyeLike", 9, infer_eye_like, compute_eye_like, nullptr, /*reads_shapes_only=*/true});
  out.push_back({"OneHot", 9, infer_onehot, compute_onehot, nullptr});
  out.push_back({"TopK", 1, infer_topk, compute_topk, nullptr});
  out.push_back({"GatherND", 11, infer_gathernd, compute_gathernd, nullptr});
  out.push_back({"ScatterND", 11, infer_scatternd, compute_scatternd, nullptr});
  out.push_back({"ScatterElements", 11, infer_scatter_elements, compute_scatter_elements, nullptr});
  out.push_back({"Scatter", 9, infer_scatter, compute_scatter, nullptr});
}

}  // namespace nnjit::ops
