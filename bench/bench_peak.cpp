// peak/fma: this core's FMA peak, from a JIT loop of independent vfmadd231ps chains —
// the yardstick for the kernels' GFLOPS (a kernel at 85% of peak is at 85% of this).
#include "bench/bench_util.hpp"
#include "jit/isa.hpp"
#include "jit/jit_kernel.hpp"
#include "jit/peak.hpp"

namespace nnjit::bench {

namespace {


void bench_peak(benchmark::State& state, jit::Isa isa, int chains) {
  if (!jit::host_has(bench_host(), isa)) {
    state.SkipWithError("the host lacks this ISA");
    return;
  }
  jit::PeakFmaKernel kernel(isa, chains);
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
