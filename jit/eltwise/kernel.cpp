// EltwiseKernel: emits the elementwise op of one EltwisePlan. Every choice was made by
// plan_eltwise; this file only follows it.
//
// The generated function, for one image and vectors [begin, end):
//
//   unary, add, mul:   the vectors before the last block's (T = (blocks-1) * plane when
//                      the channels end inside a block, else all of them) run unmasked,
//                      the rest masked:
//     for v in [begin, min(end, T)):  dst[v] = act(a[v] op b[v])
//     for v in [max(begin, T), end):  dst[v] = mask(act(a[v] op b[v]))
//   scale_channels:   block by block (one division finds the first):
//     for blk: s = act(b[blk]); for v of the range in blk: dst[v] = mask(a[v] * s)
// Each range runs `unroll` vectors per step, then one at a time.
#include <climits>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "jit/eltwise/eltwise.hpp"
#include "jit/kernel_cache.hpp"
#include "jit/registry.hpp"

namespace nnjit::jit {

namespace {

using Xbyak::Reg64;
using namespace Xbyak::util;

// EltwiseArgs as the generated code reads it.
constexpr int kArgA = 0;
constexpr int kArgB = 8;
constexpr int kArgDst = 16;
constexpr int kArgBegin = 24;
constexpr int kArgEnd = 32;
static_assert(offsetof(EltwiseArgs, a) == kArgA);
static_assert(offsetof(EltwiseArgs, b) == kArgB);
static_assert(offsetof(EltwiseArgs, dst) == kArgDst);
static_assert(offsetof(EltwiseArgs, begin) == kArgBegin);
static_assert(offsetof(EltwiseArgs, end) == kArgEnd);

// The stack frame.
constexpr int kFrameMask = 0;  // AVX2, scale_channels: the lane mask row for the block
constexpr int kFrameBytes = 16;

// General-purpose registers (System V passes the EltwiseArgs pointer in rdi).
const Reg64 r_args = rdi;
const Reg64 r_table = r15;  // the constant table
const Reg64 r_a = r14;
const Reg64 r_b = r13;
const Reg64 r_dst = r12;
const Reg64 r_off = r11;   // byte offset of the current vector (same in a, b and dst)
const Reg64 r_stop = r10;  // byte offset where the current range ends
const Reg64 r_mask = r9;   // AVX2: the lane mask row of masked stores
const Reg64 r_blk = r8;    // scale_channels: the current block
const Reg64 r_end = rsi;   // end, in vectors
// rax, rcx, rdx: scratch (rax and rdx for the division).

// What the emitter relies on; plan_eltwise guarantees it, a hand-edited plan might not.
void check_plan(const EltwisePlan& p) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("EltwiseKernel: inconsistent plan " + p.key() + ": " + what);
  };
  const auto& s = p.shape;
  if (p.block != isa_block(p.isa)) fail("block does not match the ISA");
  if (s.channels < 1 || s.plane < 1 || s.plane > INT32_MAX) fail("empty tensor or plane beyond 32 bits");
  if (p.blocks != div_up(s.channels, p.block)) fail("blocks do not cover the channels");
  const int temps = s.op == EltwiseOp::scale_channels ? 0 : activation_temps(s.activation.kind);
  if (p.unroll < 1 || p.unroll * (1 + temps) > isa_vector_registers(p.isa) - 1) fail("unroll does not fit");
  if (s.op == EltwiseOp::scale_channels && activation_temps(s.activation.kind) > isa_vector_registers(p.isa) - 1)
    fail("activation temporaries do not fit");
}

}  // namespace

EltwiseKernel::EltwiseKernel(const EltwisePlan& plan, std::string serves)
    : JitKernel(plan.name(), std::move(serves)), plan_(plan) {
  check_plan(plan_);
  generate();
}

