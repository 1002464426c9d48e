// pool/<shape>/{nnjit,onednn}: the pool kernels against oneDNN's pooling on the zoo's
// pooling layers, both on the blocked layout nnjit plans for the probed host (nChw16c or
// nChw8c), one thread. Registered at static initialisation, so main needs no call.
// Every benchmark reports bytes moved (src + dst) per second.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <dnnl.hpp>

#include "bench/bench_util.hpp"
#include "jit/layout.hpp"
#include "jit/pool/pool.hpp"

namespace nnjit::bench {

namespace {

struct PoolBench {
  const char* name;
  jit::PoolShape shape;
  bool ceil_mode = false;
};

jit::PoolShape window(int64_t c, int64_t hw, jit::PoolKind kind, int k, int s, int64_t pad, bool ceil_mode,
                      bool count_include_pad = false) {
  const int64_t out = jit::pool_out_size(hw, k, s, pad, pad, ceil_mode);
  return {.channels = c, .height = hw, .width = hw, .kind = kind, .kernel_h = k, .kernel_w = k, .stride_h = s,
          .stride_w = s, .pad_top = pad, .pad_left = pad, .pad_bottom = pad, .pad_right = pad, .out_height = out,
          .out_width = out, .count_include_pad = count_include_pad};
}

jit::PoolShape global(int64_t c, int64_t hw, jit::PoolKind kind) {
  return {.channels = c, .height = hw, .width = hw, .kind = kind};
}

std::vector<PoolBench> pool_benches() {
  using K = jit::PoolKind;
  return {
      {"resnet_max_k3s2p1_64x112", window(64, 112, K::max, 3, 2, 1, false)},
      {"squeezenet_max_k3s2ceil_64x111", window(64, 111, K::max, 3, 2, 0, true), true},
      {"squeezenet_max_k3s2ceil_256x27", window(256, 27, K::max, 3, 2, 0, true), true},
      {"darts_max_k3s1p1_64x8", window(64, 8, K::max, 3, 1, 1, false)},
      {"darts_avg_k3s1p1_16x32", window(16, 32, K::avg, 3, 1, 1, false)},
      {"darts_avg_k3s1p1_64x8", window(64, 8, K::avg, 3, 1, 1, false)},
      {"gap_1280x7", global(1280, 7, K::global_avg)},
      {"gap_2048x7", global(2048, 7, K::global_avg)},
      {"se_gap_32x112", global(32, 112, K::global_avg)},
      {"se_gap_144x56", global(144, 56, K::global_avg)},
      {"se_gap_1152x7", global(1152, 7, K::global_avg)},
  };
}

void set_bytes(benchmark::State& state, const jit::PoolPlan& plan) {
  state.SetBytesProcessed(state.iterations() * (plan.src_image_floats() + plan.dst_image_floats()) * 4);
}

void bench_nnjit(benchmark::State& state, const jit::PoolShape& s) {
  auto planned = jit::plan_pool(s, bench_host());
  if (auto* why = std::get_if<std::string>(&planned)) {
    state.SkipWithError(why->c_str());
    return;
  }
  const auto& plan = std::get<jit::PoolPlan>(planned);
  auto kernel = jit::get_pool_kernel(plan, "nnjit_bench_kernels");
  std::vector<float> plain(static_cast<std::size_t>(s.channels * s.height * s.width));
  fill_random(plain.data(), static_cast<int64_t>(plain.size()), 1);
  jit::AlignedBuffer<float> src(plan.src_image_floats()), dst(plan.dst_image_floats());
  jit::nchw_to_blocked(plain.data(), src.data(), 1, s.channels, s.height * s.width, plan.block);
  for (auto _ : state) {
    kernel->run(src.data(), dst.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, plan);
  state.SetLabel(plan.name());
}

void bench_onednn(benchmark::State& state, const jit::PoolShape& s) {
  auto planned = jit::plan_pool(s, bench_host());
  if (auto* why = std::get_if<std::string>(&planned)) {
    state.SkipWithError(why->c_str());
    return;
  }
  const auto& plan = std::get<jit::PoolPlan>(planned);
  using dnnl::memory;
  using tag = memory::format_tag;
  const tag blocked = plan.block == 16 ? tag::nChw16c : tag::nChw8c;
  const bool global_pool = jit::is_global(s.kind);
  const memory::dim kh = global_pool ? s.height : s.kernel_h, kw = global_pool ? s.width : s.kernel_w;
  const memory::dim sh = global_pool ? 1 : s.stride_h, sw = global_pool ? 1 : s.stride_w;
  const memory::dim oh = s.dst_height(), ow = s.dst_width();
  const memory::dim pt = global_pool ? 0 : s.pad_top, pl = global_pool ? 0 : s.pad_left;
  // oneDNN takes the end pads that make its floor rule give our (ceil_mode) output size.
  const memory::dim pb = (oh - 1) * sh + kh - s.height - pt, pr = (ow - 1) * sw + kw - s.width - pl;
  const dnnl::algorithm alg = s.kind == jit::PoolKind::max || s.kind == jit::PoolKind::global_max
                                  ? dnnl::algorithm::pooling_max
                                  : s.count_include_pad ? dnnl::algorithm::pooling_avg_include_padding
                                                        : dnnl::algorithm::pooling_avg_exclude_padding;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  memory::desc src_md({1, s.channels, s.height, s.width}, memory::data_type::f32, blocked);
  memory::desc dst_md({1, s.channels, oh, ow}, memory::data_type::f32, blocked);
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src_md, dst_md, {sh, sw}, {kh, kw},
                                   {pt, pl}, {pb, pr});
  dnnl::pooling_forward::primitive_desc pd(desc, engine);
  dnnl::pooling_forward pool(pd);
  memory src(src_md, engine), dst(dst_md, engine);
  fill_random(static_cast<float*>(src.get_data_handle()), static_cast<int64_t>(src_md.get_size() / 4), 1);
  for (auto _ : state) {
    pool.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    stream.wait();
  }
  set_bytes(state, plan);
  state.SetLabel(pd.impl_info_str());
}

const bool registered = [] {
  for (const PoolBench& b : pool_benches()) {
    const std::string base = std::string("pool/") + b.name;
    const jit::PoolShape s = b.shape;
    benchmark::RegisterBenchmark((base + "/nnjit").c_str(), [s](benchmark::State& st) { bench_nnjit(st, s); })
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((base + "/onednn").c_str(), [s](benchmark::State& st) { bench_onednn(st, s); })
        ->Unit(benchmark::kMicrosecond);
  }
  return true;
}();

}  // namespace

}  // namespace nnjit::bench
