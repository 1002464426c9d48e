// A oneDNN convolution primitive for one ConvShape, set up the way oneDNN is at its best:
// format_tag::any for src, weights and dst (it picks its blocked layouts), the same fused
// post-ops as nnjit (sum for the residual, then the activation), the primitive and every
// reorder made before timing.
#pragma once

#include <string>

#include <oneapi/dnnl/dnnl.hpp>

#include "bench/bench_util.hpp"

namespace nnjit::bench {

class OneDnnConv {
 public:
  explicit OneDnnConv(const ConvShape& shape);
  // One forward pass. With a residual, dst is accumulated into (the sum post-op), so
  // repeated runs grow dst linearly; the time does not depend on the values.
  void run();
  // oneDNN's implementation name, e.g. "jit_1x1:avx512_core".
  std::string impl() const { return impl_; }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::convolution_forward conv_;
  dnnl::memory src_, weights_, bias_, dst_;
  std::string impl_;
};

// The `<family>/<shape>/onednn` benchmark body: one OneDnnConv forward per iteration.
void bench_onednn(benchmark::State& state, const ConvShape& s);

// A oneDNN matmul primitive for Y[M][N] = act(X[M][K] · W[K][N] + bias[N]) (a gemm line of
// shapes.inc: K = in_channels, N = out_channels, M = height), set up like OneDnnConv:
// plain row-major X and Y, format_tag::any for the weights (oneDNN packs them as it
// likes, before timing), a bias of [1][N], the same activation as a post-op.
class OneDnnMatmul {
 public:
  explicit OneDnnMatmul(const ConvShape& shape);
  void run();
  // oneDNN's implementation name, e.g. "brg:avx512_core".
  std::string impl() const { return impl_; }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::matmul matmul_;
  dnnl::memory src_, weights_, bias_, dst_;
  std::string impl_;
};

// The `gemm/<shape>/onednn` benchmark body: one OneDnnMatmul per iteration.
void bench_onednn_matmul(benchmark::State& state, const ConvShape& s);

}  // namespace nnjit::bench
