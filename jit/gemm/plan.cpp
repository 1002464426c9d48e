// plan_gemm: every decision the gemm emitter follows — ISA, register tile, K chunks and
// row blocks — made from the shape and the host alone; and the weight packing.
#include <algorithm>
#include <climits>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "jit/gemm/gemm.hpp"
#include "jit/key_text.hpp"

namespace nnjit::jit {

namespace {

// The tile cost model of jit/pointwise/plan.cpp (the same reduction: a row of X is a
// pixel, a column block an output-channel block), with one change: every row's X value
// is broadcast once into a register (vbroadcastss) instead of into each FMA, so a step
// loads kb weight vectors and R scalars; a one-row tile takes its weights straight from
// memory into the FMAs. The figures rank tiles; they do not predict time.
constexpr double kFmaPerCycle = 2.0;
constexpr double kFmaLatency = 4.0;
constexpr double kLoadsPerCycle = 3.0;
constexpr double kAvx2BroadcastCycles = 0.29;
constexpr double kAvx2WeightLoadCycles = 0.57;
constexpr double kAvx512BroadcastCycles = 0.1;
constexpr double kAvx512WeightLoadCycles = 0.3;
constexpr double kPerAccumulatorOverhead = 1.5;

// The widest panel: 8 blocks (128 floats on AVX-512). Wider panels gain nothing more on
// one row and leave no registers for rows.
constexpr int kMaxBlocks = 8;
// Rows of a tile: the emitter addresses them from two base registers and lda, 3 * lda
// as index registers (rows 0-3 and 4-7).
constexpr int kMaxRows = 8;
// Cache shares: a panel's weights for one K chunk take at most a quarter of L2. Rows
// are cut into blocks only when X's chunk exceeds twice L2: every row block streams all
// the weights again from L3, which costs more than X missing L2 a little. Measured on
// Zen 3 (512 KiB L2), 197x768 -> 3072: whole (600 KiB of X) 93 GFLOP/s, 96-row blocks
// 83, 48-row blocks 78; K chunks of 256 instead of 768, 86.
constexpr int64_t kWeightChunkL2Divisor = 4;
constexpr int64_t kRowBlockL2Multiple = 2;

double step_cycles(Isa isa, int kb, int rows) {
  if (isa == Isa::avx2)
    return std::max(kb * rows / kFmaPerCycle + kAvx2BroadcastCycles * rows + kAvx2WeightLoadCycles * kb, kFmaLatency);
  const double loads = (kb + rows) / kLoadsPerCycle;
  const double fma = kb * rows / kFmaPerCycle + kAvx512BroadcastCycles * rows + kAvx512WeightLoadCycles * kb;
  return std::max({fma, kFmaLatency, loads});
}

// Vector registers a kb x rows tile needs besides its accumulators: the weights (none on
// one row: the FMAs read them from memory) and one broadcast; or the activation's
// temporaries when it needs more.
int reserved_registers(int kb, int rows, int act_temps) {
  const int reduction = (rows == 1 ? 0 : kb) + 1;
  return std::max(reduction, act_temps);
}

bool tile_fits(Isa isa, int kb, int rows, int act_temps) {
  return kb * rows + reserved_registers(kb, rows, act_temps) <= isa_vector_registers(isa);
}

// Cycles for one panel of kb blocks over every row: full row tiles, then the remainder.
double panel_cost(Isa isa, int kb, int rows, int64_t m, int64_t k) {
  const int64_t full = m / rows;
  const int rest = static_cast<int>(m % rows);
  double cost = static_cast<double>(full) * (step_cycles(isa, kb, rows) * static_cast<double>(k) +
                                             kPerAccumulatorOverhead * kb * rows);
  if (rest > 0) cost += step_cycles(isa, kb, rest) * static_cast<double>(k) + kPerAccumulatorOverhead * kb * rest;
  return cost;
}

struct TileChoice {
  GemmTile tile;
  double cost = std::numeric_limits<double>::infinity();
};

TileChoice best_rows(Isa isa, int kb, int act_temps, int64_t m, int64_t k) {
  TileChoice best;
  const int most = static_cast<int>(std::min<int64_t>(kMaxRows, m));
  for (int r = 1; r <= most; ++r) {
    if (!tile_fits(isa, kb, r, act_temps)) break;
    const double cost = panel_cost(isa, kb, r, m, k);
    if (cost <= best.cost * (1 + 1e-9)) best = {{kb, r}, cost};  // ties: the taller tile
  }
  return best;
}

bool fits_int32(double v) { return v < static_cast<double>(INT_MAX); }

}  // namespace

std::string GemmShape::key() const {
  KeyText s;
  s << "m" << m << "_k" << k << "_n" << n << (has_bias ? "_bias" : "") << "_act:" << activation.key();
  return std::move(s).str();
}

std::string GemmPlan::name() const {
  KeyText n;
  n << "f32_gemm";
  if (shape.activation.kind != ActivationKind::none) n << "_" << shape.activation.name();
  n << "_" << main.n_blocks * block << "x" << main.rows << "__" << to_string(isa);
  return std::move(n).str();
}

std::string GemmPlan::key() const {
  KeyText s;
  s << "gemm/" << shape.key() << "/" << to_string(isa) << "/b" << block << "/t" << main.n_blocks << "x" << main.rows
    << "," << tail.n_blocks << "x" << tail.rows << "/p" << main_panels << "/u" << k_unroll << "/kc" << chunk_k << "x"
    << chunks << "/mc" << row_block;
  return std::move(s).str();
}

std::variant<GemmPlan, std::string> plan_gemm(const GemmShape& shape, const HostInfo& host) {
  const auto& s = shape;
  if (s.m < 1 || s.k < 1 || s.n < 1) return "gemm: M, K and N must be positive (got " + s.key() + ")";
  // Bounds every int64 product below (and the 32-bit offsets checked at the end).
  constexpr int64_t kMaxDim = int64_t{1} << 24;
  if (s.m > kMaxDim || s.k > kMaxDim || s.n > kMaxDim) return "gemm: a dimension exceeds 2^24 (got " + s.key() + ")";
  if (auto why = s.activation.invalid_reason()) return "gemm: " + *why;

  GemmPlan plan;
  plan.shape = s;
  bool found = false;
#define NNJIT_GEMM_VARIANT(id)             \
  if (!found && host_has(host, Isa::id)) { \
    plan.isa = Isa::id;                    \
    found = true;                          \
  }
#include "jit/gemm/gemm.inc"
#undef NNJIT_GEMM_VARIANT
  if (!found) return "gemm: the host has neither AVX-512 (F/BW/VL/DQ) nor AVX2 with FMA";

  const int B = isa_block(plan.isa);
  plan.block = B;
  plan.n_blocks = div_up(s.n, B);

  // Register tile: the cheapest (blocks, rows) by the cost model, counting the last,
  // narrower panel when the blocks do not divide evenly.
  const int act_temps = activation_temps(s.activation.kind);
  double best_cost = std::numeric_limits<double>::infinity();
  for (int kb = 1; kb <= std::min<int64_t>(kMaxBlocks, plan.n_blocks); ++kb) {
    const TileChoice main = best_rows(plan.isa, kb, act_temps, s.m, s.k);
    if (main.tile.rows == 0) continue;
    const int64_t main_panels = plan.n_blocks / kb;
    const int tail_kb = static_cast<int>(plan.n_blocks % kb);
    TileChoice tail;
    if (tail_kb > 0) tail = best_rows(plan.isa, tail_kb, act_temps, s.m, s.k);
    const double cost = main.cost * static_cast<double>(main_panels) + (tail_kb > 0 ? tail.cost : 0.0);
    // Ties go to the larger tile: each load then feeds more FMAs.
    const bool tie = cost <= best_cost * (1 + 1e-9) && cost >= best_cost * (1 - 1e-9);
    const int area = main.tile.n_blocks * main.tile.rows, best_area = plan.main.n_blocks * plan.main.rows;
    if (cost < best_cost * (1 - 1e-9) || (tie && area >= best_area)) {
      best_cost = cost;
      plan.main = main.tile;
      plan.tail = tail_kb > 0 ? tail.tile : GemmTile{};
      plan.main_panels = main_panels;
    }
  }
  if (plan.main.rows == 0) return "gemm: no register tile fits the activation's temporaries";
  // The block holding the column tail is stored with a mask; keeping it in the tail
  // panel spares the main panels a run-time test per store.
  if (s.n % B != 0 && plan.tail.n_blocks == 0) {
    plan.tail = plan.main;
    --plan.main_panels;
  }

  // One-row tiles stream their weights once and do little else: a longer unroll.
  plan.k_unroll = plan.main.rows == 1 ? 8 : 4;
  const int U = plan.k_unroll;
  const int64_t l2 = static_cast<int64_t>(host.l2_bytes > 0 ? host.l2_bytes : kDefaultL2Bytes);
  const int64_t panel_bytes_per_k = int64_t{plan.main.n_blocks} * B * 4;
  // K chunks: with one row tile, the weights are read once whatever the chunking, so
  // there is none; otherwise a panel's chunk stays in L2 while the row tiles sweep it.
  // Chunks are as long as that allows: each boundary stores and reloads the accumulators.
  int64_t kc = round_up(s.k, U);
  if (s.m > plan.main.rows) {
    const int64_t fit = std::max<int64_t>(U, l2 / kWeightChunkL2Divisor / panel_bytes_per_k / U * U);
    kc = std::min(kc, fit);
  }
  plan.chunk_k = kc;
  plan.chunks = div_up(s.k, kc);
  // Row blocks: X of one block and chunk stays near L2 while every panel reads it.
  const int64_t R = plan.main.rows;
  const int64_t chunk_bytes_per_row = std::min(kc, s.k) * 4;
  const int64_t mc = std::max<int64_t>(R, l2 * kRowBlockL2Multiple / chunk_bytes_per_row / R * R);
  plan.row_block = std::min(mc, round_up(s.m, R));

  // The emitter encodes these as 32-bit immediates and displacements.
  if (!fits_int32(static_cast<double>(s.k) * static_cast<double>(panel_bytes_per_k)) ||
      !fits_int32(static_cast<double>(plan.n_blocks) * B * 4) || !fits_int32(static_cast<double>(kc) * 4 * 2))
    return "gemm: the weights are too large for the kernel's 32-bit offsets (" + s.key() + ")";
  return plan;
}

GemmWeights pack_gemm_weights(const GemmPlan& plan, FloatsIn weights, bool trans_b, float alpha,
                              FloatsIn bias, float beta) {
  if (weights == nullptr) throw std::invalid_argument("pack_gemm_weights: null weights for " + plan.shape.key());
  const int64_t K = plan.shape.k, N = plan.shape.n;
  GemmWeights w{AlignedBuffer<float>::packed(plan.packed_weights_floats()), AlignedBuffer<float>::packed(plan.packed_bias_floats())};
  // Panel p holds [K][width]: for each k, the panel's columns in a row, the order the
  // microkernel loads them. Columns past N stay zero.
  int64_t first = 0;
  for (int64_t p = 0; p < plan.panels(); ++p) {
    const int64_t width = plan.panel_width(p), cols = std::min(width, N - first);
    float* dst = w.weights.data() + first * K;
    if (!trans_b) {
      for (int64_t k = 0; k < K; ++k) {
        const FloatsIn from = weights + k * N + first;
        for (int64_t j = 0; j < cols; ++j) dst[k * width + j] = alpha * from[j];
      }
    } else {
      // In runs of K, so both the rows read and the rows written stay in L1.
      constexpr int64_t kRun = 64;
      for (int64_t k0 = 0; k0 < K; k0 += kRun)
        for (int64_t j = 0; j < cols; ++j) {
          const FloatsIn from = weights + (first + j) * K;
          for (int64_t k = k0; k < std::min(K, k0 + kRun); ++k) dst[k * width + j] = alpha * from[k];
        }
    }
    first += width;
  }
  if (bias != nullptr)
    for (int64_t n = 0; n < N; ++n) w.bias[static_cast<std::size_t>(n)] = beta * bias[n];
  return w;
}

}  // namespace nnjit::jit
