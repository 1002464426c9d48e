// dense: k x k convolution with groups = 1, k = 3, 5, 7, stride 1 or 2, dilation 1, 2
// or 4, any ONNX padding, on channel-blocked activations, with bias, an activation and
// a residual add fused into the stores.
//
//   DenseShape shape{.in_channels = 64, .out_channels = 64, .height = 56, .width = 56,
//                    .kernel = 3, .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
//                    .activation = Activation::relu()};
//   auto planned = plan_dense(shape, host);                 // DensePlan or a reason
//   const DensePlan& plan = std::get<DensePlan>(planned);
//   DenseWeights w = pack_dense_weights(plan, onnx_weights, onnx_bias);   // at load
//   auto kernel = get_dense_kernel(plan, "node 'conv3' (Conv)");          // at load
//   kernel->run(src, dst, w, residual);                     // blocked src/dst/residual
//
// Layouts (B = plan.block: 16 on AVX-512, 8 on AVX2; see jit/layout.hpp):
//   src       [N][ceil(C/B)][H][W][B], or plain [N][C][H][W] with shape.src_nchw (the
//             stems read the image as given: no reorder, no 3-of-16-lane block in memory)
//   dst       [N][ceil(K/B)][H'][W'][B], H' = (H + pad_top + pad_bottom - d(k-1) - 1) / stride + 1
//   residual  like dst
//   weights   ONNX's [K][C][k][k], packed by pack_dense_weights
// Contracts:
//  - Lanes of src past channel C are never read; lanes of dst past K are written as 0.
//  - dst must not overlap src. With ResidualMode::before_activation, residual may be dst
//    itself (each residual element is read before that element is written); with
//    after_activation it must not overlap dst.
//  - One call of the generated code (DenseArgs) handles one image, a range of
//    output-channel tiles and a range of output rows, so threads may split a layer by
//    image, by tile and by row.
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

struct DenseShape {
  int64_t batch = 1;
  int64_t in_channels = 0;   // C
  int64_t out_channels = 0;  // K
  int64_t height = 0;        // of src
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
  bool src_nchw = false;  // src in plain NCHW instead of blocks (dst stays blocked)
  // Pixels between neighbouring channel blocks (or, with src_nchw, channels) of src and
  // of dst and residual; 0 = the image's own H*W and H'*W'. Fused steps stream rows
  // through buffers that hold fewer rows than the image.
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
    return 2.0 * static_cast<double>(batch) * static_cast<double>(out_channels) * static_cast<double>(in_channels) *
           kernel * kernel * static_cast<double>(out_height() * out_width());
  }
  std::string key() const;
  bool operator==(const DenseShape&) const = default;
};

// A register tile: `oc_blocks` output-channel blocks by `pixels` output pixels of a row.
struct DenseTile {
  int oc_blocks = 0;
  int pixels = 0;
  bool operator==(const DenseTile&) const = default;
};

struct DensePlan {
  DenseShape shape;
  Isa isa = Isa::avx512;
  int block = 16;  // channels per block (= floats per vector)
  int64_t in_blocks = 0;   // ceil(C / block)
  int64_t out_blocks = 0;  // ceil(K / block)

  DenseTile main;          // output-channel tiles [0, main_tiles)
  DenseTile tail;          // the last tile when out_blocks % main.oc_blocks != 0, else 0x0
  int64_t main_tiles = 0;
  // Per tile kind (main, tail): each output row is cut into row_tiles pixel tiles of
  // `pixels` (the last may be narrower). Tiles whose every tap lies inside the row,
  // [loop_begin, loop_begin + loop_tiles), run as one loop; the others are emitted one
  // by one with their padding taps left out, so no tap is tested at run time.
  struct Row {
    int64_t row_tiles = 0;
    int64_t loop_begin = 0;
    int64_t loop_tiles = 0;
    bool operator==(const Row&) const = default;
  };
  Row main_row, tail_row;

