// DepthwiseKernel: emits the depthwise convolution for one DepthwisePlan. Every choice
// was made by plan_depthwise; this file only follows it.
//
// The generated function, for one image, channel blocks [block_begin, block_end) and
// output rows [row_begin, row_end):
//
//   for block:
//     for oh:                         rows[oh] = the kernel rows inside the image (a table
//                                     in the code, so no row tests a tap at run time)
//       for tile of P pixels in the row:   (edge tiles unrolled with their padding taps
//                                           left out; interior tiles one loop)
//         acc[p] = bias (+ residual)
//         for kh in rows[oh]:
//           w[kw] = weights[kh][kw]                         (k registers)
//           for each input column x the tile reads: v = src[kh][x]   (loaded once)
//             acc[p] += w[kw] * v    for every (p, kw) with p*stride + kw*dilation = x
//         dst = mask(act(acc) (+ residual))
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "jit/depthwise/depthwise.hpp"
#include "jit/kernel_cache.hpp"
#include "jit/registry.hpp"

namespace nnjit::jit {

namespace {

using Xbyak::Reg64;
using namespace Xbyak::util;

// DepthwiseArgs as the generated code reads it.
constexpr int kArgSrc = 0;
constexpr int kArgDst = 8;
constexpr int kArgWeights = 16;
constexpr int kArgBias = 24;
constexpr int kArgResidual = 32;
constexpr int kArgBlockBegin = 40;
constexpr int kArgBlockEnd = 48;
constexpr int kArgRowBegin = 56;
constexpr int kArgRowEnd = 64;
static_assert(offsetof(DepthwiseArgs, src) == kArgSrc);
static_assert(offsetof(DepthwiseArgs, dst) == kArgDst);
static_assert(offsetof(DepthwiseArgs, weights) == kArgWeights);
static_assert(offsetof(DepthwiseArgs, bias) == kArgBias);
static_assert(offsetof(DepthwiseArgs, residual) == kArgResidual);
static_assert(offsetof(DepthwiseArgs, block_begin) == kArgBlockBegin);
static_assert(offsetof(DepthwiseArgs, block_end) == kArgBlockEnd);
static_assert(offsetof(DepthwiseArgs, row_begin) == kArgRowBegin);
static_assert(offsetof(DepthwiseArgs, row_end) == kArgRowEnd);

// One entry of the row table per output row: where its first kernel row inside the image
// starts (bytes from the block's src plane), that row's weights (bytes from the block's
// weights) and how many kernel rows lie inside the image.
constexpr int kRowSrc = 0;
constexpr int kRowWeights = 8;
constexpr int kRowCount = 16;
constexpr int kRowBytes = 24;

// The stack frame.
constexpr int kFrameBias = 0;   // the block's bias
constexpr int kFrameMask = 8;   // AVX2: the lane mask row for the block
constexpr int kFrameTiles = 16;  // interior tiles left in the row
constexpr int kFrameBytes = 32;

// General-purpose registers (System V passes the DepthwiseArgs pointer in rdi).
const Reg64 r_args = rdi;
const Reg64 r_table = r15;    // the constant table
const Reg64 r_block = r14;    // channel block index
const Reg64 r_weights = r13;  // the block's weights
const Reg64 r_plane = r12;    // the block's src plane
const Reg64 r_dst = r11;      // dst of the current tile
const Reg64 r_rows = r10;     // output rows left
const Reg64 r_entry = r9;     // the row table entry of the current row
const Reg64 r_row = r8;       // src of the row's first kernel row inside the image, column 0
const Reg64 r_wrow = rbp;     // weights of that kernel row
const Reg64 r_tile = rsi;     // interior tiles: src of the tile's first tap
const Reg64 r_res = rbx;      // residual - dst, in bytes (same layout)
const Reg64 r_kh = rax;       // kernel rows left; elsewhere scratch
const Reg64 r_w = rcx;        // weight walk; elsewhere scratch
const Reg64 r_s = rdx;        // src walk

int32_t imm32(int64_t v) {
  if (v > INT32_MAX || v < INT32_MIN) throw std::logic_error("depthwise: offset exceeds 32 bits (plan check missed it)");
  return static_cast<int32_t>(v);
}

// What the emitter relies on; plan_depthwise guarantees it, a hand-edited plan might not.
void check_plan(const DepthwisePlan& p) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("DepthwiseKernel: inconsistent plan " + p.key() + ": " + what);
  };
  const auto& s = p.shape;
  if (p.block != isa_block(p.isa)) fail("block does not match the ISA");
  if (p.blocks != div_up(s.channels, p.block)) fail("blocks do not cover the channels");
  if (s.kernel < 1 || s.kernel > 7) fail("kernel size");
  if (s.stride < 1 || s.dilation < 1 || s.pad_left < 0 || s.pad_top < 0 || s.out_height() < 1 || s.out_width() < 1)
    fail("stride, dilation or pads");
  if (p.pixels < 1 || p.pixels > depthwise_max_pixels(p.isa, s.kernel)) fail("register tile does not fit");
  if (p.row_tiles != div_up(s.out_width(), p.pixels)) fail("tiles do not cover the row");
  if (p.loop_tiles < 0 || p.loop_begin < 0 || p.loop_begin + p.loop_tiles > p.row_tiles) fail("bad interior tiles");
  for (int64_t t = p.loop_begin; t < p.loop_begin + p.loop_tiles; ++t) {
    const int64_t ow0 = t * p.pixels;
    if (ow0 + p.pixels > s.out_width() || ow0 * s.stride - s.pad_left < 0 ||
        (ow0 + p.pixels - 1) * s.stride - s.pad_left + s.dilated_kernel() > s.width)
      fail("a looped tile reads padding");
  }
}

}  // namespace

