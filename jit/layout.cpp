#include "jit/layout.hpp"

#include <xmmintrin.h>

#include <algorithm>

namespace nnjit::jit {

void transpose_floats(FloatsIn from, int64_t stride, int64_t rows, int64_t cols, float* to, int64_t ld) {
  constexpr int64_t kRun = 64;
  auto load = [&](int64_t j, int64_t c) { return _mm_loadu_ps(static_cast<const float*>(from.address(j * stride + c))); };
  for (int64_t c0 = 0; c0 < cols; c0 += kRun) {
    const int64_t c1 = std::min(cols, c0 + kRun);
    int64_t j = 0;
    for (; j + 4 <= rows; j += 4) {
      int64_t c = c0;
      for (; c + 4 <= c1; c += 4) {
        __m128 r0 = load(j, c), r1 = load(j + 1, c), r2 = load(j + 2, c), r3 = load(j + 3, c);
        _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
        _mm_storeu_ps(to + c * ld + j, r0);
        _mm_storeu_ps(to + (c + 1) * ld + j, r1);
        _mm_storeu_ps(to + (c + 2) * ld + j, r2);
        _mm_storeu_ps(to + (c + 3) * ld + j, r3);
      }
      for (; c < c1; ++c)
        for (int64_t i = j; i < j + 4; ++i) to[c * ld + i] = from[i * stride + c];
    }
    for (; j < rows; ++j)
      for (int64_t c = c0; c < c1; ++c) to[c * ld + j] = from[j * stride + c];
  }
}

}  // namespace nnjit::jit