  int64_t tiles() const { return main_tiles + (tail.oc_blocks > 0 ? 1 : 0); }
  int64_t src_image_floats() const {
    return (shape.src_nchw ? shape.in_channels : in_blocks * block) * shape.src_plane_pixels();
  }
  int64_t dst_image_floats() const { return out_blocks * block * shape.dst_plane_pixels(); }
  // Weights of one kernel row (kh) for a tile of kb blocks: [in_blocks][kw][B][kb][B].
  int64_t kh_weights_floats(int kb) const { return in_blocks * shape.kernel * block * kb * block; }
  int64_t packed_weights_floats() const { return kh_weights_floats(1) * shape.kernel * out_blocks; }
  int64_t packed_bias_floats() const { return out_blocks * block; }

  // The kernel's name (jit/README.md), e.g. f32_dense_k3_s2_relu_64x7__avx512.
  std::string name() const;
  // Every field the emitter reads, for KernelCache.
  std::string key() const;
  bool operator==(const DensePlan&) const = default;
};

// Chooses ISA and register tiles for `shape` on `host`, or says why no dense kernel can
// run it. A pure function.
std::variant<DensePlan, std::string> plan_dense(const DenseShape& shape, const HostInfo& host);

struct DenseWeights {
  AlignedBuffer<float> weights;  // plan.packed_weights_floats()
  AlignedBuffer<float> bias;     // plan.packed_bias_floats(), zero-padded (zeros if none)
};

// Packs ONNX weights [K][C][k][k] and an optional bias [K] (null: none) for `plan`.
DenseWeights pack_dense_weights(const DensePlan& plan, FloatsIn weights, FloatsIn bias);

// What one call of the generated code reads. Pointers are to one image.
struct DenseArgs {
  const float* src;
  float* dst;
  const float* weights;   // DenseWeights::weights
  const float* bias;      // DenseWeights::bias; read only if shape.has_bias
  const float* residual;  // read only if shape.residual != none
  int64_t tile_begin;     // output-channel tiles [tile_begin, tile_end) of plan.tiles()
  int64_t tile_end;
  int64_t row_begin;      // output rows [row_begin, row_end) of out_height()
  int64_t row_end;
};

class DenseKernel : public JitKernel {
 public:
  // Bytes between neighbouring src pixels, and between neighbouring channels of a pixel.
  int64_t src_pixel_bytes() const { return plan_.shape.src_nchw ? 4 : int64_t{plan_.block} * 4; }
  int64_t src_lane_bytes() const { return plan_.shape.src_nchw ? plan_.shape.src_plane_pixels() * 4 : 4; }
  // `plan` comes from plan_dense (an inconsistent one throws std::invalid_argument).
  explicit DenseKernel(const DensePlan& plan, std::string serves = "");

  const DensePlan& plan() const { return plan_; }
  void operator()(const DenseArgs& args) const { entry<void(const DenseArgs*)>()(&args); }
  // Every image, tile and row, on the calling thread. `residual` may be null when the
  // plan has no residual.
  void run(const float* src, float* dst, const DenseWeights& w, const float* residual = nullptr) const;

 private:
  void generate();
  void emit_tile_rows(const DenseTile& tile, const DensePlan::Row& row, bool is_tail);
  void emit_microkernel(const DenseTile& tile, const Xbyak::Reg64& base, int64_t first_col, int pixels,
                        int64_t static_ow, bool is_tail);
  bool masks_last_block(bool is_tail) const;

  DensePlan plan_;
  ConstantTable table_;
  Xbyak::Label table_label_;
  Xbyak::Label rows_label_;
  bool empty_rows_ = false;  // some output row has no kernel row inside the image
};

// The process-wide cache: kernels for equal plans are compiled once and shared.
std::shared_ptr<const DenseKernel> get_dense_kernel(const DensePlan& plan, const std::string& serves);

}  // namespace nnjit::jit
