// PoolKernel: emits the pooling for one PoolPlan. Every choice was made by plan_pool;
// this file only follows it.
//
// The generated function, for one image and channel blocks [block_begin, block_end):
//
//   window kinds (max, avg):
//   for block:
//     for oh:                          rows[oh] = the window rows inside the image and the
//                                      row part of the avg divisor (a table in the code)
//       for tile of P pixels in the row:   (edge tiles unrolled with their padding columns
//                                           left out; interior tiles one loop)
//         acc[p] = lowest (max) or 0 (avg)
//         for kh in rows[oh]:
//           for each input column x the tile reads: v = src[kh][x]   (loaded once)
//             acc[p] = max(acc[p], v) or acc[p] + v    for every p whose window holds x
//         dst = mask(acc (avg: / (rows divisor * columns divisor)))
//
//   global kinds:
//   for block:
//     acc[0..P) = lowest or 0; acc[i % P] op= src[i] over the plane; dst = mask(reduce(acc))
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "jit/kernel_cache.hpp"
#include "jit/pool/pool.hpp"
#include "jit/registry.hpp"

namespace nnjit::jit {

namespace {

using Xbyak::Reg64;
using namespace Xbyak::util;

// PoolArgs as the generated code reads it.
constexpr int kArgSrc = 0;
constexpr int kArgDst = 8;
constexpr int kArgBlockBegin = 16;
constexpr int kArgBlockEnd = 24;
static_assert(offsetof(PoolArgs, src) == kArgSrc);
static_assert(offsetof(PoolArgs, dst) == kArgDst);
static_assert(offsetof(PoolArgs, block_begin) == kArgBlockBegin);
static_assert(offsetof(PoolArgs, block_end) == kArgBlockEnd);

// One entry of the row table per output row: where its first window row inside the image
// starts (bytes from the block's src plane), how many window rows lie inside the image,
// and the row factor of the avg divisor (a float; rows inside, or rows of the padded
// image with count_include_pad).
constexpr int kRowSrc = 0;
constexpr int kRowCount = 8;
constexpr int kRowDivisor = 16;
constexpr int kRowBytes = 24;

// The stack frame.
constexpr int kFrameMask = 0;   // AVX2: the lane mask row for the block
constexpr int kFrameTiles = 8;  // interior tiles left in the row
constexpr int kFrameBytes = 16;

// General-purpose registers (System V passes the PoolArgs pointer in rdi).
const Reg64 r_args = rdi;
const Reg64 r_table = r15;  // the constant table
const Reg64 r_block = r14;  // channel block index
const Reg64 r_plane = r12;  // the block's src plane
const Reg64 r_dst = r11;    // dst of the current tile
const Reg64 r_rows = r10;   // output rows left; global: plane chunks left
const Reg64 r_entry = r9;   // the row table entry of the current row
const Reg64 r_row = r8;     // src of the row's first window row inside the image, column 0
const Reg64 r_tile = rsi;   // interior tiles: src of the tile's first column
const Reg64 r_kh = rax;     // window rows left; elsewhere scratch
const Reg64 r_w = rcx;      // scratch
const Reg64 r_s = rdx;      // src walk

constexpr float kLowest = std::numeric_limits<float>::lowest();

int32_t imm32(int64_t v) {
  if (v > INT32_MAX || v < INT32_MIN) throw std::logic_error("pool: offset exceeds 32 bits (plan check missed it)");
  return static_cast<int32_t>(v);
}

// The part of window `o` along one axis inside the image: [first, first + count) of the
// window's taps, and the avg divisor's factor along that axis.
struct Span {
  int64_t first, count, divisor;
};
Span window_span(int64_t o, int kernel, int stride, int64_t pad_begin, int64_t pad_end, int64_t size,
                 bool count_include_pad) {
  const int64_t start = o * stride - pad_begin;
  const int64_t lo = std::clamp<int64_t>(-start, 0, kernel);
  const int64_t hi = std::clamp<int64_t>(size - start, lo, kernel);
  const int64_t padded = std::min<int64_t>(start + kernel, size + pad_end) - start;
  return {lo, hi - lo, count_include_pad ? padded : hi - lo};
}

// What the emitter relies on; plan_pool guarantees it, a hand-edited plan might not.
void check_plan(const PoolPlan& p) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("PoolKernel: inconsistent plan " + p.key() + ": " + what);
  };
  const auto& s = p.shape;
  if (p.block != isa_block(p.isa)) fail("block does not match the ISA");
  if (p.blocks != div_up(s.channels, p.block)) fail("blocks do not cover the channels");
  if (s.height < 1 || s.width < 1) fail("empty image");
  if (is_global(s.kind)) {
    if (p.pixels < 1 || p.pixels > isa_vector_registers(p.isa) - 1) fail("accumulators do not fit");
    return;
  }
  if (s.kind != PoolKind::max && s.kind != PoolKind::avg) fail("pool kind");
  if (s.kernel_h < 1 || s.kernel_w < 1 || s.kernel_h > kPoolMaxKernel || s.kernel_w > kPoolMaxKernel) fail("kernel");
  if (s.stride_h < 1 || s.stride_w < 1 || s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0 ||
      s.out_height < 1 || s.out_width < 1)
    fail("stride, pads or output size");
  if (s.pad_top >= s.kernel_h || s.pad_left >= s.kernel_w ||
      (s.out_height - 1) * s.stride_h - s.pad_top >= s.height || (s.out_width - 1) * s.stride_w - s.pad_left >= s.width)
    fail("a window lies wholly in the padding");
  if (p.pixels < 1 || p.pixels > pool_max_pixels(p.isa)) fail("register tile does not fit");
  if (p.row_tiles != div_up(s.out_width, p.pixels)) fail("tiles do not cover the row");
  if (p.loop_tiles < 0 || p.loop_begin < 0 || p.loop_begin + p.loop_tiles > p.row_tiles) fail("bad interior tiles");
  for (int64_t t = p.loop_begin; t < p.loop_begin + p.loop_tiles; ++t) {
    const int64_t ow0 = t * p.pixels;
    if (ow0 + p.pixels > s.out_width || ow0 * s.stride_w - s.pad_left < 0 ||
        (ow0 + p.pixels - 1) * s.stride_w - s.pad_left + s.kernel_w > s.width)
      fail("a looped tile reads padding");
  }
}

}  // namespace

