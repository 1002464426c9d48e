// Ops that move elements without computing on them: Transpose, Concat, Split, Gather,
// Expand, Tile. Each works on every storable type by copying elements by size.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "ops/tensor_common.hpp"
#include "ops/util.hpp"

namespace nnjit::ops::tensor_detail {

namespace {

// Product of dims [lo, hi).
int64_t dims_product(const Shape& s, int lo, int hi) {
  int64_t p = 1;
  for (int d = lo; d < hi; ++d) p *= s[static_cast<std::size_t>(d)];
  return p;
}

// An axis attribute that infer() already validated, made non-negative.
int norm_axis(const Attributes& attrs, int r) {
  const int64_t a = attrs.get_int("axis", 0);
  return static_cast<int>(a < 0 ? a + r : a);
}

// ---- Transpose --------------------------------------------------------------------

std::vector<int64_t> transpose_perm(const Attributes& attrs, int r) {
  std::vector<int64_t> perm = attrs.get_ints("perm");
  if (!attrs.has("perm")) {
    perm.resize(static_cast<std::size_t>(r));
    std::iota(perm.rbegin(), perm.rend(), int64_t{0});
  }
  return perm;
}

void transpose_infer(InferContext& ctx) {
  ctx.require_inputs(1, 1);
  require_storable(ctx, 0);
  const Shape& in = ctx.shape(0);
  const int r = ctx.rank(0);
  const std::vector<int64_t> perm = transpose_perm(ctx.attrs, r);
  std::vector<bool> seen(static_cast<std::size_t>(r), false);
  if (static_cast<int>(perm.size()) != r)
    ctx.fail("perm " + shape_str(perm) + " does not match the input rank " + std::to_string(r));
  Shape out;
  for (int64_t p : perm) {
    if (p < 0 || p >= r || seen[static_cast<std::size_t>(p)])
      ctx.fail("perm " + shape_str(perm) + " is not a permutation of 0.." + std::to_string(r - 1));
    seen[static_cast<std::size_t>(p)] = true;
    out.push_back(in[static_cast<std::size_t>(p)]);
  }
  ctx.set_output(0, ctx.dtype(0), out);
}

void transpose_compute(const ComputeContext& ctx) {
  const Tensor& src = ctx.in(0);
  const std::vector<int64_t> perm = transpose_perm(ctx.attrs, src.rank());
  const std::vector<int64_t> strides = strides_of(src.shape());
  std::vector<int64_t> steps;
  for (int64_t p : perm) steps.push_back(strides[static_cast<std::size_t>(p)]);
  affine_copy(src, ctx.out(0), 0, steps);
}

// ---- Concat -----------------------------------------------------------------------

void concat_infer(InferContext& ctx) {
  if (ctx.num_inputs() < 1) ctx.fail("needs at least one input");
  require_storable(ctx, 0);
  if (!ctx.attrs.has("axis")) ctx.fail("attribute axis is required");
  const int r = ctx.rank(0);
  const int axis = ctx.axis(ctx.attrs.get_int("axis", 0), r);
  Shape out = ctx.shape(0);
  for (int i = 1; i < ctx.num_inputs(); ++i) {
    ctx.require_same_type(0, i);
    const Shape& s = ctx.shape(i);
    bool ok = static_cast<int>(s.size()) == r;
    for (int d = 0; ok && d < r; ++d) ok = d == axis || s[d] == out[d];
    if (!ok)
      ctx.fail("input " + std::to_string(i) + " has shape " + shape_str(s) + ", which does not match " +
               shape_str(ctx.shape(0)) + " outside axis " + std::to_string(axis));
    out[axis] += s[axis];
  }
  ctx.set_output(0, ctx.dtype(0), out);
}

void concat_compute(const ComputeContext& ctx) {
  Tensor& dst = ctx.out(0);
  const int r = dst.rank();
  const int axis = norm_axis(ctx.attrs, r);
  const std::size_t es = dtype_size(dst.dtype());
  const int64_t outer = dims_product(dst.shape(), 0, axis);
  const std::size_t dst_row = static_cast<std::size_t>(dims_product(dst.shape(), axis, r)) * es;
  std::size_t at = 0;  // byte offset of the current input inside one output row
  for (std::size_t i = 0; i < ctx.inputs.size(); ++i) {
    const Tensor& src = ctx.in(static_cast<int>(i));
    const std::size_t row = static_cast<std::size_t>(dims_product(src.shape(), axis, r)) * es;
    if (row == 0) continue;
    const auto* s = static_cast<const char*>(src.raw());
    auto* d = static_cast<char*>(dst.raw()) + at;
    for (int64_t o = 0; o < outer; ++o) std::memcpy(d + o * dst_row, s + o * row, row);
    at += row;
  }
}

// ---- Split ------------------------------------------------------------------------

// Part sizes along the axis: the split attribute (opset < 13) or input (opset >= 13),
// else equal parts.
std::vector<int64_t> split_sizes(const IntList& split, int64_t dim, int parts, const std::string& where) {
  if (split.present) {
    if (static_cast<int>(split.values.size()) != parts)
      throw_invalid(where + ": split " + shape_str(split.values) + " has " + std::to_string(split.values.size()) +
                    " parts but the node has " + std::to_string(parts) + " outputs");
    int64_t sum = 0;
    for (int64_t s : split.values) {
      if (s < 0 || s > dim)
        throw_invalid(where + ": split " + shape_str(split.values) + " has a size outside [0, " + std::to_string(dim) +
                      "]");
      sum += s;  // parts <= outputs and each s <= dim: no overflow
    }
    if (sum != dim)
      throw_invalid(where + ": split " + shape_str(split.values) + " sums to " + std::to_string(sum) +
                    ", not the axis size " + std::to_string(dim));
    return split.values;
  }
  if (parts <= 0 || dim % parts != 0)
    throw_invalid(where + ": axis size " + std::to_string(dim) + " cannot be split into " + std::to_string(parts) +
                  " equal parts");
  return std::vector<int64_t>(static_cast<std::size_t>(parts), dim / parts);
}

void split_infer(InferContext& ctx) {
  ctx.require_inputs(1, ctx.opset >= 13 ? 2 : 1);
  require_storable(ctx, 0);
  const Shape& in = ctx.shape(0);
  const int axis = ctx.axis(ctx.attrs.get_int("axis", 0), ctx.rank(0));
  const IntList split = attr_or_input_ints(ctx, "split", 1, 13);
  const std::vector<int64_t> sizes = split_sizes(split, in[axis], ctx.num_outputs(), ctx.where());
  for (int i = 0; i < ctx.num_outputs(); ++i) {
    Shape s = in;
    s[axis] = sizes[static_cast<std::size_t>(i)];
    ctx.set_output(i, ctx.dtype(0), s);
  }
}

void split_compute(const ComputeContext& ctx) {
  const Tensor& src = ctx.in(0);
  const int r = src.rank();
  const int axis = norm_axis(ctx.attrs, r);
  const std::size_t es = dtype_size(src.dtype());
  const int64_t outer = dims_product(src.shape(), 0, axis);
  const std::size_t src_row = static_cast<std::size_t>(dims_product(src.shape(), axis, r)) * es;
  const std::size_t inner = static_cast<std::size_t>(dims_product(src.shape(), axis + 1, r)) * es;
  std::size_t at = 0;
  // The executor preallocates each output with its inferred shape, so its size along
  // the axis is the part's size; an output nobody reads is null but still occupies its part.
  const IntList split = attr_or_input_ints(ctx, "split", 1, 13);
  const std::vector<int64_t> sizes = split_sizes(split, src.dim(axis), static_cast<int>(ctx.outputs.size()), "Split");
  for (std::size_t i = 0; i < ctx.outputs.size(); ++i) {
    const std::size_t row = static_cast<std::size_t>(sizes[i]) * inner;
    if (Tensor* dst = ctx.outputs[i]; dst && row) {
      const auto* s = static_cast<const char*>(src.raw()) + at;
      auto* d = static_cast<char*>(dst->raw());
      for (int64_t o = 0; o < outer; ++o) std::memcpy(d + o * row, s + o * src_row, row);
    }
    at += row;
  }
}

// ---- Gather -----------------------------------------------------------------------

void gather_infer(InferContext& ctx) {
  ctx.require_inputs(2, 2);
  require_storable(ctx, 0);
  ctx.require_type(1, {DType::Int64, DType::Int32});
  const Shape& data = ctx.shape(0);
  const int axis = ctx.axis(ctx.attrs.get_int("axis", 0), ctx.rank(0));
  Shape out(data.begin(), data.begin() + axis);
  out.insert(out.end(), ctx.shape(1).begin(), ctx.shape(1).end());
  out.insert(out.end(), data.begin() + axis + 1, data.end());
  // Constant indices are checked now so that a bad model fails at load, naming the node.
  if (const Tensor* idx = ctx.input(1).value) {
    for (int64_t i = 0; i < idx->numel(); ++i) {
      const int64_t k = int_at(*idx, i);
      if (k < -data[axis] || k >= data[axis])
        ctx.fail("index " + std::to_string(k) + " is out of range for axis " + std::to_string(axis) + " of size " +
                 std::to_string(data[axis]));
    }
  }
  ctx.set_output(0, ctx.dtype(0), out);
}

void gather_compute(const ComputeContext& ctx) {
  const Tensor& src = ctx.in(0);
  const Tensor& idx = ctx.in(1);
  const int r = src.rank();
  const int axis = norm_axis(ctx.attrs, r);
  const int64_t n = src.dim(axis);
  const std::size_t es = dtype_size(src.dtype());
  const int64_t outer = dims_product(src.shape(), 0, axis);
  const std::size_t inner = static_cast<std::size_t>(dims_product(src.shape(), axis + 1, r)) * es;
  const int64_t count = idx.numel();
  const auto* s = static_cast<const char*>(src.raw());
  auto* d = static_cast<char*>(ctx.out(0).raw());
  for (int64_t i = 0; i < count; ++i) {
    int64_t k = int_at(idx, i);
    if (k < -n || k >= n)
      throw_invalid("Gather: index " + std::to_string(k) + " is out of range for axis " + std::to_string(axis) +
                    " of size " + std::to_string(n));
    if (k < 0) k += n;
    if (inner == 0) continue;
    for (int64_t o = 0; o < outer; ++o) std::memcpy(d + (o * count + i) * inner, s + (o * n + k) * inner, inner);
  }
}

// ---- Expand -----------------------------------------------------------------------

void expand_infer(InferContext& ctx) {
  ctx.require_inputs(2, 2);
  require_storable(ctx, 0);
  const std::vector<int64_t> shape = constant_ints(ctx, 1, "shape");
  Shape out;
  try {
    out = broadcast_shapes(ctx.shape(0), shape);
  } catch (const Error& e) {
    ctx.fail(e.what());
  }
  ctx.set_output(0, ctx.dtype(0), out);
}

void expand_compute(const ComputeContext& ctx) {
  affine_copy(ctx.in(0), ctx.out(0), 0, broadcast_strides(ctx.in(0).shape(), ctx.out(0).shape()));
}

// ---- Tile -------------------------------------------------------------------------

void tile_infer(InferContext& ctx) {
  ctx.require_inputs(2, 2);
  require_storable(ctx, 0);
  const std::vector<int64_t> repeats = constant_ints(ctx, 1, "repeats");
  const Shape& in = ctx.shape(0);
  if (repeats.size() != in.size())
    ctx.fail("repeats " + shape_str(repeats) + " do not match the input rank " + std::to_string(in.size()));
  Shape out = in;
  for (std::size_t d = 0; d < in.size(); ++d) {
    if (repeats[d] < 0) ctx.fail("repeats " + shape_str(repeats) + " has a negative count");
    if (in[d] != 0 && repeats[d] > INT64_MAX / in[d]) ctx.fail("repeats " + shape_str(repeats) + " overflow");
    out[d] = in[d] * repeats[d];
  }
  ctx.set_output(0, ctx.dtype(0), out);
}

void tile_compute(const ComputeContext& ctx) {
  const Tensor& src = ctx.in(0);
  Tensor& dst = ctx.out(0);
  std::vector<std::vector<int64_t>> maps(static_cast<std::size_t>(dst.rank()));
  for (int d = 0; d < dst.rank(); ++d)
    for (int64_t o = 0; o < dst.dim(d); ++o) maps[d].push_back(o % src.dim(d));
  indexed_copy(src, dst, maps, nullptr);
}

}  // namespace

void register_movement_ops(std::vector<OpSchema>& out) {
  out.push_back({"Transpose", 1, transpose_infer, transpose_compute, nullptr});
  out.push_back({"Concat", 4, concat_infer, concat_compute, nullptr});
  out.push_back({"Split", 2, split_infer, split_compute, nullptr});
  out.push_back({"Gather", 1, gather_infer, gather_compute, nullptr});
  out.push_back({"Expand", 8, expand_infer, expand_compute, nullptr});
  out.push_back({"Tile", 6, tile_infer, tile_compute, nullptr});
}

}  // namespace nnjit::ops::tensor_detail
