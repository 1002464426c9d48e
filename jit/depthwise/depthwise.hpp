// depthwise: k x k depthwise convolution (groups = channels, channel multiplier 1),
// k = 3, 5, 7, stride 1 or 2, dilation 1, 2 or 4 (the `dilated` kernels), any ONNX
// padding, on channel-blocked activations, with bias, an activation and a residual add
// fused into the stores.
//
//   DepthwiseShape shape{.channels = 144, .height = 56, .width = 56, .kernel = 3, .stride = 2,
//                        .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
//                        .activation = Activation::relu6()};
//   auto planned = plan_depthwise(shape, host);              // DepthwisePlan or a reason
//   const DepthwisePlan& plan = std::get<DepthwisePlan>(planned);
//   DepthwiseWeights w = pack_depthwise_weights(plan, onnx_weights, onnx_bias);  // at load
//   auto kernel = get_depthwise_kernel(plan, "node 'conv5' (Conv)");              // at load
//   kernel->run(src, dst, w, residual);                      // blocked src/dst/residual
//
// Layouts (B = plan.block: 16 on AVX-512, 8 on AVX2; see jit/layout.hpp):
//   src       [N][ceil(C/B)][H][W][B]
//   dst       [N][ceil(C/B)][H'][W'][B], H' = (H + pad_top + pad_bottom - d(k-1) - 1) / stride + 1
//   residual  like dst
//   weights   ONNX's [C][1][k][k], packed by pack_depthwise_weights to [C/B][k][k][B]
// Contracts:
//  - Lanes of src past channel C are read (whole vectors) but never reach dst: lanes of
//    dst past C are written as 0 whatever src holds there.
//  - dst must not overlap src. With ResidualMode::before_activation, residual may be dst
//    itself (each residual element is read before that element is written); with
//    after_activation it must not overlap dst.
//  - One call of the generated code (DepthwiseArgs) handles one image, a range of
//    channel blocks and a range of output rows, so threads may split a layer by image,
//    by block and by row.
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

struct DepthwiseShape {
  int64_t batch = 1;
  int64_t channels = 0;  // C (= groups = output channels)
  int64_t height = 0;    // of src
  int64_t width = 0;
  int kernel = 3;    // k: 3, 5 or 7, both axes
  int stride = 1;    // 1 or 2, both axes
  int dilation = 1;  // 1, 2 or 4, both axes
  int64_t pad_top = 0;  // ONNX pads: begin (top, left) and end (bottom, right)
  int64_t pad_left = 0;
  int64_t pad_bottom = 0;
  int64_t pad_right = 0;
  bool has_bias = true;
  Activation activation;
  ResidualMode residual = ResidualMode::none;
  // Pixels between consecutive channel blocks of src and of dst (and residual); 0 = this
  // shape's own plane. Larger when the kernel runs on a few rows held in a bigger buffer
  // (a tile of a fused block).
  int64_t src_plane = 0;
  int64_t dst_plane = 0;

  int64_t dilated_kernel() const { return int64_t{dilation} * (kernel - 1) + 1; }
  int64_t out_height() const { return (height + pad_top + pad_bottom - dilated_kernel()) / stride + 1; }
  int64_t out_width() const { return (width + pad_left + pad_right - dilated_kernel()) / stride + 1; }
  int64_t src_plane_pixels() const { return src_plane ? src_plane : height * width; }
  int64_t dst_plane_pixels() const { return dst_plane ? dst_plane : out_height() * out_width(); }
  // Floating-point operations of one run (a multiply-add counts two; padding taps too,
  // as oneDNN and every benchmark count them).
  double flops() const {
    return 2.0 * static_cast<double>(batch) * static_cast<double>(channels) *
           static_cast<double>(out_height() * out_width()) * kernel * kernel;
  }
  std::string key() const;
  bool operator==(const DepthwiseShape&) const = default;
};

struct DepthwisePlan {
  DepthwiseShape shape;
  Isa isa = Isa::avx512;
  int block = 16;  // channels per block (= floats per vector)
  int64_t blocks = 0;  // ceil(C / block)

