// Softmax and LogSoftmax: shape rules and references (ops/softmax.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/nn_schemas.hpp"
#include "ops/softmax.hpp"

namespace nnjit::ops {

void softmax_reference(int64_t outer, int64_t n, int64_t inner, const float* src, float* dst, bool log_softmax) {
  std::vector<double> e(static_cast<std::size_t>(n));  // each exp, computed once
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t in = 0; in < inner; ++in) {
      const float* s = src + o * n * inner + in;
      float* d = dst + o * n * inner + in;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < n; ++i) max = std::max(max, s[i * inner]);
      double sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += e[static_cast<std::size_t>(i)] = std::exp(static_cast<double>(s[i * inner]) - max);
      const double log_sum = std::log(sum);
      for (int64_t i = 0; i < n; ++i)
        d[i * inner] = static_cast<float>(log_softmax ? static_cast<double>(s[i * inner]) - max - log_sum
                                                      : e[static_cast<std::size_t>(i)] / sum);
    }
  }
}

namespace {

struct SoftmaxSplit {
  int64_t outer = 1, n = 1, inner = 1;
};

// Before opset 13 the input is coerced to 2-D at `axis` (default 1) and each row of the
// result is normalised; from opset 13 on, the op normalises along `axis` (default -1).
SoftmaxSplit softmax_split(const Shape& x, const Attributes& attrs, int opset, const std::string& where) {
  const int r = static_cast<int>(x.size());
  const int64_t a = attrs.get_int("axis", opset < 13 ? 1 : -1);
  if (a < -r || a >= r)
    throw_invalid(where + ": axis " + std::to_string(a) + " is out of range for input " + shape_str(x));
  const int axis = static_cast<int>(a < 0 ? a + r : a);
  SoftmaxSplit s;
  for (int i = 0; i < axis; ++i) s.outer *= x[i];
  if (opset < 13) {
    for (int i = axis; i < r; ++i) s.n *= x[i];
  } else {
    s.n = x[axis];
    for (int i = axis + 1; i < r; ++i) s.inner *= x[i];
  }
  return s;
}

void softmax_infer(InferContext& ctx) {
  ctx.require_inputs(1, 1);
  ctx.require_type(0, {DType::Float32});
  softmax_split(ctx.shape(0), ctx.attrs, ctx.opset, ctx.where());
  ctx.set_output(0, DType::Float32, ctx.shape(0));
}

template <bool kLog>
void softmax_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const SoftmaxSplit s = softmax_split(x.shape(), ctx.attrs, ctx.opset, kLog ? "LogSoftmax" : "Softmax");
  softmax_reference(s.outer, s.n, s.inner, x.data<float>(), ctx.out(0).data<float>(), kLog);
}

}  // namespace

void register_softmax_ops(std::vector<OpSchema>& out) {
  out.push_back({.name = "Softmax", .since_opset = 1, .infer = softmax_infer, .compute = softmax_compute<false>});
  out.push_back({.name = "LogSoftmax", .since_opset = 1, .infer = softmax_infer, .compute = softmax_compute<true>});
}

}  // namespace nnjit::ops
