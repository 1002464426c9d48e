// Helpers shared by the jit testers: which ISAs this machine runs, a host that forces
// one, and the scalar activation reference (in double).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include <xbyak/xbyak_util.h>

#include "jit/host_info.hpp"
#include "jit/isa.hpp"
#include "jit/post_ops.hpp"

namespace nnjit::testing {

// Whether the CPU running the tests has `isa` (read with CPUID here rather than through
// runtime/probe, so the jit tests stand alone).
inline bool cpu_has(jit::Isa isa) {
  static const Xbyak::util::Cpu cpu;
  using C = Xbyak::util::Cpu;
  if (isa == jit::Isa::avx512)
    return cpu.has(C::tAVX512F) && cpu.has(C::tAVX512BW) && cpu.has(C::tAVX512VL) && cpu.has(C::tAVX512DQ);
  return cpu.has(C::tAVX2) && cpu.has(C::tFMA);
}

// A host with exactly `isa` and the given L1d/L2 (planners see nothing else).
inline jit::HostInfo host_for(jit::Isa isa, std::size_t l1d_bytes = 48 << 10, std::size_t l2_bytes = 1 << 20) {
  jit::HostInfo h;
  h.avx2 = h.fma = true;
  if (isa == jit::Isa::avx512) h.avx512f = h.avx512bw = h.avx512vl = h.avx512dq = true;
  h.l1d_bytes = l1d_bytes;
  h.l2_bytes = l2_bytes;
  return h;
}

// The ISAs of jit/pointwise/pointwise.inc that this machine runs.
inline std::vector<jit::Isa> runnable_isas() {
  std::vector<jit::Isa> v;
#define NNJIT_POINTWISE_VARIANT(id) \
  if (cpu_has(jit::Isa::id)) v.push_back(jit::Isa::id);
#include "jit/pointwise/pointwise.inc"
#undef NNJIT_POINTWISE_VARIANT
  return v;
}

inline double activation_reference(const jit::Activation& a, double x) {
  using K = jit::ActivationKind;
  switch (a.kind) {
    case K::none: return x;
    case K::relu: return std::max(x, 0.0);
    case K::clip: return std::min(std::max(x, double{a.alpha}), double{a.beta});
    case K::leaky_relu: return x >= 0 ? x : a.alpha * x;
    case K::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case K::silu: return x / (1.0 + std::exp(-x));
    case K::hard_sigmoid: return std::clamp(a.alpha * x + a.beta, 0.0, 1.0);
    case K::hard_swish: return x * std::clamp(x / 6.0 + 0.5, 0.0, 1.0);
    case K::gelu: return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
  }
  return x;
}

// The activation's largest slope, to carry an input error bound through it.
inline double activation_slope(const jit::Activation& a) {
  using K = jit::ActivationKind;
  switch (a.kind) {
    case K::leaky_relu: return std::max(1.0, std::fabs(double{a.alpha}));
    case K::hard_sigmoid: return std::fabs(double{a.alpha});
    case K::hard_swish: return 1.5;
    case K::gelu: return 1.13;
    default: return 1.0;
  }
}

}  // namespace nnjit::testing
