// PeakFmaKernel: a JIT loop of independent vfmadd231ps chains that runs at this core's
// FMA throughput — the yardstick for kernels' GFLOP/s (bench/bench_peak, nnjit profile).
//
//   PeakFmaKernel k(Isa::avx2, 12);
//   k.run(1 << 16);                      // 2 * lanes * chains * kUnroll flops per iteration
#pragma once

#include <cstdint>
#include <string>

#include "jit/isa.hpp"
#include "jit/jit_kernel.hpp"

namespace nnjit::jit {

// void f(int64_t iterations): `chains` accumulators, each one FMA per unrolled step, so
// the loop runs at FMA throughput as long as chains >= latency x FMA ports.
class PeakFmaKernel : public JitKernel {
 public:
  static constexpr int kUnroll = 8;

  PeakFmaKernel(Isa isa, int chains)
      : JitKernel(std::string("f32_peak_fma_") + std::to_string(chains) + "x__" + to_string(isa), "peak/fma"),
        lanes_(isa_block(isa)),
        chains_(chains) {
    auto vreg = [&](int i) -> Xbyak::Xmm {
      if (isa == Isa::avx512) return Xbyak::Zmm(i);
      return Xbyak::Ymm(i);
    };
    const int regs = isa_vector_registers(isa);
    prologue();
    // Zeros throughout: no denormals, no overflow, same speed as any other value.
    for (int i = 0; i < regs; ++i) vxorps(vreg(i), vreg(i), vreg(i));
    Xbyak::Label loop;
    L(loop);
    for (int u = 0; u < kUnroll; ++u)
      for (int i = 0; i < chains; ++i) vfmadd231ps(vreg(i), vreg(regs - 2), vreg(regs - 1));
    dec(rdi);
    jnz(loop);
    epilogue();
    finalize();
  }
  void run(int64_t iterations) const { entry<void(int64_t)>()(iterations); }
  double flops_per_iteration() const { return 2.0 * lanes_ * chains_ * kUnroll; }

 private:
  int lanes_, chains_;
};

}  // namespace nnjit::jit
