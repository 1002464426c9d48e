// GemmKernel: emits Y = act(X · W + bias) for one GemmPlan. Every choice was made by
// plan_gemm; this file only follows it.
//
// The generated function, for rows [row_begin, row_end) and panels [panel_begin, panel_end):
//
//   for chunk in K chunks:                               (cache block: plan.chunk_k)
//     for row block in the rows:                         (cache block: plan.row_block)
//       for panel in [panel_begin, panel_end):           (main panels, then the tail panel)
//         for row tile in the block (R rows, then the remainder with its own microkernel):
//           acc[kb][R] = first chunk ? bias : dst                     (partial sums)
//           for k in chunk: acc[j][r] += w[k][j] * broadcast(x[r][k])
//           dst = last chunk ? act(acc) : acc          (the column tail stored masked)
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "jit/gemm/gemm.hpp"
#include "jit/kernel_cache.hpp"
#include "jit/registry.hpp"

namespace nnjit::jit {

namespace {

using Xbyak::Reg64;
using namespace Xbyak::util;

// GemmArgs as the generated code reads it.
constexpr int kArgSrc = 0;
constexpr int kArgDst = 8;
constexpr int kArgWeights = 16;
constexpr int kArgBias = 24;
constexpr int kArgLda = 32;
constexpr int kArgLdc = 40;
constexpr int kArgRowBegin = 48;
constexpr int kArgRowEnd = 56;
constexpr int kArgPanelBegin = 64;
constexpr int kArgPanelEnd = 72;
static_assert(offsetof(GemmArgs, src) == kArgSrc);
static_assert(offsetof(GemmArgs, dst) == kArgDst);
static_assert(offsetof(GemmArgs, weights) == kArgWeights);
static_assert(offsetof(GemmArgs, bias) == kArgBias);
static_assert(offsetof(GemmArgs, lda) == kArgLda);
static_assert(offsetof(GemmArgs, ldc) == kArgLdc);
static_assert(offsetof(GemmArgs, row_begin) == kArgRowBegin);
static_assert(offsetof(GemmArgs, row_end) == kArgRowEnd);
static_assert(offsetof(GemmArgs, panel_begin) == kArgPanelBegin);
static_assert(offsetof(GemmArgs, panel_end) == kArgPanelEnd);

// The stack frame.
constexpr int kFrameWeights = 0;     // the panel's weights at the chunk's first k
constexpr int kFrameBias = 8;        // the panel's bias
constexpr int kFrameMask = 16;       // AVX2: the lane-mask row of the column tail
constexpr int kFrameRowEnd = 24;
constexpr int kFramePanelEnd = 32;
constexpr int kFrameLdc = 40;        // bytes between rows of dst
constexpr int kFrameSteps = 48;      // unrolled K trips in this chunk
constexpr int kFrameBlockRows = 56;  // rows in this row block
constexpr int kFrameBytes = 64;

// General-purpose registers (System V passes the GemmArgs pointer in rdi).
const Reg64 r_args = rdi;
const Reg64 r_table = r15;  // the constant table
const Reg64 r_chunk = r14;  // K chunk index
const Reg64 r_panel = r13;  // panel index
const Reg64 r_row = r12;    // first row of the row block
const Reg64 r_src = r11;    // X at the row tile's first row, the chunk's first k
const Reg64 r_dst = r10;    // Y at the row tile's first row, the panel's first column
const Reg64 r_left = r9;    // rows of the block not yet done
const Reg64 r_cnt = r8;     // reduction: trip counter
const Reg64 r_w = rax;      // reduction: weight walk; elsewhere scratch
const Reg64 r_x0 = rbx;     // reduction: rows 0-3 of X; elsewhere scratch
const Reg64 r_x4 = rcx;     // reduction: rows 4-7 of X
const Reg64 r_lda = rdx;    // bytes between rows of X
const Reg64 r_lda3 = rsi;   // 3 * r_lda
const Reg64 r_t = rbp;      // scratch: the row walk over dst

int32_t imm32(int64_t v) {
  if (v > INT32_MAX || v < INT32_MIN) throw std::logic_error("gemm: offset exceeds 32 bits (plan check missed it)");
  return static_cast<int32_t>(v);
}

// What the emitter relies on; plan_gemm guarantees it, a hand-edited plan might not.
void check_plan(const GemmPlan& p) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("GemmKernel: inconsistent plan " + p.key() + ": " + what);
  };
  const auto& s = p.shape;
  if (s.m < 1 || s.k < 1 || s.n < 1) fail("empty shape");
  const int regs = isa_vector_registers(p.isa);
  const int temps = activation_temps(s.activation.kind);
  for (const GemmTile* tile : {&p.main, &p.tail}) {
    const GemmTile& t = *tile;
    if (tile == &p.tail && t.n_blocks == 0) continue;
    if (t.n_blocks < 1 || t.rows < 1 || t.rows > 8) fail("register tile of 1-8 rows needed");
    // Remainder microkernels have fewer rows and need no more registers than this.
    const int reduction = (t.rows == 1 ? 0 : t.n_blocks) + 1;
    if (t.n_blocks * t.rows + std::max(reduction, temps) > regs) fail("register tile does not fit");
  }
  if (p.block != isa_block(p.isa)) fail("block does not match the ISA");
  if (p.n_blocks != div_up(s.n, p.block)) fail("bad column blocks");
  if (p.main_panels < 0 || p.main_panels * p.main.n_blocks + p.tail.n_blocks != p.n_blocks)
    fail("panels do not cover the columns");
  if (s.n % p.block != 0 && p.tail.n_blocks == 0) fail("the column tail must be in the tail panel");
  if (p.k_unroll < 1 || p.chunk_k < p.k_unroll || p.chunk_k % p.k_unroll != 0 || p.chunks != div_up(s.k, p.chunk_k))
    fail("bad K chunks");
  if (p.row_block < 1) fail("bad row block");
}

}  // namespace

