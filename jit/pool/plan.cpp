// plan_pool: every decision the pool emitter follows — ISA and register tiles — made
// from the shape and the host alone.
#include <algorithm>
#include <climits>

#include "jit/pool/pool.hpp"
#include "jit/key_text.hpp"

namespace nnjit::jit {

namespace {

bool fits_int32(double v) { return v < static_cast<double>(INT_MAX); }

// The emitter keeps a table of 24 bytes per output row in its code.
constexpr int64_t kMaxOutRows = int64_t{1} << 16;
// Accumulators of a global pool: enough independent sums to hide the add latency.
constexpr int kGlobalAccumulators = 8;

}  // namespace

const char* pool_kind_name(PoolKind kind) {
  switch (kind) {
    case PoolKind::max: return "max";
    case PoolKind::avg: return "avg";
    case PoolKind::global_avg: return "global_avg";
    case PoolKind::global_max: return "global_max";
  }
  return "?";
}

int64_t pool_out_size(int64_t in, int kernel, int stride, int64_t pad_begin, int64_t pad_end, bool ceil_mode) {
  const int64_t span = in + pad_begin + pad_end - kernel;
  if (span < 0 || stride < 1) return 0;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

std::string PoolShape::key() const {
  KeyText s;
  s << "n" << batch << "_c" << channels << "_" << height << "x" << width << "_" << pool_kind_name(kind);
  if (!is_global(kind)) {
    s << "_k" << kernel_h << "x" << kernel_w << "_s" << stride_h << "x" << stride_w << "_p" << pad_top << ","
      << pad_left << "," << pad_bottom << "," << pad_right << "_o" << out_height << "x" << out_width;
    if (kind == PoolKind::avg) s << (count_include_pad ? "_incpad" : "_expad");
  }
  if (src_plane || dst_plane) s << "_planes" << src_plane << "," << dst_plane;
  return std::move(s).str();
}

std::string PoolPlan::name() const {
  KeyText n;
  if (is_global(shape.kind)) {
    n << "f32_global_" << (shape.kind == PoolKind::global_avg ? "avgpool" : "maxpool") << "_" << block << "__"
      << to_string(isa);
    return std::move(n).str();
  }
  n << "f32_" << (shape.kind == PoolKind::avg ? "avgpool" : "maxpool") << "_k" << shape.kernel_h;
  if (shape.kernel_w != shape.kernel_h) n << "x" << shape.kernel_w;
  if (shape.stride_h != 1 || shape.stride_w != 1) {
    n << "_s" << shape.stride_h;
    if (shape.stride_w != shape.stride_h) n << "x" << shape.stride_w;
  }
  n << "_" << block << "x" << pixels << "__" << to_string(isa);
  return std::move(n).str();
}

std::string PoolPlan::key() const {
  KeyText s;
  s << "pool/" << shape.key() << "/" << to_string(isa) << "/b" << block << "x" << blocks << "/p" << pixels << "/t"
    << row_tiles << "/l" << loop_begin << "+" << loop_tiles;
  return std::move(s).str();
}

std::variant<PoolPlan, std::string> plan_pool(const PoolShape& shape, const HostInfo& host) {
  const auto& s = shape;
  if (s.batch < 1 || s.channels < 1 || s.height < 1 || s.width < 1)
    return "pool: batch, channels and spatial sizes must be positive (got " + s.key() + ")";
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  if (s.batch > kMaxDim || s.channels > kMaxDim || s.height > kMaxDim || s.width > kMaxDim)
    return "pool: a dimension exceeds 2^24 (got " + s.key() + ")";
  if (s.kind != PoolKind::max && s.kind != PoolKind::avg && !is_global(s.kind)) return "pool: unknown pool kind";

  PoolPlan plan;
  plan.shape = s;
  if (is_global(s.kind)) {
    // Only what the kernel reads goes into the plan (and its key).
    plan.shape = PoolShape{.batch = s.batch, .channels = s.channels, .height = s.height, .width = s.width,
                           .kind = s.kind, .src_plane = s.src_plane, .dst_plane = s.dst_plane};
  } else {
    if (s.kernel_h < 1 || s.kernel_w < 1 || s.kernel_h > kPoolMaxKernel || s.kernel_w > kPoolMaxKernel)
      return "pool: only windows of 1 to 7 per side are generated (got " + s.key() + ")";
    if (s.stride_h < 1 || s.stride_w < 1 || s.stride_h > kPoolMaxStride || s.stride_w > kPoolMaxStride)
      return "pool: strides must be 1 to 16 (got " + s.key() + ")";
    if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0)
      return "pool: pads must not be negative (got " + s.key() + ")";
    if (s.out_height < 1 || s.out_width < 1) return "pool: the output size must be positive (got " + s.key() + ")";
    if (s.out_height > kMaxOutRows) return "pool: more than 65536 output rows (got " + s.key() + ")";
    if (s.out_width > kMaxDim) return "pool: the output width exceeds 2^24 (got " + s.key() + ")";
    // Every window must hold an input element: the first starts before its pad ends and
    // the last starts inside the image (ceil_mode's rule), along both axes.
    if (s.pad_top >= s.kernel_h || s.pad_left >= s.kernel_w ||
        (s.out_height - 1) * s.stride_h - s.pad_top >= s.height || (s.out_width - 1) * s.stride_w - s.pad_left >= s.width)
      return "pool: a window lies wholly in the padding (pads must be below the kernel and the last window must "
             "start inside the image; got " + s.key() + ")";
    if (s.kind == PoolKind::max) plan.shape.count_include_pad = false;
  }

  bool found = false;
#define NNJIT_POOL_VARIANT(id)             \
  if (!found && host_has(host, Isa::id)) { \
    plan.isa = Isa::id;                    \
    found = true;                          \
  }
#include "jit/pool/pool.inc"
#undef NNJIT_POOL_VARIANT
  if (!found) return "pool: the host has neither AVX-512 (F/BW/VL/DQ) nor AVX2 with FMA";

  const int B = isa_block(plan.isa);
  plan.block = B;
  plan.blocks = div_up(s.channels, B);
  const double blocks = static_cast<double>(plan.blocks);
  if (s.src_plane < 0 || s.dst_plane < 0 || (s.src_plane != 0 && s.src_plane < s.height * s.width) ||
      (s.dst_plane != 0 && s.dst_plane < s.dst_height() * s.dst_width()))
    return "pool: a plane stride is smaller than the plane (got " + s.key() + ")";
  const double in_plane_bytes = static_cast<double>(s.src_plane_pixels()) * B * 4;
  if (!fits_int32(in_plane_bytes * blocks)) return "pool: one image is too large for the kernel's 32-bit offsets (" + s.key() + ")";

  if (is_global(s.kind)) {
    plan.pixels = static_cast<int>(std::min<int64_t>(kGlobalAccumulators, s.height * s.width));
    return plan;
  }

  const double out_plane_bytes = static_cast<double>(s.dst_plane_pixels()) * B * 4;
  if (!fits_int32(out_plane_bytes * blocks) ||
      !fits_int32((static_cast<double>(s.out_width) * s.stride_w + kPoolMaxKernel) * B * 4))
    return "pool: one image is too large for the kernel's 32-bit offsets (" + s.key() + ")";

  // Register tiles: as few per row as fit, evened out.
  const int64_t wo = s.out_width;
  plan.row_tiles = div_up(wo, pool_max_pixels(plan.isa));
  plan.pixels = static_cast<int>(div_up(wo, plan.row_tiles));
  // Tiles with every column inside the row.
  auto interior = [&](int64_t t) {
    const int64_t ow0 = t * plan.pixels;
    if (ow0 + plan.pixels > wo) return false;  // the narrower last tile is emitted apart
    return ow0 * s.stride_w - s.pad_left >= 0 && (ow0 + plan.pixels - 1) * s.stride_w - s.pad_left + s.kernel_w <= s.width;
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
  return plan;
}

}  // namespace nnjit::jit
