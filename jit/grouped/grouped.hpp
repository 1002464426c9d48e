// grouped: k x k convolution with G groups of Cg = C/G input and Kg = K/G output channels
// (ResNeXt's 32 groups, RegNet's group widths), on channel-blocked activations, with bias,
// an activation and a residual add fused into the stores. Not lowered to G small GEMMs:
// each output block of B channels is a dense convolution over the few input blocks its
// groups read, with weights that are zero between groups (packed so at load).
//
//   GroupedShape shape{.in_channels = 128, .out_channels = 128, .groups = 32, .height = 56,
//                      .width = 56, .kernel = 3, .pad_top = 1, .pad_left = 1,
//                      .pad_bottom = 1, .pad_right = 1, .activation = Activation::relu()};
//   auto planned = plan_grouped(shape, host);                 // GroupedPlan or a reason
//   const GroupedPlan& plan = std::get<GroupedPlan>(planned);
//   GroupedWeights w = pack_grouped_weights(plan, onnx_weights, onnx_bias);   // at load
//   auto kernel = get_grouped_kernel(plan, "node 'conv7' (Conv)");            // at load
//   kernel->run(src, dst, w, residual);                       // blocked src/dst/residual
//
// Layouts (B = plan.block: 16 on AVX-512, 8 on AVX2; see jit/layout.hpp):
//   src       [N][ceil(C/B)][H][W][B]
//   dst       [N][ceil(K/B)][H'][W'][B], H' = (H + pad_top + pad_bottom - k) / stride + 1
//   residual  like dst
//   weights   ONNX's [K][C/G][k][k], packed by pack_grouped_weights to
//             [K/B][kh][window block][lane][kw][B]: output block ob reads the
//             plan.window_blocks input blocks from plan.window_start(ob); the weight of
//             input channel (block, lane) for output lane o is zero unless both are in
//             one group. With plan.rotate = R: [K/B][kh][kw][r][B], lane o of vector r
//             weighs input channel grouped_rotation_source(R, r, o % R) of o's group.
// Contracts:
//  - Lanes of src past channel C must be zero (jit/layout.hpp keeps them so): they are
//    multiplied by zero weights, and a NaN there would reach dst.
//  - Lanes of dst past K are written as 0.
//  - dst must not overlap src. With ResidualMode::before_activation, residual may be dst
//    itself; with after_activation it must not overlap dst.
//  - One call of the generated code (GroupedArgs) handles one image, a range of output
//    blocks and a range of output rows, so threads may split a layer by image, block, row.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "jit/host_info.hpp"
#include "jit/isa.hpp"
#include "jit/jit_kernel.hpp"
#include "jit/layout.hpp"
#include "jit/post_ops.hpp"

namespace nnjit::jit {

struct GroupedShape {
  int64_t batch = 1;
  int64_t in_channels = 0;   // C
  int64_t out_channels = 0;  // K
  int64_t groups = 1;        // G; divides C and K
  int64_t height = 0;        // of src
  int64_t width = 0;
  int kernel = 3;  // k, both axes: 1 to 7
  int stride = 1;  // 1 or 2, both axes
  int64_t pad_top = 0;  // ONNX pads: begin (top, left) and end (bottom, right)
  int64_t pad_left = 0;
  int64_t pad_bottom = 0;
  int64_t pad_right = 0;
  bool has_bias = true;
  Activation activation;
  ResidualMode residual = ResidualMode::none;
  // Pixels between neighbouring channel blocks of src and of dst and residual; 0 = the
  // image's own H*W and H'*W'. Fused steps stream rows through buffers of fewer rows.
  int64_t src_plane = 0;
  int64_t dst_plane = 0;

  int64_t in_per_group() const { return in_channels / groups; }
  int64_t out_per_group() const { return out_channels / groups; }
  int64_t out_height() const { return (height + pad_top + pad_bottom - kernel) / stride + 1; }
  int64_t out_width() const { return (width + pad_left + pad_right - kernel) / stride + 1; }
  int64_t src_plane_pixels() const { return src_plane ? src_plane : height * width; }
  int64_t dst_plane_pixels() const { return dst_plane ? dst_plane : out_height() * out_width(); }
  // Useful floating-point operations of one run (a multiply-add counts two; padding taps
  // too, as oneDNN and every benchmark count them; not the zero weights between groups).
  double flops() const {
    return 2.0 * static_cast<double>(batch) * static_cast<double>(out_channels) *
           static_cast<double>(in_per_group()) * static_cast<double>(out_height() * out_width()) * kernel * kernel;
  }
  std::string key() const;
  bool operator==(const GroupedShape&) const = default;
};

struct GroupedPlan {
  GroupedShape shape;
  Isa isa = Isa::avx512;
  int block = 16;           // channels per block (= floats per vector)
  int64_t in_blocks = 0;    // ceil(C / block)
  int64_t out_blocks = 0;   // ceil(K / block)
  // Input blocks each output block reads (the most any output block's groups span; a
  // block whose groups span fewer reads extra blocks against zero weights).
  int64_t window_blocks = 0;
  // Input lanes per step of the lane loop (the emitted body holds this many lanes x k taps).
  int lane_step = 0;
  // 0: each input lane is broadcast and multiplied with a weight vector that is zero in
  // the other groups' lanes (B / Kg of every FMA's lanes are useful). Kg (2, 4 or 8, when
  // Cg = Kg < B): groups lie lane-aligned in both blocks, so the input vector is rotated
  // within each group of Kg lanes, Kg times, and every FMA lane is useful: Kg FMAs and
  // Kg - 1 permutes per input vector and tap instead of B FMAs.
  int rotate = 0;