void EltwiseKernel::generate() {
  const auto& p = plan_;
  const auto& s = p.shape;
  const int64_t B = p.block;
  const int pad_lanes = static_cast<int>(s.channels % B);
  const bool avx512 = p.isa == Isa::avx512;
  const int shift = avx512 ? 6 : 5;  // log2(VB)
  static_assert(16 * 4 == (1 << 6) && 8 * 4 == (1 << 5));

  prologue(kFrameBytes);
  lea(r_table, ptr[rip + table_label_]);
  mov(r_a, ptr[r_args + kArgA]);
  mov(r_b, ptr[r_args + kArgB]);
  mov(r_dst, ptr[r_args + kArgDst]);
  mov(r_end, ptr[r_args + kArgEnd]);

  if (s.op != EltwiseOp::scale_channels) {
    const int64_t tail = pad_lanes != 0 ? (p.blocks - 1) * s.plane : p.blocks * s.plane;
    // Unmasked: [begin, min(end, tail)).
    mov(r_off, ptr[r_args + kArgBegin]);
    shl(r_off, shift);
    mov(rcx, static_cast<uint64_t>(tail));
    cmp(rcx, r_end);
    cmovg(rcx, r_end);
    mov(r_stop, rcx);
    shl(r_stop, shift);
    emit_range(false);
    if (pad_lanes != 0) {
      // Masked: [max(begin, tail), end).
      mov(rcx, static_cast<uint64_t>(tail));
      mov(rax, ptr[r_args + kArgBegin]);
      cmp(rax, rcx);
      cmovl(rax, rcx);
      mov(r_off, rax);
      shl(r_off, shift);
      mov(r_stop, r_end);
      shl(r_stop, shift);
      emit_tail_mask(*this, p.isa, table_, r_table, pad_lanes, nullptr, 0, rax, rcx, ptr[rsp + kFrameMask]);
      if (!avx512) mov(r_mask, ptr[rsp + kFrameMask]);
      emit_range(true);
    }
  } else {
    auto vreg = [&](int i) -> Xbyak::Xmm { return avx512 ? Xbyak::Xmm(Xbyak::Zmm(i)) : Xbyak::Xmm(Xbyak::Ymm(i)); };
    const Xbyak::Xmm scale = vreg(isa_vector_registers(p.isa) - 1);
    Xbyak::Label l_block, l_done;
    // blk = begin / plane; r_off = begin * VB.
    mov(rax, ptr[r_args + kArgBegin]);
    mov(r_off, rax);
    shl(r_off, shift);
    mov(rcx, static_cast<uint64_t>(s.plane));
    xor_(edx, edx);
    div(rcx);
    mov(r_blk, rax);
    L(l_block);
    // The block's part of the range ends at min(end, (blk + 1) * plane).
    lea(rcx, ptr[r_blk + 1]);
    imul(rcx, rcx, static_cast<int32_t>(s.plane));
    cmp(rcx, r_end);
    cmovg(rcx, r_end);
    mov(r_stop, rcx);
    shl(r_stop, shift);
    cmp(r_off, r_stop);
    jge(l_done, T_NEAR);
    // scale = act(b[blk]); the value registers are free for the activation's temporaries.
    mov(rax, r_blk);
    shl(rax, shift);
    vmovups(scale, ptr[r_b + rax]);
    std::vector<Xbyak::Xmm> temps;
    for (int i = 0; i < activation_temps(s.activation.kind); ++i) temps.push_back(vreg(i));
    ActivationEmitter activation(*this, p.isa, s.activation, table_, r_table, k2);
    activation(scale, temps);
    if (pad_lanes != 0) {
      emit_tail_mask(*this, p.isa, table_, r_table, pad_lanes, &r_blk, p.blocks - 1, rax, rcx, ptr[rsp + kFrameMask]);
      if (!avx512) mov(r_mask, ptr[rsp + kFrameMask]);
    }
    emit_range(pad_lanes != 0);
    inc(r_blk);
    jmp(l_block, T_NEAR);
    L(l_done);
  }
  epilogue();
  table_.emit(*this, table_label_);
  finalize();
}