PoolKernel::PoolKernel(const PoolPlan& plan, std::string serves) : JitKernel(plan.name(), std::move(serves)), plan_(plan) {
  check_plan(plan_);
  generate();
}

void PoolKernel::generate() {
  const auto& p = plan_;
  prologue(kFrameBytes);
  lea(r_table, ptr[rip + table_label_]);
  Xbyak::Label l_block, l_done;
  mov(r_block, ptr[r_args + kArgBlockBegin]);
  L(l_block);
  cmp(r_block, ptr[r_args + kArgBlockEnd]);
  jge(l_done, T_NEAR);
  // Lanes past C in the last block are stored as zero whatever src holds there.
  const int pad_lanes = static_cast<int>(p.shape.channels % p.block);
  if (pad_lanes != 0)
    emit_tail_mask(*this, p.isa, table_, r_table, pad_lanes, &r_block, p.blocks - 1, r_kh, r_w, ptr[rsp + kFrameMask]);
  imul(r_plane, r_block, imm32(p.shape.src_plane_pixels() * p.block * 4));
  add(r_plane, ptr[r_args + kArgSrc]);
  imul(r_dst, r_block, imm32(p.shape.dst_plane_pixels() * p.block * 4));
  add(r_dst, ptr[r_args + kArgDst]);
  if (is_global(p.shape.kind))
    emit_global();
  else
    emit_window();
  inc(r_block);
  jmp(l_block, T_NEAR);
  L(l_done);
  epilogue();

  table_.emit(*this, table_label_);
  if (!is_global(p.shape.kind)) {
    const auto& s = p.shape;
    align(8);
    L(rows_label_);
    for (int64_t oh = 0; oh < s.out_height; ++oh) {
      const Span r = window_span(oh, s.kernel_h, s.stride_h, s.pad_top, s.pad_bottom, s.height, s.count_include_pad);
      dq(static_cast<uint64_t>((oh * s.stride_h - s.pad_top + r.first) * s.width * p.block * 4));
      dq(static_cast<uint64_t>(r.count));
      dq(std::bit_cast<uint32_t>(static_cast<float>(r.divisor)));
    }
  }
  finalize();
}

// Every output row of the block at r_plane into r_dst.
void PoolKernel::emit_window() {
  Xbyak::Label l_row;
  lea(r_entry, ptr[rip + rows_label_]);
  mov(r_rows, imm32(plan_.shape.out_height));
  L(l_row);
  mov(r_row, r_plane);
  add(r_row, ptr[r_entry + kRowSrc]);
  emit_row();  // advances r_dst by one output row
  add(r_entry, kRowBytes);
  dec(r_rows);
  jnz(l_row, T_NEAR);
}

