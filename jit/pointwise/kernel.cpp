// PointwiseKernel: emits the 1x1 convolution for one PointwisePlan. Every choice was
// made by plan_pointwise; this file only follows it.
//
// The generated function, for one image and output-channel tiles [tile_begin, tile_end):
//
//   for chunk in input-channel chunks:                 (cache block: plan.chunk_channels)
//     for tile in [tile_begin, tile_end):               (main tiles, then the tail tile)
//       for row, for pixel tile in the row:
//         acc[kb][p] = first chunk ? bias (+ residual) : dst          (partial sums)
//         for c in chunk: acc[kb][p] += w[c][kb] * broadcast(src[c][p])
//         dst = last chunk ? mask(act(acc) (+ residual)) : acc
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "jit/kernel_cache.hpp"
#include "jit/pointwise/pointwise.hpp"
#include "jit/registry.hpp"

namespace nnjit::jit {

namespace {

using Xbyak::Reg64;
using namespace Xbyak::util;

// PointwiseArgs as the generated code reads it.
constexpr int kArgSrc = 0;
constexpr int kArgDst = 8;
constexpr int kArgWeights = 16;
constexpr int kArgBias = 24;
constexpr int kArgResidual = 32;
constexpr int kArgTileBegin = 40;
constexpr int kArgTileEnd = 48;
static_assert(offsetof(PointwiseArgs, src) == kArgSrc);
static_assert(offsetof(PointwiseArgs, dst) == kArgDst);
static_assert(offsetof(PointwiseArgs, weights) == kArgWeights);
static_assert(offsetof(PointwiseArgs, bias) == kArgBias);
static_assert(offsetof(PointwiseArgs, residual) == kArgResidual);
static_assert(offsetof(PointwiseArgs, tile_begin) == kArgTileBegin);
static_assert(offsetof(PointwiseArgs, tile_end) == kArgTileEnd);

// The stack frame: per-tile values the microkernels read when they need them.
constexpr int kFrameWeights = 0;    // the tile's weights at the chunk's first channel
constexpr int kFrameBias = 8;       // the tile's bias
constexpr int kFrameResDelta = 16;  // residual - dst, in bytes (same layout)
constexpr int kFrameBlocks = 24;    // full channel blocks in this chunk
constexpr int kFrameMask = 32;      // AVX2: the lane mask row for the tile's last block
constexpr int kFrameTileEnd = 40;
constexpr int kFrameBytes = 48;

// General-purpose registers (System V passes the PointwiseArgs pointer in rdi).
const Reg64 r_args = rdi;
const Reg64 r_table = r15;  // the constant table
const Reg64 r_chunk = r14;  // chunk index
const Reg64 r_tile = r13;   // output-channel tile index
const Reg64 r_src = r12;    // source of the current pixel tile at the chunk's first block
const Reg64 r_dst = r11;    // destination of the current pixel tile at the tile's first block
const Reg64 r_row = r10;
const Reg64 r_pix = r9;
const Reg64 r_s = r8;     // reduction: source walk; elsewhere scratch
const Reg64 r_w = rax;    // reduction: weight walk; elsewhere scratch
const Reg64 r_cnt = rcx;  // reduction: block counter
const Reg64 r_t0 = rdx;   // tile setup scratch
const Reg64 r_t1 = rbx;

int32_t imm32(int64_t v) {
  if (v > INT32_MAX || v < INT32_MIN) throw std::logic_error("pointwise: offset exceeds 32 bits (plan check missed it)");
  return static_cast<int32_t>(v);
}

// What the emitter relies on; plan_pointwise guarantees it, a hand-edited plan might not.
void check_plan(const PointwisePlan& p) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("PointwiseKernel: inconsistent plan " + p.key() + ": " + what);
  };
  const int regs = isa_vector_registers(p.isa);
  const int temps = activation_temps(p.shape.activation.kind);
  for (const PointwiseTile* tile : {&p.main, &p.tail}) {
    const PointwiseTile& t = *tile;
    if (tile == &p.tail && t.oc_blocks == 0) continue;
    if (t.oc_blocks < 1 || t.pixels < 1) fail("empty register tile");
    const int reduction = t.oc_blocks + (p.isa == Isa::avx2 ? 1 : 0);
    if (t.oc_blocks * t.pixels + std::max(reduction, temps) > regs) fail("register tile does not fit");
  }
  if (p.block != isa_block(p.isa)) fail("block does not match the ISA");
  if (p.main_tiles * p.main.oc_blocks + p.tail.oc_blocks != p.out_blocks) fail("tiles do not cover the output");
  if (p.half_last_block && (p.isa != Isa::avx512 || p.tail.oc_blocks == 0 ||
                            p.shape.out_channels % p.block == 0 || p.shape.out_channels % p.block > p.block / 2))
    fail("a half last block needs AVX-512, a tail tile and at most 8 channels in the last block");
  if (p.chunk_channels < p.block || p.chunk_channels % p.block != 0 ||
      p.chunks != div_up(p.shape.in_channels, p.chunk_channels))
    fail("bad channel chunks");
  const bool rows_ok = p.shape.stride == 1 ? p.rows == 1 && p.row_pixels == p.shape.out_height() * p.shape.out_width()
                                           : p.rows == p.shape.out_height() && p.row_pixels == p.shape.out_width();
  if (!rows_ok) fail("bad pixel rows");
}

}  // namespace

