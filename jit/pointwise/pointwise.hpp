// pointwise: 1x1 convolution, stride 1 or 2, on channel-blocked activations, with bias,
// an activation and a residual add fused into the stores.
//
//   PointwiseShape shape{.in_channels = 64, .out_channels = 256, .height = 56, .width = 56,
//                        .activation = Activation::relu(),
//                        .residual = ResidualMode::before_activation};  // relu(conv + res)
//   auto planned = plan_pointwise(shape, host);            // PointwisePlan or a reason
//   const PointwisePlan& plan = std::get<PointwisePlan>(planned);
//   PointwiseWeights w = pack_pointwise_weights(plan, onnx_weights, onnx_bias);   // at load
//   auto kernel = get_pointwise_kernel(plan, "node 'conv2' (Conv)");              // at load
//   kernel->run(src, dst, w, residual);                    // blocked src/dst/residual
//
// Layouts (B = plan.block: 16 on AVX-512, 8 on AVX2; see jit/layout.hpp):
//   src       [N][ceil(C/B)][H][W][B]
//   dst       [N][ceil(K/B)][H'][W'][B], H' = (H-1)/stride + 1 (no padding: a 1x1 window)
//   residual  like dst
//   weights   ONNX's [K][C] (i.e. [K][C][1][1]), packed by pack_pointwise_weights
// Contracts:
//  - Lanes of src past channel C are never read; lanes of dst past K are written as 0.
//  - dst must not overlap src, but where pointwise_in_place(plan) says dst may be src
//    itself. With ResidualMode::before_activation, residual may be dst
//    itself (an in-place add: the kernel reads each residual element before it writes
//    that element); with after_activation it must not overlap dst.
//  - One call of the generated code (PointwiseArgs) handles one image and a range of
//    output-channel tiles, so threads may split a layer by image and by tile.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "jit/host_info.hpp"
#include "jit/isa.hpp"
#include "jit/jit_kernel.hpp"
#include "jit/layout.hpp"
#include "jit/post_ops.hpp"

namespace nnjit::jit {

struct PointwiseShape {
  int64_t batch = 1;
  int64_t in_channels = 0;   // C
  int64_t out_channels = 0;  // K
  int64_t height = 0;        // of src
  int64_t width = 0;
  int stride = 1;  // 1 or 2, both axes
  bool has_bias = true;
  Activation activation;
  ResidualMode residual = ResidualMode::none;
  // Pixels between consecutive channel blocks of src and of dst (and residual); 0 = this
  // shape's own plane. Larger when the kernel runs one slice of a larger image (a
  // thread's share of its pixels or rows): src/dst then point into that image.
  int64_t src_plane = 0;
  int64_t dst_plane = 0;

  int64_t out_height() const { return (height - 1) / stride + 1; }
  int64_t out_width() const { return (width - 1) / stride + 1; }
  int64_t src_plane_pixels() const { return src_plane ? src_plane : height * width; }
  int64_t dst_plane_pixels() const { return dst_plane ? dst_plane : out_height() * out_width(); }
  // Floating-point operations of one run (a multiply-add counts two).
  double flops() const {
    return 2.0 * static_cast<double>(batch) * static_cast<double>(out_channels) * static_cast<double>(in_channels) *
           static_cast<double>(out_height() * out_width());
  }
  std::string key() const;
  bool operator==(const PointwiseShape&) const = default;
};

// A register tile of the microkernel: `oc_blocks` output-channel blocks (vectors) by
// `pixels` output pixels, all held in accumulators across the input-channel loop.
struct PointwiseTile {
  int oc_blocks = 0;
  int pixels = 0;
  bool operator==(const PointwiseTile&) const = default;
};

struct PointwisePlan {
  PointwiseShape shape;
  Isa isa = Isa::avx512;
  int block = 16;  // channels per block (= floats per vector)

  int64_t in_blocks = 0;   // ceil(C / block)
  int64_t out_blocks = 0;  // ceil(K / block)
  // Output pixels are walked as `rows` rows of `row_pixels`: for stride 1 the whole
  // plane is one row (it is contiguous in src and dst); stride 2 skips input rows.
  int64_t rows = 0;
  int64_t row_pixels = 0;

  PointwiseTile main;  // the tile of output-channel tiles [0, main_tiles)
  PointwiseTile tail;  // the last tile (when out_blocks % main.oc_blocks != 0 or
                       // half_last_block), else 0x0
  int64_t main_tiles = 0;
  // AVX-512 only: the last output block holds at most 8 channels (K = 24, 40, ...), so
  // the tail tile computes it with ymm instructions: half the work on cores that split
  // zmm operations in two, and no worse elsewhere.
  bool half_last_block = false;
  // Input channels per cache block (a multiple of `block`): the weights one tile reads
  // for one block stay in L2 while the tile sweeps every pixel.
  int64_t chunk_channels = 0;
  int64_t chunks = 0;
  // AVX-512, one pixel (a Linear layer) whose weights do not fit in L2: the input blocks
  // are walked as this many runs side by side, summed apart, so that the weights come
  // from memory as several streams (here 5 MiB read at 24 GB/s as one, 32 as four).
  int weight_streams = 1;

