// gemm/<shape>/nnjit and gemm/<shape>/onednn for every gemm line of shapes.inc (nnjit
// runs what plan_gemm picks for the probed host; oneDNN a matmul with packed weights).
// <shape> is m<M>_k<K>_n<N>[_<activation>], e.g. gemm/m1_k1280_n1000/nnjit.
#include <cstdlib>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "bench/bench_util.hpp"
#include "bench/onednn_conv.hpp"
#include "jit/gemm/gemm.hpp"
#include "jit/layout.hpp"

namespace nnjit::bench {

namespace {

jit::GemmShape gemm_shape(const ConvShape& s) {
  return {.m = s.height, .k = s.in_channels, .n = s.out_channels, .has_bias = true, .activation = s.activation};
}

std::string gemm_name(const ConvShape& s) {
  std::ostringstream n;
  n << "m" << s.height << "_k" << s.in_channels << "_n" << s.out_channels;
  if (s.activation.kind != jit::ActivationKind::none) n << "_" << s.activation.name();
  return n.str();
}

// `host`: the probed host, or it restricted to one variant's ISA.
void bench_nnjit(benchmark::State& state, const ConvShape& s, const jit::HostInfo& host) {
  auto planned = jit::plan_gemm(gemm_shape(s), host);
  if (auto* why = std::get_if<std::string>(&planned)) {
    state.SkipWithError(why->c_str());
    return;
  }
  const auto& plan = std::get<jit::GemmPlan>(planned);
  const jit::GemmShape& g = plan.shape;
  // ONNX Gemm's transB = 1 layout, [N][K], as the zoo's classifier heads store it.
  std::vector<float> weights(static_cast<size_t>(g.n * g.k)), bias(static_cast<size_t>(g.n));
  fill_random(weights.data(), static_cast<int64_t>(weights.size()), 2);
  fill_random(bias.data(), static_cast<int64_t>(bias.size()), 3);
  const jit::GemmWeights packed = jit::pack_gemm_weights(plan, weights.data(), true, 1.f, bias.data(), 1.f);
  auto kernel = jit::get_gemm_kernel(plan, "nnjit_bench_kernels");

  jit::AlignedBuffer<float> src(g.m * g.k), dst(g.m * g.n);
  fill_random(src.data(), g.m * g.k, 1);

  for (auto _ : state) {
    kernel->run(src.data(), dst.data(), packed);
    benchmark::ClobberMemory();
  }
  set_gflops(state, s.flops());
  state.SetLabel(plan.name() + " kc=" + std::to_string(plan.chunk_k) + " mc=" + std::to_string(plan.row_block));
}

const bool registered = [] {
  // With NNJIT_BENCH_VARIANTS=1, also every other variant of gemm.inc the host runs, as
  // gemm/<shape>/nnjit_<isa>.
  std::vector<jit::Isa> variants;
  if (const char* v = std::getenv("NNJIT_BENCH_VARIANTS"); v != nullptr && std::string(v) == "1") {
#define NNJIT_GEMM_VARIANT(id) \
  if (jit::host_has(bench_host(), jit::Isa::id)) variants.push_back(jit::Isa::id);
#include "jit/gemm/gemm.inc"
#undef NNJIT_GEMM_VARIANT
    if (!variants.empty()) variants.erase(variants.begin());  // the first is what "nnjit" runs
  }
  for (const ConvShape& s : bench_shapes()) {
    if (s.family != Family::gemm) continue;
    const std::string base = "gemm/" + gemm_name(s);
    benchmark::RegisterBenchmark((base + "/nnjit").c_str(), [s](benchmark::State& st) { bench_nnjit(st, s, bench_host()); })
        ->Unit(benchmark::kMicrosecond);
    for (jit::Isa isa : variants)
      benchmark::RegisterBenchmark((base + "/nnjit_" + jit::to_string(isa)).c_str(),
                                   [s, isa](benchmark::State& st) {
                                     bench_nnjit(st, s, jit::restrict_isa(bench_host(), isa));
                                   })
          ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((base + "/onednn").c_str(), [s](benchmark::State& st) { bench_onednn_matmul(st, s); })
        ->Unit(benchmark::kMicrosecond);
  }
  return true;
}();

}  // namespace

}  // namespace nnjit::bench