PointwiseKernel::PointwiseKernel(const PointwisePlan& plan, std::string serves)
    : JitKernel(plan.name(), std::move(serves)), plan_(plan) {
  check_plan(plan_);
  generate();
}

void PointwiseKernel::generate() {
  const auto& p = plan_;
  const int64_t C = p.shape.in_channels, B = p.block, kc = p.chunk_channels;
  prologue(kFrameBytes);
  lea(r_table, ptr[rip + table_label_]);
  mov(r_t0, ptr[r_args + kArgTileEnd]);
  mov(ptr[rsp + kFrameTileEnd], r_t0);

  const int64_t blocks_per_chunk = kc / B;
  const int64_t last_chunk_blocks = (C - (p.chunks - 1) * kc) / B;  // full blocks; C % B comes after

  Xbyak::Label l_chunk, l_tile, l_tail, l_tiles_done;
  xor_(r_chunk, r_chunk);
  L(l_chunk);
  mov(qword[rsp + kFrameBlocks], imm32(blocks_per_chunk));
  if (last_chunk_blocks != blocks_per_chunk) {
    Xbyak::Label l_not_last;
    cmp(r_chunk, imm32(p.chunks - 1));
    jne(l_not_last);
    mov(qword[rsp + kFrameBlocks], imm32(last_chunk_blocks));
    L(l_not_last);
  }
  mov(r_tile, ptr[r_args + kArgTileBegin]);
  L(l_tile);
  cmp(r_tile, ptr[rsp + kFrameTileEnd]);
  jge(l_tiles_done, T_NEAR);
  if (p.tail.oc_blocks > 0) {
    cmp(r_tile, imm32(p.main_tiles));
    je(l_tail, T_NEAR);
  }
  if (p.main_tiles > 0) {
    emit_tile(p.main, false);
    inc(r_tile);
    jmp(l_tile, T_NEAR);
  }
  if (p.tail.oc_blocks > 0) {
    L(l_tail);
    emit_tile(p.tail, true);
    inc(r_tile);
    jmp(l_tile, T_NEAR);
  }
  L(l_tiles_done);
  inc(r_chunk);
  cmp(r_chunk, imm32(p.chunks));
  jl(l_chunk, T_NEAR);
  epilogue();

  table_.emit(*this, table_label_);
  finalize();
}

