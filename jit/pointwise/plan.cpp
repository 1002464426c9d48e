// plan_pointwise: every decision the pointwise emitter follows — ISA, register tile,
// cache blocking — made from the shape and the host alone.
#include <algorithm>
#include <climits>
#include <limits>

#include "jit/pointwise/pointwise.hpp"
#include "jit/key_text.hpp"

namespace nnjit::jit {

namespace {

// Throughput figures of current big cores (Zen 4/5, Golden Cove) that the tile cost
// model uses; they rank tiles, they do not predict time.
constexpr double kFmaPerCycle = 2.0;
constexpr double kFmaLatency = 4.0;
constexpr double kLoadsPerCycle = 3.0;
// AVX2 tiles pay for their separate broadcasts and weight loads beyond the FMAs. Fitted
// to a grid of tiles measured on Zen 4 (1024->256 channels, 14x14): per step a
// broadcast costs ~0.29 cycles and a weight load ~0.57 on top of kb*p/2 FMA cycles.
// That ranks 24x4 = 16x6 > 32x3 > 40x2 > 8x14 as measured (116.5, 117, 113, 110, 104
// GFLOP/s against a 116 peak).
constexpr double kAvx2BroadcastCycles = 0.29;
constexpr double kAvx2WeightLoadCycles = 0.57;
// AVX-512 tiles of 8+ accumulators all ran within a few percent of peak, but the
// extremes lost: 16x31 (one block, one broadcast per FMA) up to 15% on wide 7x7 layers
// (2048->1024), 96x4 3% on 2048->512. Small per-broadcast and per-weight-load costs
// steer the choice to the middle (32x14, 48x9, 64x7).
constexpr double kAvx512BroadcastCycles = 0.1;
constexpr double kAvx512WeightLoadCycles = 0.3;
// Cycles to set up and finish one microkernel call, per accumulator (init, post-ops,
// store) — roughly; it makes tiny tiles lose to bigger ones on short reductions.
constexpr double kPerAccumulatorOverhead = 1.5;

constexpr int kMaxOcBlocks = 6;

// Cycles one input-channel step of a kb x p tile takes: bound by FMA throughput (plus
// the small per-load costs above), by one accumulator chain's latency, or (AVX-512) by
// loads: kb weight vectors and a broadcast folded into every FMA.
double step_cycles(Isa isa, int kb, int p) {
  if (isa == Isa::avx2)
    return std::max(kb * p / kFmaPerCycle + kAvx2BroadcastCycles * p + kAvx2WeightLoadCycles * kb, kFmaLatency);
  const double loads = (kb + kb * p) / kLoadsPerCycle;
  const double fma = kb * p / kFmaPerCycle + kAvx512BroadcastCycles * p + kAvx512WeightLoadCycles * kb;
  return std::max({fma, kFmaLatency, loads});
}

// The most pixels a tile of kb blocks can hold: accumulators plus whatever the
// reduction (kb weight vectors, one broadcast on AVX2) or the activation needs must fit.
int max_pixels(Isa isa, int kb, int act_temps) {
  const int regs = isa_vector_registers(isa);
  const int reduction = kb + (isa == Isa::avx2 ? 1 : 0);
  const int reserved = std::max(reduction, act_temps);
  return std::max(0, (regs - reserved) / kb);
}

// Cycles for one output-channel tile of kb blocks to sweep every pixel once over all
// input channels with p-pixel tiles (plus the row tail).
double tile_cost(Isa isa, int kb, int p, int64_t rows, int64_t row_pixels, int64_t channels) {
  const int64_t full = row_pixels / p;
  const int tail = static_cast<int>(row_pixels % p);
  double cost = static_cast<double>(full) * (step_cycles(isa, kb, p) * channels + kPerAccumulatorOverhead * kb * p);
  if (tail > 0) cost += step_cycles(isa, kb, tail) * channels + kPerAccumulatorOverhead * kb * tail;
  return cost * rows;
}

struct TileChoice {
  PointwiseTile tile;
  double cost = std::numeric_limits<double>::infinity();
};

TileChoice best_pixels(Isa isa, int kb, int act_temps, int64_t rows, int64_t row_pixels, int64_t channels) {
  TileChoice best;
  const int pmax = static_cast<int>(std::min<int64_t>(max_pixels(isa, kb, act_temps), row_pixels));
  for (int p = 1; p <= pmax; ++p) {
    const double cost = tile_cost(isa, kb, p, rows, row_pixels, channels);
    // Ties go to the larger tile (fewer loop trips, fewer microkernel calls).
    if (cost <= best.cost * (1 + 1e-9)) best = {{kb, p}, cost};
  }
  return best;
}

bool fits_int32(double v) { return v < static_cast<double>(INT_MAX); }

}  // namespace

std::string PointwiseShape::key() const {
  KeyText s;
  s << "n" << batch << "_c" << in_channels << "_k" << out_channels << "_" << height << "x" << width << "_s" << stride
    << (has_bias ? "_bias" : "") << "_act:" << activation.key() << "_res:" << residual_mode_name(residual);
  if (src_plane || dst_plane) s << "_planes" << src_plane << "," << dst_plane;
  return std::move(s).str();
}

std::string PointwisePlan::name() const {
  // Fusions read in the order they apply: res_relu = relu(conv + residual).
  KeyText n;
  n << "f32_pointwise";
  if (shape.stride != 1) n << "_s" << shape.stride;
  if (shape.residual == ResidualMode::before_activation) n << "_res";
  if (shape.activation.kind != ActivationKind::none) n << "_" << shape.activation.name();
  if (shape.residual == ResidualMode::after_activation) n << "_res";
  n << "_" << main.oc_blocks * block << "x" << main.pixels << "__" << to_string(isa);
  return std::move(n).str();
}

std::string PointwisePlan::key() const {
  KeyText s;
  s << "pointwise/" << shape.key() << "/" << to_string(isa) << "/b" << block << "/t" << main.oc_blocks << "x"
    << main.pixels << "," << tail.oc_blocks << "x" << tail.pixels << "/m" << main_tiles << "/kc" << chunk_channels
    << "x" << chunks << "/r" << rows << "x" << row_pixels << (half_last_block ? "/half" : "") << "/ws"
    << weight_streams;
  return std::move(s).str();
}

std::variant<PointwisePlan, std::string> plan_pointwise(const PointwiseShape& shape, const HostInfo& host) {
  const auto& s = shape;
  if (s.batch < 1 || s.in_channels < 1 || s.out_channels < 1 || s.height < 1 || s.width < 1)
    return "pointwise: batch, channels and spatial sizes must be positive (got " + s.key() + ")";
  // Bounds every int64 product below (and the 32-bit offsets checked at the end).
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  if (s.batch > kMaxDim || s.in_channels > kMaxDim || s.out_channels > kMaxDim || s.height > kMaxDim ||
      s.width > kMaxDim)
    return "pointwise: a dimension exceeds 2^24 (got " + s.key() + ")";
  if (s.stride != 1 && s.stride != 2)
    return "pointwise: only strides 1 and 2 are generated (got " + std::to_string(s.stride) + ")";
  if (auto why = s.activation.invalid_reason()) return "pointwise: " + *why;
  if ((s.src_plane != 0 && (s.src_plane < s.height * s.width || s.src_plane > kMaxDim * kMaxDim)) ||
      (s.dst_plane != 0 && (s.dst_plane < s.out_height() * s.out_width() || s.dst_plane > kMaxDim * kMaxDim)))
    return "pointwise: a block stride is smaller than the plane it holds (got " + s.key() + ")";

  PointwisePlan plan;
  plan.shape = s;
  bool found = false;
#define NNJIT_POINTWISE_VARIANT(id) \
  if (!found && host_has(host, Isa::id)) {  \
    plan.isa = Isa::id;                     \
    found = true;                           \
  }
#include "jit/pointwise/pointwise.inc"
#undef NNJIT_POINTWISE_VARIANT
  if (!found) return "pointwise: the host has neither AVX-512 (F/BW/VL/DQ) nor AVX2 with FMA";

  const int B = isa_block(plan.isa);
  plan.block = B;
  plan.in_blocks = div_up(s.in_channels, B);
  plan.out_blocks = div_up(s.out_channels, B);
  const int64_t ho = s.out_height(), wo = s.out_width();
  plan.rows = s.stride == 1 ? 1 : ho;
  plan.row_pixels = s.stride == 1 ? ho * wo : wo;

  // Register tile: the cheapest (oc blocks, pixels) by the cost model, counting the
  // last, narrower output-channel tile when the blocks do not divide evenly.
  const int act_temps = activation_temps(s.activation.kind);
  double best_cost = std::numeric_limits<double>::infinity();
  for (int kb = 1; kb <= std::min<int64_t>(kMaxOcBlocks, plan.out_blocks); ++kb) {
    const TileChoice main = best_pixels(plan.isa, kb, act_temps, plan.rows, plan.row_pixels, s.in_channels);
    if (main.tile.pixels == 0) continue;
    const int64_t main_tiles = plan.out_blocks / kb;
    const int tail_kb = static_cast<int>(plan.out_blocks % kb);
    TileChoice tail;
    if (tail_kb > 0) tail = best_pixels(plan.isa, tail_kb, act_temps, plan.rows, plan.row_pixels, s.in_channels);
    const double cost = main.cost * static_cast<double>(main_tiles) + (tail_kb > 0 ? tail.cost : 0.0);
    // Ties go to the larger tile: each source broadcast then feeds more FMAs.
    const bool tie = cost <= best_cost * (1 + 1e-9) && cost >= best_cost * (1 - 1e-9);
    const int area = main.tile.oc_blocks * main.tile.pixels, best_area = plan.main.oc_blocks * plan.main.pixels;
    if (cost < best_cost * (1 - 1e-9) || (tie && area >= best_area)) {
      best_cost = cost;
      plan.main = main.tile;
      plan.tail = tail_kb > 0 ? tail.tile : PointwiseTile{};
      plan.main_tiles = main_tiles;
    }
  }
  if (plan.main.pixels == 0) return "pointwise: no register tile fits the activation's temporaries";
  plan.half_last_block = plan.isa == Isa::avx512 && s.out_channels % B != 0 && s.out_channels % B <= B / 2;
  if (plan.half_last_block && plan.tail.oc_blocks == 0) {  // the narrow block must be in the tail tile
    plan.tail = plan.main;
    --plan.main_tiles;
  }

  // Cache blocking: one tile's weights for a chunk stay in half of L2 while the tile
  // sweeps every pixel (the other half holds the source pixels and dst). Measured on
  // Zen 4, streaming those weights from L2 costs nothing next to the FMAs, whereas each
  // chunk boundary stores and reloads every accumulator, so chunks are as long as L2
  // allows (an L1-sized chunk was 2-10% slower); only very wide layers are cut.
  const int64_t bytes_per_channel = int64_t{plan.main.oc_blocks} * B * 4;
  const int64_t l2 = static_cast<int64_t>(host.l2_bytes > 0 ? host.l2_bytes : kDefaultL2Bytes);
  int64_t kc = std::max<int64_t>(B, (l2 / 2) / bytes_per_channel / B * B);
  if (kc >= s.in_channels) kc = round_up(s.in_channels, B);
  plan.chunk_channels = kc;
  plan.chunks = div_up(s.in_channels, kc);
  if (plan.isa == Isa::avx512 && ho * wo == 1 && plan.chunks == 1 && plan.packed_weights_floats() * 4 > l2)
    plan.weight_streams = 4;

  // The emitter encodes these strides as 32-bit immediates and displacements.
  // Computed in double: with dims below 2^24 no product here overflows, and the plan's
  // int64 sizes are safe once these pass.
  const double in_plane_bytes = static_cast<double>(s.src_plane_pixels()) * B * 4;
  const double out_plane_bytes = static_cast<double>(s.dst_plane_pixels()) * B * 4;
  const double out_block_count = static_cast<double>(plan.out_blocks), in_block_count = static_cast<double>(plan.in_blocks);
  const int max_kb = std::max(plan.main.oc_blocks, plan.tail.oc_blocks);
  if (!fits_int32(in_plane_bytes * static_cast<double>(kc / B + 1)) || !fits_int32(out_plane_bytes * (max_kb + 1)) ||
      !fits_int32(static_cast<double>(s.in_channels) * out_block_count * B * 4) ||
      !fits_int32(out_plane_bytes * out_block_count) || !fits_int32(in_plane_bytes * in_block_count))
    return "pointwise: one image is too large for the kernel's 32-bit offsets (" + s.key() + ")";
  return plan;
}

PointwisePlan pointwise_pixels(const PointwisePlan& whole, int64_t pixels, int64_t src_plane, int64_t dst_plane) {
  if (whole.shape.stride != 1 || pixels < 1 || src_plane < pixels || dst_plane < pixels)
    throw std::invalid_argument("pointwise_pixels: stride 1 and planes of at least `pixels` needed (got " +
                                whole.shape.key() + ", " + std::to_string(pixels) + " pixels)");
  PointwisePlan p = whole;
  p.shape.height = 1;
  p.shape.width = pixels;
  p.shape.src_plane = src_plane;
  p.shape.dst_plane = dst_plane;
  p.rows = 1;
  p.row_pixels = pixels;
  return p;
}

bool pointwise_in_place(const PointwisePlan& p) {
  const PointwiseShape& s = p.shape;
  return s.batch == 1 && s.stride == 1 && s.src_plane_pixels() == s.dst_plane_pixels() &&
         p.out_blocks <= p.in_blocks && p.tiles() == 1 && p.chunk_channels >= p.out_blocks * p.block;
}

std::vector<PointwiseSlice> slice_pointwise(const PointwisePlan& whole, int parts, int64_t min_pixels) {
  const PointwiseShape& shape = whole.shape;
  if (shape.batch != 1) throw std::invalid_argument("slice_pointwise: batch must be 1 (got " + shape.key() + ")");
  // Stride 1: the plane is one row of pixels; stride 2: whole output rows.
  const bool by_rows = shape.stride != 1;
  const int64_t units = by_rows ? shape.out_height() : shape.height * shape.width;
  const int64_t unit_pixels = by_rows ? shape.out_width() : 1;
  const int64_t most = std::max<int64_t>(1, units * unit_pixels / std::max<int64_t>(min_pixels, 1));
  const int64_t n = std::clamp<int64_t>(parts, 1, std::min(units, most));
  std::vector<PointwiseSlice> slices;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t begin = units * i / n, end = units * (i + 1) / n;
    PointwiseSlice sl{whole, 0, 0};
    PointwiseShape& s = sl.plan.shape;
    s.src_plane = shape.src_plane_pixels();
    s.dst_plane = shape.dst_plane_pixels();
    if (by_rows) {
      s.height = std::min<int64_t>((end - begin) * shape.stride, shape.height - begin * shape.stride);
      sl.src_pixel = begin * shape.stride * shape.width;
      sl.dst_pixel = begin * shape.out_width();
      sl.plan.rows = s.out_height();
    } else {
      sl.plan = pointwise_pixels(whole, end - begin, s.src_plane, s.dst_plane);
      sl.src_pixel = sl.dst_pixel = begin;
    }
    slices.push_back(sl);
  }
  return slices;
}

