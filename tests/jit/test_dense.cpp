// DenseTester: runs the dense k x k JIT kernel on seeded data and compares it, on plain
// NCHW after layout conversion, with ops/conv.hpp's conv_reference.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "jit/dense/dense.hpp"
#include "jit/layout.hpp"
#include "ops/conv.hpp"
#include "tests/jit/jit_test_util.hpp"

namespace {

using namespace nnjit::jit;
using nnjit::testing::activation_reference;
using nnjit::testing::activation_slope;
using nnjit::testing::cpu_has;
using nnjit::testing::GuardedArray;
using nnjit::testing::compact_planes;
using nnjit::testing::host_for;
using nnjit::testing::spread_planes;

class DenseTester {
 public:
  DenseTester& batch(int64_t n) { shape_.batch = n; return *this; }
  DenseTester& channels(int64_t c) { shape_.in_channels = c; return *this; }
  DenseTester& out_channels(int64_t k) { shape_.out_channels = k; return *this; }
  DenseTester& height(int64_t h) { shape_.height = h; return *this; }
  DenseTester& width(int64_t w) { shape_.width = w; return *this; }
  DenseTester& size(int64_t hw) { return height(hw).width(hw); }
  DenseTester& kernel(int k) { shape_.kernel = k; return *this; }
  DenseTester& stride(int s) { shape_.stride = s; return *this; }
  DenseTester& dilation(int d) { shape_.dilation = d; return *this; }
  DenseTester& pads(int64_t top, int64_t left, int64_t bottom, int64_t right) {
    shape_.pad_top = top;
    shape_.pad_left = left;
    shape_.pad_bottom = bottom;
    shape_.pad_right = right;
    return *this;
  }
  DenseTester& pad(int64_t p) { return pads(p, p, p, p); }
  // "Same" padding for stride 1: k/2 * dilation on every side.
  DenseTester& same() { return pad(shape_.kernel / 2 * shape_.dilation); }
  DenseTester& bias(bool b) { shape_.has_bias = b; return *this; }
  DenseTester& activation(const Activation& a) { shape_.activation = a; return *this; }
  DenseTester& residual(ResidualMode m) { shape_.residual = m; return *this; }
  DenseTester& residual(bool r) { return residual(r ? ResidualMode::before_activation : ResidualMode::none); }
  DenseTester& in_place(bool b) { in_place_ = b; return *this; }
  // src in plain NCHW (the stems' source mode).
  DenseTester& nchw(bool b) { shape_.src_nchw = b; return *this; }
  // Plane strides this many pixels past the planes themselves (the gaps hold NaN).
  DenseTester& plane_gaps(int64_t src, int64_t dst) {
    src_gap_ = src;
    dst_gap_ = dst;
    return *this;
  }
  DenseTester& isa(Isa i) { isa_ = i; return *this; }
  // One call per output-channel tile and output row, in reverse (how threads split it).
  DenseTester& split(bool b) { split_ = b; return *this; }
  DenseTester& seed(uint32_t s) { seed_ = s; return *this; }

