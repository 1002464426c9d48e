// DenseKernel: emits the dense k x k convolution for one DensePlan. Every choice was
// made by plan_dense; this file only follows it.
//
// The generated function, for one image, output-channel tiles [tile_begin, tile_end)
// and output rows [row_begin, row_end):
//
//   for tile:                          (main tiles, then the tail tile)
//     for oh:                          rows[oh] = the kernel rows inside the image (a
//                                      table in the code, so no tap is tested at run time)
//       for pixel tile of P in the row:    (edge tiles unrolled with their padding taps
//                                           left out; interior tiles one loop)
//         acc[kb][p] = bias (+ residual)
//         for kh in rows[oh], for input block, for kw, for c in block:
//           acc[kb][p] += w[kh][block][kw][c][kb] * broadcast(src[block][kh][p*s + kw*d][c])
//         dst = mask(act(acc) (+ residual))
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "jit/dense/dense.hpp"
#include "jit/kernel_cache.hpp"
#include "jit/registry.hpp"

namespace nnjit::jit {

namespace {

using Xbyak::Reg64;
using namespace Xbyak::util;

// DenseArgs as the generated code reads it.
constexpr int kArgSrc = 0;
constexpr int kArgDst = 8;
constexpr int kArgWeights = 16;
constexpr int kArgBias = 24;
constexpr int kArgResidual = 32;
constexpr int kArgTileBegin = 40;
constexpr int kArgTileEnd = 48;
constexpr int kArgRowBegin = 56;
constexpr int kArgRowEnd = 64;
static_assert(offsetof(DenseArgs, src) == kArgSrc);
static_assert(offsetof(DenseArgs, dst) == kArgDst);
static_assert(offsetof(DenseArgs, weights) == kArgWeights);
static_assert(offsetof(DenseArgs, bias) == kArgBias);
static_assert(offsetof(DenseArgs, residual) == kArgResidual);
static_assert(offsetof(DenseArgs, tile_begin) == kArgTileBegin);
static_assert(offsetof(DenseArgs, tile_end) == kArgTileEnd);
static_assert(offsetof(DenseArgs, row_begin) == kArgRowBegin);
static_assert(offsetof(DenseArgs, row_end) == kArgRowEnd);

// One entry of the row table per output row: where its first kernel row inside the image
// starts (bytes from src, column 0 of block 0), that kernel row's index, and how many
// kernel rows lie inside the image.
constexpr int kRowSrc = 0;
constexpr int kRowFirstKh = 8;
constexpr int kRowCount = 16;
constexpr int kRowBytes = 24;

// The stack frame.
constexpr int kFrameBias = 0;      // the tile's bias
constexpr int kFrameMask = 8;      // AVX2: the lane mask row for the tile's last block
constexpr int kFrameTiles = 16;    // interior pixel tiles left in the row
constexpr int kFrameResDelta = 24;  // residual - dst, in bytes (same layout)
constexpr int kFrameBytes = 32;

// General-purpose registers (System V passes the DenseArgs pointer in rdi).
const Reg64 r_args = rdi;
const Reg64 r_table = r15;   // the constant table
const Reg64 r_wtile = r14;   // the tile's weights
const Reg64 r_tile = r13;    // output-channel tile index
const Reg64 r_rowsrc = r12;  // src at the row's first kernel row inside the image, column 0
const Reg64 r_dst = r11;     // dst of the current pixel tile
const Reg64 r_rows = r10;    // output rows left
const Reg64 r_entry = r9;    // the row table entry of the current row
const Reg64 r_s = r8;        // src walk over input blocks
const Reg64 r_w = rax;       // weight walk; elsewhere scratch
const Reg64 r_cnt = rcx;     // input-block counter; stores: residual - dst
const Reg64 r_kh = rdx;      // kernel rows left; stores: AVX2 mask row
const Reg64 r_t = rbx;       // src of the current kernel row; setup scratch
const Reg64 r_tsrc = rsi;    // interior tiles: src of the tile's first tap column
const Reg64 r_wrow = rbp;    // the tile's weights at the row's first kernel row

int32_t imm32(int64_t v) {
  if (v > INT32_MAX || v < INT32_MIN) throw std::logic_error("dense: offset exceeds 32 bits (plan check missed it)");
  return static_cast<int32_t>(v);
}

// What the emitter relies on; plan_dense guarantees it, a hand-edited plan might not.
void check_plan(const DensePlan& p) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("DenseKernel: inconsistent plan " + p.key() + ": " + what);
  };
  const auto& s = p.shape;
  if (p.block != isa_block(p.isa)) fail("block does not match the ISA");
  if (p.in_blocks != div_up(s.in_channels, p.block) || p.out_blocks != div_up(s.out_channels, p.block))
    fail("blocks do not cover the channels");
  if (s.kernel < 2 || s.kernel > 7) fail("kernel size");
  if (s.stride < 1 || s.dilation < 1 || s.pad_left < 0 || s.pad_top < 0 || s.out_height() < 1 || s.out_width() < 1)
    fail("stride, dilation or pads");
  if (p.main_tiles * p.main.oc_blocks + p.tail.oc_blocks != p.out_blocks) fail("tiles do not cover the output");
  const int regs = isa_vector_registers(p.isa), temps = activation_temps(s.activation.kind);
  for (const auto* pair : {&p.main, &p.tail}) {
    const DenseTile& t = *pair;
    const DensePlan::Row& row = pair == &p.main ? p.main_row : p.tail_row;
    if (pair == &p.tail && t.oc_blocks == 0) continue;
    if (t.oc_blocks < 1 || t.pixels < 1) fail("empty register tile");
    const int reduction = t.oc_blocks + (p.isa == Isa::avx2 ? 1 : 0);
    if (t.oc_blocks * t.pixels + std::max(reduction, temps) > regs) fail("register tile does not fit");
    if (row.row_tiles != div_up(s.out_width(), t.pixels)) fail("tiles do not cover the row");
    if (row.loop_tiles < 0 || row.loop_begin < 0 || row.loop_begin + row.loop_tiles > row.row_tiles)
      fail("bad interior tiles");
    for (int64_t i = row.loop_begin; i < row.loop_begin + row.loop_tiles; ++i) {
      const int64_t ow0 = i * t.pixels;
      if (ow0 + t.pixels > s.out_width() || ow0 * s.stride - s.pad_left < 0 ||
          (ow0 + t.pixels - 1) * s.stride - s.pad_left + s.dilated_kernel() > s.width)
        fail("a looped tile reads padding");
    }
  }
}

}  // namespace

