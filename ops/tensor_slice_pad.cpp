// Slice and Pad: the two ops whose output is a window of the input, smaller or larger.
#include <algorithm>
#include <cstring>

#include "ops/tensor_common.hpp"
#include "ops/util.hpp"

namespace nnjit::ops::tensor_detail {

namespace {

// ---- Slice ------------------------------------------------------------------------

struct SliceArgs {
  std::vector<int64_t> starts, ends;
  IntList axes, steps;
};

// A slice is an affine copy: dst[i...] = src[base + sum(i_d * steps[d])].
struct SlicePlan {
  Shape out;
  int64_t base = 0;
  std::vector<int64_t> steps;
};

SlicePlan plan_slice(const Shape& in, const SliceArgs& a, const std::string& where) {
  const int r = static_cast<int>(in.size());
  const std::size_t n = a.starts.size();
  if (a.ends.size() != n) throw_invalid(where + ": starts and ends differ in length");
  if (a.axes.present && a.axes.values.size() != n) throw_invalid(where + ": axes and starts differ in length");
  if (a.steps.present && a.steps.values.size() != n) throw_invalid(where + ": steps and starts differ in length");

  const std::vector<int64_t> strides = strides_of(in);
  SlicePlan p{in, 0, strides};
  std::vector<bool> seen(static_cast<std::size_t>(r), false);
  for (std::size_t i = 0; i < n; ++i) {
    int64_t axis = a.axes.present ? a.axes.values[i] : static_cast<int64_t>(i);
    if (axis < -r || axis >= r)
      throw_invalid(where + ": axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
    if (axis < 0) axis += r;
    if (seen[static_cast<std::size_t>(axis)]) throw_invalid(where + ": axes repeat axis " + std::to_string(axis));
    seen[static_cast<std::size_t>(axis)] = true;

    const int64_t dim = in[static_cast<std::size_t>(axis)];
    const int64_t step = a.steps.present ? a.steps.values[i] : 1;
    if (step == 0) throw_invalid(where + ": step is zero for axis " + std::to_string(axis));
    int64_t start = a.starts[i], end = a.ends[i];
    // Negative values count from the end; then clamp so that forward slices cover
    // [0, dim] and backward slices [dim-1, -1] (INT_MAX / INT_MIN mean "to the end").
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    // |step| as unsigned: -INT64_MIN does not fit in int64.
    const uint64_t mag = step > 0 ? static_cast<uint64_t>(step) : uint64_t{0} - static_cast<uint64_t>(step);
    int64_t len = 0;
    if (step > 0) {
      start = std::clamp(start, int64_t{0}, dim);
      end = std::clamp(end, int64_t{0}, dim);
      if (end > start) len = static_cast<int64_t>(static_cast<uint64_t>(end - start - 1) / mag) + 1;
    } else if (dim > 0) {
      start = std::clamp(start, int64_t{0}, dim - 1);
      end = std::clamp(end, int64_t{-1}, dim - 1);
      if (start > end) len = static_cast<int64_t>(static_cast<uint64_t>(start - end - 1) / mag) + 1;
    }
    const std::size_t ax = static_cast<std::size_t>(axis);
    p.out[ax] = len;
    if (len > 0) p.base += start * strides[ax];
    // With two or more elements |step| < dim, so the product fits; one element needs no step.
    p.steps[ax] = len > 1 ? step * strides[ax] : 0;
  }
  return p;
}

void slice_infer(InferContext& ctx) {
  require_storable(ctx, 0);
  SliceArgs a;
  if (ctx.opset < 10) {
    ctx.require_inputs(1, 1);
    if (!ctx.attrs.has("starts") || !ctx.attrs.has("ends")) ctx.fail("attributes starts and ends are required");
    a.starts = ctx.attrs.get_ints("starts");
    a.ends = ctx.attrs.get_ints("ends");
    a.axes = attr_or_input_ints(ctx, "axes", 3, 10);
  } else {
    ctx.require_inputs(3, 5);
    a.starts = constant_ints(ctx, 1, "starts");
    a.ends = constant_ints(ctx, 2, "ends");
    a.axes = attr_or_input_ints(ctx, "axes", 3, 10);
    a.steps = attr_or_input_ints(ctx, "steps", 4, 10);
  }
  ctx.set_output(0, ctx.dtype(0), plan_slice(ctx.shape(0), a, ctx.where()).out);
}

void slice_compute(const ComputeContext& ctx) {
  SliceArgs a;
  if (ctx.opset < 10) {
    a.starts = ctx.attrs.get_ints("starts");
    a.ends = ctx.attrs.get_ints("ends");
    a.axes = attr_or_input_ints(ctx, "axes", 3, 10);
  } else {
    a.starts = to_ints(ctx.in(1));
    a.ends = to_ints(ctx.in(2));
    a.axes = attr_or_input_ints(ctx, "axes", 3, 10);
    a.steps = attr_or_input_ints(ctx, "steps", 4, 10);
  }
  const SlicePlan p = plan_slice(ctx.in(0).shape(), a, "Slice");
  affine_copy(ctx.in(0), ctx.out(0), p.base, p.steps);
}

// ---- Pad --------------------------------------------------------------------------

enum class PadMode { Constant, Reflect, Edge };

PadMode pad_mode(const Attributes& attrs, const std::string& where) {
  const std::string m = attrs.get_string("mode", "constant");
  if (m == "constant") return PadMode::Constant;
  if (m == "reflect") return PadMode::Reflect;
  if (m == "edge") return PadMode::Edge;
  throw_invalid(where + ": unknown mode '" + m + "'");
}

void pad_check(const Attributes& attrs, int, std::vector<std::string>& problems) {
  const std::string m = attrs.get_string("mode", "constant");
  if (m == "wrap") problems.push_back("Pad with mode 'wrap' is not supported");
}

// One element of `dtype` holding `v`, for Pad's opset < 11 float `value` attribute.
Tensor scalar_of(DType dtype, double v, const std::string& where) {
  Tensor t(dtype, {});
  switch (dtype) {
    case DType::Float32:
      t.data<float>()[0] = static_cast<float>(v);
      break;
    case DType::Float64:
      t.data<double>()[0] = v;
      break;
    case DType::Int64:
      t.data<int64_t>()[0] = static_cast<int64_t>(v);
      break;
    case DType::Int32:
      t.data<int32_t>()[0] = static_cast<int32_t>(v);
      break;
    case DType::Int8:
      t.data<int8_t>()[0] = static_cast<int8_t>(v);
      break;
    case DType::UInt8:
      t.data<uint8_t>()[0] = static_cast<uint8_t>(v);
      break;
    case DType::Bool:
      t.data<bool>()[0] = v != 0;
      break;
    default:
      // Zero is all-zero bytes in every other storable type.
      if (v != 0) throw_unsupported(where + ": a non-zero pad value for type " + dtype_name(dtype));
  }
  return t;
}

// The pad value as one element of the data's type.
Tensor pad_value(const Attributes& attrs, int opset, DType dtype, const Tensor* constant_value,
                 const std::string& where) {
  if (opset < 11) return scalar_of(dtype, attrs.get_float("value", 0), where);
  if (!constant_value || constant_value->numel() == 0) return Tensor(dtype, {});
  if (constant_value->dtype() != dtype)
    throw_invalid(where + ": constant_value is " + dtype_name(constant_value->dtype()) + " but the data is " +
                  dtype_name(dtype));
  Tensor t(dtype, {});
  std::memcpy(t.raw(), constant_value->raw(), dtype_size(dtype));
  return t;
}

std::vector<int64_t> pads_of(const InferContext& ctx) {
  if (ctx.opset >= 11) return constant_ints(ctx, 1, "pads");
  if (!ctx.attrs.has("pads")) ctx.fail("attribute pads is required");
  return ctx.attrs.get_ints("pads");
}

std::vector<int64_t> pads_of(const ComputeContext& ctx) {
  return ctx.opset >= 11 ? to_ints(ctx.in(1)) : ctx.attrs.get_ints("pads");
}

// For each output index along one axis, the input index it reads, or -1 for the pad
// value. Negative pads crop first; edge and reflect then extend the cropped range
// [lo, hi), as ONNX Runtime does.
std::vector<int64_t> pad_map(int64_t dim, int64_t before, int64_t after, PadMode mode, const std::string& where) {
  const int64_t lo = std::max<int64_t>(0, -before), hi = dim - std::max<int64_t>(0, -after);
  const int64_t out = dim + before + after;
  std::vector<int64_t> map(static_cast<std::size_t>(std::max<int64_t>(out, 0)));
  const int64_t n = hi - lo;
  for (int64_t o = 0; o < out; ++o) {
    const int64_t i = o - before;
    int64_t m = i;
    if (i < lo || i >= hi) {
      if (mode == PadMode::Constant) {
        m = -1;
      } else if (n <= 0) {
        throw_invalid(where + ": cannot pad an empty axis in " + (mode == PadMode::Edge ? "edge" : "reflect") +
                      " mode");
      } else if (mode == PadMode::Edge || n == 1) {
        m = std::clamp(i, lo, hi - 1);
      } else {
        // numpy's reflect: mirror about the first and last element, repeating if needed.
        const int64_t period = 2 * (n - 1);
        int64_t j = ((i - lo) % period + period) % period;
        if (j >= n) j = period - j;
        m = lo + j;
      }
    }
    map[static_cast<std::size_t>(o)] = m;
  }
  return map;
}

void pad_infer(InferContext& ctx) {
  ctx.require_inputs(ctx.opset >= 11 ? 2 : 1, ctx.opset >= 11 ? 3 : 1);
  require_storable(ctx, 0);
  const PadMode mode = pad_mode(ctx.attrs, ctx.where());
  const Shape& in = ctx.shape(0);
  const int r = ctx.rank(0);
  const std::vector<int64_t> pads = pads_of(ctx);
  if (static_cast<int>(pads.size()) != 2 * r)
    ctx.fail("pads " + shape_str(pads) + " must have 2 * rank = " + std::to_string(2 * r) + " values");
  Shape out(in.size());
  for (int d = 0; d < r; ++d) {
    const int64_t before = pads[d], after = pads[d + r];
    constexpr int64_t kMaxPad = int64_t{1} << 40;  // keeps the sums below from overflowing
    if (before > kMaxPad || before < -kMaxPad || after > kMaxPad || after < -kMaxPad)
      ctx.fail("pads " + shape_str(pads) + " are too large");
    out[d] = in[d] + before + after;
    if (out[d] < 0) ctx.fail("pads " + shape_str(pads) + " crop axis " + std::to_string(d) + " below zero");
    const int64_t kept = in[d] - std::max<int64_t>(0, -before) - std::max<int64_t>(0, -after);
    if (mode != PadMode::Constant && out[d] > 0 && kept <= 0)
      ctx.fail("cannot pad axis " + std::to_string(d) + " in " + ctx.attrs.get_string("mode", "") +
               " mode: no input element is left to extend");
  }
  if (mode == PadMode::Constant) {
    if (ctx.opset >= 11 && ctx.has_input(2)) {
      ctx.require_same_type(0, 2);
      if (shape_numel(ctx.shape(2)) > 1) ctx.fail("constant_value must be a scalar, not " + shape_str(ctx.shape(2)));
    }
    pad_value(ctx.attrs, ctx.opset, ctx.dtype(0), nullptr, ctx.where());  // validates the opset < 11 value
  }
  ctx.set_output(0, ctx.dtype(0), out);
}

void pad_compute(const ComputeContext& ctx) {
  const Tensor& src = ctx.in(0);
  Tensor& dst = ctx.out(0);
  const PadMode mode = pad_mode(ctx.attrs, "Pad");
  const std::vector<int64_t> pads = pads_of(ctx);
  const int r = src.rank();
  std::vector<std::vector<int64_t>> maps;
  for (int d = 0; d < r; ++d) maps.push_back(pad_map(src.dim(d), pads[d], pads[d + r], mode, "Pad"));
  const Tensor value = pad_value(ctx.attrs, ctx.opset, src.dtype(), ctx.has(2) ? &ctx.in(2) : nullptr, "Pad");
  indexed_copy(src, dst, maps, value.raw());
}

}  // namespace

void register_slice_pad_ops(std::vector<OpSchema>& out) {
  out.push_back({"Slice", 1, slice_infer, slice_compute, nullptr});
  out.push_back({"Pad", 2, pad_infer, pad_compute, pad_check});
}

}  // namespace nnjit::ops::tensor_detail