  void Test() const {
    if (!cpu_has(isa_)) return;  // this machine cannot run the variant
    DenseShape s = shape_;
    if (src_gap_) s.src_plane = s.height * s.width + src_gap_;
    if (dst_gap_) s.dst_plane = s.out_height() * s.out_width() + dst_gap_;
    const std::string what = s.key() + " on " + to_string(isa_);
    auto planned = plan_dense(s, host_for(isa_));
    if (auto* why = std::get_if<std::string>(&planned)) FAIL(what << ": " << *why);
    const DensePlan& plan = std::get<DensePlan>(planned);
    REQUIRE(plan.isa == isa_);
    const int B = plan.block;
    const int64_t N = s.batch, C = s.in_channels, K = s.out_channels, H = s.height, W = s.width, k = s.kernel;
    const int64_t Ho = s.out_height(), Wo = s.out_width();

    std::mt19937 rng(seed_);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    auto random = [&](int64_t n) {
      std::vector<float> v(static_cast<std::size_t>(n));
      for (float& x : v) x = dist(rng);
      return v;
    };
    const std::vector<float> src = random(N * C * H * W), weights = random(K * C * k * k), bias = random(K),
                             residual = random(N * K * Ho * Wo);

    nnjit::ops::ConvParams cp;
    cp.in_size = {H, W};
    cp.kernel = {k, k};
    cp.stride = {s.stride, s.stride};
    cp.dilation = {s.dilation, s.dilation};
    cp.pad_begin = {s.pad_top, s.pad_left};
    cp.pad_end = {s.pad_bottom, s.pad_right};
    cp.out_size = {Ho, Wo};
    cp.batch = N;
    cp.in_channels = C;
    cp.out_channels = K;
    cp.groups = 1;
    cp.has_bias = s.has_bias;
    // The convolution, and the same with absolute values: the scale its rounding error
    // grows with.
    std::vector<float> conv(static_cast<std::size_t>(N * K * Ho * Wo)), mag(conv.size());
    nnjit::ops::conv_reference(cp, src.data(), weights.data(), s.has_bias ? bias.data() : nullptr, conv.data());
    auto abs_of = [](std::vector<float> v) {
      for (float& x : v) x = std::fabs(x);
      return v;
    };
    const std::vector<float> asrc = abs_of(src), aw = abs_of(weights), ab = abs_of(bias);
    nnjit::ops::conv_reference(cp, asrc.data(), aw.data(), s.has_bias ? ab.data() : nullptr, mag.data());

    const bool has_res = s.residual != ResidualMode::none;
    std::vector<double> expected(conv.size()), scale(conv.size());
    for (std::size_t i = 0; i < conv.size(); ++i) {
      const double r = has_res ? residual[i] : 0.0;
      double y = conv[i];
      if (s.residual == ResidualMode::before_activation) y += r;
      y = activation_reference(s.activation, y);
      if (s.residual == ResidualMode::after_activation) y += r;
      expected[i] = y;
      scale[i] = (mag[i] + std::fabs(r)) * activation_slope(s.activation) + std::fabs(y);
    }

    AlignedBuffer<float> bsrc(s.src_nchw ? N * C * H * W : blocked_size(N, C, H * W, B));
    if (s.src_nchw) std::copy(src.begin(), src.end(), bsrc.data());
    else nchw_to_blocked(src.data(), bsrc.data(), N, C, H * W, B);
    // Padding lanes of src hold NaN: the kernel must never read them.
    for (int64_t n = 0; n < N && !s.src_nchw; ++n)
      for (int64_t c = C; c < blocked_channels(C, B); ++c)
        for (int64_t px = 0; px < H * W; ++px)
          bsrc[static_cast<std::size_t>(((n * plan.in_blocks + c / B) * H * W + px) * B + c % B)] = std::nanf("");
    AlignedBuffer<float> bdst(blocked_size(N, K, Ho * Wo, B)), bres(blocked_size(N, K, Ho * Wo, B));
    std::fill(bdst.data(), bdst.data() + bdst.size(), std::nanf(""));  // every lane must be written
    nchw_to_blocked(residual.data(), bres.data(), N, K, Ho * Wo, B);
    if (has_res && in_place_) std::copy(bres.data(), bres.data() + bres.size(), bdst.data());

    // With plane gaps the kernel sees every plane at its stride; its output is compacted after.
    const int64_t src_planes = s.src_nchw ? N * C : N * plan.in_blocks, src_lanes = s.src_nchw ? 1 : B;
    const int64_t dst_planes = N * plan.out_blocks;
    bsrc = spread_planes(bsrc, src_planes, H * W, s.src_plane_pixels(), src_lanes);
    AlignedBuffer<float> natural_dst = std::move(bdst);
    bdst = spread_planes(natural_dst, dst_planes, Ho * Wo, s.dst_plane_pixels(), B);
    bres = spread_planes(bres, dst_planes, Ho * Wo, s.dst_plane_pixels(), B);
    if (has_res && in_place_) std::copy(bres.data(), bres.data() + bres.size(), bdst.data());

    DenseWeights packed = pack_dense_weights(plan, weights.data(), s.has_bias ? bias.data() : nullptr);
    auto kernel = get_dense_kernel(plan, "DenseTester");
    {
      // The kernel sees every buffer just before a guard page.
      GuardedArray gsrc(bsrc.size(), bsrc.data()), gdst(bdst.size(), bdst.data()), gres(bres.size(), bres.data()),
          gw(packed.weights.size(), packed.weights.data()), gb(packed.bias.size(), packed.bias.data());
      float* dst_ptr = gdst.data();
      const float* res_ptr = !has_res ? nullptr : in_place_ ? dst_ptr : gres.data();
      for (int64_t n = 0; n < N; ++n) {
        DenseArgs args{gsrc.data() + n * plan.src_image_floats(),
                       dst_ptr + n * plan.dst_image_floats(),
                       gw.data(),
                       gb.data(),
                       res_ptr != nullptr ? res_ptr + n * plan.dst_image_floats() : nullptr,
                       0,
                       plan.tiles(),
                       0,
                       Ho};
        if (!split_) {
          (*kernel)(args);
          continue;
        }
        for (int64_t t = plan.tiles() - 1; t >= 0; --t)
          for (int64_t r = Ho - 1; r >= 0; --r) {
            args.tile_begin = t;
            args.tile_end = t + 1;
            args.row_begin = r;
            args.row_end = r + 1;
            (*kernel)(args);
          }
      }
      std::copy(dst_ptr, dst_ptr + bdst.size(), bdst.data());
    }
    if (!compact_planes(bdst, natural_dst, dst_planes, Ho * Wo, s.dst_plane_pixels(), B))
      FAIL(what << ": the kernel wrote into a gap between planes");
    bdst = std::move(natural_dst);

    const int64_t kpad = blocked_channels(K, B);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = K; c < kpad; ++c)
        for (int64_t px = 0; px < Ho * Wo; ++px) {
          const float v = bdst[static_cast<std::size_t>(((n * (kpad / B) + c / B) * Ho * Wo + px) * B + c % B)];
          if (v != 0.f)
            FAIL(what << " [" << plan.name() << "]: padding lane n=" << n << " k=" << c << " px=" << px << " holds "
                      << v << ", not 0");
        }
    std::vector<float> got(expected.size());
    blocked_to_nchw(bdst.data(), got.data(), N, K, Ho * Wo, B);
    const double tol = 2e-7 * std::sqrt(static_cast<double>(C * k * k) + 1) * 4;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double err = std::fabs(got[i] - expected[i]);
      if (!(err <= tol * scale[i] + 1e-6 * std::fabs(expected[i]) + 1e-30)) {
        const int64_t px = static_cast<int64_t>(i) % (Ho * Wo), nk = static_cast<int64_t>(i) / (Ho * Wo);
        FAIL(what << " [" << plan.name() << "]: mismatch at n=" << nk / K << " k=" << nk % K << " oh=" << px / Wo
                  << " ow=" << px % Wo << ": got " << got[i] << ", expected " << expected[i] << " (error " << err
                  << ", allowed " << tol * scale[i] + 1e-6 * std::fabs(expected[i]) << ")");
      }
    }
  }

 private:
  DenseShape shape_{.in_channels = 16, .out_channels = 16, .height = 5, .width = 5, .kernel = 3,
                    .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1};
  Isa isa_ = Isa::avx512;
  bool in_place_ = false;
  bool split_ = false;
  uint32_t seed_ = 42;
  int64_t src_gap_ = 0, dst_gap_ = 0;
};

