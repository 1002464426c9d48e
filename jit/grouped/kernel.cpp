// GroupedKernel: emits the grouped convolution for one GroupedPlan. Every choice was made
// by plan_grouped; this file only follows it.
//
// The generated function, for one image, output blocks [block_begin, block_end) and
// output rows [row_begin, row_end):
//
//   for ob:                           window = the input blocks ob's groups read (a table
//                                     in the code, windows[ob])
//     for oh:                         rows[oh] = the kernel rows inside the image
//       for tile of P pixels in the row:   (edge tiles unrolled with their padding taps
//                                           left out; interior tiles one loop)
//         acc[p] = bias (+ residual)
//         for kh in rows[oh]:
//           for block in window:
//             for lane in block (lane_step lanes per loop step):
//               for kw:
//                 w = weights[kh][block][lane][kw]      (zero in the other groups' lanes)
//                 acc[p] += w * broadcast(src[kh][p * stride + kw][block][lane])
//         dst = mask(act(acc) (+ residual))
//
// With plan.rotate = R (Cg = Kg = R < B) the kh body is instead, per src column x:
//           v = src[kh][x]; for r < R: acc[p] += weights[kh][kw][r] * rotate_r(v)
// for every tap (p, kw) that reads x; rotate_r permutes lanes within each group of R.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "jit/grouped/grouped.hpp"
#include "jit/kernel_cache.hpp"
#include "jit/registry.hpp"

