// Shape and data-movement ops. This file registers the group and holds the ops that
// only rename a buffer's shape or make a tensor from attributes/shapes (Flatten, Reshape,
// Squeeze, Unsqueeze, Shape, Constant, ConstantOfShape, Range); the ops that move
// elements live in tensor_movement.cpp, tensor_slice_pad.cpp and tensor_resize.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/registry.hpp"
#include "ops/tensor_common.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

namespace tensor_detail {
namespace {

// Flatten, Reshape, Squeeze and Unsqueeze keep the bytes and change only the shape.
void copy_compute(const ComputeContext& ctx) { copy_all(ctx.in(0), ctx.out(0)); }

// ---- Flatten ----------------------------------------------------------------------

void flatten_infer(InferContext& ctx) {
  ctx.require_inputs(1, 1);
  require_storable(ctx, 0);
  const Shape& in = ctx.shape(0);
  const int r = ctx.rank(0);
  int64_t axis = ctx.attrs.get_int("axis", 1);
  // Flatten's axis ranges over [-r, r] (axis r puts every dim in the outer part).
  if (axis < -r || axis > r)
    ctx.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
  if (axis < 0) axis += r;
  Shape outer(in.begin(), in.begin() + axis), inner(in.begin() + axis, in.end());
  ctx.set_output(0, ctx.dtype(0), {shape_numel(outer), shape_numel(inner)});
}

// ---- Reshape ----------------------------------------------------------------------

void reshape_infer(InferContext& ctx) {
  ctx.require_inputs(2, 2);
  require_storable(ctx, 0);
  const Shape& in = ctx.shape(0);
  const std::vector<int64_t> spec = constant_ints(ctx, 1, "shape");
  // allowzero (opset 14) makes 0 a real zero-sized dim instead of "copy the input's dim".
  const bool allowzero = ctx.opset >= 14 && ctx.attrs.get_int("allowzero", 0) != 0;
  Shape out(spec.size());
  int infer_at = -1;
  int64_t known = 1;
  for (std::size_t i = 0; i < spec.size(); ++i) {
    int64_t d = spec[i];
    if (d == -1) {
      if (infer_at >= 0) ctx.fail("shape " + shape_str(spec) + " has more than one -1");
      infer_at = static_cast<int>(i);
      continue;
    }
    if (d < -1) ctx.fail("shape " + shape_str(spec) + " has the invalid dim " + std::to_string(d));
    if (d == 0 && !allowzero) {
      if (i >= in.size())
        ctx.fail("shape " + shape_str(spec) + " copies dim " + std::to_string(i) + " (0), but the input " +
                 shape_str(in) + " has only " + std::to_string(in.size()) + " dims");
      d = in[i];
    }
    if (d != 0 && known > INT64_MAX / d) ctx.fail("shape " + shape_str(spec) + ": element count overflows");
    out[i] = d;
    known *= d;
  }
  const int64_t n = shape_numel(in);
  if (infer_at >= 0) {
    if (known == 0 || n % known != 0)
      ctx.fail("cannot reshape " + shape_str(in) + " to " + shape_str(spec) + ": the -1 dim cannot be inferred");
    out[static_cast<std::size_t>(infer_at)] = n / known;
  } else if (known != n) {
    ctx.fail("cannot reshape " + shape_str(in) + " (" + std::to_string(n) + " elements) to " + shape_str(out) + " (" +
             std::to_string(known) + " elements)");
  }
  ctx.set_output(0, ctx.dtype(0), out);
}

// ---- Squeeze / Unsqueeze ----------------------------------------------------------

// Normalised axes, each in [0, r), refusing repeats.
std::vector<int> unique_axes(const InferContext& ctx, const std::vector<int64_t>& axes, int r) {
  std::vector<int> out;
  for (int64_t a : axes) {
    int n = ctx.axis(a, r, "axes");
    if (std::find(out.begin(), out.end(), n) != out.end()) ctx.fail("axes " + shape_str(axes) + " repeat an axis");
    out.push_back(n);
  }
  return out;
}

void squeeze_infer(InferContext& ctx) {
  ctx.require_inputs(1, ctx.opset >= 13 ? 2 : 1);
  require_storable(ctx, 0);
  const Shape& in = ctx.shape(0);
  const IntList axes = attr_or_input_ints(ctx, "axes", 1, 13);
  std::vector<bool> drop(in.size(), false);
  if (axes.present) {
    for (int a : unique_axes(ctx, axes.values, ctx.rank(0))) {
      if (in[a] != 1)
        ctx.fail("cannot squeeze axis " + std::to_string(a) + " of shape " + shape_str(in) + ": its size is not 1");
      drop[a] = true;
    }
  } else {
    for (std::size_t d = 0; d < in.size(); ++d) drop[d] = in[d] == 1;
  }
  Shape out;
  for (std::size_t d = 0; d < in.size(); ++d)
    if (!drop[d]) out.push_back(in[d]);
  ctx.set_output(0, ctx.dtype(0), out);
}

void unsqueeze_infer(InferContext& ctx) {
  ctx.require_inputs(ctx.opset >= 13 ? 2 : 1, ctx.opset >= 13 ? 2 : 1);
  require_storable(ctx, 0);
  const Shape& in = ctx.shape(0);
  const IntList axes = attr_or_input_ints(ctx, "axes", 1, 13);
  if (!axes.present) ctx.fail("axes are required");
  // Axes index the output, whose rank counts the new dims.
  const int r = ctx.rank(0) + static_cast<int>(axes.values.size());
  std::vector<bool> added(static_cast<std::size_t>(r), false);
  for (int a : unique_axes(ctx, axes.values, r)) added[a] = true;
  Shape out;
  std::size_t next = 0;
  for (int d = 0; d < r; ++d) out.push_back(added[d] ? 1 : in[next++]);
  ctx.set_output(0, ctx.dtype(0), out);
}

// ---- Shape ------------------------------------------------------------------------

// The [start, end) range of dims Shape reports (opset 15 start/end, clamped to [0, r]).
std::pair<int64_t, int64_t> shape_range(const Attributes& attrs, int opset, int64_t r) {
  int64_t start = 0, end = r;
  if (opset >= 15) {
    start = attrs.get_int("start", 0);
    end = attrs.get_int("end", r);
  }
  auto clamp = [r](int64_t a) { return std::clamp(a < 0 ? a + r : a, int64_t{0}, r); };
  start = clamp(start);
  end = clamp(end);
  return {start, std::max(start, end)};
}

void shape_infer(InferContext& ctx) {
  ctx.require_inputs(1, 1);
  auto [start, end] = shape_range(ctx.attrs, ctx.opset, ctx.rank(0));
  ctx.set_output(0, DType::Int64, {end - start});
}

void shape_compute(const ComputeContext& ctx) {
  const Shape& in = ctx.in(0).shape();
  auto [start, end] = shape_range(ctx.attrs, ctx.opset, static_cast<int64_t>(in.size()));
  int64_t* dst = ctx.out(0).data<int64_t>();
  for (int64_t d = start; d < end; ++d) dst[d - start] = in[static_cast<std::size_t>(d)];
}

// ---- Constant ---------------------------------------------------------------------

// The tensor a Constant node holds; InvalidInput unless exactly one supported value
// attribute is present (check() has already reported the unsupported ones).
Tensor constant_value(const Attributes& attrs) {
  const char* kinds[] = {"value", "value_float", "value_floats", "value_int", "value_ints"};
  int found = 0;
  for (const char* k : kinds) found += attrs.has(k);
  if (found != 1) throw_invalid("Constant needs exactly one value attribute, has " + std::to_string(found));
  if (const Tensor* t = attrs.get_tensor("value")) return *t;
  if (attrs.has("value_float")) {
    float v = attrs.get_float("value_float", 0);
    return Tensor::from(&v, {});
  }
  if (attrs.has("value_floats")) {
    std::vector<float> v = attrs.get_floats("value_floats");
    return Tensor::from(v, {static_cast<int64_t>(v.size())});
  }
  if (attrs.has("value_int")) {
    int64_t v = attrs.get_int("value_int", 0);
    return Tensor::from(&v, {});
  }
  std::vector<int64_t> v = attrs.get_ints("value_ints");
  return Tensor::from(v, {static_cast<int64_t>(v.size())});
}

void constant_infer(InferContext& ctx) {
  ctx.require_inputs(0, 0);
  Tensor t;
  try {
    t = constant_value(ctx.attrs);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::InvalidInput) throw;
    ctx.fail(e.what());
  }
  if (!t.defined()) ctx.fail("the value attribute holds no tensor");
  ctx.set_output(0, t.dtype(), t.shape());
}

void constant_compute(const ComputeContext& ctx) { copy_all(constant_value(ctx.attrs), ctx.out(0)); }

void constant_check(const Attributes& attrs, int, std::vector<std::string>& problems) {
  for (const char* k : {"sparse_value", "value_string", "value_strings"})
    if (attrs.has(k)) problems.push_back(std::string("Constant with attribute ") + k + " is not supported");
}

// ---- ConstantOfShape --------------------------------------------------------------

// The fill value: a one-element tensor, float32 0 when absent.
Tensor fill_value(const Attributes& attrs) {
  const Tensor* v = attrs.get_tensor("value");
  if (!v) return Tensor(DType::Float32, {});
  return *v;
}

void constant_of_shape_infer(InferContext& ctx) {
  ctx.require_inputs(1, 1);
  Shape out = constant_ints(ctx, 0, "shape");
  for (int64_t d : out)
    if (d < 0) ctx.fail("shape " + shape_str(out) + " has a negative dim");
  const Tensor* v = ctx.attrs.get_tensor("value");
  if (v && v->numel() != 1) ctx.fail("value must hold one element, has " + std::to_string(v->numel()));
  ctx.set_output(0, v ? v->dtype() : DType::Float32, out);
}

void constant_of_shape_compute(const ComputeContext& ctx) {
  const Tensor v = fill_value(ctx.attrs);
  fill_all(ctx.out(0), v.raw());
}

// ---- Range ------------------------------------------------------------------------

// Element count of Range(start, limit, delta): max(ceil((limit - start) / delta), 0).
int64_t range_count(const Tensor& start, const Tensor& limit, const Tensor& delta, const std::string& where) {
  if (start.dtype() == DType::Float32 || start.dtype() == DType::Float64) {
    const double s = number_at(start, 0), l = number_at(limit, 0), d = number_at(delta, 0);
    if (d == 0) throw_invalid(where + ": delta is zero");
    const double n = std::ceil((l - s) / d);
    if (!(n < 1e12)) throw_invalid(where + ": the range is too long or not finite");
    return n > 0 ? static_cast<int64_t>(n) : 0;
  }
  const __int128 s = int_at(start, 0), l = int_at(limit, 0), d = int_at(delta, 0);
  if (d == 0) throw_invalid(where + ": delta is zero");
  const __int128 diff = l - s;
  if (diff == 0 || (diff > 0) != (d > 0)) return 0;
  const __int128 ad = d > 0 ? d : -d, adiff = diff > 0 ? diff : -diff;
  return static_cast<int64_t>((adiff + ad - 1) / ad);
}

void range_infer(InferContext& ctx) {
  ctx.require_inputs(3, 3);
  ctx.require_type(0, {DType::Float32, DType::Float64, DType::Int64, DType::Int32});
  ctx.require_same_type(0, 1);
  ctx.require_same_type(0, 2);
  const char* names[] = {"start", "limit", "delta"};
  for (int i = 0; i < 3; ++i)
    if (shape_numel(ctx.shape(i)) != 1)
      ctx.fail(std::string(names[i]) + " must be a scalar, not " + shape_str(ctx.shape(i)));
  const int64_t n =
      range_count(ctx.constant(0, "start"), ctx.constant(1, "limit"), ctx.constant(2, "delta"), ctx.where());
  ctx.set_output(0, ctx.dtype(0), {n});
}

template <class T>
void range_fill(const ComputeContext& ctx) {
  Tensor& out = ctx.out(0);
  T* dst = out.data<T>();
  if constexpr (std::is_floating_point_v<T>) {
    const double s = ctx.in(0).data<T>()[0], d = ctx.in(2).data<T>()[0];
    for (int64_t i = 0; i < out.numel(); ++i) dst[i] = static_cast<T>(s + static_cast<double>(i) * d);
  } else {
    // Each value lies between start and limit, but i * delta alone may not fit in int64
    // (start near INT64_MIN, limit near INT64_MAX): wrap-around arithmetic gives the
    // right value without overflowing.
    const uint64_t s = static_cast<uint64_t>(static_cast<int64_t>(ctx.in(0).data<T>()[0]));
    const uint64_t d = static_cast<uint64_t>(static_cast<int64_t>(ctx.in(2).data<T>()[0]));
    for (int64_t i = 0; i < out.numel(); ++i)
      dst[i] = static_cast<T>(static_cast<int64_t>(s + static_cast<uint64_t>(i) * d));
  }
}

void range_compute(const ComputeContext& ctx) {
  switch (ctx.out(0).dtype()) {
    case DType::Float32:
      range_fill<float>(ctx);
      break;
    case DType::Float64:
      range_fill<double>(ctx);
      break;
    case DType::Int64:
      range_fill<int64_t>(ctx);
      break;
    case DType::Int32:
      range_fill<int32_t>(ctx);
      break;
    default:
      throw_internal("Range: unexpected type " + dtype_name(ctx.out(0).dtype()));
  }
}

}  // namespace

void register_shape_ops(std::vector<OpSchema>& out) {
  out.push_back({"Flatten", 1, flatten_infer, copy_compute, nullptr});
  out.push_back({"Reshape", 5, reshape_infer, copy_compute, nullptr});
  out.push_back({"Squeeze", 1, squeeze_infer, copy_compute, nullptr});
  out.push_back({"Unsqueeze", 1, unsqueeze_infer, copy_compute, nullptr});
  out.push_back({"Shape", 1, shape_infer, shape_compute, nullptr, /*reads_shapes_only=*/true});
  out.push_back({"Constant", 1, constant_infer, constant_compute, constant_check});
  out.push_back({"ConstantOfShape", 9, constant_of_shape_infer, constant_of_shape_compute, nullptr});
  out.push_back({"Range", 11, range_infer, range_compute, nullptr});
}

}  // namespace tensor_detail

void register_tensor_ops(std::vector<OpSchema>& out) {
  tensor_detail::register_shape_ops(out);
  tensor_detail::register_movement_ops(out);
  tensor_detail::register_slice_pad_ops(out);
  tensor_detail::register_resize_ops(out);
}

}  // namespace nnjit::ops
