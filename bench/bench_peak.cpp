// peak/fma: this core's FMA peak, from a JIT loop of independent vfmadd231ps chains —
// the yardstick for the kernels' GFLOPS (a kernel at 85% of peak is at 85% of this).
#include "bench/bench_util.hpp"
#include "jit/isa.hpp"
#include "jit/jit_kernel.hpp"

namespace nnjit::bench {

namespace {

// void f(int64_t iterations): `chains` accumulators, each one FMA per unrolled step, so
// the loop runs at FMA throughput as long as chains >= latency x FMA ports.
class PeakFmaKernel : public jit::JitKernel {
 public:
  static constexpr int kUnroll = 8;

  PeakFmaKernel(jit::Isa isa, int chains)
      : JitKernel(std::string("f32_peak_fma_") + std::to_string(chains) + "x__" + jit::to_string(isa), "peak/fma"),
        lanes_(jit::isa_block(isa)),
        chains_(chains) {
    auto vreg = [&](int i) -> Xbyak::Xmm {
      if (isa == jit::Isa::avx512) return Xbyak::Zmm(i);
      return Xbyak::Ymm(i);
    };
    const int regs = jit::isa_vector_registers(isa);
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

void bench_peak(benchmark::State& state, jit::Isa isa, int chains) {
  if (!jit::host_has(bench_host(), isa)) {
    state.SkipWithError("the host lacks this ISA");
    return;
  }
  PeakFmaKernel kernel(isa, chains);
  constexpr int64_t kIterations = 1 << 16;
  for (auto _ : state) kernel.run(kIterations);
  set_gflops(state, kernel.flops_per_iteration() * kIterations);
  state.SetLabel(kernel.name());
}

}  // namespace

void register_peak_benchmarks() {
  // peak/fma: the widest FMA this host has (what the kernels' default variants use).
  benchmark::RegisterBenchmark("peak/fma", [](benchmark::State& st) {
    if (jit::host_has(bench_host(), jit::Isa::avx512)) bench_peak(st, jit::Isa::avx512, 24);
    else bench_peak(st, jit::Isa::avx2, 12);
  });
  benchmark::RegisterBenchmark("peak/fma_avx2", [](benchmark::State& st) { bench_peak(st, jit::Isa::avx2, 12); });
}

}  // namespace nnjit::bench