namespace nnjit::jit {

namespace {

using Xbyak::Reg64;
using namespace Xbyak::util;

// GroupedArgs as the generated code reads it.
constexpr int kArgSrc = 0;
constexpr int kArgDst = 8;
constexpr int kArgWeights = 16;
constexpr int kArgBias = 24;
constexpr int kArgResidual = 32;
constexpr int kArgBlockBegin = 40;
constexpr int kArgBlockEnd = 48;
constexpr int kArgRowBegin = 56;
constexpr int kArgRowEnd = 64;
static_assert(offsetof(GroupedArgs, src) == kArgSrc);
static_assert(offsetof(GroupedArgs, dst) == kArgDst);
static_assert(offsetof(GroupedArgs, weights) == kArgWeights);
static_assert(offsetof(GroupedArgs, bias) == kArgBias);
static_assert(offsetof(GroupedArgs, residual) == kArgResidual);
static_assert(offsetof(GroupedArgs, block_begin) == kArgBlockBegin);
static_assert(offsetof(GroupedArgs, block_end) == kArgBlockEnd);
static_assert(offsetof(GroupedArgs, row_begin) == kArgRowBegin);
static_assert(offsetof(GroupedArgs, row_end) == kArgRowEnd);

// One entry of the row table per output row: where its first kernel row inside the image
// starts (bytes from the window's src plane), that row's weights (bytes from the output
// block's weights) and how many kernel rows lie inside the image.
constexpr int kRowSrc = 0;
constexpr int kRowWeights = 8;
constexpr int kRowCount = 16;
constexpr int kRowBytes = 24;

// The stack frame.
constexpr int kFrameBias = 0;     // the block's bias
constexpr int kFrameMask = 8;     // AVX2: the lane mask row for the block
constexpr int kFrameTiles = 16;   // interior tiles left in the row
constexpr int kFrameKh = 24;      // kernel rows left
constexpr int kFrameWindow = 32;  // window blocks left
constexpr int kFrameLanes = 40;   // lane steps left
constexpr int kFrameBytes = 48;

// General-purpose registers (System V passes the GroupedArgs pointer in rdi).
const Reg64 r_args = rdi;
const Reg64 r_table = r15;    // the constant table
const Reg64 r_block = r14;    // output block index
const Reg64 r_weights = r13;  // the output block's weights
const Reg64 r_plane = r12;    // the window's first src plane
const Reg64 r_dst = r11;      // dst of the current tile
const Reg64 r_rows = r10;     // output rows left
const Reg64 r_entry = r9;     // the row table entry of the current row
const Reg64 r_row = r8;       // src of the row's first kernel row inside the image, column 0
const Reg64 r_wrow = rbp;     // weights of that kernel row
const Reg64 r_tile = rsi;     // interior tiles: src of the tile's first tap
const Reg64 r_res = rbx;      // residual - dst, in bytes (same layout)
const Reg64 r_sb = rax;       // src walk within a kernel row; elsewhere scratch
const Reg64 r_w = rcx;        // weight walk; elsewhere scratch
const Reg64 r_s = rdx;        // src of the current kernel row

int32_t imm32(int64_t v) {
  if (v > INT32_MAX || v < INT32_MIN) throw std::logic_error("grouped: offset exceeds 32 bits (plan check missed it)");
  return static_cast<int32_t>(v);
}

// What the emitter relies on; plan_grouped guarantees it, a hand-edited plan might not.
void check_plan(const GroupedPlan& p) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("GroupedKernel: inconsistent plan " + p.key() + ": " + what);
  };
  const auto& s = p.shape;
  if (p.block != isa_block(p.isa)) fail("block does not match the ISA");
  if (s.groups < 1 || s.in_channels % s.groups != 0 || s.out_channels % s.groups != 0) fail("groups");
  if (p.in_blocks != div_up(s.in_channels, p.block) || p.out_blocks != div_up(s.out_channels, p.block))
    fail("blocks do not cover the channels");
  if (p.window_blocks < 1 || p.window_blocks > p.in_blocks) fail("window blocks");
  if (p.lane_step < 1 || p.block % p.lane_step != 0) fail("lane step");
  if (s.kernel < 1 || s.kernel > 7) fail("kernel size");
  if (s.stride < 1 || s.pad_left < 0 || s.pad_top < 0 || s.out_height() < 1 || s.out_width() < 1)
    fail("stride or pads");
  if (p.rotate != 0 && (p.rotate != s.in_per_group() || p.rotate != s.out_per_group() || p.rotate < 2 ||
                        p.block % p.rotate != 0 || p.rotate == p.block || p.window_blocks != 1))
    fail("rotation needs lane-aligned groups with Cg = Kg below the block");
  if (p.pixels < 1 || p.pixels > grouped_max_pixels(p.isa, s.kernel, p.rotate)) fail("register tile does not fit");
  if (p.row_tiles != div_up(s.out_width(), p.pixels)) fail("tiles do not cover the row");
  if (p.loop_tiles < 0 || p.loop_begin < 0 || p.loop_begin + p.loop_tiles > p.row_tiles) fail("bad interior tiles");
  for (int64_t t = p.loop_begin; t < p.loop_begin + p.loop_tiles; ++t) {
    const int64_t ow0 = t * p.pixels;
    if (ow0 + p.pixels > s.out_width() || ow0 * s.stride - s.pad_left < 0 ||
        (ow0 + p.pixels - 1) * s.stride - s.pad_left + s.kernel > s.width)
      fail("a looped tile reads padding");
  }
  for (int64_t ob = 0; ob < p.out_blocks; ++ob) {
    const int64_t Kg = s.out_per_group(), Cg = s.in_per_group();
    const int64_t first = ob * p.block / Kg * Cg;
    const int64_t last = ((std::min(s.out_channels, (ob + 1) * p.block) - 1) / Kg + 1) * Cg - 1;
    const int64_t start = p.window_start(ob);
    if (start < 0 || start * p.block > first || (start + p.window_blocks) * p.block <= last)
      fail("a window misses input channels");
  }
}

}  // namespace

GroupedKernel::GroupedKernel(const GroupedPlan& plan, std::string serves)
    : JitKernel(plan.name(), std::move(serves)), plan_(plan) {
  check_plan(plan_);
  generate();
}