DepthwiseKernel::DepthwiseKernel(const DepthwisePlan& plan, std::string serves)
    : JitKernel(plan.name(), std::move(serves)), plan_(plan) {
  check_plan(plan_);
  generate();
}

void DepthwiseKernel::generate() {
  const auto& p = plan_;
  const auto& s = p.shape;
  const int64_t B = p.block, k = s.kernel, Ho = s.out_height(), Wo = s.out_width();
  const int64_t in_plane_bytes = s.src_plane_pixels() * B * 4;
  const int64_t out_plane_bytes = s.dst_plane_pixels() * B * 4;

  // The row table (see kRow*), emitted after the code.
  struct RowEntry {
    int64_t src, weights, count;
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
    rows[static_cast<std::size_t>(oh)] = {count > 0 ? (ih0 + first * s.dilation) * s.width * B * 4 : 0,
                                          first * k * B * 4, count};
    if (count == 0) empty_rows_ = true;
  }

  prologue(kFrameBytes);
  lea(r_table, ptr[rip + table_label_]);
  if (s.residual != ResidualMode::none) {
    mov(r_res, ptr[r_args + kArgResidual]);
    sub(r_res, ptr[r_args + kArgDst]);
  }

  Xbyak::Label l_block, l_next_block, l_done, l_row;
  mov(r_block, ptr[r_args + kArgBlockBegin]);
  L(l_block);
  cmp(r_block, ptr[r_args + kArgBlockEnd]);
  jge(l_done, T_NEAR);
  imul(r_plane, r_block, imm32(in_plane_bytes));
  add(r_plane, ptr[r_args + kArgSrc]);
  imul(r_weights, r_block, imm32(k * k * B * 4));
  add(r_weights, ptr[r_args + kArgWeights]);
  if (s.has_bias) {
    imul(r_kh, r_block, imm32(B * 4));
    add(r_kh, ptr[r_args + kArgBias]);
    mov(ptr[rsp + kFrameBias], r_kh);
  }
  // Lanes past C in the last block are stored as zero: an activation may map the zero
  // padding to something else (sigmoid(0) = 0.5).
  const int pad_lanes = static_cast<int>(s.channels % B);
  if (pad_lanes != 0)
    emit_tail_mask(*this, p.isa, table_, r_table, pad_lanes, &r_block, p.blocks - 1, r_kh, r_w, ptr[rsp + kFrameMask]);
  imul(r_dst, r_block, imm32(out_plane_bytes));
  add(r_dst, ptr[r_args + kArgDst]);
  mov(r_kh, ptr[r_args + kArgRowBegin]);
  imul(r_w, r_kh, imm32(Wo * B * 4));
  add(r_dst, r_w);
  imul(r_entry, r_kh, kRowBytes);
  lea(r_w, ptr[rip + rows_label_]);
  add(r_entry, r_w);
  mov(r_rows, ptr[r_args + kArgRowEnd]);
  sub(r_rows, r_kh);
  jle(l_next_block, T_NEAR);
  L(l_row);
  mov(r_row, r_plane);
  add(r_row, ptr[r_entry + kRowSrc]);
  mov(r_wrow, r_weights);
  add(r_wrow, ptr[r_entry + kRowWeights]);
  emit_row();  // advances r_dst by one output row
  add(r_entry, kRowBytes);
  dec(r_rows);
  jnz(l_row, T_NEAR);
  L(l_next_block);
  inc(r_block);
  jmp(l_block, T_NEAR);
  L(l_done);
  epilogue();

  table_.emit(*this, table_label_);
  align(8);
  L(rows_label_);
  for (const RowEntry& r : rows) {
    dq(static_cast<uint64_t>(r.src));
    dq(static_cast<uint64_t>(r.weights));
    dq(static_cast<uint64_t>(r.count));
  }
  finalize();
}

