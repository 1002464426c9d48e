// DepthwiseTester: runs the depthwise JIT kernel on seeded data and compares it, on plain
// NCHW after layout conversion, with ops/conv.hpp's conv_reference (groups = channels).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "jit/depthwise/depthwise.hpp"
#include "jit/layout.hpp"
#include "ops/conv.hpp"
#include "tests/jit/jit_test_util.hpp"

namespace {

using namespace nnjit::jit;
using nnjit::testing::activation_reference;
using nnjit::testing::activation_slope;
using nnjit::testing::cpu_has;
using nnjit::testing::GuardedArray;
using nnjit::testing::host_for;

class DepthwiseTester {
 public:
  DepthwiseTester& batch(int64_t n) { shape_.batch = n; return *this; }
  DepthwiseTester& channels(int64_t c) { shape_.channels = c; return *this; }
  DepthwiseTester& height(int64_t h) { shape_.height = h; return *this; }
  DepthwiseTester& width(int64_t w) { shape_.width = w; return *this; }
  DepthwiseTester& size(int64_t hw) { return height(hw).width(hw); }
  DepthwiseTester& kernel(int k) { shape_.kernel = k; return same_pads(); }
  DepthwiseTester& stride(int s) { shape_.stride = s; return *this; }
  DepthwiseTester& dilation(int d) { shape_.dilation = d; return same_pads(); }
  // Pads (top, left, bottom, right), as ONNX's pads = [top, left, bottom, right].
  DepthwiseTester& pads(int64_t t, int64_t l, int64_t b, int64_t r) {
    shape_.pad_top = t, shape_.pad_left = l, shape_.pad_bottom = b, shape_.pad_right = r;
    return *this;
  }
  DepthwiseTester& pads(int64_t all) { return pads(all, all, all, all); }
  // d * (k / 2) on every side: "same" for stride 1 (the default, refreshed by kernel()
  // and dilation()).
  DepthwiseTester& same_pads() { return pads(int64_t{shape_.dilation} * (shape_.kernel / 2)); }
  DepthwiseTester& bias(bool b) { shape_.has_bias = b; return *this; }
  DepthwiseTester& activation(const Activation& a) { shape_.activation = a; return *this; }
  DepthwiseTester& residual(ResidualMode m) { shape_.residual = m; return *this; }
  DepthwiseTester& residual(bool r) { return residual(r ? ResidualMode::before_activation : ResidualMode::none); }
  // The residual buffer is dst itself (an in-place add).
  DepthwiseTester& in_place(bool b) { in_place_ = b; return *this; }
  DepthwiseTester& isa(Isa i) { isa_ = i; return *this; }
  // One call per channel block and per band of rows (how threads split a layer).
  DepthwiseTester& split(bool b) { split_ = b; return *this; }
  DepthwiseTester& seed(uint32_t s) { seed_ = s; return *this; }

