// grouped/<shape>/{nnjit,onednn} for every grouped line of shapes.inc (nnjit runs what
// plan_grouped picks for the probed host; "same" padding, kernel/2, as ConvShape::pad()
// says).
#include <cstdlib>
#include <string>
#include <variant>
#include <vector>

#include "bench/bench_util.hpp"
#include "bench/onednn_conv.hpp"
#include "jit/grouped/grouped.hpp"
#include "jit/layout.hpp"

namespace nnjit::bench {

namespace {

jit::GroupedShape grouped_shape(const ConvShape& s) {
  const int64_t pad = s.pad();
  return {.in_channels = s.in_channels,
          .out_channels = s.out_channels,
          .groups = s.groups,
          .height = s.height,
          .width = s.width,
          .kernel = s.kernel,
          .stride = s.stride,
          .pad_top = pad,
          .pad_left = pad,
          .pad_bottom = pad,
          .pad_right = pad,
          .activation = s.activation,
          .residual = s.residual ? jit::ResidualMode::before_activation : jit::ResidualMode::none};
}

void bench_nnjit(benchmark::State& state, const ConvShape& s, const jit::HostInfo& host) {
  auto planned = jit::plan_grouped(grouped_shape(s), host);
  if (auto* why = std::get_if<std::string>(&planned)) {
    state.SkipWithError(why->c_str());
    return;
  }
  const auto& plan = std::get<jit::GroupedPlan>(planned);
  std::vector<float> weights(static_cast<size_t>(s.out_channels * (s.in_channels / s.groups) * s.kernel * s.kernel)),
      bias(static_cast<size_t>(s.out_channels));
  fill_random(weights.data(), static_cast<int64_t>(weights.size()), 2);
  fill_random(bias.data(), static_cast<int64_t>(bias.size()), 3);
  const jit::GroupedWeights packed = jit::pack_grouped_weights(plan, weights.data(), bias.data());
  auto kernel = jit::get_grouped_kernel(plan, "nnjit_bench_kernels");

  BlockedIo io(s, plan.src_image_floats(), plan.dst_image_floats(), plan.block);

  for (auto _ : state) {
    kernel->run(io.src.data(), io.dst.data(), packed, io.residual);
    benchmark::ClobberMemory();
  }
  set_gflops(state, s.flops());
  state.SetLabel(plan.name());
}

}  // namespace

void register_grouped_benchmarks() {
  // With NNJIT_BENCH_VARIANTS=1, also every other variant of grouped.inc the host runs,
  // as grouped/<shape>/nnjit_<isa>.
  std::vector<jit::Isa> variants;
  if (const char* v = std::getenv("NNJIT_BENCH_VARIANTS"); v != nullptr && std::string(v) == "1") {
#define NNJIT_GROUPED_VARIANT(id) \
  if (jit::host_has(bench_host(), jit::Isa::id)) variants.push_back(jit::Isa::id);
#include "jit/grouped/grouped.inc"
#undef NNJIT_GROUPED_VARIANT
    if (!variants.empty()) variants.erase(variants.begin());  // the first is what "nnjit" runs
  }
  for (const ConvShape& s : bench_shapes()) {
    if (s.family != Family::grouped) continue;
    const std::string base = std::string(family_name(s.family)) + "/" + shape_name(s);
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
