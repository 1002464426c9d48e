// Reference softmax (the oracle for softmax kernels).
//
//   softmax_reference(rows, n, 1, src, dst, false);   // softmax of each contiguous row of n
#pragma once

#include <cstdint>

namespace nnjit::ops {

// src and dst are [outer, n, inner], dense row-major; normalises along the middle dim:
// dst = exp(x - max) / sum(exp(x - max)), or with log_softmax (x - max) - log(sum(...)).
// dst may alias src.
void softmax_reference(int64_t outer, int64_t n, int64_t inner, const float* src, float* dst, bool log_softmax);

}  // namespace nnjit::ops
