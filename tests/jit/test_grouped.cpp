// GroupedTester: runs the grouped JIT kernel on seeded data and compares it, on plain
// NCHW after layout conversion, with ops/conv.hpp's conv_reference (groups = G).
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "jit/grouped/grouped.hpp"
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

class GroupedTester {
 public:
  GroupedTester& batch(int64_t n) { shape_.batch = n; return *this; }
  // G groups of `in_per_group` input and `out_per_group` output channels.
  GroupedTester& groups(int64_t g, int64_t in_per_group, int64_t out_per_group) {
    shape_.groups = g, shape_.in_channels = g * in_per_group, shape_.out_channels = g * out_per_group;
    return *this;
  }
  GroupedTester& height(int64_t h) { shape_.height = h; return *this; }
  GroupedTester& width(int64_t w) { shape_.width = w; return *this; }
  GroupedTester& size(int64_t hw) { return height(hw).width(hw); }
  GroupedTester& kernel(int k) { shape_.kernel = k; return pads(k / 2); }
  GroupedTester& stride(int s) { shape_.stride = s; return *this; }
  // Pads (top, left, bottom, right), as ONNX's pads = [top, left, bottom, right].
  GroupedTester& pads(int64_t t, int64_t l, int64_t b, int64_t r) {
    shape_.pad_top = t, shape_.pad_left = l, shape_.pad_bottom = b, shape_.pad_right = r;
    return *this;
  }
  GroupedTester& pads(int64_t all) { return pads(all, all, all, all); }
  GroupedTester& bias(bool b) { shape_.has_bias = b; return *this; }
  GroupedTester& activation(const Activation& a) { shape_.activation = a; return *this; }
  GroupedTester& residual(ResidualMode m) { shape_.residual = m; return *this; }
  // The residual buffer is dst itself (an in-place add).
  GroupedTester& in_place(bool b) { in_place_ = b; return *this; }
  GroupedTester& isa(Isa i) { isa_ = i; return *this; }
  // One call per output block and per band of rows (how threads split a layer).
  GroupedTester& split(bool b) { split_ = b; return *this; }
  GroupedTester& seed(uint32_t s) { seed_ = s; return *this; }
  // Plane strides this many pixels past the planes themselves (the gaps hold NaN).
  GroupedTester& plane_gaps(int64_t src, int64_t dst) {
    src_gap_ = src;
    dst_gap_ = dst;
    return *this;
  }

