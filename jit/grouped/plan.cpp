// plan_grouped: every decision the grouped emitter follows — ISA, input windows, register
// tiles — made from the shape and the host alone; and the weight packing that matches it.
#include <algorithm>
#include <climits>

#include "jit/grouped/grouped.hpp"
#include "jit/key_text.hpp"

namespace nnjit::jit {

namespace {

bool fits_int32(double v) { return v < static_cast<double>(INT_MAX); }

// The emitter keeps a table of 24 bytes per output row and 8 per output block in its code.
constexpr int64_t kMaxOutRows = int64_t{1} << 16;
constexpr int64_t kMaxOutBlocks = int64_t{1} << 16;

// The input channels output block `ob` reads: [first, last].
std::pair<int64_t, int64_t> window_channels(const GroupedShape& s, int64_t block, int64_t ob) {
  const int64_t Kg = s.out_per_group(), Cg = s.in_per_group();
  const int64_t oc0 = ob * block, oc1 = std::min(s.out_channels, oc0 + block) - 1;
  return {oc0 / Kg * Cg, (oc1 / Kg + 1) * Cg - 1};
}

}  // namespace

std::string GroupedShape::key() const {
  KeyText s;
  s << "n" << batch << "_c" << in_channels << "_k" << out_channels << "_g" << groups << "_" << height << "x" << width
    << "_f" << kernel << "_s" << stride << "_p" << pad_top << "," << pad_left << "," << pad_bottom << "," << pad_right
    << (has_bias ? "_bias" : "") << "_act:" << activation.key() << "_res:" << residual_mode_name(residual);
  if (src_plane || dst_plane) s << "_planes" << src_plane << "," << dst_plane;
  return std::move(s).str();
}

int64_t GroupedPlan::window_start(int64_t ob) const {
  const int64_t first = window_channels(shape, block, ob).first / block;
  return std::min(first, in_blocks - window_blocks);
}

std::string GroupedPlan::name() const {
  // Fusions read in the order they apply: res_relu = relu(conv + residual).
  KeyText n;
  n << "f32_grouped_k" << shape.kernel;
  if (shape.stride != 1) n << "_s" << shape.stride;
  if (shape.residual == ResidualMode::before_activation) n << "_res";
  if (shape.activation.kind != ActivationKind::none) n << "_" << shape.activation.name();
  if (shape.residual == ResidualMode::after_activation) n << "_res";
  n << "_" << block << "x" << pixels << "__" << to_string(isa);
  return std::move(n).str();
}

std::string GroupedPlan::key() const {
  KeyText s;
  s << "grouped/" << shape.key() << "/" << to_string(isa) << "/b" << block << "/i" << in_blocks << "/o" << out_blocks
    << "/w" << window_blocks << "/l" << lane_step << "/r" << rotate << "/p" << pixels << "/t" << row_tiles << "/l"
    << loop_begin << "+" << loop_tiles;
  return std::move(s).str();
}

std::variant<GroupedPlan, std::string> plan_grouped(const GroupedShape& shape, const HostInfo& host) {
  const auto& s = shape;
  if (s.batch < 1 || s.in_channels < 1 || s.out_channels < 1 || s.groups < 1 || s.height < 1 || s.width < 1)
    return "grouped: batch, channels, groups and spatial sizes must be positive (got " + s.key() + ")";
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  if (s.batch > kMaxDim || s.in_channels > kMaxDim || s.out_channels > kMaxDim || s.height > kMaxDim ||
      s.width > kMaxDim)
    return "grouped: a dimension exceeds 2^24 (got " + s.key() + ")";
  if (s.in_channels % s.groups != 0 || s.out_channels % s.groups != 0)
    return "grouped: the groups must divide input and output channels (got " + s.key() + ")";
  if (s.kernel < 1 || s.kernel > 7)
    return "grouped: only 1x1 to 7x7 kernels are generated (got " + std::to_string(s.kernel) + ")";
  if (s.stride != 1 && s.stride != 2)
    return "grouped: only strides 1 and 2 are generated (got " + std::to_string(s.stride) + ")";
  if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0)
    return "grouped: pads must not be negative (got " + s.key() + ")";
  if (s.pad_top > kMaxDim || s.pad_left > kMaxDim || s.pad_bottom > kMaxDim || s.pad_right > kMaxDim)
    return "grouped: a pad exceeds 2^24 (got " + s.key() + ")";
  if (s.height + s.pad_top + s.pad_bottom < s.kernel || s.width + s.pad_left + s.pad_right < s.kernel)
    return "grouped: the padded input is smaller than the kernel (got " + s.key() + ")";
  if (s.out_height() > kMaxOutRows) return "grouped: more than 65536 output rows (got " + s.key() + ")";
  if (auto why = s.activation.invalid_reason()) return "grouped: " + *why;
  if (s.src_plane < 0 || s.dst_plane < 0 || (s.src_plane != 0 && s.src_plane < s.height * s.width) ||
      (s.dst_plane != 0 && s.dst_plane < s.out_height() * s.out_width()))
    return "grouped: a plane stride is smaller than the plane (got " + s.key() + ")";

  GroupedPlan plan;
  plan.shape = s;
  bool found = false;
#define NNJIT_GROUPED_VARIANT(id)          \
  if (!found && host_has(host, Isa::id)) { \
    plan.isa = Isa::id;                    \
    found = true;                          \
  }
#include "jit/grouped/grouped.inc"
#undef NNJIT_GROUPED_VARIANT
  if (!found) return "grouped: the host has neither AVX-512 (F/BW/VL/DQ) nor AVX2 with FMA";

