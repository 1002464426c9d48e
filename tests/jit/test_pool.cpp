// PoolTester: runs the pool JIT kernel on seeded data and compares it, on plain NCHW
// after layout conversion, with ops/pool.hpp's references (the shapes resolved from ONNX
// attributes by ops::resolve_pool, so ceil_mode's output size is the op's own).
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "jit/layout.hpp"
#include "jit/pool/pool.hpp"
#include "ops/pool.hpp"
#include "tests/jit/jit_test_util.hpp"
#include "tests/ops/nn_test_helpers.hpp"

namespace {

using namespace nnjit::jit;
using nnjit::testing::cpu_has;
using nnjit::testing::GuardedArray;
using nnjit::testing::compact_planes;
using nnjit::testing::host_for;
using nnjit::testing::spread_planes;
namespace nn = nnjit::testing::nn;

class PoolTester {
 public:
  PoolTester& batch(int64_t n) { batch_ = n; return *this; }
  PoolTester& channels(int64_t c) { channels_ = c; return *this; }
  PoolTester& height(int64_t h) { height_ = h; return *this; }
  PoolTester& width(int64_t w) { width_ = w; return *this; }
  PoolTester& size(int64_t hw) { return height(hw).width(hw); }
  PoolTester& kind(PoolKind k) { kind_ = k; return *this; }
  PoolTester& kernel(int kh, int kw) { kh_ = kh, kw_ = kw; return *this; }
  PoolTester& kernel(int k) { return kernel(k, k); }
  PoolTester& stride(int sh, int sw) { sh_ = sh, sw_ = sw; return *this; }
  PoolTester& stride(int s) { return stride(s, s); }
  // Pads (top, left, bottom, right), as ONNX's pads = [top, left, bottom, right].
  PoolTester& pads(int64_t t, int64_t l, int64_t b, int64_t r) {
    pads_ = {t, l, b, r};
    return *this;
  }
  PoolTester& pads(int64_t all) { return pads(all, all, all, all); }
  PoolTester& ceil_mode(bool c) { ceil_mode_ = c; return *this; }
  PoolTester& count_include_pad(bool c) { count_include_pad_ = c; return *this; }
  PoolTester& isa(Isa i) { isa_ = i; return *this; }
  // One call per channel block, last first (how threads split a layer).
  PoolTester& split(bool b) { split_ = b; return *this; }
  PoolTester& seed(uint32_t s) { seed_ = s; return *this; }
  // Plane strides this many pixels past the planes themselves (the gaps hold NaN).
  PoolTester& plane_gaps(int64_t src, int64_t dst) {
    src_gap_ = src;
    dst_gap_ = dst;
    return *this;
  }