void GroupedKernel::generate() {
  const auto& p = plan_;
  const auto& s = p.shape;
  const int64_t B = p.block, k = s.kernel, Ho = s.out_height(), Wo = s.out_width();
  const int64_t in_plane_bytes = s.src_plane_pixels() * B * 4;
  const int64_t out_plane_bytes = s.dst_plane_pixels() * B * 4;
  const int64_t weight_row_bytes = p.vectors_per_kernel_row() * B * 4;  // one kernel row of one output block

  struct RowEntry {
    int64_t src, weights, count;
  };
  std::vector<RowEntry> rows(static_cast<std::size_t>(Ho));
  for (int64_t oh = 0; oh < Ho; ++oh) {
    const int64_t ih0 = oh * s.stride - s.pad_top;
    int64_t first = 0, count = 0;
    for (int64_t kh = 0; kh < k; ++kh) {
      const int64_t ih = ih0 + kh;
      if (ih < 0 || ih >= s.height) continue;
      if (count++ == 0) first = kh;
    }
    rows[static_cast<std::size_t>(oh)] = {count > 0 ? (ih0 + first) * s.width * B * 4 : 0, first * weight_row_bytes,
                                          count};
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
  lea(r_w, ptr[rip + windows_label_]);
  mov(r_plane, ptr[r_w + r_block * 8]);
  add(r_plane, ptr[r_args + kArgSrc]);
  imul(r_weights, r_block, imm32(k * weight_row_bytes));
  add(r_weights, ptr[r_args + kArgWeights]);
  if (s.has_bias) {
    imul(r_sb, r_block, imm32(B * 4));
    add(r_sb, ptr[r_args + kArgBias]);
    mov(ptr[rsp + kFrameBias], r_sb);
  }
  // Lanes past K in the last block are stored as zero: an activation may map the zero
  // padding to something else (sigmoid(0) = 0.5).
  const int pad_lanes = static_cast<int>(s.out_channels % B);
  if (pad_lanes != 0)
    emit_tail_mask(*this, p.isa, table_, r_table, pad_lanes, &r_block, p.out_blocks - 1, r_sb, r_w,
                   ptr[rsp + kFrameMask]);
  imul(r_dst, r_block, imm32(out_plane_bytes));
  add(r_dst, ptr[r_args + kArgDst]);
  mov(r_sb, ptr[r_args + kArgRowBegin]);
  imul(r_w, r_sb, imm32(Wo * B * 4));
  add(r_dst, r_w);
  imul(r_entry, r_sb, kRowBytes);
  lea(r_w, ptr[rip + rows_label_]);
  add(r_entry, r_w);
  mov(r_rows, ptr[r_args + kArgRowEnd]);
  sub(r_rows, r_sb);
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
  L(windows_label_);
  for (int64_t ob = 0; ob < p.out_blocks; ++ob) dq(static_cast<uint64_t>(p.window_start(ob) * in_plane_bytes));
  finalize();
}

// One output row at r_dst, reading src from r_row.
void GroupedKernel::emit_row() {
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
// src column first_col + p * stride + kw from `base`. With static_ow >= 0 the tile starts
// at output column static_ow and taps outside the image are left out; with -1 every tap
// is inside.
void GroupedKernel::emit_tile(const Reg64& base, int64_t first_col, int pixels, int64_t static_ow) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const bool avx512 = p.isa == Isa::avx512;
  const int k = s.kernel, P = pixels, lanes = p.lane_step;
  const int64_t B = p.block;
  const int64_t in_plane_bytes = s.src_plane_pixels() * B * 4;
  auto vreg = [&](int i) -> Xbyak::Xmm {
    if (avx512) return Xbyak::Zmm(i);
    return Xbyak::Ymm(i);
  };
  auto acc = [&](int px) { return vreg(px); };
  // Two weight registers, and on AVX2 two broadcast registers, alternate so a load does
  // not wait for the FMAs of the previous one.
  auto wreg = [&](int i) { return vreg(P + i % 2); };
  auto breg = [&](int i) { return vreg(P + 2 + i % 2); };
  auto dst_at = [&](int px) { return ptr[r_dst + imm32(px * B * 4)]; };
  auto res_at = [&](int px) { return ptr[r_dst + r_res + imm32(px * B * 4)]; };

  // The taps each kw contributes: (pixel, src column).
  std::vector<std::vector<std::pair<int, int64_t>>> taps(static_cast<std::size_t>(k));
  bool any = false;
  for (int kw = 0; kw < k; ++kw)
    for (int px = 0; px < P; ++px) {
      if (static_ow >= 0) {
        const int64_t iw = (static_ow + px) * s.stride - s.pad_left + kw;
        if (iw < 0 || iw >= s.width) continue;
      }
      taps[static_cast<std::size_t>(kw)].push_back({px, first_col + int64_t{px} * s.stride + kw});
      any = true;
    }

  // acc = bias (+ residual).
  const bool res_first = s.residual == ResidualMode::before_activation;
  const Xbyak::Xmm v = wreg(0);
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

  if (any && p.rotate > 0) {
    emit_rotated_sums(base, taps, P);
  } else if (any) {
    Xbyak::Label l_kh, l_window, l_lane, l_kh_done;
    mov(r_sb, ptr[r_entry + kRowCount]);
    if (empty_rows_) {
      test(r_sb, r_sb);
      jz(l_kh_done, T_NEAR);
    }
    mov(ptr[rsp + kFrameKh], r_sb);
    mov(r_s, base);
    mov(r_w, r_wrow);
    L(l_kh);
    mov(r_sb, r_s);
    if (p.window_blocks > 1) mov(qword[rsp + kFrameWindow], imm32(p.window_blocks));
    L(l_window);
    if (lanes < B) mov(qword[rsp + kFrameLanes], imm32(B / lanes));
    L(l_lane);
    int n = 0;
    for (int lane = 0; lane < lanes; ++lane)
      for (int kw = 0; kw < k; ++kw) {
        const auto& t = taps[static_cast<std::size_t>(kw)];
        if (t.empty()) continue;
        const Xbyak::Xmm w = wreg(n);
        vmovups(w, ptr[r_w + imm32((lane * k + kw) * B * 4)]);
        for (const auto& [px, col] : t) {
          const int32_t at = imm32(col * B * 4 + lane * 4);
          if (avx512) {
            vfmadd231ps(acc(px), w, ptr_b[r_sb + at]);
          } else {
            const Xbyak::Xmm b = breg(px);
            vbroadcastss(b, ptr[r_sb + at]);
            vfmadd231ps(acc(px), w, b);
          }
        }
        ++n;
      }
    add(r_w, imm32(int64_t{lanes} * k * B * 4));
    if (lanes < B) {
      add(r_sb, lanes * 4);
      dec(qword[rsp + kFrameLanes]);
      jnz(l_lane, T_NEAR);
    }
    if (p.window_blocks > 1) {
      add(r_sb, imm32(in_plane_bytes - B * 4 * (lanes < B ? 1 : 0)));
      dec(qword[rsp + kFrameWindow]);
      jnz(l_window, T_NEAR);
    }
    add(r_s, imm32(s.width * B * 4));
    dec(qword[rsp + kFrameKh]);
    jnz(l_kh, T_NEAR);
    L(l_kh_done);
  }

  // dst = mask(act(acc) (+ residual)); the weight and broadcast registers are free now.
  std::vector<Xbyak::Xmm> temps;
  for (int i = P; i < isa_vector_registers(p.isa) && i < P + 4; ++i) temps.push_back(vreg(i));
  ActivationEmitter activation(*this, p.isa, s.activation, table_, r_table, k2);
  const bool mask = s.out_channels % B != 0;
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

// The sums of a tile with rotation (plan.rotate = R): per kernel row, each src column the
// tile reads is loaded once and rotated within its groups of R lanes R - 1 times; each
// rotation meets the weights of every tap that reads the column.
void GroupedKernel::emit_rotated_sums(const Reg64& base, const std::vector<std::vector<std::pair<int, int64_t>>>& taps,
                                      int pixels) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const bool avx512 = p.isa == Isa::avx512;
  const int k = s.kernel, P = pixels, R = p.rotate;
  const int64_t B = p.block;
  auto vreg = [&](int i) -> Xbyak::Xmm {
    if (avx512) return Xbyak::Zmm(i);
    return Xbyak::Ymm(i);
  };
  auto wk = [&](int kw) { return vreg(P + kw); };
  const Xbyak::Zmm index(P + k);  // R = 8: the vpermps indices of the current r
  // Two registers for rotated columns, after the index register when there is one
  // (grouped_max_pixels leaves room for exactly these).
  auto rotated = [&](int i) { return vreg(P + k + (R == 8 ? 1 : 0) + i % 2); };
  const int Q = std::min(R, 4);  // R <= 4: vpermilps's immediate for rotation r
  auto in_lane_imm = [&](int r) {
    int imm = 0;
    for (int o = 0; o < 4; ++o) imm |= (o / Q * Q + (o % Q + r) % Q) << (2 * o);
    return static_cast<uint8_t>(imm);
  };
  // Columns in order, each with the (pixel, kw) taps that read it.
  std::map<int64_t, std::vector<std::pair<int, int>>> columns;
  std::vector<bool> kw_used(static_cast<std::size_t>(k), false);
  for (int kw = 0; kw < k; ++kw)
    for (const auto& [px, col] : taps[static_cast<std::size_t>(kw)]) {
      columns[col].push_back({px, kw});
      kw_used[static_cast<std::size_t>(kw)] = true;
    }

  Xbyak::Label l_kh, l_kh_done;
  mov(r_sb, ptr[r_entry + kRowCount]);
  if (empty_rows_) {
    test(r_sb, r_sb);
    jz(l_kh_done, T_NEAR);
  }
  mov(ptr[rsp + kFrameKh], r_sb);
  mov(r_s, base);
  mov(r_w, r_wrow);
  L(l_kh);
  // Rotation by rotation: its k weight vectors stay in registers while every column is
  // loaded already rotated (the load folded into the permute).
  int n = 0;
  for (int r = 0; r < R; ++r) {
    for (int kw = 0; kw < k; ++kw)
      if (kw_used[static_cast<std::size_t>(kw)]) vmovups(wk(kw), ptr[r_w + imm32((int64_t{kw} * R + r) * B * 4)]);
    if (R == 8 && r > 0) {
      ConstantTable::Row row{};
      for (int j = 0; j < ConstantTable::kLanes; ++j)
        row[static_cast<std::size_t>(j)] = static_cast<uint32_t>(j / R * R + grouped_rotation_source(R, r, j % R));
      vmovups(index, ptr[r_table + table_.offset_of_row(row)]);
    }
    for (const auto& [col, col_taps] : columns) {
      const Xbyak::Xmm t = rotated(n++);
      const auto src = ptr[r_s + imm32(col * B * 4)];
      if (r == 0) vmovups(t, src);
      else if (R == 8) vpermps(Xbyak::Zmm(t.getIdx()), index, src);
      else vpermilps(t, src, in_lane_imm(r));
      for (const auto& [px, kw] : col_taps) vfmadd231ps(vreg(px), wk(kw), t);
    }
  }
  add(r_s, imm32(s.width * B * 4));
  add(r_w, imm32(int64_t{k} * R * B * 4));
  dec(qword[rsp + kFrameKh]);
  jnz(l_kh, T_NEAR);
  L(l_kh_done);
}

void GroupedKernel::run(const float* src, float* dst, const GroupedWeights& w, const float* residual) const {
  const auto& p = plan_;
  for (int64_t n = 0; n < p.shape.batch; ++n) {
    GroupedArgs args{src + n * p.src_image_floats(),
                     dst + n * p.dst_image_floats(),
                     w.weights.data(),
                     w.bias.data(),
                     residual != nullptr ? residual + n * p.dst_image_floats() : nullptr,
                     0,
                     p.out_blocks,
                     0,
                     p.shape.out_height()};
    (*this)(args);
  }
}

std::shared_ptr<const GroupedKernel> get_grouped_kernel(const GroupedPlan& plan, const std::string& serves) {
  static KernelCache<GroupedKernel> cache;
  bool made = false;
  auto kernel = cache.get(plan, [&] {
    made = true;
    return std::make_shared<const GroupedKernel>(plan, serves);
  });
  if (!made && !serves.empty()) JitRegistry::instance().append_serves(kernel->code(), serves);
  return kernel;
}

}  // namespace nnjit::jit