DenseKernel::DenseKernel(const DensePlan& plan, std::string serves)
    : JitKernel(plan.name(), std::move(serves)), plan_(plan) {
  check_plan(plan_);
  generate();
}

void DenseKernel::generate() {
  const auto& p = plan_;
  const auto& s = p.shape;
  const int64_t k = s.kernel, Ho = s.out_height();

  struct RowEntry {
    int64_t src, first_kh, count;
  };
  std::vector<RowEntry> rows(static_cast<std::size_t>(Ho));
  for (int64_t oh = 0; oh < Ho; ++oh) {
    const int64_t ih0 = oh * s.stride - s.pad_top;
    int64_t first = 0, count = 0;
    for (int64_t kh = 0; kh < k; ++kh) {
      const int64_t ih = ih0 + kh * s.dilation;
      if (ih < 0 || ih >= s.height) continue;
      if (count++ == 0) first = kh;
    }
    rows[static_cast<std::size_t>(oh)] = {count > 0 ? (ih0 + first * s.dilation) * s.width * src_pixel_bytes() : 0,
                                          first, count};
    if (count == 0) empty_rows_ = true;
  }

  prologue(kFrameBytes);
  lea(r_table, ptr[rip + table_label_]);
  if (s.residual != ResidualMode::none) {
    mov(r_t, ptr[r_args + kArgResidual]);
    sub(r_t, ptr[r_args + kArgDst]);
    mov(ptr[rsp + kFrameResDelta], r_t);
  }

  Xbyak::Label l_tile, l_tail, l_done;
  mov(r_tile, ptr[r_args + kArgTileBegin]);
  L(l_tile);
  cmp(r_tile, ptr[r_args + kArgTileEnd]);
  jge(l_done, T_NEAR);
  if (p.tail.oc_blocks > 0) {
    cmp(r_tile, imm32(p.main_tiles));
    je(l_tail, T_NEAR);
  }
  if (p.main_tiles > 0) {
    emit_tile_rows(p.main, p.main_row, false);
    inc(r_tile);
    jmp(l_tile, T_NEAR);
  }
  if (p.tail.oc_blocks > 0) {
    L(l_tail);
    emit_tile_rows(p.tail, p.tail_row, true);
    inc(r_tile);
    jmp(l_tile, T_NEAR);
  }
  L(l_done);
  epilogue();

  table_.emit(*this, table_label_);
  align(8);
  L(rows_label_);
  for (const RowEntry& r : rows) {
    dq(static_cast<uint64_t>(r.src));
    dq(static_cast<uint64_t>(r.first_kh));
    dq(static_cast<uint64_t>(r.count));
  }
  finalize();
}

