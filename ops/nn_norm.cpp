// BatchNormalization (inference) and LayerNormalization: shape rules and references.
#include <cmath>

#include "ops/nn_schemas.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

namespace {

// ---- BatchNormalization: Y = (X - mean) / sqrt(var + epsilon) * scale + B, per channel
// (dim 1), with the running statistics given as inputs.

void batchnorm_infer(InferContext& ctx) {
  ctx.require_inputs(5, 5);
  ctx.require_type(0, {DType::Float32});
  for (int i = 1; i < 5; ++i) ctx.require_type(i, {DType::Float32});
  if (ctx.num_outputs() > 1)
    ctx.unsupported("the training outputs (running mean/var, saved mean/var) are not supported");
  if (ctx.rank(0) < 2) ctx.fail("input X has shape " + shape_str(ctx.shape(0)) + "; needs [N, C, ...]");
  const Shape channels{ctx.shape(0)[1]};
  static const char* const kNames[] = {"X", "scale", "B", "input_mean", "input_var"};
  for (int i = 1; i < 5; ++i)
    if (ctx.shape(i) != channels)
      ctx.fail(std::string("input ") + kNames[i] + " has shape " + shape_str(ctx.shape(i)) + ", expected " +
               shape_str(channels));
  ctx.set_output(0, DType::Float32, ctx.shape(0));
}

void batchnorm_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const float* scale = ctx.in(1).data<float>();
  const float* bias = ctx.in(2).data<float>();
  const float* mean = ctx.in(3).data<float>();
  const float* var = ctx.in(4).data<float>();
  const double epsilon = ctx.attrs.get_float("epsilon", 1e-5f);
  const int64_t N = x.dim(0), C = x.dim(1), plane = C && N ? x.numel() / (N * C) : 0;
  const float* xp = x.data<float>();
  float* yp = ctx.out(0).data<float>();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const double inv_std = 1.0 / std::sqrt(static_cast<double>(var[c]) + epsilon);
      const int64_t base = (n * C + c) * plane;
      for (int64_t i = 0; i < plane; ++i)
        yp[base + i] = static_cast<float>((xp[base + i] - static_cast<double>(mean[c])) * inv_std * scale[c] + bias[c]);
    }
  }
}

void batchnorm_check(const Attributes& attrs, int opset, std::vector<std::string>& problems) {
  if (opset >= 14 && attrs.get_int("training_mode", 0) != 0)
    problems.push_back("BatchNormalization training_mode=1 is not supported (inference only)");
  // Opsets 7 and 8 allow per-activation statistics (spatial=0), shaped [C, D1, ...].
  if (opset < 9 && attrs.get_int("spatial", 1) == 0)
    problems.push_back("BatchNormalization spatial=0 is not supported");
}

// ---- LayerNormalization (opset 17): normalise over the dims [axis, rank); Scale and B
// broadcast unidirectionally to those dims. Optional outputs Mean and InvStdDev have
// X's shape with the normalised dims set to 1.

int layernorm_axis(const Attributes& attrs, int rank, const std::string& where) {
  // The spec allows axis == rank (nothing normalised: Y = B).
  const int64_t a = attrs.get_int("axis", -1);
  if (a < -rank || a > rank)
    throw_invalid(where + ": axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
  return static_cast<int>(a < 0 ? a + rank : a);
}

void layernorm_infer(InferContext& ctx) {
  ctx.require_inputs(2, 3);
  ctx.require_type(0, {DType::Float32});
  ctx.require_same_type(0, 1);
  if (ctx.has_input(2)) ctx.require_same_type(0, 2);
  const Shape& x = ctx.shape(0);
  const int axis = layernorm_axis(ctx.attrs, ctx.rank(0), ctx.where());
  const Shape normalized(x.begin() + axis, x.end());
  for (int i = 1; i < 3; ++i) {
    if (!ctx.has_input(i)) continue;
    const Shape& s = ctx.shape(i);
    if (!broadcasts_to(s, normalized))
      ctx.fail(std::string(i == 1 ? "Scale " : "B ") + shape_str(s) + " cannot be broadcast to the normalised dims " +
               shape_str(normalized));
  }
  ctx.set_output(0, DType::Float32, x);
  Shape stats = x;
  std::fill(stats.begin() + axis, stats.end(), 1);
  ctx.set_output(1, DType::Float32, stats);
  ctx.set_output(2, DType::Float32, stats);
}

// An optional output the executor provided, or nullptr.
float* optional_output(const ComputeContext& ctx, int i) {
  if (i >= static_cast<int>(ctx.outputs.size()) || !ctx.outputs[static_cast<std::size_t>(i)]) return nullptr;
  return ctx.out(i).data<float>();
}

void layernorm_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const int axis = layernorm_axis(ctx.attrs, x.rank(), "LayerNormalization");
  const Shape normalized(x.shape().begin() + axis, x.shape().end());
  const int64_t n = shape_numel(normalized);
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().begin() + axis));
  // Flat offset into Scale / B for each normalised element (they broadcast to `normalized`).
  auto offsets = [&](const Tensor& t) {
    std::vector<int64_t> off(static_cast<std::size_t>(n));
    for_each_broadcast(normalized, {broadcast_strides(t.shape(), normalized)},
                       [&](int64_t e, const std::vector<int64_t>& o) { off[static_cast<std::size_t>(e)] = o[0]; });
    return off;
  };
  const std::vector<int64_t> scale_off = offsets(ctx.in(1));
  const std::vector<int64_t> bias_off = ctx.has(2) ? offsets(ctx.in(2)) : std::vector<int64_t>{};
  const float* scale = ctx.in(1).data<float>();
  const float* bias = ctx.has(2) ? ctx.in(2).data<float>() : nullptr;
  const double epsilon = ctx.attrs.get_float("epsilon", 1e-5f);
  const float* xp = x.data<float>();
  float* yp = ctx.out(0).data<float>();
  float* mean_out = optional_output(ctx, 1);
  float* inv_std_out = optional_output(ctx, 2);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = xp + r * n;
    float* yr = yp + r * n;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += xr[i];
    const double mean = sum / static_cast<double>(n);
    double sq = 0;
    for (int64_t i = 0; i < n; ++i) sq += (xr[i] - mean) * (xr[i] - mean);
    const double inv_std = 1.0 / std::sqrt(sq / static_cast<double>(n) + epsilon);
    for (int64_t i = 0; i < n; ++i) {
      double v = (xr[i] - mean) * inv_std * scale[scale_off[static_cast<std::size_t>(i)]];
      if (bias) v += bias[bias_off[static_cast<std::size_t>(i)]];
      yr[i] = static_cast<float>(v);
    }
    if (mean_out) mean_out[r] = static_cast<float>(mean);
    if (inv_std_out) inv_std_out[r] = static_cast<float>(inv_std);
  }
}

}  // namespace

void register_norm_ops(std::vector<OpSchema>& out) {
  out.push_back({.name = "BatchNormalization",
                 .since_opset = 1,
                 .infer = batchnorm_infer,
                 .compute = batchnorm_compute,
                 .check = batchnorm_check});
  out.push_back(
      {.name = "LayerNormalization", .since_opset = 17, .infer = layernorm_infer, .compute = layernorm_compute});
}

}  // namespace nnjit::ops