const Isa kIsas[] = {
#define NNJIT_DENSE_VARIANT(id) Isa::id,
#include "jit/dense/dense.inc"
#undef NNJIT_DENSE_VARIANT
};

}  // namespace

TEST_SUITE("jit") {

TEST_CASE("dense: channels below, at and above the block") {
  const int64_t counts[] = {1, 3, 8, 15, 16, 17, 32, 33, 64};
  for (Isa isa : kIsas)
    for (int64_t c : counts)
      for (int64_t k : counts) DenseTester().channels(c).out_channels(k).height(5).width(6).pad(1).isa(isa).Test();
}

TEST_CASE("dense: spatial sizes, kernels, strides and pads") {
  const int64_t sizes[] = {1, 2, 3, 5, 7, 13, 23, 56};
  for (Isa isa : kIsas)
    for (int k : {3, 5, 7})
      for (int stride : {1, 2})
        for (int64_t hw : sizes) {
          const int64_t p = k / 2;
          if (hw + 2 * p < k) continue;
          DenseTester().channels(17).out_channels(40).size(hw).kernel(k).stride(stride).pad(p).isa(isa).Test();
          if (hw >= k) DenseTester().channels(9).out_channels(24).size(hw).kernel(k).stride(stride).pad(0).isa(isa).Test();
        }
  for (Isa isa : kIsas) {
    // Asymmetric pads, and rows / columns of padding only (tiles with no tap inside).
    DenseTester().channels(20).out_channels(33).height(9).width(11).pads(0, 1, 1, 0).stride(2).isa(isa).Test();
    DenseTester().channels(20).out_channels(33).height(9).width(11).pads(2, 0, 0, 2).isa(isa).Test();
    DenseTester().channels(5).out_channels(16).height(4).width(5).pads(3, 3, 3, 3).isa(isa).Test();
    DenseTester().channels(5).out_channels(16).height(6).width(3).kernel(5).pads(4, 1, 0, 6).stride(2).isa(isa).Test();
    DenseTester().channels(8).out_channels(48).height(3).width(30).pads(1, 2, 1, 0).isa(isa).Test();
  }
}

TEST_CASE("dense: even kernels and strides up to 4 (patchify stems and downsamplers)") {
  for (Isa isa : kIsas) {
    for (int k : {2, 4, 6})
      for (int stride : {1, 2, 3, 4}) {
        CAPTURE(k);
        CAPTURE(stride);
        DenseTester().channels(17).out_channels(40).size(13).kernel(k).stride(stride).pad(0).isa(isa).Test();
        DenseTester().channels(24).out_channels(16).height(9).width(14).kernel(k).stride(stride).pads(1, 0, 0, 1).isa(isa).Test();
      }
    // ConvNeXt's downsamplers (2x2, stride 2) and its stem (4x4, stride 4, from NCHW).
    DenseTester().channels(96).out_channels(192).size(56).kernel(2).stride(2).isa(isa).Test();
    DenseTester().channels(3).out_channels(96).size(32).kernel(4).stride(4).nchw(true).isa(isa).Test();
    DenseTester().channels(3).out_channels(20).size(19).kernel(3).stride(3).nchw(true).isa(isa).Test();
  }
}

TEST_CASE("dense: dilation 2 and 4") {
  for (Isa isa : kIsas)
    for (int d : {2, 4})
      for (int stride : {1, 2}) {
        DenseTester().channels(24).out_channels(40).size(13).dilation(d).stride(stride).same().isa(isa).Test();
        DenseTester().channels(16).out_channels(16).size(23).kernel(5).dilation(d).stride(stride).same().isa(isa).Test();
      }
}

TEST_CASE("dense: every activation, with and without a residual") {
  for (Isa isa : kIsas)
    for (ActivationKind kind : all_activation_kinds())
      for (ResidualMode mode : {ResidualMode::none, ResidualMode::before_activation, ResidualMode::after_activation})
        for (int64_t k : {24, 64}) {
          DenseTester()
              .channels(20)
              .out_channels(k)
              .height(7)
              .width(9)
              .pad(1)
              .stride(k == 24 ? 2 : 1)
              .activation(Activation::of(kind))
              .residual(mode)
              .isa(isa)
              .Test();
        }
}

TEST_CASE("dense: without bias, batch, in-place residual, split calls") {
  for (Isa isa : kIsas) {
    DenseTester().channels(33).out_channels(50).bias(false).isa(isa).Test();
    DenseTester().channels(19).out_channels(50).batch(3).residual(true).activation(Activation::relu()).isa(isa).Test();
    DenseTester().channels(40).out_channels(72).size(8).residual(true).in_place(true).activation(Activation::relu()).isa(isa).Test();
    DenseTester().channels(24).out_channels(100).size(9).stride(2).activation(Activation::sigmoid()).split(true).isa(isa).Test();
    DenseTester().channels(24).out_channels(72).size(7).residual(ResidualMode::after_activation).split(true).isa(isa).Test();
  }
}

TEST_CASE("dense: plane strides past the planes (row buffers of fused steps)") {
  for (Isa isa : kIsas) {
    DenseTester().channels(20).out_channels(40).size(9).plane_gaps(7, 0).isa(isa).Test();
    DenseTester().channels(16).out_channels(24).size(11).stride(2).pad(1).plane_gaps(0, 13).split(true).isa(isa).Test();
    DenseTester().channels(33).out_channels(50).height(6).width(13).plane_gaps(29, 3).residual(true)
        .activation(Activation::relu()).isa(isa).Test();
    DenseTester().channels(24).out_channels(32).size(8).plane_gaps(5, 11).residual(true).in_place(true).isa(isa).Test();
    DenseTester().channels(3).out_channels(32).size(15).stride(2).pad(1).nchw(true).plane_gaps(17, 9)
        .activation(Activation::relu6()).isa(isa).Test();
  }
}

TEST_CASE("dense: plain NCHW source (stems)") {
  for (Isa isa : kIsas)
    for (int64_t c : {1, 3, 4, 17})
      for (int k : {3, 7})
        for (int stride : {1, 2}) {
          DenseTester().channels(c).out_channels(24).size(13).kernel(k).stride(stride).same().nchw(true)
              .activation(Activation::relu6()).isa(isa).Test();
          DenseTester().channels(c).out_channels(16).height(9).width(23).kernel(k).stride(stride).pad(1)
              .batch(2).nchw(true).isa(isa).Test();
        }
  for (Isa isa : kIsas)
    DenseTester().channels(3).out_channels(32).size(224).kernel(3).stride(2).pad(1).nchw(true)
        .activation(Activation::relu6()).isa(isa).Test();
}

TEST_CASE("dense: zoo shapes") {
  struct Zoo {
    int64_t c, k, hw;
    int kernel, stride;
    bool residual;
  };
  const Zoo shapes[] = {
      // ResNet-50: the stem (7x7 s2 on 3 channels) and the bottlenecks' 3x3
      {3, 64, 224, 7, 2, false},
      {64, 64, 56, 3, 1, false},
      {128, 128, 56, 3, 2, false},
      {128, 128, 28, 3, 1, false},
      {256, 256, 28, 3, 2, false},
      {256, 256, 14, 3, 1, false},
      {512, 512, 14, 3, 2, false},
      {512, 512, 7, 3, 1, false},
      // RepVGG-A0 (tools/zoo_nets.py): 3x3 + ReLU, widths 48, 96, 192, 1280
      {3, 48, 224, 3, 2, false},
      {48, 48, 112, 3, 2, false},
      {48, 48, 56, 3, 1, false},
      {48, 96, 56, 3, 2, false},
      {96, 96, 28, 3, 1, false},
      {96, 192, 28, 3, 2, false},
      {192, 192, 14, 3, 1, false},
      {192, 1280, 14, 3, 2, false},
      // DARTS stems
      {3, 16, 224, 3, 2, false},
      {16, 32, 112, 3, 2, false},
      {32, 32, 56, 3, 2, false},
  };
  for (Isa isa : kIsas)
    for (const Zoo& z : shapes)
      DenseTester()
          .channels(z.c)
          .out_channels(z.k)
          .size(z.hw)
          .kernel(z.kernel)
          .stride(z.stride)
          .same()
          .activation(Activation::relu())
          .residual(z.residual)
          .isa(isa)
          .Test();
}

TEST_CASE("dense: the plan refuses what it cannot run, and says why") {
  const HostInfo host = host_for(Isa::avx512);
  auto reason = [&](DenseShape s) {
    auto r = plan_dense(s, host);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  CHECK(reason({.in_channels = 0, .out_channels = 4, .height = 3, .width = 3}).find("positive") != std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 9, .width = 9, .kernel = 8}).find("kernel") !=
        std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 3, .width = 3, .kernel = 1}).find("kernel") !=
        std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 3, .width = 3, .stride = 5}).find("stride") !=
        std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 3, .width = 3, .dilation = 3}).find("dilation") !=
        std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 2, .width = 3}).find("smaller") != std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 3, .width = 3, .pad_left = -1}).find("negative") !=
        std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 3, .width = 3,
                .activation = Activation::clip(2.f, 1.f)})
            .find("clip") != std::string::npos);
  CHECK(reason({.in_channels = 4096, .out_channels = 4096, .height = 1 << 12, .width = 1 << 12}).find("32-bit") !=
        std::string::npos);
  HostInfo bare;  // no SIMD
  auto r = plan_dense({.in_channels = 4, .out_channels = 4, .height = 3, .width = 3}, bare);
  REQUIRE(std::holds_alternative<std::string>(r));
  CHECK(std::get<std::string>(r).find("AVX2") != std::string::npos);
}