  int64_t tiles() const { return main_tiles + (tail.oc_blocks > 0 ? 1 : 0); }
  int64_t src_image_floats() const { return in_blocks * block * shape.src_plane_pixels(); }
  int64_t dst_image_floats() const { return out_blocks * block * shape.dst_plane_pixels(); }
  int64_t packed_weights_floats() const { return shape.in_channels * out_blocks * block; }
  int64_t packed_bias_floats() const { return out_blocks * block; }

  // The kernel's name (jit/README.md), e.g. f32_pointwise_res_relu_64x7__avx512.
  std::string name() const;
  // Every field the emitter reads, for KernelCache.
  std::string key() const;
  bool operator==(const PointwisePlan&) const = default;
};

// Chooses ISA, register tile and cache blocking for `shape` on `host`, or says why no
// pointwise kernel can run it. A pure function.
std::variant<PointwisePlan, std::string> plan_pointwise(const PointwiseShape& shape, const HostInfo& host);

// One part of a layer split over its pixels (stride 1) or output rows (stride 2), for
// threads: the whole layer's plan (same ISA, register tiles and chunks, so the same
// packed weights) for a shape with src_plane/dst_plane set to the whole image's, and the
// pixel where the part starts in src and in dst (and residual): image + pixel * block.
struct PointwiseSlice {
  PointwisePlan plan;
  int64_t src_pixel = 0;
  int64_t dst_pixel = 0;
};
// Stride 1 only: `whole`'s plan (tiles, chunks, packing) for `pixels` consecutive pixels
// of images whose channel blocks lie src_plane / dst_plane pixels apart.
PointwisePlan pointwise_pixels(const PointwisePlan& whole, int64_t pixels, int64_t src_plane, int64_t dst_plane);
// `whole` cut into at most `parts` near-equal slices (fewer when it is small: a slice
// keeps at least `min_pixels` output pixels). Batch must be 1.
std::vector<PointwiseSlice> slice_pointwise(const PointwisePlan& whole, int parts, int64_t min_pixels = 64);

// Whether dst may be src (same image pointer): one image, stride 1, channel blocks as
// far apart in src as in dst (whole planes, or one plane for both), K <= C in one
// output-channel tile whose first input-channel chunk covers the K channels' blocks.
// Each pixel tile then reads every block it will overwrite (the first chunk's) before it
// stores, and no later read touches them: later chunks read blocks past K, other pixel
// tiles (and pixel slices, for threads) other pixels. A residual must then lie apart
// from dst (partial sums of several chunks pass through dst before it is read).
bool pointwise_in_place(const PointwisePlan& plan);

struct PointwiseWeights {
  AlignedBuffer<float> weights;  // plan.packed_weights_floats()
  AlignedBuffer<float> bias;     // plan.packed_bias_floats(), zero-padded (zeros if none)
};

// Packs ONNX weights [K][C] and an optional bias [K] (null: none) for `plan`.
PointwiseWeights pack_pointwise_weights(const PointwisePlan& plan, FloatsIn weights, FloatsIn bias);

// What one call of the generated code reads. Pointers are to one image.
struct PointwiseArgs {
  const float* src;
  float* dst;
  const float* weights;   // PointwiseWeights::weights
  const float* bias;      // PointwiseWeights::bias; read only if shape.has_bias
  const float* residual;  // read only if shape.residual != none
  int64_t tile_begin;     // output-channel tiles [tile_begin, tile_end) of plan.tiles()
  int64_t tile_end;
};

class PointwiseKernel : public JitKernel {
 public:
  // `plan` comes from plan_pointwise (an inconsistent one throws std::invalid_argument).
  explicit PointwiseKernel(const PointwisePlan& plan, std::string serves = "");

  const PointwisePlan& plan() const { return plan_; }
  void operator()(const PointwiseArgs& args) const { entry<void(const PointwiseArgs*)>()(&args); }
  // Every image and tile, on the calling thread. `residual` may be null when the plan
  // has no residual.
  void run(const float* src, float* dst, const PointwiseWeights& w, const float* residual = nullptr) const;

 private:
  void generate();
  void emit_tile(const PointwiseTile& tile, bool is_tail);
  void emit_microkernel(const PointwiseTile& tile, int pixels, bool is_tail);
  bool masks_last_block(bool is_tail) const;

  PointwisePlan plan_;
  ConstantTable table_;
  Xbyak::Label table_label_;
};

// The process-wide cache: kernels for equal plans are compiled once and shared.
std::shared_ptr<const PointwiseKernel> get_pointwise_kernel(const PointwisePlan& plan, const std::string& serves);

}  // namespace nnjit::jit