  void Test() const {
    if (!cpu_has(isa_)) return;  // this machine cannot run the variant
    GroupedShape s = shape_;
    if (src_gap_) s.src_plane = s.height * s.width + src_gap_;
    if (dst_gap_) s.dst_plane = s.out_height() * s.out_width() + dst_gap_;
    const std::string what = s.key() + " on " + to_string(isa_);
    auto planned = plan_grouped(s, host_for(isa_));
    if (auto* why = std::get_if<std::string>(&planned)) FAIL(what << ": " << *why);
    const GroupedPlan& plan = std::get<GroupedPlan>(planned);
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
    const std::vector<float> src = random(N * C * H * W), weights = random(K * s.in_per_group() * k * k),
                             bias = random(K), residual = random(N * K * Ho * Wo);

    nnjit::ops::ConvParams cp;
    cp.batch = N;
    cp.in_channels = C;
    cp.out_channels = K;
    cp.groups = s.groups;
    cp.has_bias = s.has_bias;
    cp.in_size = {H, W};
    cp.kernel = {k, k};
    cp.stride = {s.stride, s.stride};
    cp.dilation = {1, 1};
    cp.pad_begin = {s.pad_top, s.pad_left};
    cp.pad_end = {s.pad_bottom, s.pad_right};
    cp.out_size = {Ho, Wo};
    // The convolution, and the same over magnitudes: the scale its rounding error grows with.
    std::vector<float> conv(static_cast<std::size_t>(N * K * Ho * Wo)), mag(conv.size());
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
    AlignedBuffer<float> bdst(blocked_size(N, K, Ho * Wo, B)), bres(blocked_size(N, K, Ho * Wo, B));
    // Poison dst, padding lanes included: every lane must be written.
    std::fill(bdst.data(), bdst.data() + bdst.size(), std::nanf(""));
    nchw_to_blocked(residual.data(), bres.data(), N, K, Ho * Wo, B);
    if (has_res && in_place_) std::copy(bres.data(), bres.data() + bres.size(), bdst.data());

    // With plane gaps the kernel sees every plane at its stride; its output is compacted after.
    bsrc = spread_planes(bsrc, N * plan.in_blocks, H * W, s.src_plane_pixels(), B);
    AlignedBuffer<float> natural_dst = std::move(bdst);
    bdst = spread_planes(natural_dst, N * plan.out_blocks, Ho * Wo, s.dst_plane_pixels(), B);
    bres = spread_planes(bres, N * plan.out_blocks, Ho * Wo, s.dst_plane_pixels(), B);
    if (has_res && in_place_) std::copy(bres.data(), bres.data() + bres.size(), bdst.data());

    GroupedWeights packed = pack_grouped_weights(plan, weights.data(), s.has_bias ? bias.data() : nullptr);
    auto kernel = get_grouped_kernel(plan, "GroupedTester");
    {
      // The kernel sees every buffer just before a guard page.
      GuardedArray gsrc(bsrc.size(), bsrc.data()), gdst(bdst.size(), bdst.data()), gres(bres.size(), bres.data()),
          gw(packed.weights.size(), packed.weights.data()), gb(packed.bias.size(), packed.bias.data());
      float* dst_ptr = gdst.data();
      const float* res_ptr = !has_res ? nullptr : in_place_ ? dst_ptr : gres.data();
      for (int64_t n = 0; n < N; ++n) {
        GroupedArgs args{gsrc.data() + n * plan.src_image_floats(),
                         dst_ptr + n * plan.dst_image_floats(),
                         gw.data(),
                         gb.data(),
                         res_ptr != nullptr ? res_ptr + n * plan.dst_image_floats() : nullptr,
                         0,
                         plan.out_blocks,
                         0,
                         Ho};
        if (!split_) {
          (*kernel)(args);
          continue;
        }
        // As threads would: one block per call, in bands of 3 rows, last first.
        for (int64_t b = plan.out_blocks - 1; b >= 0; --b)
          for (int64_t r = (Ho - 1) / 3 * 3; r >= 0; r -= 3) {
            args.block_begin = b, args.block_end = b + 1;
            args.row_begin = r, args.row_end = std::min(Ho, r + 3);
            (*kernel)(args);
          }
      }
      std::copy(dst_ptr, dst_ptr + bdst.size(), bdst.data());
    }
    if (!compact_planes(bdst, natural_dst, N * plan.out_blocks, Ho * Wo, s.dst_plane_pixels(), B))
      FAIL(what << ": the kernel wrote into a gap between planes");
    bdst = std::move(natural_dst);

    const int64_t kpad = blocked_channels(K, B);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = K; c < kpad; ++c)
        for (int64_t px = 0; px < Ho * Wo; ++px) {
          const float v = bdst[static_cast<std::size_t>(((n * (kpad / B) + c / B) * Ho * Wo + px) * B + c % B)];
          if (v != 0.f)
            FAIL(what << " [" << plan.name() << "]: padding lane n=" << n << " c=" << c << " px=" << px << " holds "
                      << v << ", not 0");
        }
    std::vector<float> got(expected.size());
    blocked_to_nchw(bdst.data(), got.data(), N, K, Ho * Wo, B);
    // Both sides sum up to C/G * k * k products in float, in different orders.
    const double tol = 2e-6 * std::sqrt(static_cast<double>(s.in_per_group() * k * k)) + 2e-6;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double err = std::fabs(got[i] - expected[i]);
      const double allowed = tol * scale[i] + 1e-6 * std::fabs(expected[i]) + 1e-30;
      if (!(err <= allowed)) {
        const int64_t px = static_cast<int64_t>(i) % (Ho * Wo), nc = static_cast<int64_t>(i) / (Ho * Wo);
        FAIL(what << " [" << plan.name() << "]: mismatch at n=" << nc / K << " k=" << nc % K << " oh=" << px / Wo
                  << " ow=" << px % Wo << ": got " << got[i] << ", expected " << expected[i] << " (error " << err
                  << ", allowed " << allowed << ")");
      }
    }
  }

 private:
  GroupedShape shape_{.in_channels = 32, .out_channels = 32, .groups = 4, .height = 5, .width = 5, .kernel = 3,
                      .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1};
  Isa isa_ = Isa::avx512;
  bool in_place_ = false;
  bool split_ = false;
  uint32_t seed_ = 42;
  int64_t src_gap_ = 0, dst_gap_ = 0;
};