// One output row at r_dst, reading src from r_row.
void PoolKernel::emit_row() {
  const auto& p = plan_;
  const auto& s = p.shape;
  const int64_t B = p.block, Wo = s.out_width;
  const bool avx512 = p.isa == Isa::avx512;
  if (s.kind == PoolKind::avg) {
    // The row's divisor, and the reciprocal of a whole interior window's.
    auto vreg = [&](int i) -> Xbyak::Xmm { return avx512 ? Xbyak::Xmm(Xbyak::Zmm(i)) : Xbyak::Xmm(Xbyak::Ymm(i)); };
    const Xbyak::Xmm v = vreg(p.pixels), rdiv = vreg(p.pixels + 1), rinv = vreg(p.pixels + 2);
    vbroadcastss(rdiv, dword[r_entry + kRowDivisor]);
    vmulps(rinv, rdiv, ptr[r_table + table_.offset_of(static_cast<float>(s.kernel_w))]);
    vmovups(v, ptr[r_table + table_.offset_of(1.f)]);
    vdivps(rinv, v, rinv);
  }
  auto tile_pixels = [&](int64_t t) { return static_cast<int>(std::min<int64_t>(p.pixels, Wo - t * p.pixels)); };
  auto emit_static = [&](int64_t t) {
    const int64_t ow0 = t * p.pixels;
    emit_tile(r_row, ow0 * s.stride_w - s.pad_left, tile_pixels(t), ow0);
    add(r_dst, imm32(tile_pixels(t) * B * 4));
  };
  for (int64_t t = 0; t < p.loop_begin; ++t) emit_static(t);
  if (p.loop_tiles > 0) {
    Xbyak::Label l_tile;
    lea(r_tile, ptr[r_row + imm32((p.loop_begin * p.pixels * s.stride_w - s.pad_left) * B * 4)]);
    mov(qword[rsp + kFrameTiles], imm32(p.loop_tiles));
    L(l_tile);
    emit_tile(r_tile, 0, p.pixels, -1);
    add(r_tile, imm32(p.pixels * s.stride_w * B * 4));
    add(r_dst, imm32(p.pixels * B * 4));
    dec(qword[rsp + kFrameTiles]);
    jnz(l_tile, T_NEAR);
  }
  for (int64_t t = p.loop_begin + p.loop_tiles; t < p.row_tiles; ++t) emit_static(t);
}

// `pixels` accumulators for the output pixels at r_dst. Column kw of pixel p reads src
// column first_col + p * stride + kw from `base`. With static_ow >= 0 the tile starts at
// output column static_ow and columns outside the image are left out; with -1 every
// column is inside.
void PoolKernel::emit_tile(const Reg64& base, int64_t first_col, int pixels, int64_t static_ow) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const bool avx512 = p.isa == Isa::avx512, avg = s.kind == PoolKind::avg;
  const int P = pixels;
  const int64_t B = p.block;
  auto vreg = [&](int i) -> Xbyak::Xmm { return avx512 ? Xbyak::Xmm(Xbyak::Zmm(i)) : Xbyak::Xmm(Xbyak::Ymm(i)); };
  auto acc = [&](int px) { return vreg(px); };
  // Fixed registers after the largest tile, so every tile of the row shares them.
  const Xbyak::Xmm v = vreg(p.pixels), rdiv = vreg(p.pixels + 1), rinv = vreg(p.pixels + 2);
  auto op = [&](const Xbyak::Xmm& a, const Xbyak::Operand& x) {
    if (avg) vaddps(a, a, x);
    else vmaxps(a, a, x);
  };

  // Pixels by the src column they read, so each column is loaded once for all of them.
  std::map<int64_t, std::vector<int>> columns;  // column -> pixels
  std::vector<int64_t> col_divisor(static_cast<std::size_t>(P), s.kernel_w);
  for (int px = 0; px < P; ++px) {
    int64_t lo = 0, count = s.kernel_w;
    if (static_ow >= 0) {
      const Span c = window_span(static_ow + px, s.kernel_w, s.stride_w, s.pad_left, s.pad_right, s.width,
                                 s.count_include_pad);
      lo = c.first, count = c.count;
      col_divisor[static_cast<std::size_t>(px)] = c.divisor;
    }
    for (int64_t kw = lo; kw < lo + count; ++kw) columns[first_col + int64_t{px} * s.stride_w + kw].push_back(px);
  }

  for (int px = 0; px < P; ++px) {
    if (avg) vxorps(acc(px), acc(px), acc(px));
    else vmovups(acc(px), ptr[r_table + table_.offset_of(kLowest)]);
  }
  Xbyak::Label l_kh;
  mov(r_kh, ptr[r_entry + kRowCount]);  // at least 1: plan_pool refuses empty windows
  mov(r_s, base);
  L(l_kh);
  for (const auto& [col, pxs] : columns) {
    const Xbyak::Address at = ptr[r_s + imm32(col * B * 4)];
    if (pxs.size() == 1) {
      op(acc(pxs[0]), at);
      continue;
    }
    vmovups(v, at);
    for (int px : pxs) op(acc(px), v);
  }
  add(r_s, imm32(s.width * B * 4));
  dec(r_kh);
  jnz(l_kh, T_NEAR);

  // dst = mask(acc / divisor): whole windows multiply by the row's reciprocal, clipped
  // ones divide by rows * columns (exact small integers).
  const bool mask = s.channels % B != 0;
  if (mask && !avx512) mov(r_w, ptr[rsp + kFrameMask]);
  for (int px = 0; px < P; ++px) {
    const Xbyak::Xmm a = acc(px);
    if (avg) {
      const int64_t cd = col_divisor[static_cast<std::size_t>(px)];
      if (cd == s.kernel_w) {
        vmulps(a, a, rinv);
      } else {
        vmulps(v, rdiv, ptr[r_table + table_.offset_of(static_cast<float>(cd))]);
        vdivps(a, a, v);
      }
    }
    if (mask) {
      if (avx512) vmovaps(Xbyak::Zmm(a.getIdx()) | k1 | T_z, Xbyak::Zmm(a.getIdx()));
      else vandps(a, a, ptr[r_w]);
    }
    vmovups(ptr[r_dst + imm32(px * B * 4)], a);
  }
}

