// InstanceNormalization, LRN (local response normalisation across channels) and
// MeanVarianceNormalization: shape rules and references. All take float32 and compute in
// double; the first two take [N, C, D1, ...].
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops/registry.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

namespace {

// [N, C, plane] of an [N, C, ...] tensor.
struct ChannelSplit {
  int64_t N, C, plane;
};

ChannelSplit channel_split(const Tensor& x) {
  const int64_t N = x.dim(0), C = x.dim(1);
  return {N, C, N && C ? x.numel() / (N * C) : 0};
}

void require_nc(const InferContext& c) {
  c.require_type(0, {DType::Float32});
  if (c.rank(0) < 2) c.fail("input X has shape " + shape_str(c.shape(0)) + "; needs [N, C, ...]");
}

// ---- InstanceNormalization: y = scale * (x - mean) / sqrt(var + epsilon) + B, with mean
// and (population) variance taken per sample and channel over the spatial dims.

void infer_instance_norm(InferContext& c) {
  c.require_inputs(3, 3);
  require_nc(c);
  const Shape channels{c.shape(0)[1]};
  for (int i = 1; i <= 2; ++i) {
    c.require_type(i, {DType::Float32});
    if (c.shape(i) != channels)
      c.fail(std::string(i == 1 ? "scale" : "B") + " has shape " + shape_str(c.shape(i)) + ", expected " +
             shape_str(channels));
  }
  c.set_output(0, DType::Float32, c.shape(0));
}

void compute_instance_norm(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const float* scale = c.in(1).data<float>();
  const float* bias = c.in(2).data<float>();
  const double epsilon = c.attrs.get_float("epsilon", 1e-5f);
  const ChannelSplit s = channel_split(x);
  const float* src = x.data<float>();
  float* dst = c.out(0).data<float>();
  for (int64_t nc = 0; nc < s.N * s.C; ++nc) {
    const float* p = src + nc * s.plane;
    float* q = dst + nc * s.plane;
    if (s.plane == 0) continue;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < s.plane; ++i) mean += p[i];
    mean /= static_cast<double>(s.plane);
    for (int64_t i = 0; i < s.plane; ++i) var += (p[i] - mean) * (p[i] - mean);
    var /= static_cast<double>(s.plane);
    const int64_t ch = nc % s.C;
    const double k = scale[ch] / std::sqrt(var + epsilon);
    for (int64_t i = 0; i < s.plane; ++i) q[i] = static_cast<float>((p[i] - mean) * k + bias[ch]);
  }
}

// ---- LRN: y = x / (bias + alpha / size * square_sum) ^ beta, square_sum over the
// channels [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)] clipped to [0, C).

void infer_lrn(InferContext& c) {
  c.require_inputs(1, 1);
  require_nc(c);
  if (!c.attrs.has("size")) c.fail("attribute 'size' is required");
  const int64_t size = c.attrs.get_int("size", 0);
  if (size < 1) c.fail("size must be >= 1, got " + std::to_string(size));
  c.set_output(0, DType::Float32, c.shape(0));
}

void compute_lrn(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const int64_t size = c.attrs.get_int("size", 1);
  const double alpha = c.attrs.get_float("alpha", 1e-4f);
  const double beta = c.attrs.get_float("beta", 0.75f);
  const double bias = c.attrs.get_float("bias", 1.f);
  const int64_t before = (size - 1) / 2, after = size - 1 - before;  // floor and ceil of (size - 1) / 2
  const ChannelSplit s = channel_split(x);
  const float* src = x.data<float>();
  float* dst = c.out(0).data<float>();
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t ch = 0; ch < s.C; ++ch) {
      const int64_t lo = std::max<int64_t>(0, ch - before), hi = std::min(s.C - 1, ch + after);
      for (int64_t i = 0; i < s.plane; ++i) {
        double sum = 0;
        for (int64_t k = lo; k <= hi; ++k) {
          const double v = src[(n * s.C + k) * s.plane + i];
          sum += v * v;
        }
        const int64_t e = (n * s.C + ch) * s.plane + i;
        dst[e] = static_cast<float>(src[e] / std::pow(bias + alpha / static_cast<double>(size) * sum, beta));
      }
    }
}