TEST_CASE("dense: plans are pure, and pick the ISA and tiles from the host") {
  const DenseShape s{.in_channels = 64, .out_channels = 64, .height = 56, .width = 56, .kernel = 3,
                     .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1, .activation = Activation::relu()};
  auto a = std::get<DensePlan>(plan_dense(s, host_for(Isa::avx512)));
  auto b = std::get<DensePlan>(plan_dense(s, host_for(Isa::avx512)));
  CHECK(a == b);
  CHECK(a.key() == b.key());
  CHECK(a.name() == "f32_dense_k3_relu_64x7__avx512");
  auto c = std::get<DensePlan>(plan_dense(s, host_for(Isa::avx2)));
  CHECK(c.block == 8);
  CHECK(c.name().find("__avx2") != std::string::npos);
  CHECK(c.main.oc_blocks * c.main.pixels + c.main.oc_blocks + 1 <= 16);
}

TEST_CASE("dense: the kernel refuses a plan that was not made for it") {
  if (!cpu_has(Isa::avx2)) return;
  const DenseShape s{.in_channels = 32, .out_channels = 32, .height = 4, .width = 4, .kernel = 3, .pad_top = 1,
                     .pad_left = 1, .pad_bottom = 1, .pad_right = 1};
  auto plan = std::get<DensePlan>(plan_dense(s, host_for(Isa::avx2)));
  auto too_big = plan;
  too_big.main.pixels = 16;
  CHECK_THROWS_AS(DenseKernel(too_big, "test"), std::invalid_argument);
  auto uncovered = plan;
  uncovered.main_tiles += 1;
  CHECK_THROWS_AS(DenseKernel(uncovered, "test"), std::invalid_argument);
}

TEST_CASE("dense: identical layers share one kernel") {
  if (!cpu_has(Isa::avx2)) return;
  const DenseShape s{.in_channels = 24, .out_channels = 48, .height = 4, .width = 4};
  auto plan = std::get<DensePlan>(plan_dense(s, host_for(Isa::avx2)));
  CHECK(get_dense_kernel(plan, "node 'a'").get() == get_dense_kernel(plan, "node 'b'").get());
}

}  // TEST_SUITE
