// plan_dense: every decision the dense emitter follows — ISA and register tiles — made
// from the shape and the host alone.
#include <algorithm>
#include <climits>

#include "jit/dense/dense.hpp"
#include "jit/key_text.hpp"

namespace nnjit::jit {

namespace {

bool fits_int32(double v) { return v < static_cast<double>(INT_MAX); }

// The emitter keeps a table of 24 bytes per output row in its code.
constexpr int64_t kMaxOutRows = int64_t{1} << 16;

// Output-channel blocks per tile: AVX-512 holds 4 blocks x 7 pixels (28 accumulators +
// 4 weight vectors, the broadcast folded into each FMA); AVX2 3 x 4 (+ 3 weights and a
// broadcast register), the shape pointwise measured best on 16 registers.
int max_oc_blocks(Isa isa) { return isa == Isa::avx512 ? 4 : 3; }

int max_pixels(Isa isa, int kb, int act_temps) {
  const int reduction = kb + (isa == Isa::avx2 ? 1 : 0);
  return std::max(0, (isa_vector_registers(isa) - std::max(reduction, act_temps)) / kb);
}

}  // namespace

std::string DenseShape::key() const {
  KeyText s;
  s << "n" << batch << "_c" << in_channels << "_k" << out_channels << "_" << height << "x" << width << "_k" << kernel
    << "_s" << stride << "_d" << dilation << "_p" << pad_top << "," << pad_left << "," << pad_bottom << ","
    << pad_right << (has_bias ? "_bias" : "") << "_act:" << activation.key()
    << "_res:" << residual_mode_name(residual) << (src_nchw ? "_nchw" : "");
  if (src_plane || dst_plane) s << "_planes" << src_plane << "," << dst_plane;
  return std::move(s).str();
}

std::string DensePlan::name() const {
  // Fusions read in the order they apply: res_relu = relu(conv + residual).
  KeyText n;
  n << "f32_dense_k" << shape.kernel;
  if (shape.src_nchw) n << "_nchw";
  if (shape.dilation > 1) n << "_d" << shape.dilation;
  if (shape.stride != 1) n << "_s" << shape.stride;
  if (shape.residual == ResidualMode::before_activation) n << "_res";
  if (shape.activation.kind != ActivationKind::none) n << "_" << shape.activation.name();
  if (shape.residual == ResidualMode::after_activation) n << "_res";
  n << "_" << main.oc_blocks * block << "x" << main.pixels << "__" << to_string(isa);
  return std::move(n).str();
}

std::string DensePlan::key() const {
  KeyText s;
  s << "dense/" << shape.key() << "/" << to_string(isa) << "/b" << block << "/t" << main.oc_blocks << "x"
    << main.pixels << "," << tail.oc_blocks << "x" << tail.pixels << "/m" << main_tiles << "/r" << main_row.row_tiles
    << "," << main_row.loop_begin << "+" << main_row.loop_tiles << "/r" << tail_row.row_tiles << ","
    << tail_row.loop_begin << "+" << tail_row.loop_tiles;
  return std::move(s).str();
}

std::variant<DensePlan, std::string> plan_dense(const DenseShape& shape, const HostInfo& host) {
  const auto& s = shape;
  if (s.batch < 1 || s.in_channels < 1 || s.out_channels < 1 || s.height < 1 || s.width < 1)
    return "dense: batch, channels and spatial sizes must be positive (got " + s.key() + ")";
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  if (s.batch > kMaxDim || s.in_channels > kMaxDim || s.out_channels > kMaxDim || s.height > kMaxDim ||
      s.width > kMaxDim)
    return "dense: a dimension exceeds 2^24 (got " + s.key() + ")";
  if (s.kernel < 2 || s.kernel > 7)
    return "dense: only 2x2 to 7x7 kernels are generated (got " + std::to_string(s.kernel) + ")";
  if (s.stride < 1 || s.stride > 4)
    return "dense: only strides 1 to 4 are generated (got " + std::to_string(s.stride) + ")";
  if (s.dilation != 1 && s.dilation != 2 && s.dilation != 4)
    return "dense: only dilations 1, 2 and 4 are generated (got " + std::to_string(s.dilation) + ")";
  if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0)
    return "dense: pads must not be negative (got " + s.key() + ")";
  if (s.pad_top > kMaxDim || s.pad_left > kMaxDim || s.pad_bottom > kMaxDim || s.pad_right > kMaxDim)
    return "dense: a pad exceeds 2^24 (got " + s.key() + ")";
  if (s.height + s.pad_top + s.pad_bottom < s.dilated_kernel() || s.width + s.pad_left + s.pad_right < s.dilated_kernel())
    return "dense: the padded input is smaller than the kernel (got " + s.key() + ")";
  if (s.out_height() > kMaxOutRows) return "dense: more than 65536 output rows (got " + s.key() + ")";
  if (auto why = s.activation.invalid_reason()) return "dense: " + *why;
  if (s.src_plane < 0 || s.dst_plane < 0 || (s.src_plane != 0 && s.src_plane < s.height * s.width) ||
      (s.dst_plane != 0 && s.dst_plane < s.out_height() * s.out_width()))
    return "dense: a plane stride is smaller than the plane (got " + s.key() + ")";

  DensePlan plan;
  plan.shape = s;
  bool found = false;
#define NNJIT_DENSE_VARIANT(id)            \
  if (!found && host_has(host, Isa::id)) { \
    plan.isa = Isa::id;                    \
    found = true;                          \
  }
#include "jit/dense/dense.inc"
#undef NNJIT_DENSE_VARIANT
  if (!found) return "dense: the host has neither AVX-512 (F/BW/VL/DQ) nor AVX2 with FMA";