const Isa kIsas[] = {
#define NNJIT_GROUPED_VARIANT(id) Isa::id,
#include "jit/grouped/grouped.inc"
#undef NNJIT_GROUPED_VARIANT
};

}  // namespace

TEST_SUITE("jit") {

TEST_CASE("grouped: groups and channels per group, below, at and above the block") {
  for (Isa isa : kIsas)
    for (int64_t g : {2, 4, 8, 32})
      for (int64_t cg : {1, 2, 3, 4, 8, 16, 32})
        for (int64_t kg : {1, 2, 3, 4, 8, 16, 32}) {
          if (g == 32 && cg != kg && (cg > 4 || kg > 4)) continue;  // keeps the sweep short
          GroupedTester().groups(g, cg, kg).height(4).width(6).isa(isa).Test();
        }
}

TEST_CASE("grouped: spatial sizes, kernels and strides") {
  for (Isa isa : kIsas)
    for (int k : {1, 3})
      for (int stride : {1, 2})
        for (int64_t hw : {1, 2, 3, 5, 7, 13, 23, 56}) {
          GroupedTester().groups(4, 8, 8).size(hw).kernel(k).stride(stride).isa(isa).Test();
          if (hw != 7) GroupedTester().groups(3, 3, 5).height(7).width(hw).kernel(k).stride(stride).isa(isa).Test();
          GroupedTester().groups(5, 4, 4).height(5).width(hw).kernel(k).stride(stride).isa(isa).Test();  // rotated
        }
}

TEST_CASE("grouped: 5x5 and 7x7, wide groups") {
  for (Isa isa : kIsas)
    for (int k : {5, 7})
      for (int stride : {1, 2}) {
        GroupedTester().groups(2, 24, 20).size(11).kernel(k).stride(stride).isa(isa).Test();
        GroupedTester().groups(8, 2, 6).height(9).width(30).kernel(k).stride(stride).isa(isa).Test();
      }
  for (Isa isa : kIsas)  // RegNet-style group widths
    for (int64_t width : {8, 24, 48, 64}) GroupedTester().groups(3, width, width).size(9).stride(2).isa(isa).Test();
}

TEST_CASE("grouped: pads, symmetric and not") {
  const int64_t pad_sets[][4] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}, {0, 0, 1, 1}, {1, 1, 0, 0},
                                 {0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 0, 2}, {5, 4, 6, 7}};
  for (Isa isa : kIsas)
    for (int stride : {1, 2})
      for (const auto& pd : pad_sets)
        GroupedTester().groups(4, 4, 6).height(11).width(13).stride(stride).pads(pd[0], pd[1], pd[2], pd[3])
            .isa(isa).Test();
}