// One output-channel tile (r_tile) for one chunk (r_chunk): pointers, mask, then the
// pixel loops.
void PointwiseKernel::emit_tile(const PointwiseTile& tile, bool is_tail) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const int64_t C = s.in_channels, B = p.block, kb = tile.oc_blocks, kb_main = p.main.oc_blocks;
  const int64_t in_plane_bytes = s.src_plane_pixels() * B * 4;
  const int64_t out_plane_bytes = s.dst_plane_pixels() * B * 4;
  const int64_t pixel_step = s.stride * B * 4;  // bytes between a tile's source pixels

  // Tiles before this one all have kb_main blocks, so a tile starts at r_tile * kb_main
  // blocks whatever its own width.
  imul(r_t0, r_tile, imm32(C * kb_main * B * 4));
  imul(r_t1, r_chunk, imm32(p.chunk_channels * kb * B * 4));
  add(r_t0, r_t1);
  add(r_t0, ptr[r_args + kArgWeights]);
  mov(ptr[rsp + kFrameWeights], r_t0);
  if (s.has_bias) {
    imul(r_t0, r_tile, imm32(kb_main * B * 4));
    add(r_t0, ptr[r_args + kArgBias]);
    mov(ptr[rsp + kFrameBias], r_t0);
  }
  if (s.residual != ResidualMode::none) {
    mov(r_t0, ptr[r_args + kArgResidual]);
    sub(r_t0, ptr[r_args + kArgDst]);
    mov(ptr[rsp + kFrameResDelta], r_t0);
  }
  imul(r_dst, r_tile, imm32(kb_main * out_plane_bytes));
  add(r_dst, ptr[r_args + kArgDst]);
  imul(r_src, r_chunk, imm32(p.chunk_channels / B * in_plane_bytes));
  add(r_src, ptr[r_args + kArgSrc]);

  // Lanes past K in the last block are stored as zero: an activation may map the zero
  // padding to something else (sigmoid(0) = 0.5). Only the last tile has such a block;
  // with no tail tile, that is the last main tile, known at run time.
  const int pad_lanes = static_cast<int>(s.out_channels % B);
  if (masks_last_block(is_tail))
    emit_tail_mask(*this, p.isa, table_, r_table, pad_lanes, is_tail ? nullptr : &r_tile, p.tiles() - 1, r_t0, r_t1,
                   ptr[rsp + kFrameMask]);

  const int64_t full = p.row_pixels / tile.pixels;
  const int rest = static_cast<int>(p.row_pixels % tile.pixels);
  Xbyak::Label l_row;
  if (p.rows > 1) {
    mov(r_row, imm32(p.rows));
    L(l_row);
  }
  if (full > 0) {
    Xbyak::Label l_pix;
    mov(r_pix, imm32(full));
    L(l_pix);
    emit_microkernel(tile, tile.pixels, is_tail);
    add(r_src, imm32(tile.pixels * pixel_step));
    add(r_dst, imm32(tile.pixels * B * 4));
    dec(r_pix);
    jnz(l_pix, T_NEAR);
  }
  if (rest > 0) {
    emit_microkernel(tile, rest, is_tail);
    add(r_src, imm32(rest * pixel_step));
    add(r_dst, imm32(rest * B * 4));
  }
  if (p.rows > 1) {
    // From the end of this output row's source pixels to the next output row's start.
    add(r_src, imm32(s.stride * s.width * B * 4 - p.row_pixels * pixel_step));
    dec(r_row);
    jnz(l_row, T_NEAR);
  }
}

// Whether this kind of tile zeroes the padding lanes of its last block: only the last
// tile has them; with no tail tile that is the last main tile, told apart at run time.
bool PointwiseKernel::masks_last_block(bool is_tail) const {
  return plan_.shape.out_channels % plan_.block != 0 && (is_tail || plan_.tail.oc_blocks == 0);
}

