// nnjit_bench_kernels: each JIT kernel family against oneDNN on the zoo's layer shapes,
// one thread. Names are <family>/<shape>/<impl>; every benchmark reports GFLOPS.
//
//   nnjit_bench_kernels --benchmark_filter='pointwise/.*' --benchmark_format=json > out.json
#include <omp.h>

#include "bench/bench_util.hpp"

int main(int argc, char** argv) {
  // One thread for oneDNN (OpenMP) too: the comparison is per core.
  omp_set_num_threads(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  nnjit::bench::register_peak_benchmarks();
  nnjit::bench::register_pointwise_benchmarks();
  nnjit::bench::register_depthwise_benchmarks();
  nnjit::bench::register_grouped_benchmarks();
  nnjit::bench::register_dense_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