// One output row at r_dst, reading src from r_row.
void DepthwiseKernel::emit_row() {
  const auto& p = plan_;
  const auto& s = p.shape;
  const int64_t B = p.block, Wo = s.out_width();
  auto tile_pixels = [&](int64_t t) { return static_cast<int>(std::min<int64_t>(p.pixels, Wo - t * p.pixels)); };
  auto emit_static = [&](int64_t t) {
    const int64_t ow0 = t * p.pixels;
    emit_tile(r_row, ow0 * s.stride - s.pad_left, tile_pixels(t), ow0);
    add(r_dst, imm32(tile_pixels(t) * B * 4));
  };
  for (int64_t t = 0; t < p.loop_begin; ++t) emit_static(t);
  if (p.loop_tiles > 0) {
    Xbyak::Label l_tile;
    lea(r_tile, ptr[r_row + imm32((p.loop_begin * p.pixels * s.stride - s.pad_left) * B * 4)]);
    mov(qword[rsp + kFrameTiles], imm32(p.loop_tiles));
    L(l_tile);
    emit_tile(r_tile, 0, p.pixels, -1);
    add(r_tile, imm32(p.pixels * s.stride * B * 4));
    add(r_dst, imm32(p.pixels * B * 4));
    dec(qword[rsp + kFrameTiles]);
    jnz(l_tile, T_NEAR);
  }
  for (int64_t t = p.loop_begin + p.loop_tiles; t < p.row_tiles; ++t) emit_static(t);
}