  // Whether ONNX (ops::resolve_pool) accepts the window; the sweeps skip what it refuses.
  bool onnx_valid() const {
    if (is_global(kind_)) return true;
    try {
      resolved();
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  void Test() const {
    const int64_t N = batch_, C = channels_, H = height_, W = width_;
    const bool global = is_global(kind_);
    nnjit::ops::PoolParams params;
    PoolShape s{.batch = N, .channels = C, .height = H, .width = W, .kind = kind_};
    if (!global) {
      params = resolved();
      s.kernel_h = kh_, s.kernel_w = kw_, s.stride_h = sh_, s.stride_w = sw_;
      s.pad_top = params.pad_begin[0], s.pad_left = params.pad_begin[1];
      s.pad_bottom = params.pad_end[0], s.pad_right = params.pad_end[1];
      s.out_height = params.out_size[0], s.out_width = params.out_size[1];
      s.count_include_pad = count_include_pad_;
      // pool_out_size is the op's rule.
      REQUIRE(pool_out_size(H, kh_, sh_, s.pad_top, s.pad_bottom, ceil_mode_) == s.out_height);
      REQUIRE(pool_out_size(W, kw_, sw_, s.pad_left, s.pad_right, ceil_mode_) == s.out_width);
    }
    if (src_gap_) s.src_plane = H * W + src_gap_;
    if (dst_gap_) s.dst_plane = s.dst_height() * s.dst_width() + dst_gap_;
    const std::string what = s.key() + (ceil_mode_ ? " ceil" : "") + " on " + to_string(isa_);
    auto planned = plan_pool(s, host_for(isa_));
    if (auto* why = std::get_if<std::string>(&planned)) FAIL(what << ": " << *why);
    const PoolPlan& plan = std::get<PoolPlan>(planned);
    REQUIRE(plan.isa == isa_);
    if (!cpu_has(isa_)) {  // this machine cannot run the variant: only emit it
      CHECK_NOTHROW(PoolKernel(plan, "PoolTester"));
      return;
    }
    const int B = plan.block;
    const int64_t Ho = s.dst_height(), Wo = s.dst_width();

    std::mt19937 rng(seed_);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> src(static_cast<std::size_t>(N * C * H * W));
    for (float& x : src) x = dist(rng);
    // Negative everywhere in one plane: max must not see the padding as 0.
    for (int64_t i = 0; i < std::min<int64_t>(H * W, static_cast<int64_t>(src.size())); ++i)
      src[static_cast<std::size_t>(i)] = -1.f - std::fabs(src[static_cast<std::size_t>(i)]);

    std::vector<float> expected(static_cast<std::size_t>(N * C * Ho * Wo)), mag(expected.size());
    std::vector<float> abs_src(src);
    for (float& x : abs_src) x = std::fabs(x);
    switch (kind_) {
      case PoolKind::max: nnjit::ops::maxpool_reference(params, src.data(), expected.data()); break;
      case PoolKind::avg:
        nnjit::ops::avgpool_reference(params, src.data(), expected.data());
        nnjit::ops::avgpool_reference(params, abs_src.data(), mag.data());
        break;
      case PoolKind::global_avg:
        nnjit::ops::global_avgpool_reference(N * C, H * W, src.data(), expected.data());
        nnjit::ops::global_avgpool_reference(N * C, H * W, abs_src.data(), mag.data());
        break;
      case PoolKind::global_max: nnjit::ops::global_maxpool_reference(N * C, H * W, src.data(), expected.data()); break;
    }

    AlignedBuffer<float> bsrc(blocked_size(N, C, H * W, B));
    nchw_to_blocked(src.data(), bsrc.data(), N, C, H * W, B);
    // Garbage in src's padding lanes: dst's must still be 0.
    const int64_t cpad = blocked_channels(C, B);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = C; c < cpad; ++c)
        for (int64_t px = 0; px < H * W; ++px)
          bsrc[static_cast<std::size_t>(((n * (cpad / B) + c / B) * H * W + px) * B + c % B)] = 7.f;
    AlignedBuffer<float> bdst(blocked_size(N, C, Ho * Wo, B));
    std::fill(bdst.data(), bdst.data() + bdst.size(), std::nanf(""));  // every lane must be written

    // With plane gaps the kernel sees every plane at its stride; its output is compacted after.
    bsrc = spread_planes(bsrc, N * (cpad / B), H * W, s.src_plane_pixels(), B);
    AlignedBuffer<float> natural_dst = std::move(bdst);
    bdst = spread_planes(natural_dst, N * (cpad / B), Ho * Wo, s.dst_plane_pixels(), B);
    auto kernel = get_pool_kernel(plan, "PoolTester");
    {
      GuardedArray gsrc(bsrc.size(), bsrc.data()), gdst(bdst.size(), bdst.data());
      for (int64_t n = 0; n < N; ++n) {
        PoolArgs args{gsrc.data() + n * plan.src_image_floats(), gdst.data() + n * plan.dst_image_floats(), 0,
                      plan.blocks};
        if (!split_) {
          (*kernel)(args);
          continue;
        }
        for (int64_t b = plan.blocks - 1; b >= 0; --b) {
          args.block_begin = b, args.block_end = b + 1;
          (*kernel)(args);
        }
      }
      std::copy(gdst.data(), gdst.data() + bdst.size(), bdst.data());
    }
    if (!compact_planes(bdst, natural_dst, N * (cpad / B), Ho * Wo, s.dst_plane_pixels(), B))
      FAIL(what << ": the kernel wrote into a gap between planes");
    bdst = std::move(natural_dst);

    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = C; c < cpad; ++c)
        for (int64_t px = 0; px < Ho * Wo; ++px) {
          const float v = bdst[static_cast<std::size_t>(((n * (cpad / B) + c / B) * Ho * Wo + px) * B + c % B)];
          if (v != 0.f)
            FAIL(what << " [" << plan.name() << "]: padding lane n=" << n << " c=" << c << " px=" << px << " holds "
                      << v << ", not 0");
        }
    std::vector<float> got(expected.size());
    blocked_to_nchw(bdst.data(), got.data(), N, C, Ho * Wo, B);
    // Max is exact. Avg sums in float (the reference in double): relative to the mean of
    // magnitudes, a few ulp per term summed into one accumulator.
    const bool avg = kind_ == PoolKind::avg || kind_ == PoolKind::global_avg;
    const double terms = kind_ == PoolKind::global_avg ? static_cast<double>(H * W) / plan.pixels + plan.pixels
                                                       : static_cast<double>(kh_) * kw_;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double err = std::fabs(static_cast<double>(got[i]) - expected[i]);
      const double allowed = avg ? 1.2e-7 * (terms + 4) * mag[i] + 1e-30 : 0.0;
      if (!(err <= allowed)) {
        const int64_t px = static_cast<int64_t>(i) % (Ho * Wo), nc = static_cast<int64_t>(i) / (Ho * Wo);
        FAIL(what << " [" << plan.name() << "]: mismatch at n=" << nc / C << " c=" << nc % C << " oh=" << px / Wo
                  << " ow=" << px % Wo << ": got " << got[i] << ", expected " << expected[i] << " (error " << err
                  << ", allowed " << allowed << ")");
      }
    }
  }

