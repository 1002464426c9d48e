// Ops that move whole elements to places their inputs compute: MaxUnpool (opsets 9, 11)
// and ReverseSequence (opset 10). Both are byte moves: MaxUnpool takes float32 and
// float64 (the types MaxPool produces indices for), ReverseSequence any storable type.
// An index or length outside its range is refused at run time, naming the op and value.
#include <algorithm>
#include <cstring>

#include "ops/registry.hpp"
#include "ops/spatial.hpp"
#include "ops/tensor_common.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

namespace {

// ---- MaxUnpool: y = 0, then y.flat[I[e]] = X.flat[e] ---------------------------------------

// The output shape: output_shape (a constant input) where given, else the shape MaxPool
// with these kernel_shape, strides and pads would have read X from:
//   out = (in - 1) * stride - pad_begin - pad_end + kernel.
Shape unpool_shape(const InferContext& c) {
  const Shape& x = c.shape(0);
  if (x.size() < 3) c.fail("input X has shape " + shape_str(x) + "; needs [N, C, spatial...]");
  const std::size_t r = x.size() - 2;
  if (!c.attrs.has("kernel_shape")) c.fail("attribute kernel_shape is required");
  const std::vector<int64_t> kernel = read_per_axis(c.attrs, "kernel_shape", r, 1, 1, c.where());
  const std::vector<int64_t> stride = read_per_axis(c.attrs, "strides", r, 1, 1, c.where());
  const std::vector<int64_t> pads = read_per_axis(c.attrs, "pads", 2 * r, 0, 0, c.where());
  Shape out{x[0], x[1]};
  for (std::size_t d = 0; d < r; ++d) {
    const int64_t size = (x[d + 2] - 1) * stride[d] - pads[d] - pads[d + r] + kernel[d];
    if (x[d + 2] > 0 && size < 1)
      c.fail("kernel_shape, strides and pads give spatial axis " + std::to_string(d) + " the size " +
             std::to_string(size));
    out.push_back(x[d + 2] > 0 ? size : 0);
  }
  if (!c.has_input(2)) return out;

  const Tensor& given = c.constant(2, "output_shape");
  if (given.dtype() != DType::Int64 || given.rank() != 1)
    c.fail("output_shape must be a 1-D int64 tensor, got " + dtype_name(given.dtype()) + " " +
           shape_str(given.shape()));
  const Shape want = to_ints(given);
  if (want.size() != x.size() || want[0] != x[0] || want[1] != x[1])
    c.fail("output_shape " + shape_str(want) + " must keep the rank, N and C of X " + shape_str(x));
  for (int64_t v : want)
    if (v < 0 || v > kMaxSpatialValue) c.fail("output_shape " + shape_str(want) + " has an out-of-range size");
  return want;
}

void infer_max_unpool(InferContext& c) {
  c.require_inputs(2, 3);
  c.require_type(0, {DType::Float32, DType::Float64});
  if (c.dtype(1) != DType::Int64) c.fail("indices I must be int64, got " + dtype_name(c.dtype(1)));
  if (c.shape(1) != c.shape(0))
    c.fail("indices I " + shape_str(c.shape(1)) + " must have the shape of X " + shape_str(c.shape(0)));
  c.set_output(0, c.dtype(0), unpool_shape(c));
}

void compute_max_unpool(const ComputeContext& c) {
  const Tensor &x = c.in(0), &indices = c.in(1);
  Tensor& y = c.out(0);
  const std::size_t es = dtype_size(x.dtype());
  std::memset(y.raw(), 0, y.nbytes());
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(y.raw());
  const int64_t* idx = indices.data<int64_t>();
  for (int64_t e = 0; e < x.numel(); ++e) {
    // Indices address the whole output, flattened, as MaxPool's Indices output does.
    if (idx[e] < 0 || idx[e] >= y.numel())
      throw_invalid("MaxUnpool: index " + std::to_string(idx[e]) + " is out of range for an output of " +
                    std::to_string(y.numel()) + " elements " + shape_str(y.shape()));
    std::memcpy(dst + static_cast<std::size_t>(idx[e]) * es, src + static_cast<std::size_t>(e) * es, es);
  }
}

// ---- ReverseSequence: reverse the first sequence_lens[b] steps of each batch entry ----------

struct SequenceAxes {
  int batch, time;
};

SequenceAxes sequence_axes(const Attributes& a, const std::string& where) {
  const int64_t batch = a.get_int("batch_axis", 1), time = a.get_int("time_axis", 0);
  if ((batch != 0 && batch != 1) || (time != 0 && time != 1) || batch == time)
    throw_invalid(where + ": batch_axis " + std::to_string(batch) + " and time_axis " + std::to_string(time) +
                  " must be 0 and 1, one each");
  return {static_cast<int>(batch), static_cast<int>(time)};
}

void infer_reverse_sequence(InferContext& c) {
  c.require_inputs(2, 2);
  tensor_detail::require_storable(c, 0);
  if (c.rank(0) < 2) c.fail("input has shape " + shape_str(c.shape(0)) + "; needs rank >= 2");
  const SequenceAxes axes = sequence_axes(c.attrs, c.where());
  if (c.dtype(1) != DType::Int64) c.fail("sequence_lens must be int64, got " + dtype_name(c.dtype(1)));
  const int64_t batch = c.shape(0)[static_cast<std::size_t>(axes.batch)];
  if (c.shape(1) != Shape{batch})
    c.fail("sequence_lens has shape " + shape_str(c.shape(1)) + "; needs [" + std::to_string(batch) +
           "], the batch dim of input " + shape_str(c.shape(0)));
  c.set_output(0, c.dtype(0), c.shape(0));
}

// Axes 0 and 1 are batch and time (in either order); the dims after them move as one
// contiguous block per (batch, time) pair.
void compute_reverse_sequence(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const SequenceAxes axes = sequence_axes(c.attrs, "ReverseSequence");
  const int64_t d0 = x.dim(0), d1 = x.dim(1), steps = x.dim(axes.time);
  const int64_t* lens = c.in(1).data<int64_t>();
  for (int64_t b = 0; b < x.dim(axes.batch); ++b)
    if (lens[b] < 0 || lens[b] > steps)
      throw_invalid("ReverseSequence: sequence_lens[" + std::to_string(b) + "] = " + std::to_string(lens[b]) +
                    " is outside [0, " + std::to_string(steps) + "]");
  const std::size_t block = static_cast<std::size_t>(d0 && d1 ? x.numel() / (d0 * d1) : 0) * dtype_size(x.dtype());
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(c.out(0).raw());
  for (int64_t i0 = 0; i0 < d0; ++i0)
    for (int64_t i1 = 0; i1 < d1; ++i1) {
      const int64_t b = axes.batch == 0 ? i0 : i1, t = axes.batch == 0 ? i1 : i0;
      const int64_t from = t < lens[b] ? lens[b] - 1 - t : t;
      const int64_t s = axes.batch == 0 ? b * d1 + from : from * d1 + b;
      if (block)
        std::memcpy(dst + static_cast<std::size_t>(i0 * d1 + i1) * block, src + static_cast<std::size_t>(s) * block,
                    block);
    }
}

}  // namespace

void register_rearrange_ops(std::vector<OpSchema>& out) {
  out.push_back({"MaxUnpool", 9, infer_max_unpool, compute_max_unpool, nullptr});
  out.push_back({"ReverseSequence", 10, infer_reverse_sequence, compute_reverse_sequence, nullptr});
}

}  // namespace nnjit::ops