  // Register tiles of `pixels` output pixels per row, as in DepthwisePlan: tiles
  // [loop_begin, loop_begin + loop_tiles) read no padding and run as one loop; the others
  // are emitted one by one with their padding taps left out.
  int pixels = 0;
  int64_t row_tiles = 0;
  int64_t loop_begin = 0;
  int64_t loop_tiles = 0;

  // The first input block output block `ob` reads.
  int64_t window_start(int64_t ob) const;
  int64_t src_image_floats() const { return in_blocks * block * shape.src_plane_pixels(); }
  int64_t dst_image_floats() const { return out_blocks * block * shape.dst_plane_pixels(); }
  // Weight vectors per output block and kernel row: a lane x kw per window block, or
  // with rotation kw x rotation.
  int64_t vectors_per_kernel_row() const {
    return rotate > 0 ? int64_t{shape.kernel} * rotate : window_blocks * block * shape.kernel;
  }
  int64_t packed_weights_floats() const { return out_blocks * shape.kernel * vectors_per_kernel_row() * block; }
  int64_t packed_bias_floats() const { return out_blocks * block; }

  // The kernel's name (jit/README.md), e.g. f32_grouped_k3_s2_relu_16x28__avx512.
  std::string name() const;
  // Every field the emitter reads, for KernelCache.
  std::string key() const;
  bool operator==(const GroupedPlan&) const = default;
};

// The largest register tile: one accumulator per pixel, and room for the weight vector
// and broadcast inputs while summing, or the activation's four temporaries after.
// With rotation, the k weight vectors of one rotation, two rotated inputs and (R = 8) a
// permute index stay in registers instead.
inline int grouped_max_pixels(Isa isa, int kernel, int rotate) {
  const int regs = isa_vector_registers(isa);
  if (rotate == 0) return regs - 4;
  return std::min(regs - 4, regs - kernel - (rotate == 8 ? 3 : 2));
}

// With plan.rotate = R, the input lane (within its group of R) that "rotation" r brings to
// lane o of a group; each o meets every lane of its group once over r = 0 .. R-1. For
// R <= 4 a true rotation, (o + r) % R: one vpermilps with an immediate (within 128-bit
// lanes). For R = 8 (one vpermps with an index vector) the group's 128-bit halves trade
// places when r >= 4 and rotate by r % 4 within themselves.
inline int grouped_rotation_source(int R, int r, int o) {
  if (R <= 4) return (o + r) % R;
  return 4 * ((o / 4) ^ (r / 4)) + (o % 4 + r % 4) % 4;
}

// Chooses ISA and register tiles for `shape` on `host`, or says why no grouped kernel can
// run it. A pure function.
std::variant<GroupedPlan, std::string> plan_grouped(const GroupedShape& shape, const HostInfo& host);

struct GroupedWeights {
  AlignedBuffer<float> weights;  // plan.packed_weights_floats()
  AlignedBuffer<float> bias;     // plan.packed_bias_floats(), zero-padded (zeros if none)
};

// Packs ONNX weights [K][C/G][k][k] and an optional bias [K] (null: none) for `plan`.
GroupedWeights pack_grouped_weights(const GroupedPlan& plan, FloatsIn weights, FloatsIn bias);

// What one call of the generated code reads. Pointers are to one image.
struct GroupedArgs {
  const float* src;
  float* dst;
  const float* weights;   // GroupedWeights::weights
  const float* bias;      // GroupedWeights::bias; read only if shape.has_bias
  const float* residual;  // read only if shape.residual != none
  int64_t block_begin;    // output blocks [block_begin, block_end) of plan.out_blocks
  int64_t block_end;
  int64_t row_begin;      // output rows [row_begin, row_end) of out_height()
  int64_t row_end;
};

class GroupedKernel : public JitKernel {
 public:
  // `plan` comes from plan_grouped (an inconsistent one throws std::invalid_argument).
  explicit GroupedKernel(const GroupedPlan& plan, std::string serves = "");

  const GroupedPlan& plan() const { return plan_; }
  void operator()(const GroupedArgs& args) const { entry<void(const GroupedArgs*)>()(&args); }
  // Every image, block and row, on the calling thread. `residual` may be null when the
  // plan has no residual.
  void run(const float* src, float* dst, const GroupedWeights& w, const float* residual = nullptr) const;

 private:
  void generate();
  void emit_row();
  void emit_tile(const Xbyak::Reg64& base, int64_t first_col, int pixels, int64_t static_ow);
  void emit_rotated_sums(const Xbyak::Reg64& base, const std::vector<std::vector<std::pair<int, int64_t>>>& taps,
                         int pixels);

  GroupedPlan plan_;
  ConstantTable table_;
  Xbyak::Label table_label_;
  Xbyak::Label rows_label_;
  Xbyak::Label windows_label_;
  bool empty_rows_ = false;  // some output row has no tap inside the image
};

// The process-wide cache: kernels for equal plans are compiled once and shared.
std::shared_ptr<const GroupedKernel> get_grouped_kernel(const GroupedPlan& plan, const std::string& serves);

}  // namespace nnjit::jit