 private:
  nnjit::ops::PoolParams resolved() const {
    nnjit::ops::Attributes a = nn::attrs({{"kernel_shape", nn::ints({kh_, kw_})},
                                          {"strides", nn::ints({sh_, sw_})},
                                          {"pads", nn::ints({pads_[0], pads_[1], pads_[2], pads_[3]})},
                                          {"ceil_mode", nn::integer(ceil_mode_ ? 1 : 0)}});
    const bool avg = kind_ == PoolKind::avg;
    if (avg) a.set("count_include_pad", nn::integer(count_include_pad_ ? 1 : 0));
    return nnjit::ops::resolve_pool(avg ? nnjit::ops::PoolKind::Average : nnjit::ops::PoolKind::Max, a,
                                    {batch_, channels_, height_, width_}, "PoolTester");
  }

  int64_t batch_ = 1, channels_ = 16, height_ = 7, width_ = 7;
  PoolKind kind_ = PoolKind::max;
  int kh_ = 3, kw_ = 3, sh_ = 1, sw_ = 1;
  std::vector<int64_t> pads_{0, 0, 0, 0};
  bool ceil_mode_ = false;
  bool count_include_pad_ = false;
  Isa isa_ = Isa::avx512;
  bool split_ = false;
  uint32_t seed_ = 42;
  int64_t src_gap_ = 0, dst_gap_ = 0;
};

const Isa kIsas[] = {
#define NNJIT_POOL_VARIANT(id) Isa::id,
#include "jit/pool/pool.inc"
#undef NNJIT_POOL_VARIANT
};

}  // namespace