// kb x `pixels` accumulators at r_src / r_dst for the current chunk.
void PointwiseKernel::emit_microkernel(const PointwiseTile& tile, int pixels, bool is_tail) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const bool avx512 = p.isa == Isa::avx512;
  const int kb = tile.oc_blocks, P = pixels;
  const int64_t C = s.in_channels, B = p.block;
  const int64_t in_plane_bytes = s.src_plane_pixels() * B * 4;
  const int64_t out_plane_bytes = s.dst_plane_pixels() * B * 4;
  const int64_t pixel_step = s.stride * B * 4;
  const int nregs = isa_vector_registers(p.isa);

  const bool mask_last_block = masks_last_block(is_tail);
  // Block k's registers are ymm on AVX2, and on AVX-512 for a half last block.
  auto narrow = [&](int k) { return !avx512 || (is_tail && p.half_last_block && k == kb - 1); };
  auto vreg = [&](int i, bool ymm) -> Xbyak::Xmm {
    if (ymm) return Xbyak::Ymm(i);
    return Xbyak::Zmm(i);
  };
  auto acc = [&](int k, int px) { return vreg(k * P + px, narrow(k)); };
  auto wreg = [&](int k) { return vreg(kb * P + k, narrow(k)); };
  const Xbyak::Xmm bcast = vreg(kb * P + kb, true);  // AVX2 only
  auto dst_at = [&](int k, int px) { return ptr[r_dst + imm32(k * out_plane_bytes + px * B * 4)]; };
  // r_s must hold residual - dst.
  auto res_at = [&](int k, int px) { return ptr[r_dst + r_s + imm32(k * out_plane_bytes + px * B * 4)]; };
  const bool several_chunks = p.chunks > 1;

  // acc = first chunk ? bias (+ residual) : the partial sums in dst.
  Xbyak::Label l_partial, l_init_done;
  if (several_chunks) {
    test(r_chunk, r_chunk);
    jnz(l_partial, T_NEAR);
  }
  const bool res_first = s.residual == ResidualMode::before_activation;
  if (s.has_bias) {
    mov(r_w, ptr[rsp + kFrameBias]);
    for (int k = 0; k < kb; ++k) vmovups(wreg(k), ptr[r_w + k * B * 4]);
  }
  if (res_first) mov(r_s, ptr[rsp + kFrameResDelta]);
  for (int k = 0; k < kb; ++k)
    for (int px = 0; px < P; ++px) {
      if (res_first && s.has_bias) vaddps(acc(k, px), wreg(k), res_at(k, px));
      else if (res_first) vmovups(acc(k, px), res_at(k, px));
      else if (s.has_bias) vmovaps(acc(k, px), wreg(k));
      else vxorps(acc(k, px), acc(k, px), acc(k, px));
    }
  if (several_chunks) {
    jmp(l_init_done, T_NEAR);
    L(l_partial);
    for (int k = 0; k < kb; ++k)
      for (int px = 0; px < P; ++px) vmovups(acc(k, px), dst_at(k, px));
    L(l_init_done);
  }

  // The next block's source lines, fetched into L1 while this block computes: each
  // pixel tile touches a new line per pixel and block (a new plane every block), more
  // streams than the hardware prefetchers follow. One prefetch per line: every pixel
  // that starts a line relative to the tile, and the last.
  std::vector<int32_t> prefetch;
  for (int px = 0; px < P; ++px)
    if (px == 0 || px == P - 1 || (px * pixel_step) % 64 == 0) prefetch.push_back(imm32(in_plane_bytes + px * pixel_step));
  auto emit_prefetches = [&](int c) {
    // Spread over the block's B steps so they do not bunch up in the load ports.
    const std::size_t n = prefetch.size();
    for (std::size_t i = n * c / B; i < n * (c + 1) / B; ++i) prefetcht0(ptr[r_s + prefetch[i]]);
  };

  // acc += w[c] * src[c] for one input channel c of the current block.
  auto step = [&](int c) {
    for (int k = 0; k < kb; ++k) vmovups(wreg(k), ptr[r_w + imm32((c * kb + k) * B * 4)]);
    for (int px = 0; px < P; ++px) {
      const int32_t off = imm32(px * pixel_step + c * 4);
      if (avx512) {
        for (int k = 0; k < kb; ++k) vfmadd231ps(acc(k, px), wreg(k), ptr_b[r_s + off]);
      } else {
        vbroadcastss(bcast, ptr[r_s + off]);
        for (int k = 0; k < kb; ++k) vfmadd231ps(acc(k, px), wreg(k), bcast);
      }
    }
  };
  mov(r_w, ptr[rsp + kFrameWeights]);
  mov(r_s, r_src);
  const int64_t last_chunk_blocks = (C - (p.chunks - 1) * p.chunk_channels) / B;
  const bool any_full_block = p.chunks > 1 || last_chunk_blocks > 0;
  // PointwisePlan::weight_streams: the input blocks cut in kStreams runs summed apart,
  // walked side by side, each FMA reading its weights from memory beside a broadcast pixel.
  const int kStreams = p.weight_streams;
  const int64_t per_stream = last_chunk_blocks / kStreams;
  const bool streamed =
      kStreams > 1 && avx512 && P == 1 && !several_chunks && per_stream >= 2 && kStreams * kb + 2 <= nregs;
  if (streamed) {
    const int64_t block_bytes = B * kb * B * 4;
    auto sacc = [&](int q, int k) { return q == 0 ? acc(k, 0) : vreg(q * kb + k, narrow(k)); };
    for (int q = 1; q < kStreams; ++q)
      for (int k = 0; k < kb; ++k) vxorps(sacc(q, k), sacc(q, k), sacc(q, k));
    Xbyak::Label l_block;
    mov(r_cnt, imm32(per_stream));
    L(l_block);
    for (int c = 0; c < B; ++c)
      for (int q = 0; q < kStreams; ++q) {
        const int b = kStreams * kb + (c * kStreams + q) % 2;
        vbroadcastss(Xbyak::Zmm(b), ptr[r_s + imm32(q * per_stream * in_plane_bytes + c * 4)]);
        const int64_t run = q * per_stream * block_bytes;
        for (int k = 0; k < kb; ++k)
          vfmadd231ps(sacc(q, k), vreg(b, narrow(k)), ptr[r_w + imm32(run + (c * kb + k) * B * 4)]);
      }
    add(r_w, imm32(block_bytes));
    add(r_s, imm32(in_plane_bytes));
    dec(r_cnt);
    jnz(l_block, T_NEAR);
    for (int q = 1; q < kStreams; ++q)
      for (int k = 0; k < kb; ++k) vaddps(acc(k, 0), acc(k, 0), sacc(q, k));
    // The blocks past the streams' runs, one by one.
    add(r_w, imm32((kStreams - 1) * per_stream * block_bytes));
    add(r_s, imm32((kStreams - 1) * per_stream * in_plane_bytes));
    for (int64_t rest = last_chunk_blocks - kStreams * per_stream; rest > 0; --rest) {
      for (int c = 0; c < B; ++c) step(c);
      add(r_w, imm32(block_bytes));
      add(r_s, imm32(in_plane_bytes));
    }
  } else if (any_full_block) {
    Xbyak::Label l_block, l_blocks_done;
    mov(r_cnt, ptr[rsp + kFrameBlocks]);
    if (last_chunk_blocks == 0) {
      test(r_cnt, r_cnt);
      jz(l_blocks_done, T_NEAR);
    }
    L(l_block);
    for (int c = 0; c < B; ++c) {
      emit_prefetches(c);
      step(c);
    }
    add(r_w, imm32(B * kb * B * 4));
    add(r_s, imm32(in_plane_bytes));
    dec(r_cnt);
    jnz(l_block, T_NEAR);
    L(l_blocks_done);
  }
  if (C % B != 0) {
    // The last block's real channels; the padding lanes of src are never read.
    Xbyak::Label l_no_partial;
    if (several_chunks) {
      cmp(r_chunk, imm32(p.chunks - 1));
      jne(l_no_partial, T_NEAR);
    }
    for (int c = 0; c < C % B; ++c) step(c);
    L(l_no_partial);
  }

  // dst = last chunk ? mask(act(acc) (+ residual)) : acc.
  Xbyak::Label l_raw, l_done;
  if (several_chunks) {
    cmp(r_chunk, imm32(p.chunks - 1));
    jne(l_raw, T_NEAR);
  }
  std::vector<Xbyak::Xmm> temps, narrow_temps;
  for (int i = kb * P; i < nregs; ++i) {
    temps.push_back(vreg(i, !avx512));
    narrow_temps.push_back(vreg(i, true));
  }
  ActivationEmitter activation(*this, p.isa, s.activation, table_, r_table, k2);
  if (s.residual == ResidualMode::after_activation) mov(r_s, ptr[rsp + kFrameResDelta]);
  if (mask_last_block && !avx512) mov(r_w, ptr[rsp + kFrameMask]);
  for (int k = 0; k < kb; ++k)
    for (int px = 0; px < P; ++px) {
      const Xbyak::Xmm a = acc(k, px);
      activation(a, narrow(k) ? narrow_temps : temps);
      if (s.residual == ResidualMode::after_activation) vaddps(a, a, res_at(k, px));
      if (mask_last_block && k == kb - 1) {
        if (avx512) vmovaps(Xbyak::Zmm(a.getIdx()) | k1 | T_z, Xbyak::Zmm(a.getIdx()));
        else vandps(a, a, ptr[r_w]);
      }
      // A narrow block on AVX-512 is stored whole: ymm writes zeroed its upper lanes.
      if (avx512) vmovups(dst_at(k, px), Xbyak::Zmm(a.getIdx()));
      else vmovups(dst_at(k, px), a);
    }
  if (several_chunks) {
    jmp(l_done, T_NEAR);
    L(l_raw);
    for (int k = 0; k < kb; ++k)
      for (int px = 0; px < P; ++px) vmovups(dst_at(k, px), acc(k, px));
    L(l_done);
  }
}

void PointwiseKernel::run(const float* src, float* dst, const PointwiseWeights& w, const float* residual) const {
  const auto& p = plan_;
  for (int64_t n = 0; n < p.shape.batch; ++n) {
    PointwiseArgs args{src + n * p.src_image_floats(),
                       dst + n * p.dst_image_floats(),
                       w.weights.data(),
                       w.bias.data(),
                       residual != nullptr ? residual + n * p.dst_image_floats() : nullptr,
                       0,
                       p.tiles()};
    (*this)(args);
  }
}

std::shared_ptr<const PointwiseKernel> get_pointwise_kernel(const PointwisePlan& plan, const std::string& serves) {
  static KernelCache<PointwiseKernel> cache;
  bool made = false;
  auto kernel = cache.get(plan, [&] {
    made = true;
    return std::make_shared<const PointwiseKernel>(plan, serves);
  });
  if (!made && !serves.empty()) JitRegistry::instance().append_serves(kernel->code(), serves);
  return kernel;
}

}  // namespace nnjit::jit