bool DenseKernel::masks_last_block(bool is_tail) const {
  return plan_.shape.out_channels % plan_.block != 0 && (is_tail || plan_.tail.oc_blocks == 0);
}

// Output rows [row_begin, row_end) of the output-channel tile r_tile.
void DenseKernel::emit_tile_rows(const DenseTile& tile, const DensePlan::Row& row, bool is_tail) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const int64_t B = p.block, kb = tile.oc_blocks, kb_main = p.main.oc_blocks, Wo = s.out_width();
  const int64_t out_plane_bytes = s.dst_plane_pixels() * B * 4;

  // Tiles before this one all have kb_main blocks.
  imul(r_wtile, r_tile, imm32(p.kh_weights_floats(static_cast<int>(kb_main)) * s.kernel * 4));
  add(r_wtile, ptr[r_args + kArgWeights]);
  if (s.has_bias) {
    imul(r_t, r_tile, imm32(kb_main * B * 4));
    add(r_t, ptr[r_args + kArgBias]);
    mov(ptr[rsp + kFrameBias], r_t);
  }
  // Lanes past K in the last block are stored as zero: an activation may map the zero
  // padding to something else (sigmoid(0) = 0.5).
  const int pad_lanes = static_cast<int>(s.out_channels % B);
  if (masks_last_block(is_tail))
    emit_tail_mask(*this, p.isa, table_, r_table, pad_lanes, is_tail ? nullptr : &r_tile, p.tiles() - 1, r_t, r_w,
                   ptr[rsp + kFrameMask]);
  imul(r_dst, r_tile, imm32(kb_main * out_plane_bytes));
  add(r_dst, ptr[r_args + kArgDst]);
  mov(r_t, ptr[r_args + kArgRowBegin]);
  imul(r_w, r_t, imm32(Wo * B * 4));
  add(r_dst, r_w);
  imul(r_entry, r_t, kRowBytes);
  lea(r_w, ptr[rip + rows_label_]);
  add(r_entry, r_w);
  Xbyak::Label l_row, l_rows_done;
  mov(r_rows, ptr[r_args + kArgRowEnd]);
  sub(r_rows, r_t);
  jle(l_rows_done, T_NEAR);
  L(l_row);
  mov(r_rowsrc, ptr[r_args + kArgSrc]);
  add(r_rowsrc, ptr[r_entry + kRowSrc]);
  imul(r_wrow, ptr[r_entry + kRowFirstKh], imm32(p.kh_weights_floats(static_cast<int>(kb)) * 4));
  add(r_wrow, r_wtile);

  auto tile_pixels = [&](int64_t t) { return static_cast<int>(std::min<int64_t>(tile.pixels, Wo - t * tile.pixels)); };
  auto emit_static = [&](int64_t t) {
    const int64_t ow0 = t * tile.pixels;
    emit_microkernel(tile, r_rowsrc, ow0 * s.stride - s.pad_left, tile_pixels(t), ow0, is_tail);
    add(r_dst, imm32(tile_pixels(t) * B * 4));
  };
  for (int64_t t = 0; t < row.loop_begin; ++t) emit_static(t);
  if (row.loop_tiles > 0) {
    Xbyak::Label l_pix;
    lea(r_tsrc, ptr[r_rowsrc + imm32((row.loop_begin * tile.pixels * s.stride - s.pad_left) * src_pixel_bytes())]);
    mov(qword[rsp + kFrameTiles], imm32(row.loop_tiles));
    L(l_pix);
    emit_microkernel(tile, r_tsrc, 0, tile.pixels, -1, is_tail);
    add(r_tsrc, imm32(tile.pixels * s.stride * src_pixel_bytes()));
    add(r_dst, imm32(tile.pixels * B * 4));
    dec(qword[rsp + kFrameTiles]);
    jnz(l_pix, T_NEAR);
  }
  for (int64_t t = row.loop_begin + row.loop_tiles; t < row.row_tiles; ++t) emit_static(t);
  add(r_entry, kRowBytes);
  dec(r_rows);
  jnz(l_row, T_NEAR);
  L(l_rows_done);
}