  // Each output row is cut into `row_tiles` register tiles of `pixels` output pixels
  // (the last may be narrower), one accumulator per pixel. Tiles whose every tap lies
  // inside the row, [loop_begin, loop_begin + loop_tiles), run as one loop of identical
  // code; the others are emitted one by one with their padding taps left out, so no tap
  // is tested at run time.
  int pixels = 0;
  int64_t row_tiles = 0;
  int64_t loop_begin = 0;
  int64_t loop_tiles = 0;

  int64_t src_image_floats() const { return blocks * block * shape.src_plane_pixels(); }
  int64_t dst_image_floats() const { return blocks * block * shape.dst_plane_pixels(); }
  int64_t packed_weights_floats() const { return blocks * block * shape.kernel * shape.kernel; }
  int64_t packed_bias_floats() const { return blocks * block; }

  // The kernel's name (jit/README.md), e.g. f32_depthwise_k3_s2_clip_16x28__avx512 or
  // f32_dilated_k3_d2_relu_8x12__avx2.
  std::string name() const;
  // Every field the emitter reads, for KernelCache.
  std::string key() const;
  bool operator==(const DepthwisePlan&) const = default;
};

// The largest register tile: besides one accumulator per pixel, a kernel row of weights
// and one input vector stay in registers while the taps run; the activation's
// temporaries reuse those once the sums are done (k + 1 >= 4, GELU's need).
inline int depthwise_max_pixels(Isa isa, int kernel) { return isa_vector_registers(isa) - kernel - 1; }

// Chooses ISA and register tiles for `shape` on `host`, or says why no depthwise kernel
// can run it. A pure function.
std::variant<DepthwisePlan, std::string> plan_depthwise(const DepthwiseShape& shape, const HostInfo& host);

struct DepthwiseWeights {
  AlignedBuffer<float> weights;  // plan.packed_weights_floats()
  AlignedBuffer<float> bias;     // plan.packed_bias_floats(), zero-padded (zeros if none)
};

// Packs ONNX weights [C][1][k][k] and an optional bias [C] (null: none) for `plan`.
DepthwiseWeights pack_depthwise_weights(const DepthwisePlan& plan, FloatsIn weights, FloatsIn bias);

// What one call of the generated code reads. Pointers are to one image.
struct DepthwiseArgs {
  const float* src;
  float* dst;
  const float* weights;   // DepthwiseWeights::weights
  const float* bias;      // DepthwiseWeights::bias; read only if shape.has_bias
  const float* residual;  // read only if shape.residual != none
  int64_t block_begin;    // channel blocks [block_begin, block_end) of plan.blocks
  int64_t block_end;
  int64_t row_begin;      // output rows [row_begin, row_end) of out_height()
  int64_t row_end;
};

class DepthwiseKernel : public JitKernel {
 public:
  // `plan` comes from plan_depthwise (an inconsistent one throws std::invalid_argument).
  explicit DepthwiseKernel(const DepthwisePlan& plan, std::string serves = "");

  const DepthwisePlan& plan() const { return plan_; }
  void operator()(const DepthwiseArgs& args) const { entry<void(const DepthwiseArgs*)>()(&args); }
  // Every image, block and row, on the calling thread. `residual` may be null when the
  // plan has no residual.
  void run(const float* src, float* dst, const DepthwiseWeights& w, const float* residual = nullptr) const;

 private:
  void generate();
  void emit_row();
  void emit_tile(const Xbyak::Reg64& base, int64_t first_col, int pixels, int64_t static_ow);

  DepthwisePlan plan_;
  ConstantTable table_;
  Xbyak::Label table_label_;
  Xbyak::Label rows_label_;
  bool empty_rows_ = false;  // some output row has no tap inside the image
};

// The process-wide cache: kernels for equal plans are compiled once and shared.
std::shared_ptr<const DepthwiseKernel> get_depthwise_kernel(const DepthwisePlan& plan, const std::string& serves);

}  // namespace nnjit::jit
