#include "bench/onednn_conv.hpp"

#include <random>
#include <vector>

namespace nnjit::bench {

namespace {

using dnnl::algorithm;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// The activation as oneDNN eltwise post-ops (hard_sigmoid has no single one in 2.6).
void append_activation(dnnl::post_ops& ops, const jit::Activation& a) {
  using K = jit::ActivationKind;
  switch (a.kind) {
    case K::none: break;
    case K::relu: ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f); break;
    case K::clip: ops.append_eltwise(1.f, algorithm::eltwise_clip, a.alpha, a.beta); break;
    case K::leaky_relu: ops.append_eltwise(1.f, algorithm::eltwise_relu, a.alpha, 0.f); break;
    case K::sigmoid: ops.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f); break;
    case K::silu: ops.append_eltwise(1.f, algorithm::eltwise_swish, 1.f, 0.f); break;
    case K::hard_sigmoid:
      ops.append_eltwise(1.f, algorithm::eltwise_linear, a.alpha, a.beta);
      ops.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 1.f);
      break;
    case K::hard_swish: ops.append_eltwise(1.f, algorithm::eltwise_hardswish, 0.f, 0.f); break;
    case K::gelu: ops.append_eltwise(1.f, algorithm::eltwise_gelu_erf, 0.f, 0.f); break;
  }
}

// Fills `dst` (in whatever layout the primitive chose) from seeded plain data.
void fill(dnnl::engine& engine, dnnl::stream& stream, dnnl::memory& dst, const memory::dims& dims, tag plain,
          uint32_t seed) {
  memory::desc plain_md(dims, dt::f32, plain);
  memory src(plain_md, engine);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  auto* p = static_cast<float*>(src.get_data_handle());
  for (size_t i = 0; i < plain_md.get_size() / sizeof(float); ++i) p[i] = dist(rng);
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
}

}  // namespace

OneDnnConv::OneDnnConv(const ConvShape& s) : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
  const memory::dim g = s.groups, C = s.in_channels, K = s.out_channels, f = s.kernel;
  const memory::dims src_dims{1, C, s.height, s.width};
  const memory::dims dst_dims{1, K, s.out_height(), s.out_width()};
  const memory::dims w_dims = g == 1 ? memory::dims{K, C, f, f} : memory::dims{g, K / g, C / g, f, f};
  const memory::dims bias_dims{K};
  const memory::dims strides{s.stride, s.stride}, dilates{s.dilation - 1, s.dilation - 1}, pad{s.pad(), s.pad()};

  memory::desc src_md(src_dims, dt::f32, tag::any), w_md(w_dims, dt::f32, tag::any),
      bias_md(bias_dims, dt::f32, tag::x), dst_md(dst_dims, dt::f32, tag::any);
  dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm::convolution_direct, src_md,
                                       w_md, bias_md, dst_md, strides, dilates, pad, pad);
  dnnl::post_ops ops;
  if (s.residual) ops.append_sum(1.f);
  append_activation(ops, s.activation);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  dnnl::convolution_forward::primitive_desc pd(desc, attr, engine_);
  impl_ = pd.impl_info_str();
  conv_ = dnnl::convolution_forward(pd);

  src_ = memory(pd.src_desc(), engine_);
  weights_ = memory(pd.weights_desc(), engine_);
  bias_ = memory(pd.bias_desc(), engine_);
  dst_ = memory(pd.dst_desc(), engine_);
  fill(engine_, stream_, src_, src_dims, tag::nchw, 1);
  fill(engine_, stream_, weights_, w_dims, g == 1 ? tag::oihw : tag::goihw, 2);
  fill(engine_, stream_, bias_, bias_dims, tag::x, 3);
  fill(engine_, stream_, dst_, dst_dims, tag::nchw, 4);  // the residual, for the sum post-op
}

void OneDnnConv::run() {
  conv_.execute(stream_, {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_BIAS, bias_},
                          {DNNL_ARG_DST, dst_}});
  stream_.wait();
}

void bench_onednn(benchmark::State& state, const ConvShape& s) {
  OneDnnConv conv(s);
  for (auto _ : state) conv.run();
  set_gflops(state, s.flops());
  state.SetLabel(conv.impl());
}

OneDnnMatmul::OneDnnMatmul(const ConvShape& s) : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
  const memory::dim M = s.height, K = s.in_channels, N = s.out_channels;
  const memory::dims src_dims{M, K}, w_dims{K, N}, bias_dims{1, N}, dst_dims{M, N};
  memory::desc src_md(src_dims, dt::f32, tag::ab), w_md(w_dims, dt::f32, tag::any),
      bias_md(bias_dims, dt::f32, tag::ab), dst_md(dst_dims, dt::f32, tag::ab);
  dnnl::matmul::desc desc(src_md, w_md, bias_md, dst_md);
  dnnl::post_ops ops;
  append_activation(ops, s.activation);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  dnnl::matmul::primitive_desc pd(desc, attr, engine_);
  impl_ = pd.impl_info_str();
  matmul_ = dnnl::matmul(pd);

  src_ = memory(pd.src_desc(), engine_);
  weights_ = memory(pd.weights_desc(), engine_);
  bias_ = memory(pd.bias_desc(), engine_);
  dst_ = memory(pd.dst_desc(), engine_);
  fill(engine_, stream_, src_, src_dims, tag::ab, 1);
  fill(engine_, stream_, weights_, w_dims, tag::ab, 2);
  fill(engine_, stream_, bias_, bias_dims, tag::ab, 3);
}

void OneDnnMatmul::run() {
  matmul_.execute(stream_, {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_BIAS, bias_},
                            {DNNL_ARG_DST, dst_}});
  stream_.wait();
}

void bench_onednn_matmul(benchmark::State& state, const ConvShape& s) {
  OneDnnMatmul matmul(s);
  for (auto _ : state) matmul.run();
  set_gflops(state, s.flops());
  state.SetLabel(matmul.impl());
}

}  // namespace nnjit::bench
