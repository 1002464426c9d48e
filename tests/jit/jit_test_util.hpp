// Helpers shared by the jit testers: which ISAs this machine runs, a host that forces
// one, and the scalar activation reference (in double).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <xbyak/xbyak_util.h>

#include "jit/host_info.hpp"
#include "jit/isa.hpp"
#include "jit/layout.hpp"
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

// Floats that end exactly where an inaccessible page begins: generated code that reads
// or writes one element past the end faults instead of passing silently (AddressSanitizer
// does not see accesses made by JIT code).
class GuardedArray {
 public:
  explicit GuardedArray(std::size_t count, const float* init = nullptr) : count_(count) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t bytes = std::max<std::size_t>(count, 1) * sizeof(float);
    const std::size_t data_pages = (bytes + page - 1) / page;
    length_ = (data_pages + 1) * page;
    void* p = mmap(nullptr, length_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("GuardedArray: mmap failed");
    base_ = static_cast<char*>(p);
    mprotect(base_ + data_pages * page, page, PROT_NONE);
    data_ = reinterpret_cast<float*>(base_ + data_pages * page - count * sizeof(float));
    if (init != nullptr) std::memcpy(data_, init, count * sizeof(float));
  }
  GuardedArray(const GuardedArray&) = delete;
  GuardedArray& operator=(const GuardedArray&) = delete;
  ~GuardedArray() { munmap(base_, length_); }
  float* data() { return data_; }
  std::size_t size() const { return count_; }

 private:
  char* base_ = nullptr;
  std::size_t length_ = 0;
  float* data_ = nullptr;
  std::size_t count_ = 0;
};

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

// Planes laid out at a stride past their size, the gaps NaN: what a kernel with src_plane
// or dst_plane set (a fused step's row buffer) reads or writes. `planes` planes of
// `natural` pixels of `lanes` floats each.
inline jit::AlignedBuffer<float> spread_planes(const jit::AlignedBuffer<float>& from, int64_t planes, int64_t natural,
                                               int64_t stride, int64_t lanes) {
  jit::AlignedBuffer<float> to(planes * stride * lanes);
  std::fill(to.data(), to.data() + to.size(), std::nanf(""));
  for (int64_t q = 0; q < planes; ++q)
    std::copy(from.data() + q * natural * lanes, from.data() + (q + 1) * natural * lanes, to.data() + q * stride * lanes);
  return to;
}

// The planes back at their own size; false if anything was written into a gap.
inline bool compact_planes(const jit::AlignedBuffer<float>& from, jit::AlignedBuffer<float>& to, int64_t planes,
                           int64_t natural, int64_t stride, int64_t lanes) {
  bool gaps_untouched = true;
  for (int64_t q = 0; q < planes; ++q) {
    const float* plane = from.data() + q * stride * lanes;
    std::copy(plane, plane + natural * lanes, to.data() + q * natural * lanes);
    for (int64_t i = natural * lanes; i < stride * lanes; ++i) gaps_untouched = gaps_untouched && std::isnan(plane[i]);
  }
  return gaps_untouched;
}

}  // namespace nnjit::testing