TEST_CASE("grouped: every activation, with and without a residual") {
  for (Isa isa : kIsas)
    for (ActivationKind kind : all_activation_kinds())
      for (ResidualMode mode : {ResidualMode::none, ResidualMode::before_activation, ResidualMode::after_activation})
        for (int64_t cg : {3, 4, 8})  // broadcast, rotated by 4 and by 8 (AVX-512)
          GroupedTester().groups(6, cg, cg == 3 ? 5 : cg).height(6).width(31).activation(Activation::of(kind))
              .residual(mode).isa(isa).Test();
}

TEST_CASE("grouped: without bias, batch, in-place residual, split calls") {
  for (Isa isa : kIsas) {
    GroupedTester().groups(8, 4, 4).size(9).bias(false).isa(isa).Test();
    GroupedTester().groups(8, 4, 4).size(9).bias(false).residual(ResidualMode::before_activation).isa(isa).Test();
    GroupedTester().groups(4, 8, 8).size(8).batch(3).residual(ResidualMode::before_activation)
        .activation(Activation::relu()).isa(isa).Test();
    GroupedTester().groups(4, 8, 8).size(10).residual(ResidualMode::before_activation).in_place(true)
        .activation(Activation::relu6()).isa(isa).Test();
    GroupedTester().groups(5, 7, 9).height(10).width(40).stride(2).batch(2).activation(Activation::silu())
        .residual(ResidualMode::after_activation).split(true).isa(isa).Test();
  }
}

TEST_CASE("grouped: plane strides past the planes (row buffers of fused steps)") {
  for (Isa isa : kIsas) {
    GroupedTester().groups(32, 4, 4).size(9).plane_gaps(7, 0).isa(isa).Test();
    GroupedTester().groups(8, 16, 16).size(11).stride(2).plane_gaps(0, 13).split(true).isa(isa).Test();
    GroupedTester().groups(4, 6, 10).height(6).width(13).plane_gaps(29, 3).residual(ResidualMode::before_activation)
        .activation(Activation::relu()).isa(isa).Test();
    GroupedTester().groups(16, 8, 8).size(8).plane_gaps(5, 11).residual(ResidualMode::before_activation)
        .in_place(true).isa(isa).Test();
  }
}

TEST_CASE("grouped: resnext50_32x4d shapes") {
  struct Zoo {
    int64_t width, hw;
    int stride;
  };
  // The 3x3 grouped convolution of each bottleneck (32 groups, ReLU fused); the first
  // block of stages 2-4 strides.
  const Zoo shapes[] = {{128, 56, 1}, {256, 56, 2}, {256, 28, 1}, {512, 28, 2},
                        {512, 14, 1}, {1024, 14, 2}, {1024, 7, 1}};
  for (Isa isa : kIsas)
    for (const Zoo& z : shapes)
      GroupedTester().groups(32, z.width / 32, z.width / 32).size(z.hw).stride(z.stride)
          .activation(Activation::relu()).isa(isa).Test();
}

