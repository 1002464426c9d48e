// Gemm and MatMul: shape rules and references (ops/gemm.hpp).
#include <algorithm>

#include "ops/gemm.hpp"
#include "ops/nn_schemas.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* a,
                    const float* b, float beta, float* c) {
  // Element strides of op(a) and op(b) along (row, column).
  const int64_t a_row = trans_a ? 1 : K, a_col = trans_a ? M : 1;
  std::vector<float> acc(static_cast<std::size_t>(N));
  for (int64_t i = 0; i < M; ++i) {
    std::fill(acc.begin(), acc.end(), 0.f);
    if (trans_b) {
      // b is [N,K]: each output is a dot product of two contiguous-ish rows.
      for (int64_t j = 0; j < N; ++j) {
        float sum = 0;
        for (int64_t k = 0; k < K; ++k) sum += a[i * a_row + k * a_col] * b[j * K + k];
        acc[j] = sum;
      }
    } else {
      // b is [K,N]: accumulate row k of b scaled by a(i,k), contiguous along N.
      for (int64_t k = 0; k < K; ++k) {
        const float av = a[i * a_row + k * a_col];
        const float* brow = b + k * N;
        for (int64_t j = 0; j < N; ++j) acc[j] += av * brow[j];
      }
    }
    float* crow = c + i * N;
    for (int64_t j = 0; j < N; ++j) crow[j] = alpha * acc[j] + (beta == 0.f ? 0.f : beta * crow[j]);
  }
}

MatMulShapes matmul_shapes(const Shape& a, const Shape& b, const std::string& where) {
  if (a.empty() || b.empty())
    throw_invalid(where + ": MatMul operands must have rank >= 1, got " + shape_str(a) + " and " + shape_str(b));
  MatMulShapes s;
  const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  s.M = a_vec ? 1 : a[a.size() - 2];
  s.K = a.back();
  const int64_t kb = b_vec ? b[0] : b[b.size() - 2];
  s.N = b_vec ? 1 : b.back();
  if (s.K != kb) throw_invalid(where + ": inner dimensions differ: A " + shape_str(a) + ", B " + shape_str(b));
  s.a_batch.assign(a.begin(), a.end() - (a_vec ? 1 : 2));
  s.b_batch.assign(b.begin(), b.end() - (b_vec ? 1 : 2));
  try {
    s.batch = broadcast_shapes(s.a_batch, s.b_batch);
  } catch (const Error&) {
    throw_invalid(where + ": batch dims of A " + shape_str(a) + " and B " + shape_str(b) + " do not broadcast");
  }
  s.out = s.batch;
  if (!a_vec) s.out.push_back(s.M);
  if (!b_vec) s.out.push_back(s.N);
  return s;
}

namespace {

// ---- Gemm: Y = alpha * A' * B' + beta * C, C broadcast unidirectionally to [M, N].

void gemm_infer(InferContext& ctx) {
  ctx.require_inputs(2, 3);
  ctx.require_type(0, {DType::Float32});
  ctx.require_same_type(0, 1);
  if (ctx.has_input(2)) ctx.require_same_type(0, 2);
  if (ctx.rank(0) != 2 || ctx.rank(1) != 2)
    ctx.fail("A " + shape_str(ctx.shape(0)) + " and B " + shape_str(ctx.shape(1)) + " must both be matrices");
  const bool ta = ctx.attrs.get_int("transA", 0) != 0, tb = ctx.attrs.get_int("transB", 0) != 0;
  const int64_t M = ctx.shape(0)[ta ? 1 : 0], K = ctx.shape(0)[ta ? 0 : 1];
  const int64_t KB = ctx.shape(1)[tb ? 1 : 0], N = ctx.shape(1)[tb ? 0 : 1];
  if (K != KB)
    ctx.fail("inner dimensions differ: A " + shape_str(ctx.shape(0)) + (ta ? " (transposed)" : "") + ", B " +
             shape_str(ctx.shape(1)) + (tb ? " (transposed)" : ""));
  if (ctx.has_input(2)) {
    const Shape& c = ctx.shape(2);
    const Shape mn{M, N};
    if (!broadcasts_to(c, mn)) ctx.fail("C " + shape_str(c) + " cannot be broadcast to the output " + shape_str(mn));
  }
  ctx.set_output(0, DType::Float32, {M, N});
}

void gemm_compute(const ComputeContext& ctx) {
  const Tensor& a = ctx.in(0);
  const Tensor& b = ctx.in(1);
  Tensor& y = ctx.out(0);
  const bool ta = ctx.attrs.get_int("transA", 0) != 0, tb = ctx.attrs.get_int("transB", 0) != 0;
  const int64_t M = y.dim(0), N = y.dim(1), K = a.dim(ta ? 0 : 1);
  float beta = 0.f;
  if (ctx.has(2)) {
    const Tensor& c = ctx.in(2);
    const std::vector<int64_t> cs = broadcast_strides(c.shape(), y.shape());
    const float* cp = c.data<float>();
    float* yp = y.data<float>();
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) yp[i * N + j] = cp[i * cs[0] + j * cs[1]];
    beta = ctx.attrs.get_float("beta", 1.f);
  }
  gemm_reference(ta, tb, M, N, K, ctx.attrs.get_float("alpha", 1.f), a.data<float>(), b.data<float>(), beta,
                 y.data<float>());
}

// ---- MatMul: numpy.matmul (matmul_shapes, ops/gemm.hpp).

void matmul_infer(InferContext& ctx) {
  ctx.require_inputs(2, 2);
  ctx.require_type(0, {DType::Float32});
  ctx.require_same_type(0, 1);
  ctx.set_output(0, DType::Float32, matmul_shapes(ctx.shape(0), ctx.shape(1), ctx.where()).out);
}

void matmul_compute(const ComputeContext& ctx) {
  const Tensor& a = ctx.in(0);
  const Tensor& b = ctx.in(1);
  const MatMulShapes s = matmul_shapes(a.shape(), b.shape(), "MatMul");
  // Broadcast strides over the batch dims, in units of whole matrices.
  const std::vector<std::vector<int64_t>> strides{broadcast_strides(s.a_batch, s.batch),
                                                  broadcast_strides(s.b_batch, s.batch)};
  const float* ap = a.data<float>();
  const float* bp = b.data<float>();
  float* yp = ctx.out(0).data<float>();
  for_each_broadcast(s.batch, strides, [&](int64_t e, const std::vector<int64_t>& off) {
    gemm_reference(false, false, s.M, s.N, s.K, 1.f, ap + off[0] * s.M * s.K, bp + off[1] * s.K * s.N, 0.f,
                   yp + e * s.M * s.N);
  });
}

}  // namespace

void register_gemm_ops(std::vector<OpSchema>& out) {
  out.push_back({.name = "Gemm", .since_opset = 1, .infer = gemm_infer, .compute = gemm_compute});
  out.push_back({.name = "MatMul", .since_opset = 1, .infer = matmul_infer, .compute = matmul_compute});
}

}  // namespace nnjit::ops
