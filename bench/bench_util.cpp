#include "bench/bench_util.hpp"

#include <random>
#include <sstream>

#include "runtime/probe.hpp"

namespace nnjit::bench {

using jit::Activation;

const char* family_name(Family f) {
  switch (f) {
    case Family::pointwise: return "pointwise";
    case Family::depthwise: return "depthwise";
    case Family::dilated: return "dilated";
    case Family::grouped: return "grouped";
    case Family::dense: return "dense";
    case Family::gemm: return "gemm";
  }
  return "?";
}

const std::vector<ConvShape>& bench_shapes() {
  static const std::vector<ConvShape> shapes = {
#define NNJIT_BENCH_CONV(family, c, k, h, w, kernel, stride, dilation, groups, act, residual) \
  {Family::family, c, k, h, w, kernel, stride, dilation, groups, act, residual},
#include "bench/shapes.inc"
#undef NNJIT_BENCH_CONV
  };
  return shapes;
}

std::string shape_name(const ConvShape& s) {
  std::ostringstream n;
  n << "c" << s.in_channels << "_k" << s.out_channels << "_" << s.height << "x" << s.width;
  if (s.kernel != 1) n << "_f" << s.kernel << "x" << s.kernel;
  n << "_s" << s.stride;
  if (s.dilation != 1) n << "_d" << s.dilation;
  if (s.groups != 1) n << "_g" << s.groups;
  if (s.residual) n << "_res";
  if (s.activation == Activation::relu6()) n << "_relu6";
  else if (s.activation.kind != jit::ActivationKind::none) n << "_" << s.activation.name();
  return n.str();
}

const jit::HostInfo& bench_host() {
  static const jit::HostInfo host = runtime::probe_host(runtime::real_sources());
  return host;
}

void set_gflops(benchmark::State& state, double flops) {
  state.counters["GFLOPS"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void fill_random(float* p, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (int64_t i = 0; i < n; ++i) p[i] = dist(rng);
}

BlockedIo::BlockedIo(const ConvShape& s, std::size_t src_floats, std::size_t dst_floats, int block)
    : src(src_floats), dst(dst_floats) {
  const int64_t hw = s.height * s.width, ohw = s.out_height() * s.out_width();
  std::vector<float> plain_src(static_cast<std::size_t>(s.in_channels * hw)),
      plain_dst(static_cast<std::size_t>(s.out_channels * ohw));
  fill_random(plain_src.data(), static_cast<int64_t>(plain_src.size()), 1);
  fill_random(plain_dst.data(), static_cast<int64_t>(plain_dst.size()), 4);
  jit::nchw_to_blocked(plain_src.data(), src.data(), 1, s.in_channels, hw, block);
  jit::nchw_to_blocked(plain_dst.data(), dst.data(), 1, s.out_channels, ohw, block);
  if (s.residual) residual = dst.data();
}

}  // namespace nnjit::bench