TEST_CASE("grouped: the plan refuses what it cannot run, and says why") {
  const HostInfo host = host_for(Isa::avx512);
  auto reason = [&](GroupedShape s) {
    auto r = plan_grouped(s, host);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  auto has = [](const std::string& s, const char* what) { return s.find(what) != std::string::npos; };
  CHECK(has(reason({.in_channels = 0, .out_channels = 4, .groups = 2, .height = 5, .width = 5}), "positive"));
  CHECK(has(reason({.in_channels = 6, .out_channels = 8, .groups = 4, .height = 5, .width = 5}), "divide"));
  CHECK(has(reason({.in_channels = 8, .out_channels = 8, .groups = 4, .height = 9, .width = 9, .kernel = 9}), "7x7"));
  CHECK(has(reason({.in_channels = 8, .out_channels = 8, .groups = 4, .height = 5, .width = 5, .stride = 3}),
            "stride"));
  CHECK(has(reason({.in_channels = 8, .out_channels = 8, .groups = 4, .height = 5, .width = 5, .pad_top = -1}),
            "negative"));
  CHECK(has(reason({.in_channels = 8, .out_channels = 8, .groups = 4, .height = 2, .width = 5}),
            "smaller than the kernel"));
  CHECK(has(reason({.in_channels = 8, .out_channels = 8, .groups = 4, .height = 5, .width = 5,
                    .activation = Activation::clip(2.f, 1.f)}),
            "clip"));
  CHECK(has(reason({.in_channels = 1 << 20, .out_channels = 1 << 10, .groups = 1 << 10, .height = 1 << 12,
                    .width = 1 << 12}),
            "32-bit"));
  HostInfo bare;  // no SIMD
  auto r = plan_grouped({.in_channels = 8, .out_channels = 8, .groups = 4, .height = 5, .width = 5}, bare);
  REQUIRE(std::holds_alternative<std::string>(r));
  CHECK(has(std::get<std::string>(r), "AVX2"));
}

TEST_CASE("grouped: plans are pure, pick the ISA from the host, and are named") {
  const GroupedShape s{.in_channels = 256, .out_channels = 256, .groups = 32, .height = 56, .width = 56, .kernel = 3,
                       .stride = 2, .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
                       .activation = Activation::relu()};
  auto a = std::get<GroupedPlan>(plan_grouped(s, host_for(Isa::avx512)));
  auto b = std::get<GroupedPlan>(plan_grouped(s, host_for(Isa::avx512)));
  CHECK(a == b);
  CHECK(a.key() == b.key());
  CHECK(a.block == 16);
  CHECK(a.window_blocks == 1);  // 2 groups of 8 input channels: one block
  CHECK(a.rotate == 8);  // Cg = Kg = 8 < 16: rotated within groups
  CHECK(a.name() == "f32_grouped_k3_s2_relu_16x14__avx512");
  auto c = std::get<GroupedPlan>(plan_grouped(s, host_for(Isa::avx2)));
  CHECK(c.block == 8);
  CHECK(c.window_blocks == 1);
  CHECK(c.name().find("__avx2") != std::string::npos);
  auto wide = s;  // 32 channels a group: an output block reads two input blocks
  wide.in_channels = wide.out_channels = 1024;
  CHECK(std::get<GroupedPlan>(plan_grouped(wide, host_for(Isa::avx512))).window_blocks == 2);
}

TEST_CASE("grouped: the kernel refuses a plan that was not made for it") {
  if (!cpu_has(Isa::avx2)) return;
  const GroupedShape s{.in_channels = 32, .out_channels = 32, .groups = 4, .height = 40, .width = 40, .kernel = 3,
                       .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1};
  auto plan = std::get<GroupedPlan>(plan_grouped(s, host_for(Isa::avx2)));
  auto too_big = plan;
  too_big.pixels = 14;
  CHECK_THROWS_AS(GroupedKernel(too_big, "test"), std::invalid_argument);
  auto narrow = plan;
  narrow.window_blocks = 0;
  CHECK_THROWS_AS(GroupedKernel(narrow, "test"), std::invalid_argument);
}

TEST_CASE("grouped: identical layers share one kernel") {
  if (!cpu_has(Isa::avx2)) return;
  const GroupedShape s{.in_channels = 16, .out_channels = 16, .groups = 4, .height = 6, .width = 6, .pad_top = 1,
                       .pad_left = 1, .pad_bottom = 1, .pad_right = 1};
  auto plan = std::get<GroupedPlan>(plan_grouped(s, host_for(Isa::avx2)));
  auto k1 = get_grouped_kernel(plan, "node 'a'");
  auto k2 = get_grouped_kernel(plan, "node 'b'");
  CHECK(k1.get() == k2.get());
  auto other = s;
  other.activation = Activation::relu();
  auto k3 = get_grouped_kernel(std::get<GroupedPlan>(plan_grouped(other, host_for(Isa::avx2))), "c");
  CHECK(k3.get() != k1.get());
}

}  // TEST_SUITE