GemmKernel::GemmKernel(const GemmPlan& plan, std::string serves)
    : JitKernel(plan.name(), std::move(serves)), plan_(plan) {
  check_plan(plan_);
  generate();
}

void GemmKernel::generate() {
  const auto& p = plan_;
  const int64_t K = p.shape.k, kc = p.chunk_k, U = p.k_unroll;
  prologue(kFrameBytes);
  lea(r_table, ptr[rip + table_label_]);
  mov(r_lda, ptr[r_args + kArgLda]);
  shl(r_lda, 2);
  lea(r_lda3, ptr[r_lda + r_lda * 2]);
  mov(r_w, ptr[r_args + kArgLdc]);
  shl(r_w, 2);
  mov(ptr[rsp + kFrameLdc], r_w);
  mov(r_w, ptr[r_args + kArgRowEnd]);
  mov(ptr[rsp + kFrameRowEnd], r_w);
  mov(r_w, ptr[r_args + kArgPanelEnd]);
  mov(ptr[rsp + kFramePanelEnd], r_w);

  const int64_t steps = kc / U;
  const int64_t last_steps = (K - (p.chunks - 1) * kc) / U;  // the rest comes after the loop

  Xbyak::Label l_chunk, l_block, l_blocks_done, l_panel, l_tail, l_panels_done;
  xor_(r_chunk, r_chunk);
  L(l_chunk);
  mov(qword[rsp + kFrameSteps], imm32(steps));
  if (last_steps != steps) {
    Xbyak::Label l_not_last;
    cmp(r_chunk, imm32(p.chunks - 1));
    jne(l_not_last);
    mov(qword[rsp + kFrameSteps], imm32(last_steps));
    L(l_not_last);
  }
  mov(r_row, ptr[r_args + kArgRowBegin]);
  L(l_block);
  cmp(r_row, ptr[rsp + kFrameRowEnd]);
  jge(l_blocks_done, T_NEAR);
  // Rows in this block: min(row_block, row_end - row).
  mov(r_w, ptr[rsp + kFrameRowEnd]);
  sub(r_w, r_row);
  mov(r_x0, imm32(p.row_block));
  cmp(r_w, r_x0);
  cmovg(r_w, r_x0);
  mov(ptr[rsp + kFrameBlockRows], r_w);

  mov(r_panel, ptr[r_args + kArgPanelBegin]);
  L(l_panel);
  cmp(r_panel, ptr[rsp + kFramePanelEnd]);
  jge(l_panels_done, T_NEAR);
  if (p.tail.n_blocks > 0) {
    cmp(r_panel, imm32(p.main_panels));
    je(l_tail, T_NEAR);
  }
  if (p.main_panels > 0) {
    emit_panel(p.main, false);
    inc(r_panel);
    jmp(l_panel, T_NEAR);
  }
  if (p.tail.n_blocks > 0) {
    L(l_tail);
    emit_panel(p.tail, true);
    inc(r_panel);
    jmp(l_panel, T_NEAR);
  }
  L(l_panels_done);
  add(r_row, imm32(p.row_block));
  jmp(l_block, T_NEAR);
  L(l_blocks_done);
  inc(r_chunk);
  cmp(r_chunk, imm32(p.chunks));
  jl(l_chunk, T_NEAR);
  epilogue();

  table_.emit(*this, table_label_);
  finalize();
}

