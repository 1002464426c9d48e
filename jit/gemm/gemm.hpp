// gemm: Y[M][N] = act(X[M][K] · W[K][N] + bias[N]) in fp32, for ONNX Gemm / MatMul whose
// weights are constant (classifier heads, attention projections). X and Y are plain
// row-major; W is packed once, at load, into panels of the register tile's width.
//
//   GemmShape shape{.m = 1, .k = 1280, .n = 1000, .activation = Activation::none()};
//   auto planned = plan_gemm(shape, host);                  // GemmPlan or a reason
//   const GemmPlan& plan = std::get<GemmPlan>(planned);
//   // ONNX Gemm(A, B, C, alpha, beta, transB=1): B is [N][K]
//   GemmWeights w = pack_gemm_weights(plan, onnx_b, /*trans_b=*/true, alpha, onnx_c, beta);
//   auto kernel = get_gemm_kernel(plan, "node 'fc' (Gemm)");  // at load
//   kernel->run(x, y, w);                                   // lda = K, ldc = N
//
// Layouts:
//   src (X)   [M][lda] floats, lda >= K; only the first K of each row are read
//   dst (Y)   [M][ldc] floats, ldc >= N; only the first N of each row are written
//   weights   ONNX's [K][N] (MatMul, Gemm transB=0) or [N][K] (Gemm transB=1), packed by
//             pack_gemm_weights into plan.panels() panels of [K][panel width], the width
//             of a register tile (main.n_blocks * block floats; the last panel may be
//             narrower), zero past column N
//   bias      [N] (Gemm's C when it is [N] or [1][N]), broadcast over the rows
// Contracts:
//  - Columns of dst past N and rows outside [row_begin, row_end) are never written;
//    elements of src past K in a row are never read.
//  - dst must not overlap src: with several K chunks (plan.chunks > 1) dst holds partial
//    sums between chunks.
//  - One call of the generated code (GemmArgs) handles a range of rows and a range of
//    panels (column tiles), so threads may split a product by rows and by columns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "jit/host_info.hpp"
#include "jit/isa.hpp"
#include "jit/jit_kernel.hpp"
#include "jit/layout.hpp"
#include "jit/post_ops.hpp"

namespace nnjit::jit {

struct GemmShape {
  int64_t m = 0;  // rows of X and Y
  int64_t k = 0;  // the reduction
  int64_t n = 0;  // columns of W and Y
  bool has_bias = true;
  Activation activation;

  // Floating-point operations of one run (a multiply-add counts two).
  double flops() const { return 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n); }
  std::string key() const;
  bool operator==(const GemmShape&) const = default;
};

// A register tile of the microkernel: `n_blocks` column blocks (vectors) by `rows` rows
// of Y, all held in accumulators across the K loop.
struct GemmTile {
  int n_blocks = 0;
  int rows = 0;
  bool operator==(const GemmTile&) const = default;
};

struct GemmPlan {
  GemmShape shape;
  Isa isa = Isa::avx512;
  int block = 16;  // floats per vector

  int64_t n_blocks = 0;  // ceil(N / block)
  GemmTile main;         // the tile of panels [0, main_panels)
  GemmTile tail;         // the last panel's (narrower, or holding the column tail), else 0x0
  int64_t main_panels = 0;
  // K steps unrolled in the microkernel's loop; chunk_k is a multiple of it.
  int k_unroll = 4;
  // Cache blocking: K in chunks of chunk_k (a panel's weights for one chunk stay in L2
  // while every row tile of a row block reads them), rows in blocks of row_block (the
  // block's X for one chunk stays near L2 while every panel reads it; plan.cpp says why
  // blocks are large).
  int64_t chunk_k = 0;
  int64_t chunks = 0;
  int64_t row_block = 0;

  int64_t panels() const { return main_panels + (tail.n_blocks > 0 ? 1 : 0); }
  int64_t panel_width(int64_t panel) const { return (panel < main_panels ? main.n_blocks : tail.n_blocks) * block; }
  int64_t packed_weights_floats() const { return shape.k * n_blocks * block; }
  int64_t packed_bias_floats() const { return n_blocks * block; }

  // The kernel's name (jit/README.md), e.g. f32_gemm_relu_64x4__avx512.
  std::string name() const;
  // Every field the emitter reads, for KernelCache.
  std::string key() const;
  bool operator==(const GemmPlan&) const = default;
};

// Chooses ISA, register tile and cache blocking for `shape` on `host`, or says why no
// gemm kernel can run it. A pure function.
std::variant<GemmPlan, std::string> plan_gemm(const GemmShape& shape, const HostInfo& host);

struct GemmWeights {
  AlignedBuffer<float> weights;  // plan.packed_weights_floats()
  AlignedBuffer<float> bias;     // plan.packed_bias_floats(), zero-padded (zeros if none)
};

// Packs alpha * W and beta * bias for `plan`. `weights` is [K][N], or [N][K] when
// `trans_b`; `bias` is [N] or null (none). Throws std::invalid_argument on a null
// `weights`.
GemmWeights pack_gemm_weights(const GemmPlan& plan, FloatsIn weights, bool trans_b = false, float alpha = 1.f,
                              FloatsIn bias = nullptr, float beta = 1.f);

// What one call of the generated code reads. src and dst point at row 0 of X and Y; the
// call computes rows [row_begin, row_end) of panels [panel_begin, panel_end).
struct GemmArgs {
  const float* src;
  float* dst;
  const float* weights;  // GemmWeights::weights
  const float* bias;     // GemmWeights::bias; read only if shape.has_bias
  int64_t lda;           // floats between rows of src
  int64_t ldc;           // floats between rows of dst
  int64_t row_begin;
  int64_t row_end;
  int64_t panel_begin;   // of plan.panels()
  int64_t panel_end;
};

class GemmKernel : public JitKernel {
 public:
  // `plan` comes from plan_gemm (an inconsistent one throws std::invalid_argument).
  explicit GemmKernel(const GemmPlan& plan, std::string serves = "");

  const GemmPlan& plan() const { return plan_; }
  int64_t panels() const { return plan_.panels(); }
  void operator()(const GemmArgs& args) const { entry<void(const GemmArgs*)>()(&args); }
  // Every row and panel on the calling thread, with lda = K and ldc = N.
  void run(const float* src, float* dst, const GemmWeights& w) const;

 private:
  void generate();
  void emit_panel(const GemmTile& tile, bool is_tail);
  void emit_microkernel(const GemmTile& tile, int rows, bool is_tail);
  bool masks_last_block(bool is_tail) const;

  GemmPlan plan_;
  ConstantTable table_;
  Xbyak::Label table_label_;
};

// The process-wide cache: kernels for equal plans are compiled once and shared.
std::shared_ptr<const GemmKernel> get_gemm_kernel(const GemmPlan& plan, const std::string& serves);

}  // namespace nnjit::jit
