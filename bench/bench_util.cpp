#include "bench/bench_util.hpp"

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

}  // namespace nnjit::bench