bool GemmKernel::masks_last_block(bool is_tail) const { return is_tail && plan_.shape.n % plan_.block != 0; }

// One panel (r_panel) over the rows of the current block for the current chunk: pointers
// and mask, then full row tiles and the remainder.
void GemmKernel::emit_panel(const GemmTile& tile, bool is_tail) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const int64_t K = s.k, B = p.block, kb = tile.n_blocks, main_width = int64_t{p.main.n_blocks} * B;
  const int R = tile.rows;

  // Panels before this one are all main panels, so a panel starts at r_panel * main
  // width columns whatever its own width; its chunk at chunk * chunk_k rows of its width.
  imul(r_w, r_panel, imm32(K * main_width * 4));
  imul(r_x0, r_chunk, imm32(p.chunk_k * kb * B * 4));
  add(r_w, r_x0);
  add(r_w, ptr[r_args + kArgWeights]);
  mov(ptr[rsp + kFrameWeights], r_w);
  if (s.has_bias) {
    imul(r_w, r_panel, imm32(main_width * 4));
    add(r_w, ptr[r_args + kArgBias]);
    mov(ptr[rsp + kFrameBias], r_w);
  }
  if (masks_last_block(is_tail))
    emit_tail_mask(*this, p.isa, table_, r_table, static_cast<int>(s.n % B), nullptr, 0, r_w, r_x0,
                   ptr[rsp + kFrameMask]);
  // src = X + row * lda + chunk * chunk_k; dst = Y + row * ldc + panel * main width.
  mov(r_src, r_row);
  imul(r_src, r_lda);
  imul(r_w, r_chunk, imm32(p.chunk_k * 4));
  add(r_src, r_w);
  add(r_src, ptr[r_args + kArgSrc]);
  mov(r_dst, r_row);
  imul(r_dst, ptr[rsp + kFrameLdc]);
  imul(r_w, r_panel, imm32(main_width * 4));
  add(r_dst, r_w);
  add(r_dst, ptr[r_args + kArgDst]);
  mov(r_left, ptr[rsp + kFrameBlockRows]);

  Xbyak::Label l_tiles, l_rest, l_done;
  L(l_tiles);
  cmp(r_left, R);
  jl(l_rest, T_NEAR);
  emit_microkernel(tile, R, is_tail);
  imul(r_t, r_lda, R);
  add(r_src, r_t);
  mov(r_t, ptr[rsp + kFrameLdc]);
  imul(r_t, r_t, R);
  add(r_dst, r_t);
  sub(r_left, R);
  jmp(l_tiles, T_NEAR);
  L(l_rest);
  // The block's last rows (fewer than R): a microkernel per possible count.
  if (R > 1) {
    std::vector<Xbyak::Label> l_rows(static_cast<std::size_t>(R));
    for (int r = 1; r < R; ++r) {
      cmp(r_left, r);
      je(l_rows[static_cast<std::size_t>(r)], T_NEAR);
    }
    jmp(l_done, T_NEAR);
    for (int r = 1; r < R; ++r) {
      L(l_rows[static_cast<std::size_t>(r)]);
      emit_microkernel(tile, r, is_tail);
      jmp(l_done, T_NEAR);
    }
  }
  L(l_done);
}