// Vectors from byte offset r_off to r_stop: `unroll` per step, then one at a time.
// Leaves r_off at the end of the range (or where it was, if the range is empty).
void EltwiseKernel::emit_range(bool masked) {
  const int U = plan_.unroll;
  const int64_t VB = int64_t{plan_.block} * 4;
  Xbyak::Label l_big, l_small, l_end;
  if (U > 1) {
    L(l_big);
    lea(rcx, ptr[r_off + static_cast<int32_t>(U * VB)]);
    cmp(rcx, r_stop);
    jg(l_small, T_NEAR);
    emit_vectors(U, masked);
    add(r_off, static_cast<int32_t>(U * VB));
    jmp(l_big, T_NEAR);
  }
  L(l_small);
  cmp(r_off, r_stop);
  jge(l_end, T_NEAR);
  emit_vectors(1, masked);
  add(r_off, static_cast<int32_t>(VB));
  jmp(l_small, T_NEAR);
  L(l_end);
}

// `count` vectors at r_off: load all, compute, store (loads come first, so dst may be a
// or b).
void EltwiseKernel::emit_vectors(int count, bool masked) {
  const auto& p = plan_;
  const auto& s = p.shape;
  const bool avx512 = p.isa == Isa::avx512;
  const int64_t VB = int64_t{p.block} * 4;
  auto vreg = [&](int i) -> Xbyak::Xmm { return avx512 ? Xbyak::Xmm(Xbyak::Zmm(i)) : Xbyak::Xmm(Xbyak::Ymm(i)); };
  const int temps = s.op == EltwiseOp::scale_channels ? 0 : activation_temps(s.activation.kind);
  const int stride = 1 + temps;  // registers per vector in flight: the value, then its temporaries
  auto value = [&](int i) { return vreg(i * stride); };
  auto at = [&](const Reg64& base, int i) { return ptr[base + r_off + static_cast<int32_t>(i * VB)]; };
  const Xbyak::Xmm scale = vreg(isa_vector_registers(p.isa) - 1);

  for (int i = 0; i < count; ++i) {
    const Xbyak::Xmm v = value(i);
    vmovups(v, at(r_a, i));
    switch (s.op) {
      case EltwiseOp::add: vaddps(v, v, at(r_b, i)); break;
      case EltwiseOp::mul: vmulps(v, v, at(r_b, i)); break;
      case EltwiseOp::scale_channels: vmulps(v, v, scale); break;
      case EltwiseOp::unary: break;
    }
  }
  if (s.op != EltwiseOp::scale_channels && s.activation.kind != ActivationKind::none) {
    ActivationEmitter activation(*this, p.isa, s.activation, table_, r_table, k2);
    for (int i = 0; i < count; ++i) {
      std::vector<Xbyak::Xmm> t;
      for (int j = 1; j <= temps; ++j) t.push_back(vreg(i * stride + j));
      activation(value(i), t);
    }
  }
  for (int i = 0; i < count; ++i) {
    const Xbyak::Xmm v = value(i);
    if (masked) {
      if (avx512) vmovaps(Xbyak::Zmm(v.getIdx()) | k1 | T_z, Xbyak::Zmm(v.getIdx()));
      else vandps(v, v, ptr[r_mask]);
    }
    vmovups(at(r_dst, i), v);
  }
}

void EltwiseKernel::run(const float* a, const float* b, float* dst) const {
  const auto& p = plan_;
  for (int64_t n = 0; n < p.shape.batch; ++n) {
    EltwiseArgs args{a + n * p.image_floats(), b != nullptr ? b + n * p.b_image_floats() : nullptr,
                     dst + n * p.image_floats(), 0, p.image_vectors()};
    (*this)(args);
  }
}

std::shared_ptr<const EltwiseKernel> get_eltwise_kernel(const EltwisePlan& plan, const std::string& serves) {
  static KernelCache<EltwiseKernel> cache;
  bool made = false;
  auto kernel = cache.get(plan, [&] {
    made = true;
    return std::make_shared<const EltwiseKernel>(plan, serves);
  });
  if (!made && !serves.empty()) JitRegistry::instance().append_serves(kernel->code(), serves);
  return kernel;
}

}  // namespace nnjit::jit
