// What the kernel benchmarks share: the shape list (shapes.inc), names, the host the
// kernels are planned for, and the GFLOPS counter.
#pragma once

#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "jit/host_info.hpp"
#include "jit/layout.hpp"
#include "jit/post_ops.hpp"

namespace nnjit::bench {

enum class Family { pointwise, depthwise, dilated, grouped, dense, gemm };

// One line of shapes.inc.
struct ConvShape {
  Family family;
  int64_t in_channels, out_channels, height, width;
  int kernel, stride, dilation, groups;
  jit::Activation activation;
  bool residual;  // added before the activation

  int64_t pad() const { return kernel / 2 * dilation; }
  int64_t out_height() const { return (height + 2 * pad() - (kernel - 1) * dilation - 1) / stride + 1; }
  int64_t out_width() const { return (width + 2 * pad() - (kernel - 1) * dilation - 1) / stride + 1; }
  double flops() const {
    return 2.0 * static_cast<double>(out_channels) * static_cast<double>(in_channels / groups) * kernel * kernel *
           static_cast<double>(out_height() * out_width());
  }
};

const char* family_name(Family f);
const std::vector<ConvShape>& bench_shapes();
// e.g. "c64_k256_56x56_s1_res_relu"
std::string shape_name(const ConvShape& s);
// The probed host (runtime/probe), what the runtime would plan for.
const jit::HostInfo& bench_host();
// Reports `flops` per iteration as a GFLOPS rate.
void set_gflops(benchmark::State& state, double flops);

// n uniform values in [-1, 1) from a seeded generator.
void fill_random(float* p, int64_t n, uint32_t seed);

// One image's source and destination in the blocked layout, filled with seeded values
// and zero padding lanes, as the runtime keeps them. With a residual, dst doubles as the
// residual, added in place like oneDNN's sum post-op.
struct BlockedIo {
  BlockedIo(const ConvShape& s, std::size_t src_floats, std::size_t dst_floats, int block);
  jit::AlignedBuffer<float> src, dst;
  const float* residual = nullptr;
};

// Family registration functions, called by main.
void register_pointwise_benchmarks();
void register_depthwise_benchmarks();
void register_grouped_benchmarks();
void register_dense_benchmarks();
void register_peak_benchmarks();

}  // namespace nnjit::bench
