// pool: MaxPool and AveragePool with a kh x kw window (1..7 each), any stride, dilation 1,
// ONNX pads, count_include_pad 0 or 1, and ceil_mode through an explicit output size;
// GlobalAveragePool and GlobalMaxPool — all on channel-blocked activations.
//
//   // ResNet's stem: MaxPool 3x3, stride 2, pads 1, on 64 x 112 x 112.
//   PoolShape shape{.channels = 64, .height = 112, .width = 112, .kind = PoolKind::max,
//                   .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2,
//                   .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
//                   .out_height = 56, .out_width = 56};
//   // (pool_out_size(112, 3, 2, 1, 1, ceil_mode) gives ONNX's output size.)
//   auto planned = plan_pool(shape, host);                 // PoolPlan or a reason
//   const PoolPlan& plan = std::get<PoolPlan>(planned);
//   auto kernel = get_pool_kernel(plan, "node 'pool1' (MaxPool)");   // at load
//   kernel->run(src, dst);                                 // blocked src/dst, every image
//
// Layouts (B = plan.block: 16 on AVX-512, 8 on AVX2; see jit/layout.hpp):
//   src  [N][ceil(C/B)][H][W][B]
//   dst  [N][ceil(C/B)][out_height][out_width][B]; [N][ceil(C/B)][1][1][B] for the global kinds
// Semantics (those of ops/nn_pool.cpp's references):
//  - Output (oh, ow) reads input rows oh * stride_h - pad_top + [0, kernel_h), columns
//    likewise; positions outside the image are padding and never read.
//  - max: the largest element inside the image. avg: the sum inside the image divided by
//    the elements inside (count_include_pad = 0) or by the window clipped to the padded
//    image [-pad_begin, size + pad_end) (count_include_pad = 1), so the part of a
//    ceil_mode window past the end pad is never counted, as ONNX does.
//  - out_height / out_width are the caller's (floor or ceil_mode); every window must
//    overlap the image (plan_pool refuses a shape where one does not).
// Contracts:
//  - Lanes of dst past channel C are written as 0 whatever src holds there.
//  - dst must not overlap src.
//  - One call of the generated code (PoolArgs) handles one image and a range of channel
//    blocks, so threads may split a layer by image and by block.
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

enum class PoolKind {
  max,         // MaxPool
  avg,         // AveragePool
  global_avg,  // GlobalAveragePool: kernel, stride, pads and out size are ignored
  global_max,  // GlobalMaxPool
};
const char* pool_kind_name(PoolKind kind);
inline bool is_global(PoolKind kind) { return kind == PoolKind::global_avg || kind == PoolKind::global_max; }

// ONNX's output size along one axis (ops/nn_spatial.cpp): floor((in + pads - k) / s) + 1,
// or with ceil_mode the ceiling, less a last window that would start in the end pad.
int64_t pool_out_size(int64_t in, int kernel, int stride, int64_t pad_begin, int64_t pad_end, bool ceil_mode);

// The largest window side, and stride, generated.
inline constexpr int kPoolMaxKernel = 7;
inline constexpr int kPoolMaxStride = 16;

struct PoolShape {
  int64_t batch = 1;
  int64_t channels = 0;  // C
  int64_t height = 0;    // of src
  int64_t width = 0;
  PoolKind kind = PoolKind::max;
  int kernel_h = 1;  // 1 .. kPoolMaxKernel
  int kernel_w = 1;
  int stride_h = 1;  // 1 .. kPoolMaxStride
  int stride_w = 1;
  int64_t pad_top = 0;  // ONNX pads: begin (top, left) and end (bottom, right)
  int64_t pad_left = 0;
  int64_t pad_bottom = 0;
  int64_t pad_right = 0;
  int64_t out_height = 0;  // of dst (see pool_out_size); ignored by the global kinds
  int64_t out_width = 0;
  bool count_include_pad = false;  // avg only
  // Pixels between neighbouring channel blocks of src and of dst; 0 = the image's own
  // H*W and the output's. Fused steps stream rows through buffers of fewer rows.
  int64_t src_plane = 0;
  int64_t dst_plane = 0;

  int64_t dst_height() const { return is_global(kind) ? 1 : out_height; }
  int64_t dst_width() const { return is_global(kind) ? 1 : out_width; }
  int64_t src_plane_pixels() const { return src_plane ? src_plane : height * width; }
  int64_t dst_plane_pixels() const { return dst_plane ? dst_plane : dst_height() * dst_width(); }
  // Every field the kernel depends on (the global kinds leave out the window).
  std::string key() const;
  bool operator==(const PoolShape&) const = default;
};

struct PoolPlan {
  PoolShape shape;
  Isa isa = Isa::avx512;
  int block = 16;      // channels per block (= floats per vector)
  int64_t blocks = 0;  // ceil(C / block)

  // Window kinds: each output row is cut into `row_tiles` register tiles of `pixels`
  // output pixels (the last may be narrower). Tiles whose every column lies inside the
  // image, [loop_begin, loop_begin + loop_tiles), run as one loop of identical code; the
  // others are emitted one by one with their padding columns left out.
  // Global kinds: `pixels` accumulators walk the plane together.
  int pixels = 0;
  int64_t row_tiles = 0;
  int64_t loop_begin = 0;
  int64_t loop_tiles = 0;

  int64_t src_image_floats() const { return blocks * block * shape.src_plane_pixels(); }
  int64_t dst_image_floats() const { return blocks * block * shape.dst_plane_pixels(); }

  // The kernel's name (jit/README.md), e.g. f32_maxpool_k3_s2_16x28__avx512,
  // f32_avgpool_k3_8x12__avx2, f32_global_avgpool_16__avx512.
  std::string name() const;
  // Every field the emitter reads, for KernelCache.
  std::string key() const;
  bool operator==(const PoolPlan&) const = default;
};

// The largest register tile of a window kind: one accumulator per pixel, besides the
// input vector and, for avg, the row's divisor and reciprocal.
inline int pool_max_pixels(Isa isa) { return isa_vector_registers(isa) - 3; }

// Chooses ISA and register tiles for `shape` on `host`, or says why no pool kernel can
// run it. A pure function.
std::variant<PoolPlan, std::string> plan_pool(const PoolShape& shape, const HostInfo& host);

// What one call of the generated code reads. Pointers are to one image.
struct PoolArgs {
  const float* src;
  float* dst;
  int64_t block_begin;  // channel blocks [block_begin, block_end) of plan.blocks
  int64_t block_end;
};

class PoolKernel : public JitKernel {
 public:
  // `plan` comes from plan_pool (an inconsistent one throws std::invalid_argument).
  explicit PoolKernel(const PoolPlan& plan, std::string serves = "");

  const PoolPlan& plan() const { return plan_; }
  void operator()(const PoolArgs& args) const { entry<void(const PoolArgs*)>()(&args); }
  // Every image and block, on the calling thread.
  void run(const float* src, float* dst) const;

 private:
  void generate();
  void emit_window();
  void emit_global();
  void emit_row();
  void emit_tile(const Xbyak::Reg64& base, int64_t first_col, int pixels, int64_t static_ow);

  PoolPlan plan_;
  ConstantTable table_;
  Xbyak::Label table_label_;
  Xbyak::Label rows_label_;
};

// The process-wide cache: kernels for equal plans are compiled once and shared.
std::shared_ptr<const PoolKernel> get_pool_kernel(const PoolPlan& plan, const std::string& serves);

}  // namespace nnjit::jit