  void Test() const {
    if (!cpu_has(isa_)) return;  // this machine cannot run the variant
    const auto& s = shape_;
    const std::string what = s.key() + " on " + to_string(isa_);
    auto planned = plan_depthwise(s, host_for(isa_));
    if (auto* why = std::get_if<std::string>(&planned)) FAIL(what << ": " << *why);
    const DepthwisePlan& plan = std::get<DepthwisePlan>(planned);
    REQUIRE(plan.isa == isa_);
    const int B = plan.block;
    const int64_t N = s.batch, C = s.channels, H = s.height, W = s.width, k = s.kernel;
    const int64_t Ho = s.out_height(), Wo = s.out_width();

    std::mt19937 rng(seed_);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    auto random = [&](int64_t n) {
      std::vector<float> v(static_cast<std::size_t>(n));
      for (float& x : v) x = dist(rng);
      return v;
    };
    const std::vector<float> src = random(N * C * H * W), weights = random(C * k * k), bias = random(C),
                             residual = random(N * C * Ho * Wo);

    nnjit::ops::ConvParams cp;
    cp.batch = N;
    cp.in_channels = cp.out_channels = cp.groups = C;
    cp.has_bias = s.has_bias;
    cp.in_size = {H, W};
    cp.kernel = {k, k};
    cp.stride = {s.stride, s.stride};
    cp.dilation = {s.dilation, s.dilation};
    cp.pad_begin = {s.pad_top, s.pad_left};
    cp.pad_end = {s.pad_bottom, s.pad_right};
    cp.out_size = {Ho, Wo};
    // The convolution, and the same over magnitudes: the scale its rounding error grows with.
    std::vector<float> conv(static_cast<std::size_t>(N * C * Ho * Wo)), mag(conv.size());
    nnjit::ops::conv_reference(cp, src.data(), weights.data(), s.has_bias ? bias.data() : nullptr, conv.data());
    auto abs_of = [](std::vector<float> v) {
      for (float& x : v) x = std::fabs(x);
      return v;
    };
    nnjit::ops::conv_reference(cp, abs_of(src).data(), abs_of(weights).data(),
                               s.has_bias ? abs_of(bias).data() : nullptr, mag.data());
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

    AlignedBuffer<float> bsrc(blocked_size(N, C, H * W, B));
    nchw_to_blocked(src.data(), bsrc.data(), N, C, H * W, B);
    AlignedBuffer<float> bdst(blocked_size(N, C, Ho * Wo, B)), bres(blocked_size(N, C, Ho * Wo, B));
    // Poison dst, padding lanes included: every lane must be written.
    std::fill(bdst.data(), bdst.data() + bdst.size(), std::nanf(""));
    nchw_to_blocked(residual.data(), bres.data(), N, C, Ho * Wo, B);
    if (has_res && in_place_) std::copy(bres.data(), bres.data() + bres.size(), bdst.data());

    DepthwiseWeights packed = pack_depthwise_weights(plan, weights.data(), s.has_bias ? bias.data() : nullptr);
    auto kernel = get_depthwise_kernel(plan, "DepthwiseTester");
    {
      // The kernel sees every buffer just before a guard page.
      GuardedArray gsrc(bsrc.size(), bsrc.data()), gdst(bdst.size(), bdst.data()), gres(bres.size(), bres.data()),
          gw(packed.weights.size(), packed.weights.data()), gb(packed.bias.size(), packed.bias.data());
      float* dst_ptr = gdst.data();
      const float* res_ptr = !has_res ? nullptr : in_place_ ? dst_ptr : gres.data();
      for (int64_t n = 0; n < N; ++n) {
        DepthwiseArgs args{gsrc.data() + n * plan.src_image_floats(),
                           dst_ptr + n * plan.dst_image_floats(),
                           gw.data(),
                           gb.data(),
                           res_ptr != nullptr ? res_ptr + n * plan.dst_image_floats() : nullptr,
                           0,
                           plan.blocks,
                           0,
                           Ho};
        if (!split_) {
          (*kernel)(args);
          continue;
        }
        // As threads would: one block per call, in bands of 3 rows, last first.
        for (int64_t b = plan.blocks - 1; b >= 0; --b)
          for (int64_t r = (Ho - 1) / 3 * 3; r >= 0; r -= 3) {
            args.block_begin = b, args.block_end = b + 1;
            args.row_begin = r, args.row_end = std::min(Ho, r + 3);
            (*kernel)(args);
          }
      }
      std::copy(dst_ptr, dst_ptr + bdst.size(), bdst.data());
    }

    const int64_t cpad = blocked_channels(C, B);
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
    // Both sides sum at most 49 products in float; the activations' own error is ~1e-6.
    const double tol = 4e-6;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double err = std::fabs(got[i] - expected[i]);
      const double allowed = tol * scale[i] + 1e-6 * std::fabs(expected[i]) + 1e-30;
      if (!(err <= allowed)) {
        const int64_t px = static_cast<int64_t>(i) % (Ho * Wo), nc = static_cast<int64_t>(i) / (Ho * Wo);
        FAIL(what << " [" << plan.name() << "]: mismatch at n=" << nc / C << " c=" << nc % C << " oh=" << px / Wo
                  << " ow=" << px % Wo << ": got " << got[i] << ", expected " << expected[i] << " (error " << err
                  << ", allowed " << allowed << ")");
      }
    }
  }

 private:
  DepthwiseShape shape_{.channels = 16, .height = 5, .width = 5, .kernel = 3, .pad_top = 1, .pad_left = 1,
                        .pad_bottom = 1, .pad_right = 1};
  Isa isa_ = Isa::avx512;
  bool in_place_ = false;
  bool split_ = false;
  uint32_t seed_ = 42;
};

const Isa kIsas[] = {
#define NNJIT_DEPTHWISE_VARIANT(id) Isa::id,
#include "jit/depthwise/depthwise.inc"
#undef NNJIT_DEPTHWISE_VARIANT
};

}  // namespace

