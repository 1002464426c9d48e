// Helpers shared by the test suites.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "nnjit/tensor.hpp"

namespace nnjit::testing {

// A float32 tensor of seeded uniform values in [lo, hi).
inline Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t(DType::Float32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = dist(rng);
  return t;
}

// Largest |a-b| over all elements (a and b must have equal shapes).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, static_cast<double>(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  return m;
}

}  // namespace nnjit::testing
