// pointwise/<shape>/nnjit and pointwise/<shape>/onednn for every pointwise line of
// shapes.inc (nnjit runs what plan_pointwise picks for the probed host).
#include <cstdlib>
#include <string>
#include <variant>
#include <vector>

#include "bench/bench_util.hpp"
#include "bench/onednn_conv.hpp"
#include "jit/layout.hpp"
#include "jit/pointwise/pointwise.hpp"

namespace nnjit::bench {

namespace {

jit::PointwiseShape pointwise_shape(const ConvShape& s) {
  return {.in_channels = s.in_channels,
          .out_channels = s.out_channels,
          .height = s.height,
          .width = s.width,
          .stride = s.stride,
          .activation = s.activation,
          .residual = s.residual ? jit::ResidualMode::before_activation : jit::ResidualMode::none};
}

// `host`: the probed host, or it restricted to one variant's ISA.
void bench_nnjit(benchmark::State& state, const ConvShape& s, const jit::HostInfo& host) {
  auto planned = jit::plan_pointwise(pointwise_shape(s), host);
  if (auto* why = std::get_if<std::string>(&planned)) {
    state.SkipWithError(why->c_str());
    return;
  }
  const auto& plan = std::get<jit::PointwisePlan>(planned);
  std::vector<float> weights(static_cast<size_t>(s.out_channels * s.in_channels)),
      bias(static_cast<size_t>(s.out_channels));
  fill_random(weights.data(), static_cast<int64_t>(weights.size()), 2);
  fill_random(bias.data(), static_cast<int64_t>(bias.size()), 3);
  const jit::PointwiseWeights packed = jit::pack_pointwise_weights(plan, weights.data(), bias.data());
  auto kernel = jit::get_pointwise_kernel(plan, "nnjit_bench_kernels");

  BlockedIo io(s, plan.src_image_floats(), plan.dst_image_floats(), plan.block);

  for (auto _ : state) {
    kernel->run(io.src.data(), io.dst.data(), packed, io.residual);
    benchmark::ClobberMemory();
  }
  set_gflops(state, s.flops());
  state.SetLabel(plan.name() + " kc=" + std::to_string(plan.chunk_channels));
}

}  // namespace

void register_pointwise_benchmarks() {
  // With NNJIT_BENCH_VARIANTS=1, also every other variant of pointwise.inc the host
  // runs, as pointwise/<shape>/nnjit_<isa>.
  std::vector<jit::Isa> variants;
  if (const char* v = std::getenv("NNJIT_BENCH_VARIANTS"); v != nullptr && std::string(v) == "1") {
#define NNJIT_POINTWISE_VARIANT(id) \
  if (jit::host_has(bench_host(), jit::Isa::id)) variants.push_back(jit::Isa::id);
#include "jit/pointwise/pointwise.inc"
#undef NNJIT_POINTWISE_VARIANT
    if (!variants.empty()) variants.erase(variants.begin());  // the first is what "nnjit" runs
  }
  for (const ConvShape& s : bench_shapes()) {
    if (s.family != Family::pointwise) continue;
    const std::string base = std::string("pointwise/") + shape_name(s);
    benchmark::RegisterBenchmark((base + "/nnjit").c_str(), [s](benchmark::State& st) { bench_nnjit(st, s, bench_host()); })
        ->Unit(benchmark::kMicrosecond);
    for (jit::Isa isa : variants)
      benchmark::RegisterBenchmark((base + "/nnjit_" + jit::to_string(isa)).c_str(),
                                   [s, isa](benchmark::State& st) {
                                     bench_nnjit(st, s, jit::restrict_isa(bench_host(), isa));
                                   })
          ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((base + "/onednn").c_str(), [s](benchmark::State& st) { bench_onednn(st, s); })
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace nnjit::bench