TEST_SUITE("jit") {

TEST_CASE("depthwise: channels below, at and above the block") {
  for (Isa isa : kIsas)
    for (int64_t c : {1, 3, 8, 15, 16, 17, 32, 33, 96})
      for (int k : {3, 5}) DepthwiseTester().channels(c).height(7).width(9).kernel(k).isa(isa).Test();
}

TEST_CASE("depthwise: spatial sizes, kernels and strides") {
  for (Isa isa : kIsas)
    for (int k : {3, 5, 7})
      for (int stride : {1, 2})
        for (int64_t hw : {1, 2, 3, 5, 7, 13, 23, 55}) {
          DepthwiseTester().channels(17).size(hw).kernel(k).stride(stride).isa(isa).Test();
          if (hw != 7) DepthwiseTester().channels(9).height(7).width(hw).kernel(k).stride(stride).isa(isa).Test();
        }
}

TEST_CASE("depthwise: 1x1 (a per-channel affine: BatchNormalization), even kernels, strides up to 4") {
  for (Isa isa : kIsas)
    for (int k : {1, 2, 4, 6})
      for (int stride : {1, 2, 3, 4})
        for (int64_t hw : {1, 5, 13, 56}) {
          if (hw < k) continue;
          DepthwiseTester().channels(17).size(hw).kernel(k).stride(stride).pads(0, 0, 0, 0).isa(isa).Test();
          DepthwiseTester().channels(40).height(7).width(hw).kernel(k).stride(stride).isa(isa).Test();
        }
}

TEST_CASE("depthwise: wide rows (several looped tiles)") {
  for (Isa isa : kIsas)
    for (int k : {3, 5, 7})
      for (int stride : {1, 2}) DepthwiseTester().channels(20).height(5).width(112).kernel(k).stride(stride).isa(isa).Test();
}

TEST_CASE("depthwise: dilation") {
  for (Isa isa : kIsas)
    for (int d : {2, 4})
      for (int k : {3, 5, 7})
        for (int stride : {1, 2})
          for (int64_t hw : {1, 5, 13, 30}) {
            DepthwiseTester().channels(18).size(hw).kernel(k).dilation(d).stride(stride).isa(isa).Test();
            if (hw > d * (k - 1))  // unpadded (valid) convolution
              DepthwiseTester().channels(18).size(hw).kernel(k).dilation(d).stride(stride).pads(0).isa(isa).Test();
          }
}

TEST_CASE("depthwise: pads, symmetric and not") {
  const int64_t pad_sets[][4] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}, {0, 0, 1, 1}, {1, 1, 0, 0},
                                 {0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 0, 2}, {1, 3, 0, 2}, {5, 4, 6, 7}};
  for (Isa isa : kIsas)
    for (int k : {3, 5, 7})
      for (int stride : {1, 2})
        for (const auto& pd : pad_sets)
          DepthwiseTester().channels(21).height(11).width(13).kernel(k).stride(stride).pads(pd[0], pd[1], pd[2], pd[3])
              .isa(isa).Test();
}

TEST_CASE("depthwise: every activation, with and without a residual") {
  for (Isa isa : kIsas)
    for (ActivationKind kind : all_activation_kinds())
      for (ResidualMode mode : {ResidualMode::none, ResidualMode::before_activation, ResidualMode::after_activation})
        for (int k : {3, 5}) {
          DepthwiseTester()
              .channels(k == 3 ? 24 : 40)
              .height(9)
              .width(k == 3 ? 37 : 11)
              .kernel(k)
              .stride(k == 5 ? 2 : 1)
              .activation(Activation::of(kind))
              .residual(mode)
              .isa(isa)
              .Test();
        }
}

TEST_CASE("depthwise: activation parameters") {
  const float inf = std::numeric_limits<float>::infinity();
  for (Isa isa : kIsas) {
    DepthwiseTester().channels(20).activation(Activation::clip(-0.3f, 0.4f)).isa(isa).Test();
    DepthwiseTester().channels(20).activation(Activation::clip(0.1f, inf)).isa(isa).Test();
    DepthwiseTester().channels(20).activation(Activation::clip(-inf, 0.2f)).isa(isa).Test();
    DepthwiseTester().channels(20).activation(Activation::leaky_relu(0.2f)).isa(isa).Test();
    DepthwiseTester().channels(20).activation(Activation::hard_sigmoid(0.5f, 0.1f)).isa(isa).Test();
  }
}