TEST_SUITE("jit") {

TEST_CASE("pool: channels below, at and above the block") {
  for (Isa isa : kIsas)
    for (int64_t c : {1, 3, 8, 15, 16, 17, 33})
      for (PoolKind kind : {PoolKind::max, PoolKind::avg, PoolKind::global_avg, PoolKind::global_max})
        PoolTester().channels(c).height(9).width(11).kind(kind).kernel(3).stride(2).pads(1).isa(isa).Test();
}

TEST_CASE("pool: spatial sizes, kernels, strides, pads, ceil_mode, count_include_pad") {
  int run = 0;
  for (Isa isa : kIsas)
    for (PoolKind kind : {PoolKind::max, PoolKind::avg})
      for (int k : {1, 2, 3, 5, 7})
        for (int stride : {1, 2})
          for (int64_t pad : {0, 1, 3})
            for (bool ceil : {false, true})
              for (bool inc : {false, true}) {
                if (inc && kind == PoolKind::max) continue;
                for (int64_t hw : {1, 2, 3, 5, 7, 13, 23, 55}) {
                  PoolTester t;
                  t.channels(hw % 2 ? 17 : 8).size(hw).kind(kind).kernel(k).stride(stride).pads(pad).ceil_mode(ceil)
                      .count_include_pad(inc).isa(isa);
                  if (!t.onnx_valid()) continue;  // pad >= kernel or the image below the window
                  t.Test();
                  ++run;
                }
              }
  CHECK(run > 500);
}

TEST_CASE("pool: rectangular windows, strides and pads, asymmetric") {
  const int64_t pad_sets[][4] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 0, 2}, {1, 3, 0, 2}};
  for (Isa isa : kIsas)
    for (PoolKind kind : {PoolKind::max, PoolKind::avg})
      for (const auto& pd : pad_sets)
        for (bool ceil : {false, true})
          for (bool inc : {false, true}) {
            PoolTester t;
            t.channels(15).height(13).width(23).kind(kind).kernel(4, 5).stride(2, 3).pads(pd[0], pd[1], pd[2], pd[3])
                .ceil_mode(ceil).count_include_pad(inc).isa(isa);
            if (t.onnx_valid()) t.Test();
            PoolTester u;
            u.channels(3).height(5).width(40).kind(kind).kernel(7, 2).stride(3, 1).pads(pd[0], pd[1], pd[2], pd[3])
                .ceil_mode(ceil).count_include_pad(inc).isa(isa);
            if (u.onnx_valid()) u.Test();
          }
}

TEST_CASE("pool: global pools over every plane size") {
  for (Isa isa : kIsas)
    for (PoolKind kind : {PoolKind::global_avg, PoolKind::global_max})
      for (int64_t c : {1, 3, 8, 15, 16, 17, 33})
        for (int64_t hw : {1, 2, 3, 5, 7, 13, 23, 55}) {
          PoolTester().channels(c).size(hw).kind(kind).isa(isa).Test();
          PoolTester().channels(c).height(3).width(hw).kind(kind).isa(isa).Test();
        }
}

TEST_CASE("pool: plane strides past the planes (row buffers of fused steps)") {
  for (Isa isa : kIsas) {
    PoolTester().channels(24).size(13).kernel(3).stride(2).pads(1).plane_gaps(9, 0).isa(isa).Test();
    PoolTester().channels(40).size(12).kind(PoolKind::avg).kernel(3).stride(1).pads(1).plane_gaps(0, 5).split(true).isa(isa).Test();
    PoolTester().channels(17).height(7).width(19).kernel(2).stride(2).plane_gaps(31, 3).batch(2).isa(isa).Test();
    PoolTester().channels(20).size(9).kind(PoolKind::global_avg).plane_gaps(11, 0).isa(isa).Test();
  }
}

TEST_CASE("pool: batch and split calls") {
  for (Isa isa : kIsas)
    for (PoolKind kind : {PoolKind::max, PoolKind::avg, PoolKind::global_avg, PoolKind::global_max}) {
      PoolTester().batch(3).channels(40).size(10).kind(kind).kernel(3).stride(2).pads(1).ceil_mode(true).isa(isa).Test();
      PoolTester().batch(2).channels(33).size(9).kind(kind).kernel(3).pads(1).split(true).isa(isa).Test();
    }
}

TEST_CASE("pool: zoo shapes") {
  for (Isa isa : kIsas) {
    // ResNet stem.
    PoolTester().channels(64).size(112).kernel(3).stride(2).pads(1).isa(isa).Test();
    // SqueezeNet (ceil_mode, no pads).
    PoolTester().channels(64).size(111).kernel(3).stride(2).ceil_mode(true).isa(isa).Test();
    PoolTester().channels(128).size(55).kernel(3).stride(2).ceil_mode(true).isa(isa).Test();
    PoolTester().channels(256).size(27).kernel(3).stride(2).ceil_mode(true).isa(isa).Test();
    // DARTS: 3x3 s1 p1 max and avg (count_include_pad 0), and the reduction cells' s2.
    for (int64_t c : {16, 32, 64})
      for (int64_t hw : {32, 16, 8})
        for (PoolKind kind : {PoolKind::max, PoolKind::avg}) {
          PoolTester().channels(c).size(hw).kind(kind).kernel(3).pads(1).isa(isa).Test();
          PoolTester().channels(c).size(hw).kind(kind).kernel(3).stride(2).pads(1).isa(isa).Test();
        }
    // Classifier heads and SE squeezes (EfficientNet-B0).
    PoolTester().channels(1280).size(7).kind(PoolKind::global_avg).isa(isa).Test();
    PoolTester().channels(2048).size(7).kind(PoolKind::global_avg).isa(isa).Test();
    const int64_t se[][2] = {{32, 112}, {16, 112}, {96, 56}, {144, 56}, {240, 28}, {480, 14}, {672, 14}, {1152, 7}};
    for (const auto& z : se) PoolTester().channels(z[0]).size(z[1]).kind(PoolKind::global_avg).isa(isa).Test();
  }
}