// ---- MeanVarianceNormalization: y = (x - mean) / (sqrt(var) + 1e-9), mean and
// (population) variance over `axes` (default [0, 2, 3]; empty = every axis, as ReduceMean).
// The epsilon is added to the standard deviation, as in the op's ONNX function body.

constexpr double kMvnEpsilon = 1e-9;

// The input's shape with the normalised axes set to 1 (the shape of mean and var);
// InvalidInput (prefixed with `where`) for an axis out of range or given twice.
Shape mvn_stats_shape(const Shape& x, const std::vector<int64_t>& axes, const std::string& where) {
  const int r = static_cast<int>(x.size());
  Shape stats = axes.empty() ? Shape(x.size(), 1) : x;
  std::vector<bool> seen(x.size(), false);
  for (int64_t a : axes) {
    if (a < -r || a >= r)
      throw_invalid(where + ": axis " + std::to_string(a) + " is out of range for input " + shape_str(x));
    const auto d = static_cast<std::size_t>(a < 0 ? a + r : a);
    if (seen[d]) throw_invalid(where + ": axis " + std::to_string(a) + " is given twice in axes");
    seen[d] = true;
    stats[d] = 1;
  }
  return stats;
}

const std::vector<int64_t> kMvnDefaultAxes = {0, 2, 3};

void infer_mvn(InferContext& c) {
  c.require_inputs(1, 1);
  c.require_type(0, {DType::Float32});
  mvn_stats_shape(c.shape(0), c.attrs.get_ints("axes", kMvnDefaultAxes), c.where());
  c.set_output(0, DType::Float32, c.shape(0));
}

void compute_mvn(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const Shape stats_shape =
      mvn_stats_shape(x.shape(), c.attrs.get_ints("axes", kMvnDefaultAxes), "MeanVarianceNormalization");
  const int64_t groups = shape_numel(stats_shape);
  if (groups == 0 || x.numel() == 0) return;
  const double count = static_cast<double>(x.numel() / groups);  // elements per (mean, var) pair
  // Each element's (mean, var) pair: stride 0 along the normalised axes.
  const std::vector<std::vector<int64_t>> to_stats = {broadcast_strides(stats_shape, x.shape())};
  const float* src = x.data<float>();
  float* dst = c.out(0).data<float>();
  std::vector<double> mean(static_cast<std::size_t>(groups), 0.0), var(static_cast<std::size_t>(groups), 0.0);
  for_each_broadcast(x.shape(), to_stats, [&](int64_t e, const std::vector<int64_t>& g) {
    mean[static_cast<std::size_t>(g[0])] += src[e];
  });
  for (double& m : mean) m /= count;
  for_each_broadcast(x.shape(), to_stats, [&](int64_t e, const std::vector<int64_t>& g) {
    const double dev = src[e] - mean[static_cast<std::size_t>(g[0])];
    var[static_cast<std::size_t>(g[0])] += dev * dev;
  });
  for (double& v : var) v /= count;
  for_each_broadcast(x.shape(), to_stats, [&](int64_t e, const std::vector<int64_t>& g) {
    const auto k = static_cast<std::size_t>(g[0]);
    dst[e] = static_cast<float>((src[e] - mean[k]) / (std::sqrt(var[k]) + kMvnEpsilon));
  });
}

}  // namespace

void register_norm_extra_ops(std::vector<OpSchema>& out) {
  out.push_back({"InstanceNormalization", 6, infer_instance_norm, compute_instance_norm, nullptr});
  out.push_back({"LRN", 1, infer_lrn, compute_lrn, nullptr});
  out.push_back({"MeanVarianceNormalization", 9, infer_mvn, compute_mvn, nullptr});
}

}  // namespace nnjit::ops