TEST_CASE("depthwise: without bias, batch, in-place residual, split calls") {
  for (Isa isa : kIsas) {
    DepthwiseTester().channels(33).size(9).bias(false).isa(isa).Test();
    DepthwiseTester().channels(33).size(9).bias(false).residual(true).isa(isa).Test();
    DepthwiseTester().channels(33).size(8).batch(3).residual(true).activation(Activation::relu()).isa(isa).Test();
    DepthwiseTester().channels(40).size(9).batch(2).stride(2).kernel(5).isa(isa).Test();
    DepthwiseTester().channels(40).size(10).residual(true).in_place(true).activation(Activation::relu6()).isa(isa).Test();
    for (int k : {3, 7})
      DepthwiseTester().channels(50).height(10).width(40).kernel(k).stride(k == 7 ? 2 : 1).batch(2)
          .activation(Activation::silu()).residual(ResidualMode::after_activation).split(true).isa(isa).Test();
  }
}

TEST_CASE("depthwise: zoo shapes") {
  struct Zoo {
    int64_t c, hw;
    int k, stride, dilation;
    Activation act;
  };
  const Zoo shapes[] = {
      // MobileNetV2 (ReLU6)
      {32, 112, 3, 1, 1, Activation::relu6()},
      {96, 112, 3, 2, 1, Activation::relu6()},
      {144, 56, 3, 1, 1, Activation::relu6()},
      {144, 56, 3, 2, 1, Activation::relu6()},
      {192, 28, 3, 1, 1, Activation::relu6()},
      {192, 28, 3, 2, 1, Activation::relu6()},
      {384, 14, 3, 1, 1, Activation::relu6()},
      {576, 14, 3, 1, 1, Activation::relu6()},
      {576, 14, 3, 2, 1, Activation::relu6()},
      {960, 7, 3, 1, 1, Activation::relu6()},
      // EfficientNet-B0 (SiLU)
      {32, 112, 3, 1, 1, Activation::silu()},
      {96, 112, 3, 2, 1, Activation::silu()},
      {144, 56, 5, 2, 1, Activation::silu()},
      {240, 28, 5, 1, 1, Activation::silu()},
      {240, 28, 3, 2, 1, Activation::silu()},
      {480, 14, 3, 1, 1, Activation::silu()},
      {480, 14, 5, 1, 1, Activation::silu()},
      {672, 14, 5, 1, 1, Activation::silu()},
      {672, 14, 5, 2, 1, Activation::silu()},
      {1152, 7, 5, 1, 1, Activation::silu()},
      {1152, 7, 3, 1, 1, Activation::silu()},
      // The zoo's DARTS net (tools/zoo_nets.py): dil_conv_3x3 (d2) and dil_conv_3x3_d4
      // on 28x28x32, 14x14x64, 7x7x128, stride 2 in the reduction cells; sep_conv 3x3
      // and 5x5. ReLU comes before them and BatchNorm after the pointwise, so none fused.
      {32, 28, 3, 1, 2, Activation::none()},
      {32, 28, 3, 1, 4, Activation::none()},
      {64, 14, 3, 1, 2, Activation::none()},
      {64, 14, 3, 1, 4, Activation::none()},
      {128, 7, 3, 1, 2, Activation::none()},
      {128, 7, 3, 1, 4, Activation::none()},
      {64, 28, 3, 2, 2, Activation::none()},
      {128, 14, 3, 2, 2, Activation::none()},
      {32, 28, 5, 1, 1, Activation::none()},
      {64, 28, 5, 2, 1, Activation::none()},
      {128, 7, 5, 1, 1, Activation::none()},
      {64, 14, 3, 1, 1, Activation::none()},
      // Dilated 5x5 (DeepLab-style), beyond the zoo.
      {48, 32, 5, 1, 2, Activation::none()},
      {96, 16, 5, 1, 2, Activation::none()},
  };
  for (Isa isa : kIsas)
    for (const Zoo& z : shapes)
      DepthwiseTester().channels(z.c).size(z.hw).kernel(z.k).dilation(z.dilation).stride(z.stride).activation(z.act)
          .isa(isa).Test();
}