  const int B = isa_block(plan.isa);
  plan.block = B;
  plan.in_blocks = div_up(s.in_channels, B);
  plan.out_blocks = div_up(s.out_channels, B);
  const int64_t wo = s.out_width();
  const int act_temps = activation_temps(s.activation.kind);

  // Pixel tiles of a row: as few as fit, evened out (56 pixels with room for 7 make 8
  // tiles of 7), then the interior ones found as in plan_depthwise.
  auto make_tile = [&](int kb, DenseTile& tile, DensePlan::Row& row) {
    const int pmax = max_pixels(plan.isa, kb, act_temps);
    row.row_tiles = div_up(wo, pmax);
    tile = {kb, static_cast<int>(div_up(wo, row.row_tiles))};
    auto interior = [&](int64_t t) {
      const int64_t ow0 = t * tile.pixels;
      if (ow0 + tile.pixels > wo) return false;  // the narrower last tile is emitted apart
      return ow0 * s.stride - s.pad_left >= 0 &&
             (ow0 + tile.pixels - 1) * s.stride - s.pad_left + s.dilated_kernel() - 1 < s.width;
    };
    row.loop_begin = row.loop_tiles = 0;
    for (int64_t t = 0; t < row.row_tiles; ++t)
      if (interior(t)) {
        if (row.loop_tiles == 0) row.loop_begin = t;
        ++row.loop_tiles;
      }
    if (row.loop_tiles == 1) row.loop_tiles = 0;  // one tile gains nothing from a loop
    if (row.loop_tiles == 0) row.loop_begin = 0;
  };
  // Output-channel tiles: the widest that fits, unless a narrower one divides the
  // blocks evenly (K = 96: two tiles of 3 blocks rather than 4 + 2).
  int kb = static_cast<int>(std::min<int64_t>(max_oc_blocks(plan.isa), plan.out_blocks));
  if (plan.out_blocks % kb != 0 && kb > 2 && plan.out_blocks % (kb - 1) == 0) --kb;
  make_tile(kb, plan.main, plan.main_row);
  plan.main_tiles = plan.out_blocks / kb;
  if (const int tail_kb = static_cast<int>(plan.out_blocks % kb); tail_kb > 0)
    make_tile(tail_kb, plan.tail, plan.tail_row);
  if (plan.main.pixels < 1) return "dense: no register tile fits the activation's temporaries";

  // The emitter encodes plane strides and offsets as 32-bit immediates and displacements.
  const double in_plane_bytes = static_cast<double>(s.src_plane_pixels()) * B * 4;
  const double out_plane_bytes = static_cast<double>(s.dst_plane_pixels()) * B * 4;
  const double weights_bytes = static_cast<double>(plan.packed_weights_floats()) * 4;
  if (!fits_int32(in_plane_bytes * static_cast<double>(plan.in_blocks)) ||
      !fits_int32(out_plane_bytes * static_cast<double>(plan.out_blocks)) || !fits_int32(weights_bytes) ||
      !fits_int32((static_cast<double>(s.width) + static_cast<double>(s.pad_left)) * s.stride * B * 4 * 8))
    return "dense: one image is too large for the kernel's 32-bit offsets (" + s.key() + ")";
  return plan;
}

DenseWeights pack_dense_weights(const DensePlan& plan, FloatsIn weights, FloatsIn bias) {
  const int64_t C = plan.shape.in_channels, K = plan.shape.out_channels, B = plan.block, k = plan.shape.kernel;
  DenseWeights w{AlignedBuffer<float>::packed(plan.packed_weights_floats()), AlignedBuffer<float>::packed(plan.packed_bias_floats())};
  // Tile t holds [kh][in block][kw][c in block][kb][B]: per tap and input channel, the
  // tile's output channels in a row, the order the microkernel loads them. Padding
  // input channels and output channels keep zero weights.
  for (int64_t t = 0; t < plan.tiles(); ++t) {
    const int kb = t < plan.main_tiles ? plan.main.oc_blocks : plan.tail.oc_blocks;
    const int64_t first_oc = t * plan.main.oc_blocks * B;
    float* dst = w.weights.data() + first_oc * k * k * plan.in_blocks * B;
    // One B-float line at a time (a float of each of B source rows, [C][k][k] each), input
    // block by input block: per block the source is B x k x k floats of each row of the
    // tile (in L1), and the writes run as k sequential streams (one per kh), not jumping
    // a page per line. The buffer is zero already: padding channels are skipped.
    for (int64_t cb = 0; cb < plan.in_blocks; ++cb)
      for (int64_t kh = 0; kh < k; ++kh)
        for (int64_t kw = 0; kw < k; ++kw)
          for (int64_t ci = 0; ci < B && cb * B + ci < C; ++ci) {
            const int64_t c = cb * B + ci;
            float* line = dst + (((kh * plan.in_blocks + cb) * k + kw) * B + ci) * kb * B;
            for (int64_t jb = 0; jb < kb && first_oc + jb * B < K; ++jb) {
              const int64_t oc0 = first_oc + jb * B, rows = std::min(B, K - oc0);
              const FloatsIn col = weights + ((oc0 * C + c) * k + kh) * k + kw;
              for (int64_t j = 0; j < rows; ++j) line[jb * B + j] = col[j * C * k * k];
            }
          }
  }
  if (bias != nullptr)
    for (int64_t oc = 0; oc < K; ++oc) w.bias[static_cast<std::size_t>(oc)] = bias[oc];
  return w;
}

}  // namespace nnjit::jit