TEST_CASE("pool: the plan refuses what it cannot run, and says why") {
  const HostInfo host = host_for(Isa::avx512);
  auto reason = [&](PoolShape s) {
    auto r = plan_pool(s, host);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  auto has = [](const std::string& s, const char* what) { return s.find(what) != std::string::npos; };
  const PoolShape ok{.channels = 4, .height = 5, .width = 5, .kernel_h = 3, .kernel_w = 3, .out_height = 3,
                     .out_width = 3};
  CHECK(reason(ok).empty());
  auto with = [&](auto edit) {
    PoolShape s = ok;
    edit(s);
    return reason(s);
  };
  CHECK(has(with([](PoolShape& s) { s.channels = 0; }), "positive"));
  CHECK(has(with([](PoolShape& s) { s.kernel_w = 8; }), "1 to 7"));
  CHECK(has(with([](PoolShape& s) { s.stride_h = 0; }), "strides"));
  CHECK(has(with([](PoolShape& s) { s.pad_left = -1; }), "negative"));
  CHECK(has(with([](PoolShape& s) { s.out_width = 0; }), "output size"));
  CHECK(has(with([](PoolShape& s) { s.pad_top = 3; s.out_height = 5; }), "wholly in the padding"));
  CHECK(has(with([](PoolShape& s) { s.out_width = 6; }), "wholly in the padding"));
  // Global kinds ignore the window (even a nonsensical one).
  CHECK(with([](PoolShape& s) { s.kind = PoolKind::global_avg; s.kernel_h = 0; s.out_height = 0; }).empty());
  HostInfo bare;  // no SIMD
  auto r = plan_pool(ok, bare);
  REQUIRE(std::holds_alternative<std::string>(r));
  CHECK(has(std::get<std::string>(r), "AVX2"));
}

TEST_CASE("pool: plans are pure, pick the ISA from the host, and are named") {
  const PoolShape s{.channels = 64, .height = 112, .width = 112, .kind = PoolKind::max, .kernel_h = 3, .kernel_w = 3,
                    .stride_h = 2, .stride_w = 2, .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
                    .out_height = 56, .out_width = 56};
  auto a = std::get<PoolPlan>(plan_pool(s, host_for(Isa::avx512)));
  CHECK(a == std::get<PoolPlan>(plan_pool(s, host_for(Isa::avx512))));
  CHECK(a.block == 16);
  CHECK(a.name() == "f32_maxpool_k3_s2_16x28__avx512");
  auto c = std::get<PoolPlan>(plan_pool(s, host_for(Isa::avx2)));
  CHECK(c.block == 8);
  CHECK(c.name() == "f32_maxpool_k3_s2_8x12__avx2");
  PoolShape g{.channels = 1280, .height = 7, .width = 7, .kind = PoolKind::global_avg};
  CHECK(std::get<PoolPlan>(plan_pool(g, host_for(Isa::avx512))).name() == "f32_global_avgpool_16__avx512");
  // Identical layers share one kernel; a different window does not.
  if (cpu_has(Isa::avx2)) {
    auto k1 = get_pool_kernel(c, "node 'a'");
    auto k2 = get_pool_kernel(c, "node 'b'");
    CHECK(k1.get() == k2.get());
    auto bad = c;
    bad.pixels = 14;  // 14 accumulators + 3 > 16 ymm
    CHECK_THROWS_AS(PoolKernel(bad, "test"), std::invalid_argument);
  }
}

}  // TEST_SUITE
