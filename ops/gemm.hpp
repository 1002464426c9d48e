// Reference matrix products (the oracles for jit/gemm), shared by Gemm and MatMul.
//
//   gemm_reference(false, true, M, N, K, 1.f, a, b, 0.f, c);   // c = a * b^T
#pragma once

#include <cstdint>
#include <string>

#include "nnjit/tensor.hpp"

namespace nnjit::ops {

// c[M,N] = alpha * op(a) * op(b) + beta * c, all dense row-major float32, where op(a) is
// a [M,K] (or a [K,M] transposed when trans_a) and op(b) is b [K,N] (or b [N,K]
// transposed when trans_b). With beta == 0 the old contents of c are not read (so
// garbage or NaN there does not leak into the result). c must not alias a or b.
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* a,
                    const float* b, float beta, float* c);

// numpy.matmul's shapes (MatMul, MatMulInteger, QLinearMatMul): a 1-D A is a row vector
// and a 1-D B a column vector, the added dim being removed from the result; the leading
// (batch) dims broadcast. Throws InvalidInput prefixed with `where`.
struct MatMulShapes {
  int64_t M = 1, N = 1, K = 1;
  Shape a_batch, b_batch, batch, out;
};
MatMulShapes matmul_shapes(const Shape& a, const Shape& b, const std::string& where);

}  // namespace nnjit::ops