// The block's plane at r_plane reduced to one vector at r_dst.
void PoolKernel::emit_global() {
  const auto& p = plan_;
  const auto& s = p.shape;
  const bool avx512 = p.isa == Isa::avx512, avg = s.kind == PoolKind::global_avg;
  const int64_t B = p.block, plane = s.height * s.width;
  const int U = p.pixels;
  auto acc = [&](int i) -> Xbyak::Xmm { return avx512 ? Xbyak::Xmm(Xbyak::Zmm(i)) : Xbyak::Xmm(Xbyak::Ymm(i)); };
  auto op = [&](const Xbyak::Xmm& a, const Xbyak::Operand& x) {
    if (avg) vaddps(a, a, x);
    else vmaxps(a, a, x);
  };
  // The first U pixels start the accumulators; then chunks of U; then the rest.
  for (int u = 0; u < U; ++u) vmovups(acc(u), ptr[r_plane + imm32(u * B * 4)]);
  const int64_t chunks = plane / U - 1, rest = plane % U;
  lea(r_s, ptr[r_plane + imm32(U * B * 4)]);
  if (chunks > 0) {
    Xbyak::Label l_chunk;
    mov(r_rows, imm32(chunks));
    L(l_chunk);
    for (int u = 0; u < U; ++u) op(acc(u), ptr[r_s + imm32(u * B * 4)]);
    add(r_s, imm32(U * B * 4));
    dec(r_rows);
    jnz(l_chunk, T_NEAR);
  }
  for (int u = 0; u < rest; ++u) op(acc(u), ptr[r_s + imm32(u * B * 4)]);
  // Pairwise: acc[0] = op over every accumulator.
  for (int width = 1; width < U; width *= 2)
    for (int u = 0; u + width < U; u += 2 * width) op(acc(u), acc(u + width));
  const Xbyak::Xmm a = acc(0);
  if (avg) vdivps(a, a, ptr[r_table + table_.offset_of(static_cast<float>(plane))]);
  if (s.channels % B != 0) {
    if (avx512) {
      vmovaps(Xbyak::Zmm(a.getIdx()) | k1 | T_z, Xbyak::Zmm(a.getIdx()));
    } else {
      mov(r_w, ptr[rsp + kFrameMask]);
      vandps(a, a, ptr[r_w]);
    }
  }
  vmovups(ptr[r_dst], a);
}

void PoolKernel::run(const float* src, float* dst) const {
  const auto& p = plan_;
  for (int64_t n = 0; n < p.shape.batch; ++n) {
    PoolArgs args{src + n * p.src_image_floats(), dst + n * p.dst_image_floats(), 0, p.blocks};
    (*this)(args);
  }
}

std::shared_ptr<const PoolKernel> get_pool_kernel(const PoolPlan& plan, const std::string& serves) {
  static KernelCache<PoolKernel> cache;
  bool made = false;
  auto kernel = cache.get(plan, [&] {
    made = true;
    return std::make_shared<const PoolKernel>(plan, serves);
  });
  if (!made && !serves.empty()) JitRegistry::instance().append_serves(kernel->code(), serves);
  return kernel;
}

}  // namespace nnjit::jit