  const int B = isa_block(plan.isa);
  plan.block = B;
  plan.in_blocks = div_up(s.in_channels, B);
  plan.out_blocks = div_up(s.out_channels, B);
  if (plan.out_blocks > kMaxOutBlocks) return "grouped: more than 65536 output blocks (got " + s.key() + ")";
  plan.window_blocks = 1;
  for (int64_t ob = 0; ob < plan.out_blocks; ++ob) {
    const auto [first, last] = window_channels(s, B, ob);
    plan.window_blocks = std::max(plan.window_blocks, last / B - first / B + 1);
  }
  // The lane loop's body: lane_step lanes x k taps, about 16 weight vectors.
  plan.lane_step = B;
  while (plan.lane_step > 2 && plan.lane_step * s.kernel > 16) plan.lane_step /= 2;
  const int64_t Kg = s.out_per_group();
  if (s.in_per_group() == Kg && Kg > 1 && Kg < B && B % Kg == 0) plan.rotate = static_cast<int>(Kg);

  // Register tiles, evened out as in plan_depthwise.
  const int64_t wo = s.out_width();
  const int pmax = grouped_max_pixels(plan.isa, s.kernel, plan.rotate);
  plan.row_tiles = div_up(wo, pmax);
  plan.pixels = static_cast<int>(div_up(wo, plan.row_tiles));
  auto interior = [&](int64_t t) {
    const int64_t ow0 = t * plan.pixels;
    if (ow0 + plan.pixels > wo) return false;
    return ow0 * s.stride - s.pad_left >= 0 && (ow0 + plan.pixels - 1) * s.stride - s.pad_left + s.kernel - 1 < s.width;
  };
  plan.loop_begin = 0;
  plan.loop_tiles = 0;
  for (int64_t t = 0; t < plan.row_tiles; ++t)
    if (interior(t)) {
      if (plan.loop_tiles == 0) plan.loop_begin = t;
      ++plan.loop_tiles;
    }
  if (plan.loop_tiles == 1) plan.loop_tiles = 0;
  if (plan.loop_tiles == 0) plan.loop_begin = 0;

  // The emitter encodes plane strides and offsets as 32-bit immediates and displacements.
  const double in_plane_bytes = static_cast<double>(s.src_plane_pixels()) * B * 4;
  const double out_plane_bytes = static_cast<double>(s.dst_plane_pixels()) * B * 4;
  const double weight_block_bytes = static_cast<double>(plan.packed_weights_floats()) * 4;
  if (!fits_int32(in_plane_bytes * static_cast<double>(plan.in_blocks)) ||
      !fits_int32(out_plane_bytes * static_cast<double>(plan.out_blocks)) ||
      !fits_int32(weight_block_bytes) ||
      !fits_int32((static_cast<double>(s.width) + static_cast<double>(s.pad_left)) * s.stride * B * 4 * 4))
    return "grouped: one image or its weights are too large for the kernel's 32-bit offsets (" + s.key() + ")";
  return plan;
}

GroupedWeights pack_grouped_weights(const GroupedPlan& plan, FloatsIn weights, FloatsIn bias) {
  const auto& s = plan.shape;
  const int64_t B = plan.block, k = s.kernel, Cg = s.in_per_group(), Kg = s.out_per_group();
  const int64_t nw = plan.window_blocks;
  GroupedWeights w{AlignedBuffer<float>::packed(plan.packed_weights_floats()), AlignedBuffer<float>::packed(plan.packed_bias_floats())};
  if (plan.rotate > 0) {
    // [ob][kh][kw][r][B]: lane o of vector r weighs the input lane that rotation r brings
    // to o.
    const int64_t R = plan.rotate;
    for (int64_t oc = 0; oc < s.out_channels; ++oc) {
      const int64_t ob = oc / B, o = oc % B;
      for (int64_t kh = 0; kh < k; ++kh)
        for (int64_t kw = 0; kw < k; ++kw)
          for (int64_t r = 0; r < R; ++r) {
            const int64_t icl = grouped_rotation_source(plan.rotate, static_cast<int>(r), static_cast<int>(o % R));
            w.weights[static_cast<std::size_t>((((ob * k + kh) * k + kw) * R + r) * B + o)] =
                weights[((oc * Cg + icl) * k + kh) * k + kw];
          }
    }
    if (bias != nullptr)
      for (int64_t c = 0; c < s.out_channels; ++c) w.bias[static_cast<std::size_t>(c)] = bias[c];
    return w;
  }
  // [ob][kh][window block][lane][kw][B]: for one input lane, the k taps of a kernel row are
  // adjacent vectors, and the lanes of other groups keep zero weights.
  for (int64_t ob = 0; ob < plan.out_blocks; ++ob) {
    const int64_t start = plan.window_start(ob);
    for (int64_t o = 0; o < B; ++o) {
      const int64_t oc = ob * B + o;
      if (oc >= s.out_channels) break;
      const int64_t g = oc / Kg;
      for (int64_t icl = 0; icl < Cg; ++icl) {
        const int64_t ic = g * Cg + icl;
        const int64_t wb = ic / B - start, lane = ic % B;
        for (int64_t kh = 0; kh < k; ++kh)
          for (int64_t kw = 0; kw < k; ++kw) {
            const int64_t at = (((((ob * k + kh) * nw + wb) * B + lane) * k + kw) * B) + o;
            w.weights[static_cast<std::size_t>(at)] = weights[((oc * Cg + icl) * k + kh) * k + kw];
          }
      }
    }
  }
  if (bias != nullptr)
    for (int64_t c = 0; c < s.out_channels; ++c) w.bias[static_cast<std::size_t>(c)] = bias[c];
  return w;
}

}  // namespace nnjit::jit
