// Helpers shared by the shape rules and reference implementations.
#pragma once

#include <cstdint>
#include <vector>

#include "nnjit/tensor.hpp"

namespace nnjit::ops {

// Numpy-style multidirectional broadcast; throws InvalidInput naming both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Row-major strides of a shape (in elements).
std::vector<int64_t> strides_of(const Shape& s);
// Strides of `in` broadcast to `out` (0 along broadcast dims), right-aligned.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);
// Whether `from` broadcasts unidirectionally to `to` (ONNX's rule for Gemm's C and
// LayerNormalization's Scale and B): no higher rank, each dim right-aligned 1 or equal.
inline bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (std::size_t d = 0; d < from.size(); ++d)
    if (from[d] != 1 && from[d] != to[to.size() - from.size() + d]) return false;
  return true;
}
// Reads element i of an integer tensor (int32/int64) as int64; InvalidInput for other types.
int64_t int_at(const Tensor& t, int64_t i);
// All elements of an int32/int64 tensor as int64.
std::vector<int64_t> to_ints(const Tensor& t);
// Element i of a float/int tensor as double.
double number_at(const Tensor& t, int64_t i);

// Keys' cubic convolution kernel with parameter a (ONNX's cubic_coeff_a; -0.75 is
// PyTorch's and OpenCV's bicubic) at distance d >= 0 from the sample point. Resize's
// cubic mode and GridSample's bicubic mode weigh their four taps by it.
inline double cubic_kernel(double d, double a) {
  if (d <= 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
  if (d < 2) return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
  return 0;
}

// Calls f(out_index, in_offsets...) for every element of `out`, with each input's offset
// computed from its broadcast strides. Used by the elementwise references.
template <class F>
void for_each_broadcast(const Shape& out, const std::vector<std::vector<int64_t>>& in_strides, F&& f) {
  const int r = static_cast<int>(out.size());
  const int64_t n = shape_numel(out);
  std::vector<int64_t> idx(static_cast<std::size_t>(r), 0);
  std::vector<int64_t> off(in_strides.size(), 0);
  for (int64_t e = 0; e < n; ++e) {
    f(e, off);
    for (int d = r - 1; d >= 0; --d) {
      ++idx[d];
      for (std::size_t k = 0; k < off.size(); ++k) off[k] += in_strides[k][d];
      if (idx[d] < out[d]) break;
      for (std::size_t k = 0; k < off.size(); ++k) off[k] -= in_strides[k][d] * out[d];
      idx[d] = 0;
    }
  }
}

}  // namespace nnjit::ops