// kb x `pixels` accumulators for the output pixels at r_dst. Tap (px, kw) reads src
// column first_col + px * stride + kw * dilation from `base`. With static_ow >= 0 the
// tile starts at output column static_ow and taps outside the image are left out; with
// -1 every tap is inside.
void DenseKernel::emit_microkernel(const DenseTile& tile, const Reg64& base, int64_t first_col, int pixels,
                                   int64_t static_ow, bool is_tail) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const bool avx512 = p.isa == Isa::avx512;
  const int kb = tile.oc_blocks, P = pixels, k = s.kernel;
  const int64_t B = p.block, C = s.in_channels;
  const int64_t in_plane_bytes = s.src_plane_pixels() * B * 4;
  const int64_t out_plane_bytes = s.dst_plane_pixels() * B * 4;
  const int nregs = isa_vector_registers(p.isa);

  auto vreg = [&](int i) -> Xbyak::Xmm {
    if (avx512) return Xbyak::Zmm(i);
    return Xbyak::Ymm(i);
  };
  auto acc = [&](int j, int px) { return vreg(j * P + px); };
  auto wreg = [&](int j) { return vreg(kb * P + j); };
  const Xbyak::Xmm bcast = vreg(kb * P + kb);  // AVX2 only
  auto dst_at = [&](int j, int px) { return ptr[r_dst + imm32(j * out_plane_bytes + px * B * 4)]; };
  auto res_at = [&](int j, int px) { return ptr[r_dst + r_cnt + imm32(j * out_plane_bytes + px * B * 4)]; };
  auto valid = [&](int px, int kw) {
    if (static_ow < 0) return true;
    const int64_t iw = (static_ow + px) * s.stride - s.pad_left + int64_t{kw} * s.dilation;
    return iw >= 0 && iw < s.width;
  };

  // acc = bias (+ residual).
  const bool res_first = s.residual == ResidualMode::before_activation;
  if (s.has_bias) {
    mov(r_w, ptr[rsp + kFrameBias]);
    for (int j = 0; j < kb; ++j) vmovups(wreg(j), ptr[r_w + j * B * 4]);
  }
  if (res_first) mov(r_cnt, ptr[rsp + kFrameResDelta]);
  for (int j = 0; j < kb; ++j)
    for (int px = 0; px < P; ++px) {
      if (res_first && s.has_bias) vaddps(acc(j, px), wreg(j), res_at(j, px));
      else if (res_first) vmovups(acc(j, px), res_at(j, px));
      else if (s.has_bias) vmovaps(acc(j, px), wreg(j));
      else vxorps(acc(j, px), acc(j, px), acc(j, px));
    }

  bool any_tap = false;
  for (int px = 0; px < P; ++px)
    for (int kw = 0; kw < k; ++kw) any_tap = any_tap || valid(px, kw);

  // Every tap of one input block at r_s: `channels` of its lanes.
  const int64_t block_weight_bytes = int64_t{k} * B * kb * B * 4;
  auto block_body = [&](int64_t channels) {
    for (int kw = 0; kw < k; ++kw) {
      bool used = false;
      for (int px = 0; px < P; ++px) used = used || valid(px, kw);
      if (!used) continue;
      for (int64_t c = 0; c < channels; ++c) {
        for (int j = 0; j < kb; ++j) vmovups(wreg(j), ptr[r_w + imm32(((kw * B + c) * kb + j) * B * 4)]);
        for (int px = 0; px < P; ++px) {
          if (!valid(px, kw)) continue;
          const int32_t off = imm32((first_col + int64_t{px} * s.stride + int64_t{kw} * s.dilation) * src_pixel_bytes() +
                                    c * src_lane_bytes());
          if (avx512) {
            for (int j = 0; j < kb; ++j) vfmadd231ps(acc(j, px), wreg(j), ptr_b[r_s + off]);
          } else {
            vbroadcastss(bcast, ptr[r_s + off]);
            for (int j = 0; j < kb; ++j) vfmadd231ps(acc(j, px), wreg(j), bcast);
          }
        }
      }
    }
  };
  if (any_tap) {
    Xbyak::Label l_kh, l_kh_done;
    mov(r_w, r_wrow);
    mov(r_t, base);
    mov(r_kh, ptr[r_entry + kRowCount]);
    if (empty_rows_) {
      test(r_kh, r_kh);
      jz(l_kh_done, T_NEAR);
    }
    L(l_kh);
    mov(r_s, r_t);
    if (C / B > 0) {
      Xbyak::Label l_block;
      mov(r_cnt, imm32(C / B));
      L(l_block);
      block_body(B);
      add(r_w, imm32(block_weight_bytes));
      add(r_s, imm32(in_plane_bytes));
      dec(r_cnt);
      jnz(l_block, T_NEAR);
    }
    if (C % B != 0) {
      // The last block's real channels; its padding lanes are never read.
      block_body(C % B);
      add(r_w, imm32(block_weight_bytes));
    }
    add(r_t, imm32(int64_t{s.dilation} * s.width * src_pixel_bytes()));
    dec(r_kh);
    jnz(l_kh, T_NEAR);
    L(l_kh_done);
  }

  // dst = mask(act(acc) (+ residual)); the weight and broadcast registers are free now.
  const bool mask = masks_last_block(is_tail);
  std::vector<Xbyak::Xmm> temps;
  for (int i = kb * P; i < nregs; ++i) temps.push_back(vreg(i));
  ActivationEmitter activation(*this, p.isa, s.activation, table_, r_table, k2);
  if (s.residual == ResidualMode::after_activation) mov(r_cnt, ptr[rsp + kFrameResDelta]);
  if (mask && !avx512) mov(r_kh, ptr[rsp + kFrameMask]);
  for (int j = 0; j < kb; ++j)
    for (int px = 0; px < P; ++px) {
      const Xbyak::Xmm a = acc(j, px);
      activation(a, temps);
      if (s.residual == ResidualMode::after_activation) vaddps(a, a, res_at(j, px));
      if (mask && j == kb - 1) {
        if (avx512) vmovaps(Xbyak::Zmm(a.getIdx()) | k1 | T_z, Xbyak::Zmm(a.getIdx()));
        else vandps(a, a, ptr[r_kh]);
      }
      vmovups(dst_at(j, px), a);
    }
}

void DenseKernel::run(const float* src, float* dst, const DenseWeights& w, const float* residual) const {
  const auto& p = plan_;
  for (int64_t n = 0; n < p.shape.batch; ++n) {
    DenseArgs args{src + n * p.src_image_floats(),
                   dst + n * p.dst_image_floats(),
                   w.weights.data(),
                   w.bias.data(),
                   residual != nullptr ? residual + n * p.dst_image_floats() : nullptr,
                   0,
                   p.tiles(),
                   0,
                   p.shape.out_height()};
    (*this)(args);
  }
}

std::shared_ptr<const DenseKernel> get_dense_kernel(const DensePlan& plan, const std::string& serves) {
  static KernelCache<DenseKernel> cache;
  bool made = false;
  auto kernel = cache.get(plan, [&] {
    made = true;
    return std::make_shared<const DenseKernel>(plan, serves);
  });
  if (!made && !serves.empty()) JitRegistry::instance().append_serves(kernel->code(), serves);
  return kernel;
}

}  // namespace nnjit::jit
