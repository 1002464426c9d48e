// plan_depthwise: every decision the depthwise emitter follows — ISA and register tiles —
// made from the shape and the host alone.
#include <algorithm>
#include <climits>

#include "jit/depthwise/depthwise.hpp"
#include "jit/key_text.hpp"

namespace nnjit::jit {

namespace {

bool fits_int32(double v) { return v < static_cast<double>(INT_MAX); }

// The emitter keeps a table of 24 bytes per output row in its code.
constexpr int64_t kMaxOutRows = int64_t{1} << 16;

}  // namespace

std::string DepthwiseShape::key() const {
  KeyText s;
  s << "n" << batch << "_c" << channels << "_" << height << "x" << width << "_k" << kernel << "_s" << stride << "_d"
    << dilation << "_p" << pad_top << "," << pad_left << "," << pad_bottom << "," << pad_right
    << (has_bias ? "_bias" : "") << "_act:" << activation.key() << "_res:" << residual_mode_name(residual);
  if (src_plane || dst_plane) s << "_planes" << src_plane << "," << dst_plane;
  return std::move(s).str();
}

std::string DepthwisePlan::name() const {
  // Fusions read in the order they apply: res_relu = relu(conv + residual).
  KeyText n;
  n << "f32_" << (shape.dilation > 1 ? "dilated" : "depthwise") << "_k" << shape.kernel;
  if (shape.dilation > 1) n << "_d" << shape.dilation;
  if (shape.stride != 1) n << "_s" << shape.stride;
  if (shape.residual == ResidualMode::before_activation) n << "_res";
  if (shape.activation.kind != ActivationKind::none) n << "_" << shape.activation.name();
  if (shape.residual == ResidualMode::after_activation) n << "_res";
  n << "_" << block << "x" << pixels << "__" << to_string(isa);
  return std::move(n).str();
}

std::string DepthwisePlan::key() const {
  KeyText s;
  s << "depthwise/" << shape.key() << "/" << to_string(isa) << "/b" << block << "x" << blocks << "/p" << pixels
    << "/t" << row_tiles << "/l" << loop_begin << "+" << loop_tiles;
  return std::move(s).str();
}

std::variant<DepthwisePlan, std::string> plan_depthwise(const DepthwiseShape& shape, const HostInfo& host) {
  const auto& s = shape;
  if (s.batch < 1 || s.channels < 1 || s.height < 1 || s.width < 1)
    return "depthwise: batch, channels and spatial sizes must be positive (got " + s.key() + ")";
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  if (s.batch > kMaxDim || s.channels > kMaxDim || s.height > kMaxDim || s.width > kMaxDim)
    return "depthwise: a dimension exceeds 2^24 (got " + s.key() + ")";
  if (s.kernel < 1 || s.kernel > 7)
    return "depthwise: only 1x1 to 7x7 kernels are generated (got " + std::to_string(s.kernel) + ")";
  if (s.stride < 1 || s.stride > 4)
    return "depthwise: only strides 1 to 4 are generated (got " + std::to_string(s.stride) + ")";
  if (s.dilation != 1 && s.dilation != 2 && s.dilation != 4)
    return "depthwise: only dilations 1, 2 and 4 are generated (got " + std::to_string(s.dilation) + ")";
  if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0)
    return "depthwise: pads must not be negative (got " + s.key() + ")";
  if (s.pad_top > kMaxDim || s.pad_left > kMaxDim || s.pad_bottom > kMaxDim || s.pad_right > kMaxDim)
    return "depthwise: a pad exceeds 2^24 (got " + s.key() + ")";
  if (s.height + s.pad_top + s.pad_bottom < s.dilated_kernel() || s.width + s.pad_left + s.pad_right < s.dilated_kernel())
    return "depthwise: the padded input is smaller than the kernel (got " + s.key() + ")";
  if (s.out_height() > kMaxOutRows) return "depthwise: more than 65536 output rows (got " + s.key() + ")";
  if (auto why = s.activation.invalid_reason()) return "depthwise: " + *why;