// `pixels` accumulators for the output pixels at r_dst. Tap (p, kw) of a kernel row reads
// src column first_col + p * stride + kw * dilation from `base`. With static_ow >= 0 the
// tile starts at output column static_ow and taps outside the image are left out; with
// -1 every tap is inside.
void DepthwiseKernel::emit_tile(const Reg64& base, int64_t first_col, int pixels, int64_t static_ow) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const bool avx512 = p.isa == Isa::avx512;
  const int k = s.kernel, P = pixels;
  const int64_t B = p.block;
  auto vreg = [&](int i) -> Xbyak::Xmm {
    if (avx512) return Xbyak::Zmm(i);
    return Xbyak::Ymm(i);
  };
  auto acc = [&](int px) { return vreg(px); };
  auto wreg = [&](int kw) { return vreg(P + kw); };
  const Xbyak::Xmm v = vreg(P + k);
  auto dst_at = [&](int px) { return ptr[r_dst + imm32(px * B * 4)]; };
  auto res_at = [&](int px) { return ptr[r_dst + r_res + imm32(px * B * 4)]; };

  // Taps by the src column they read, so each column is loaded once for all its taps.
  std::map<int64_t, std::vector<std::pair<int, int>>> columns;  // column -> (pixel, kw)
  std::vector<bool> kw_used(static_cast<std::size_t>(k), false);
  for (int px = 0; px < P; ++px)
    for (int kw = 0; kw < k; ++kw) {
      const int64_t col = first_col + int64_t{px} * s.stride + int64_t{kw} * s.dilation;
      if (static_ow >= 0) {
        const int64_t iw = (static_ow + px) * s.stride - s.pad_left + int64_t{kw} * s.dilation;
        if (iw < 0 || iw >= s.width) continue;
      }
      columns[col].push_back({px, kw});
      kw_used[static_cast<std::size_t>(kw)] = true;
    }

  // acc = bias (+ residual).
  const bool res_first = s.residual == ResidualMode::before_activation;
  if (s.has_bias) {
    mov(r_w, ptr[rsp + kFrameBias]);
    vmovups(v, ptr[r_w]);
  }
  for (int px = 0; px < P; ++px) {
    if (res_first && s.has_bias) vaddps(acc(px), v, res_at(px));
    else if (res_first) vmovups(acc(px), res_at(px));
    else if (s.has_bias) vmovaps(acc(px), v);
    else vxorps(acc(px), acc(px), acc(px));
  }

  if (!columns.empty()) {
    Xbyak::Label l_kh, l_kh_done;
    mov(r_kh, ptr[r_entry + kRowCount]);
    mov(r_s, base);
    mov(r_w, r_wrow);
    if (empty_rows_) {
      test(r_kh, r_kh);
      jz(l_kh_done, T_NEAR);
    }
    L(l_kh);
    for (int kw = 0; kw < k; ++kw)
      if (kw_used[static_cast<std::size_t>(kw)]) vmovups(wreg(kw), ptr[r_w + imm32(kw * B * 4)]);
    for (const auto& [col, taps] : columns) {
      vmovups(v, ptr[r_s + imm32(col * B * 4)]);
      for (const auto& [px, kw] : taps) vfmadd231ps(acc(px), wreg(kw), v);
    }
    add(r_s, imm32(int64_t{s.dilation} * s.width * B * 4));
    add(r_w, imm32(k * B * 4));
    dec(r_kh);
    jnz(l_kh, T_NEAR);
    L(l_kh_done);
  }

  // dst = mask(act(acc) (+ residual)); the weights and input registers are free now.
  std::vector<Xbyak::Xmm> temps;
  for (int i = P; i < isa_vector_registers(p.isa) && i <= P + k; ++i) temps.push_back(vreg(i));
  ActivationEmitter activation(*this, p.isa, s.activation, table_, r_table, k2);
  const bool mask = s.channels % B != 0;
  if (mask && !avx512) mov(r_w, ptr[rsp + kFrameMask]);
  for (int px = 0; px < P; ++px) {
    const Xbyak::Xmm a = acc(px);
    activation(a, temps);
    if (s.residual == ResidualMode::after_activation) vaddps(a, a, res_at(px));
    if (mask) {
      if (avx512) vmovaps(Xbyak::Zmm(a.getIdx()) | k1 | T_z, Xbyak::Zmm(a.getIdx()));
      else vandps(a, a, ptr[r_w]);
    }
    vmovups(dst_at(px), a);
  }
}

void DepthwiseKernel::run(const float* src, float* dst, const DepthwiseWeights& w, const float* residual) const {
  const auto& p = plan_;
  for (int64_t n = 0; n < p.shape.batch; ++n) {
    DepthwiseArgs args{src + n * p.src_image_floats(),
                       dst + n * p.dst_image_floats(),
                       w.weights.data(),
                       w.bias.data(),
                       residual != nullptr ? residual + n * p.dst_image_floats() : nullptr,
                       0,
                       p.blocks,
                       0,
                       p.shape.out_height()};
    (*this)(args);
  }
}

std::shared_ptr<const DepthwiseKernel> get_depthwise_kernel(const DepthwisePlan& plan, const std::string& serves) {
  static KernelCache<DepthwiseKernel> cache;
  bool made = false;
  auto kernel = cache.get(plan, [&] {
    made = true;
    return std::make_shared<const DepthwiseKernel>(plan, serves);
  });
  if (!made && !serves.empty()) JitRegistry::instance().append_serves(kernel->code(), serves);
  return kernel;
}

}  // namespace nnjit::jit