TEST_CASE("depthwise: the plan refuses what it cannot run, and says why") {
  const HostInfo host = host_for(Isa::avx512);
  auto reason = [&](DepthwiseShape s) {
    auto r = plan_depthwise(s, host);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  auto has = [](const std::string& s, const char* what) { return s.find(what) != std::string::npos; };
  CHECK(has(reason({.channels = 0, .height = 5, .width = 5}), "positive"));
  CHECK(has(reason({.channels = 4, .height = 9, .width = 9, .kernel = 8}), "7x7"));
  CHECK(has(reason({.channels = 4, .height = 5, .width = 5, .stride = 5}), "stride"));
  CHECK(has(reason({.channels = 4, .height = 9, .width = 9, .dilation = 3}), "dilation"));
  CHECK(has(reason({.channels = 4, .height = 5, .width = 5, .pad_top = -1}), "negative"));
  CHECK(has(reason({.channels = 4, .height = 2, .width = 5}), "smaller than the kernel"));
  CHECK(has(reason({.channels = 4, .height = 5, .width = 5, .activation = Activation::clip(2.f, 1.f)}), "clip"));
  CHECK(has(reason({.channels = 4, .height = 5, .width = 5, .activation = Activation::leaky_relu(std::nanf(""))}),
            "finite"));
  CHECK(has(reason({.channels = 1 << 20, .height = 1 << 12, .width = 1 << 12}), "32-bit"));
  HostInfo bare;  // no SIMD
  auto r = plan_depthwise({.channels = 4, .height = 5, .width = 5}, bare);
  REQUIRE(std::holds_alternative<std::string>(r));
  CHECK(has(std::get<std::string>(r), "AVX2"));
}

TEST_CASE("depthwise: plans are pure, pick the ISA from the host, and are named") {
  const DepthwiseShape s{.channels = 144, .height = 56, .width = 56, .kernel = 3, .stride = 2, .pad_top = 1,
                         .pad_left = 1, .pad_bottom = 1, .pad_right = 1, .activation = Activation::relu6()};
  auto a = std::get<DepthwisePlan>(plan_depthwise(s, host_for(Isa::avx512)));
  auto b = std::get<DepthwisePlan>(plan_depthwise(s, host_for(Isa::avx512)));
  CHECK(a == b);
  CHECK(a.key() == b.key());
  CHECK(a.block == 16);
  CHECK(a.name() == "f32_depthwise_k3_s2_clip_16x28__avx512");
  auto c = std::get<DepthwisePlan>(plan_depthwise(s, host_for(Isa::avx2)));
  CHECK(c.block == 8);
  CHECK(c.pixels + s.kernel + 1 <= 16);
  CHECK(c.name().find("__avx2") != std::string::npos);
  auto dilated = s;
  dilated.dilation = 2;
  dilated.stride = 1;
  dilated.pad_top = dilated.pad_left = dilated.pad_bottom = dilated.pad_right = 2;
  CHECK(std::get<DepthwisePlan>(plan_depthwise(dilated, host_for(Isa::avx512))).name() ==
        "f32_dilated_k3_d2_clip_16x28__avx512");
}

TEST_CASE("depthwise: the kernel refuses a plan that was not made for it") {
  if (!cpu_has(Isa::avx2)) return;
  const DepthwiseShape s{.channels = 32, .height = 40, .width = 40, .kernel = 5, .pad_top = 2, .pad_left = 2,
                         .pad_bottom = 2, .pad_right = 2};
  auto plan = std::get<DepthwisePlan>(plan_depthwise(s, host_for(Isa::avx2)));
  auto too_big = plan;
  too_big.pixels = 12;  // 12 accumulators + 5 weights + 1 input > 16 ymm
  CHECK_THROWS_AS(DepthwiseKernel(too_big, "test"), std::invalid_argument);
  auto padded = plan;
  padded.loop_begin = 0;  // the first tile reads the left padding
  padded.loop_tiles = 2;
  CHECK_THROWS_AS(DepthwiseKernel(padded, "test"), std::invalid_argument);
}

TEST_CASE("depthwise: identical layers share one kernel") {
  if (!cpu_has(Isa::avx2)) return;
  const DepthwiseShape s{.channels = 24, .height = 6, .width = 6, .pad_top = 1, .pad_left = 1, .pad_bottom = 1,
                         .pad_right = 1};
  auto plan = std::get<DepthwisePlan>(plan_depthwise(s, host_for(Isa::avx2)));
  auto k1 = get_depthwise_kernel(plan, "node 'a'");
  auto k2 = get_depthwise_kernel(plan, "node 'b'");
  CHECK(k1.get() == k2.get());
  auto other = s;
  other.activation = Activation::relu();
  auto k3 = get_depthwise_kernel(std::get<DepthwisePlan>(plan_depthwise(other, host_for(Isa::avx2))), "c");
  CHECK(k3.get() != k1.get());
}

}  // TEST_SUITE