// kb x `rows` accumulators for the row tile at r_src / r_dst and the current chunk.
void GemmKernel::emit_microkernel(const GemmTile& tile, int rows, bool is_tail) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const bool avx512 = p.isa == Isa::avx512;
  const int kb = tile.n_blocks, R = rows, U = p.k_unroll;
  const int64_t K = s.k, B = p.block;
  const int nregs = isa_vector_registers(p.isa);
  const bool several_chunks = p.chunks > 1;
  const bool mask_last = masks_last_block(is_tail);
  // One row: the FMAs read the weights from memory, no weight registers.
  const bool weights_in_regs = R > 1;

  auto vreg = [&](int i) -> Xbyak::Xmm {
    if (avx512) return Xbyak::Zmm(i);
    return Xbyak::Ymm(i);
  };
  auto acc = [&](int j, int r) { return vreg(j * R + r); };
  auto wreg = [&](int j) { return vreg(kb * R + j); };
  const Xbyak::Xmm bcast = vreg(kb * R + (weights_in_regs ? kb : 0));
  const Xbyak::Xmm spare = vreg(kb * R);  // free outside the reduction: the AVX2 mask
  std::vector<Xbyak::Xmm> temps;
  for (int i = kb * R; i < nregs; ++i) temps.push_back(vreg(i));

  // Column block j of the tile's rows, walked with r_t (one row per add of ldc).
  auto out_at = [&](int j) { return ptr[r_t + imm32(j * B * 4)]; };
  auto next_row = [&](int r) {
    if (r + 1 < R) add(r_t, ptr[rsp + kFrameLdc]);
  };
  // Stores `v` to block j; the column tail under the mask (AVX2: in `mask`).
  auto store = [&](int j, const Xbyak::Xmm& v, const Xbyak::Xmm& mask) {
    if (!(mask_last && j == kb - 1)) vmovups(out_at(j), v);
    else if (avx512) vmovups(out_at(j) | k1, v);
    else vmaskmovps(out_at(j), mask, v);
  };

  // acc = first chunk ? bias : the partial sums in dst.
  Xbyak::Label l_partial, l_init_done;
  if (several_chunks) {
    test(r_chunk, r_chunk);
    jnz(l_partial, T_NEAR);
  }
  if (s.has_bias) {
    mov(r_w, ptr[rsp + kFrameBias]);
    for (int j = 0; j < kb; ++j) {
      vmovups(acc(j, 0), ptr[r_w + imm32(j * B * 4)]);
      for (int r = 1; r < R; ++r) vmovaps(acc(j, r), acc(j, 0));
    }
  } else {
    for (int j = 0; j < kb; ++j)
      for (int r = 0; r < R; ++r) vxorps(acc(j, r), acc(j, r), acc(j, r));
  }
  if (several_chunks) {
    jmp(l_init_done, T_NEAR);
    L(l_partial);
    if (mask_last && !avx512) {
      mov(r_w, ptr[rsp + kFrameMask]);
      vmovups(spare, ptr[r_w]);
    }
    mov(r_t, r_dst);
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < kb; ++j) {
        if (!(mask_last && j == kb - 1)) vmovups(acc(j, r), out_at(j));
        else if (avx512) vmovups(Xbyak::Zmm(acc(j, r).getIdx()) | k1 | T_z, out_at(j));
        else vmaskmovps(acc(j, r), spare, out_at(j));
      }
      next_row(r);
    }
    L(l_init_done);
  }

  // x[r][k]: rows 0-3 from r_x0, rows 4-7 from r_x4, with lda, 2 lda, 3 lda as index.
  auto x_at = [&](int r, int u) {
    const Reg64& base = r < 4 ? r_x0 : r_x4;
    const int32_t off = imm32(int64_t{u} * 4);
    switch (r % 4) {
      case 0: return ptr[base + off];
      case 1: return ptr[base + r_lda + off];
      case 2: return ptr[base + r_lda * 2 + off];
      default: return ptr[base + r_lda3 + off];
    }
  };
  auto w_at = [&](int u, int j) { return ptr[r_w + imm32((int64_t{u} * kb + j) * B * 4)]; };
  // acc += w[k] * x[k] for step u of the current trip.
  auto step = [&](int u) {
    if (weights_in_regs)
      for (int j = 0; j < kb; ++j) vmovups(wreg(j), w_at(u, j));
    for (int r = 0; r < R; ++r) {
      vbroadcastss(bcast, x_at(r, u));
      for (int j = 0; j < kb; ++j) {
        if (weights_in_regs) vfmadd231ps(acc(j, r), wreg(j), bcast);
        else vfmadd231ps(acc(j, r), bcast, w_at(u, j));
      }
    }
  };
  mov(r_w, ptr[rsp + kFrameWeights]);
  mov(r_x0, r_src);
  if (R > 4) lea(r_x4, ptr[r_src + r_lda * 4]);
  const int64_t last_len = K - (p.chunks - 1) * p.chunk_k;
  const int64_t last_steps = last_len / U;
  const int last_rest = static_cast<int>(last_len % U);
  if (several_chunks || last_steps > 0) {
    Xbyak::Label l_trip, l_trips_done;
    mov(r_cnt, ptr[rsp + kFrameSteps]);
    if (last_steps == 0) {
      test(r_cnt, r_cnt);
      jz(l_trips_done, T_NEAR);
    }
    L(l_trip);
    for (int u = 0; u < U; ++u) step(u);
    add(r_w, imm32(int64_t{U} * kb * B * 4));
    add(r_x0, U * 4);
    if (R > 4) add(r_x4, U * 4);
    dec(r_cnt);
    jnz(l_trip, T_NEAR);
    L(l_trips_done);
  }
  if (last_rest > 0) {
    // The last chunk's steps past its whole trips.
    Xbyak::Label l_no_rest;
    if (several_chunks) {
      cmp(r_chunk, imm32(p.chunks - 1));
      jne(l_no_rest, T_NEAR);
    }
    for (int u = 0; u < last_rest; ++u) step(u);
    L(l_no_rest);
  }

  // dst = last chunk ? act(acc) : acc.
  Xbyak::Label l_raw, l_done;
  if (several_chunks) {
    cmp(r_chunk, imm32(p.chunks - 1));
    jne(l_raw, T_NEAR);
  }
  ActivationEmitter activation(*this, p.isa, s.activation, table_, r_table, k2);
  mov(r_t, r_dst);
  if (mask_last && !avx512) mov(r_w, ptr[rsp + kFrameMask]);
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < kb; ++j) {
      activation(acc(j, r), temps);
      // The activation used the temporaries: load the AVX2 mask after it.
      if (mask_last && !avx512 && j == kb - 1) vmovups(spare, ptr[r_w]);
      store(j, acc(j, r), spare);
    }
    next_row(r);
  }
  if (several_chunks) {
    jmp(l_done, T_NEAR);
    L(l_raw);
    if (mask_last && !avx512) {
      mov(r_w, ptr[rsp + kFrameMask]);
      vmovups(spare, ptr[r_w]);
    }
    mov(r_t, r_dst);
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < kb; ++j) store(j, acc(j, r), spare);
      next_row(r);
    }
    L(l_done);
  }
}

void GemmKernel::run(const float* src, float* dst, const GemmWeights& w) const {
  const auto& s = plan_.shape;
  GemmArgs args{src, dst, w.weights.data(), w.bias.data(), s.k, s.n, 0, s.m, 0, plan_.panels()};
  (*this)(args);
}

std::shared_ptr<const GemmKernel> get_gemm_kernel(const GemmPlan& plan, const std::string& serves) {
  static KernelCache<GemmKernel> cache;
  bool made = false;
  auto kernel = cache.get(plan, [&] {
    made = true;
    return std::make_shared<const GemmKernel>(plan, serves);
  });
  if (!made && !serves.empty()) JitRegistry::instance().append_serves(kernel->code(), serves);
  return kernel;
}

}  // namespace nnjit::jit