  DepthwisePlan plan;
  plan.shape = s;
  bool found = false;
#define NNJIT_DEPTHWISE_VARIANT(id)        \
  if (!found && host_has(host, Isa::id)) { \
    plan.isa = Isa::id;                    \
    found = true;                          \
  }
#include "jit/depthwise/depthwise.inc"
#undef NNJIT_DEPTHWISE_VARIANT
  if (!found) return "depthwise: the host has neither AVX-512 (F/BW/VL/DQ) nor AVX2 with FMA";

  const int B = isa_block(plan.isa);
  plan.block = B;
  plan.blocks = div_up(s.channels, B);

  // Register tiles: as few per row as fit, evened out (112 pixels with room for 28 make
  // 4 tiles of 28, not 3 of 28 and one of 28 - a stub of a tile latency-bound on too few
  // accumulators).
  const int64_t wo = s.out_width();
  const int pmax = depthwise_max_pixels(plan.isa, s.kernel);
  plan.row_tiles = div_up(wo, pmax);
  plan.pixels = static_cast<int>(div_up(wo, plan.row_tiles));
  // Tiles with every tap inside the row: ow * stride - pad_left >= 0 for the first pixel,
  // and the last pixel's last tap (ow + P - 1) * stride - pad_left + d(k-1) < width.
  auto interior = [&](int64_t t) {
    const int64_t ow0 = t * plan.pixels;
    if (ow0 + plan.pixels > wo) return false;  // the narrower last tile is emitted apart
    return ow0 * s.stride - s.pad_left >= 0 &&
           (ow0 + plan.pixels - 1) * s.stride - s.pad_left + s.dilated_kernel() - 1 < s.width;
  };
  plan.loop_begin = 0;
  plan.loop_tiles = 0;
  for (int64_t t = 0; t < plan.row_tiles; ++t)
    if (interior(t)) {
      if (plan.loop_tiles == 0) plan.loop_begin = t;
      ++plan.loop_tiles;
    }
  // One interior tile gains nothing from a loop; emitting it apart keeps the code small.
  if (plan.loop_tiles == 1) plan.loop_tiles = 0;
  if (plan.loop_tiles == 0) plan.loop_begin = 0;

  // The emitter encodes plane strides and offsets as 32-bit immediates and displacements.
  if ((s.src_plane != 0 && s.src_plane < s.height * s.width) ||
      (s.dst_plane != 0 && s.dst_plane < s.out_height() * wo))
    return "depthwise: a block stride is smaller than the plane it holds (got " + s.key() + ")";
  const double in_plane_bytes = static_cast<double>(s.src_plane_pixels()) * B * 4;
  const double out_plane_bytes = static_cast<double>(s.dst_plane_pixels()) * B * 4;
  const double blocks = static_cast<double>(plan.blocks);
  if (!fits_int32(in_plane_bytes * blocks) || !fits_int32(out_plane_bytes * blocks) ||
      !fits_int32((static_cast<double>(s.width) + static_cast<double>(s.pad_left)) * s.stride * B * 4 * 4))
    return "depthwise: one image is too large for the kernel's 32-bit offsets (" + s.key() + ")";
  return plan;
}

DepthwiseWeights pack_depthwise_weights(const DepthwisePlan& plan, FloatsIn weights, FloatsIn bias) {
  const int64_t C = plan.shape.channels, B = plan.block, kk = int64_t{plan.shape.kernel} * plan.shape.kernel;
  DepthwiseWeights w{AlignedBuffer<float>::packed(plan.packed_weights_floats()), AlignedBuffer<float>::packed(plan.packed_bias_floats())};
  // [C/B][kh][kw][B]: one vector per tap, the channels of a block side by side; padding
  // channels keep zero weights.
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < kk; ++t) w.weights[static_cast<std::size_t>(((c / B) * kk + t) * B + c % B)] = weights[c * kk + t];
  if (bias != nullptr)
    for (int64_t c = 0; c < C; ++c) w.bias[static_cast<std::size_t>(c)] = bias[c];
  return w;
}

}  // namespace nnjit::jit