PointwiseWeights pack_pointwise_weights(const PointwisePlan& plan, FloatsIn weights, FloatsIn bias) {
  const int64_t C = plan.shape.in_channels, K = plan.shape.out_channels, B = plan.block;
  PointwiseWeights w{AlignedBuffer<float>::packed(plan.packed_weights_floats()), AlignedBuffer<float>::packed(plan.packed_bias_floats())};
  // Tile t holds [C][kb][B]: for each input channel, the tile's output channels in a row,
  // the order the microkernel loads them.
  for (int64_t t = 0; t < plan.tiles(); ++t) {
    const int kb = t < plan.main_tiles ? plan.main.oc_blocks : plan.tail.oc_blocks;
    const int64_t first_oc = t * plan.main.oc_blocks * B;
    float* dst = w.weights.data() + first_oc * C;
    // Block by block of B output channels, B source rows to C lines (the buffer is zero
    // already: output channels past K are skipped).
    for (int64_t jb = 0; jb < kb && first_oc + jb * B < K; ++jb) {
      const int64_t oc0 = first_oc + jb * B;
      transpose_floats(weights + oc0 * C, C, std::min(B, K - oc0), C, dst + jb * B, kb * B);
    }
  }
  if (bias != nullptr)
    for (int64_t k = 0; k < K; ++k) w.bias[static_cast<std::size_t>(k)] = bias[k];
  return w;
}

}  // namespace nnjit::jit
