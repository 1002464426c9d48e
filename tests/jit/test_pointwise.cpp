// PointwiseTester: runs the pointwise JIT kernel on seeded data and compares it, on plain
// NCHW after layout conversion, with a naive double-precision 1x1 convolution.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "jit/layout.hpp"
#include "jit/pointwise/pointwise.hpp"
#include "tests/jit/jit_test_util.hpp"

namespace {

using namespace nnjit::jit;
using nnjit::testing::activation_reference;
using nnjit::testing::activation_slope;
using nnjit::testing::cpu_has;
using nnjit::testing::GuardedArray;
using nnjit::testing::host_for;

class PointwiseTester {
 public:
  PointwiseTester& batch(int64_t n) { shape_.batch = n; return *this; }
  PointwiseTester& channels(int64_t c) { shape_.in_channels = c; return *this; }
  PointwiseTester& out_channels(int64_t k) { shape_.out_channels = k; return *this; }
  PointwiseTester& height(int64_t h) { shape_.height = h; return *this; }
  PointwiseTester& width(int64_t w) { shape_.width = w; return *this; }
  PointwiseTester& size(int64_t hw) { return height(hw).width(hw); }
  PointwiseTester& stride(int s) { shape_.stride = s; return *this; }
  PointwiseTester& bias(bool b) { shape_.has_bias = b; return *this; }
  PointwiseTester& activation(const Activation& a) { shape_.activation = a; return *this; }
  PointwiseTester& residual(ResidualMode m) { shape_.residual = m; return *this; }
  PointwiseTester& residual(bool r) { return residual(r ? ResidualMode::before_activation : ResidualMode::none); }
  // The residual buffer is dst itself (an in-place add).
  PointwiseTester& in_place(bool b) { in_place_ = b; return *this; }
  // dst is src itself (pointwise_in_place must allow it).
  PointwiseTester& over_src(bool b) { over_src_ = b; return *this; }
  PointwiseTester& isa(Isa i) { isa_ = i; return *this; }
  // Run each output-channel tile in its own call (how threads split a layer).
  PointwiseTester& split_tiles(bool b) { split_tiles_ = b; return *this; }
  // Run the layer as `n` slices of its pixels / rows, each its own kernel (slice_pointwise).
  PointwiseTester& slices(int n) { slices_ = n; return *this; }
  // A small L2 forces several input-channel chunks.
  PointwiseTester& l2(std::size_t bytes) { l2_ = bytes; return *this; }
  PointwiseTester& seed(uint32_t s) { seed_ = s; return *this; }

  void Test() const {
    if (!cpu_has(isa_)) return;  // this machine cannot run the variant
    const auto& s = shape_;
    const std::string what = s.key() + " on " + to_string(isa_);
    auto planned = plan_pointwise(s, host_for(isa_, 48 << 10, l2_));
    if (auto* why = std::get_if<std::string>(&planned)) FAIL(what << ": " << *why);
    const PointwisePlan& plan = std::get<PointwisePlan>(planned);
    REQUIRE(plan.isa == isa_);
    if (over_src_) REQUIRE_MESSAGE(pointwise_in_place(plan), what << " [" << plan.key() << "] is not in place");
    const int B = plan.block;
    const int64_t N = s.batch, C = s.in_channels, K = s.out_channels, H = s.height, W = s.width;
    const int64_t Ho = s.out_height(), Wo = s.out_width();

    std::mt19937 rng(seed_);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    auto random = [&](int64_t n) {
      std::vector<float> v(static_cast<std::size_t>(n));
      for (float& x : v) x = dist(rng);
      return v;
    };
    const std::vector<float> src = random(N * C * H * W), weights = random(K * C), bias = random(K),
                             residual = random(N * K * Ho * Wo);

    // The reference, and for each output the scale its rounding error grows with.
    const bool has_res = s.residual != ResidualMode::none;
    std::vector<double> expected(static_cast<std::size_t>(N * K * Ho * Wo)), scale(expected.size());
    std::vector<double> acc(static_cast<std::size_t>(Ho * Wo)), mag(acc.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        std::fill(acc.begin(), acc.end(), s.has_bias ? bias[k] : 0.0);
        std::fill(mag.begin(), mag.end(), s.has_bias ? std::fabs(bias[k]) : 0.0);
        for (int64_t c = 0; c < C; ++c) {
          const double w = weights[k * C + c];
          const float* plane = src.data() + (n * C + c) * H * W;
          for (int64_t oh = 0; oh < Ho; ++oh)
            for (int64_t ow = 0; ow < Wo; ++ow) {
              const double x = plane[oh * s.stride * W + ow * s.stride];
              acc[oh * Wo + ow] += w * x;
              mag[oh * Wo + ow] += std::fabs(w * x);
            }
        }
        for (int64_t px = 0; px < Ho * Wo; ++px) {
          const std::size_t i = static_cast<std::size_t>((n * K + k) * Ho * Wo + px);
          const double r = has_res ? residual[i] : 0.0;
          double y = acc[px];
          if (s.residual == ResidualMode::before_activation) y += r;
          y = activation_reference(s.activation, y);
          if (s.residual == ResidualMode::after_activation) y += r;
          expected[i] = y;
          scale[i] = (mag[px] + std::fabs(r)) * activation_slope(s.activation) + std::fabs(y);
        }
      }

    AlignedBuffer<float> bsrc(blocked_size(N, C, H * W, B));
    nchw_to_blocked(src.data(), bsrc.data(), N, C, H * W, B);
    AlignedBuffer<float> bdst(blocked_size(N, K, Ho * Wo, B)), bres(blocked_size(N, K, Ho * Wo, B));
    // Poison dst, padding lanes included: every lane must be written.
    std::fill(bdst.data(), bdst.data() + bdst.size(), std::nanf(""));
    nchw_to_blocked(residual.data(), bres.data(), N, K, Ho * Wo, B);
    const float* res_ptr = has_res ? bres.data() : nullptr;
    if (has_res && in_place_) {
      std::copy(bres.data(), bres.data() + bres.size(), bdst.data());
      res_ptr = bdst.data();
    }

    PointwiseWeights packed = pack_pointwise_weights(plan, weights.data(), s.has_bias ? bias.data() : nullptr);
    auto kernel = get_pointwise_kernel(plan, "PointwiseTester");
    {
      // The kernel sees every buffer just before a guard page.
      GuardedArray gsrc(bsrc.size(), bsrc.data()), gdst(bdst.size(), bdst.data()), gres(bres.size(), res_ptr),
          gw(packed.weights.size(), packed.weights.data()), gb(packed.bias.size(), packed.bias.data());
      float* dst_ptr = over_src_ ? gsrc.data() : gdst.data();
      const float* gres_ptr = !has_res ? nullptr : in_place_ ? dst_ptr : gres.data();
      for (int64_t n = 0; n < N; ++n) {
        PointwiseArgs args{gsrc.data() + n * plan.src_image_floats(),
                           dst_ptr + n * plan.dst_image_floats(),
                           gw.data(),
                           gb.data(),
                           gres_ptr != nullptr ? gres_ptr + n * plan.dst_image_floats() : nullptr,
                           0,
                           plan.tiles()};
        if (slices_ > 0) {
          for (const PointwiseSlice& sl : slice_pointwise(plan, slices_, 1)) {
            const PointwisePlan& part = sl.plan;
            if (over_src_) REQUIRE_MESSAGE(pointwise_in_place(part), what << " slice [" << part.key() << "] is not in place");
            auto part_kernel = get_pointwise_kernel(part, "PointwiseTester slice");
            PointwiseArgs a = args;
            a.src = args.src + sl.src_pixel * B;
            a.dst = args.dst + sl.dst_pixel * B;
            if (a.residual) a.residual = args.residual + sl.dst_pixel * B;
            a.tile_end = part.tiles();
            (*part_kernel)(a);
          }
          continue;
        }
        if (!split_tiles_) {
          (*kernel)(args);
          continue;
        }
        // As threads would: one output-channel tile per call, last tile first.
        for (int64_t t = plan.tiles() - 1; t >= 0; --t) {
          args.tile_begin = t;
          args.tile_end = t + 1;
          (*kernel)(args);
        }
      }
      std::copy(dst_ptr, dst_ptr + bdst.size(), bdst.data());
    }

    const int64_t kpad = blocked_channels(K, B);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = K; k < kpad; ++k)
        for (int64_t px = 0; px < Ho * Wo; ++px) {
          const float v = bdst[static_cast<std::size_t>(((n * (kpad / B) + k / B) * Ho * Wo + px) * B + k % B)];
          if (v != 0.f)
            FAIL(what << " [" << plan.name() << "]: padding lane n=" << n << " k=" << k << " px=" << px << " holds "
                      << v << ", not 0");
        }
    std::vector<float> got(expected.size());
    blocked_to_nchw(bdst.data(), got.data(), N, K, Ho * Wo, B);
    // Float accumulation error grows like sqrt(C) ulps of the summed magnitudes; the
    // activations' own error is ~1e-6 relative.
    const double tol = 2e-7 * std::sqrt(static_cast<double>(C) + 1) * 4;
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
  PointwiseShape shape_{.in_channels = 16, .out_channels = 16, .height = 5, .width = 5};
  Isa isa_ = Isa::avx512;
  std::size_t l2_ = 1 << 20;
  bool in_place_ = false;
  bool over_src_ = false;
  bool split_tiles_ = false;
  int slices_ = 0;
  uint32_t seed_ = 42;
};

const Isa kIsas[] = {
#define NNJIT_POINTWISE_VARIANT(id) Isa::id,
#include "jit/pointwise/pointwise.inc"
#undef NNJIT_POINTWISE_VARIANT
};

}  // namespace

TEST_SUITE("jit") {

TEST_CASE("pointwise: channels below, at and above the block") {
  const int64_t counts[] = {1, 3, 8, 15, 16, 17, 31, 32, 33, 64, 96};
  for (Isa isa : kIsas)
    for (int64_t c : counts)
      for (int64_t k : counts) PointwiseTester().channels(c).out_channels(k).height(3).width(5).isa(isa).Test();
}

TEST_CASE("pointwise: spatial sizes and strides") {
  const int64_t sizes[] = {1, 2, 3, 5, 7, 13, 23, 55};
  for (Isa isa : kIsas)
    for (int stride : {1, 2})
      for (int64_t h : sizes)
        for (int64_t w : sizes) {
          if (h != w && h != 7 && w != 7) continue;  // squares, and every size against 7
          PointwiseTester().channels(19).out_channels(40).height(h).width(w).stride(stride).isa(isa).Test();
        }
}

TEST_CASE("pointwise: every activation, with and without a residual") {
  for (Isa isa : kIsas)
    for (ActivationKind kind : all_activation_kinds())
      for (ResidualMode mode : {ResidualMode::none, ResidualMode::before_activation, ResidualMode::after_activation})
        for (int64_t k : {24, 64, 40}) {
          PointwiseTester()
              .channels(36)
              .out_channels(k)
              .height(7)
              .width(9)
              .stride(k == 40 ? 2 : 1)
              .activation(Activation::of(kind))
              .residual(mode)
              .isa(isa)
              .Test();
        }
}

TEST_CASE("pointwise: activation parameters") {
  for (Isa isa : kIsas) {
    PointwiseTester().channels(20).out_channels(20).activation(Activation::clip(-0.3f, 0.4f)).isa(isa).Test();
    const float inf = std::numeric_limits<float>::infinity();
    PointwiseTester().channels(20).out_channels(20).activation(Activation::clip(0.1f, inf)).isa(isa).Test();
    PointwiseTester().channels(20).out_channels(20).activation(Activation::clip(-inf, 0.2f)).isa(isa).Test();
    PointwiseTester().channels(20).out_channels(20).activation(Activation::leaky_relu(0.2f)).isa(isa).Test();
    PointwiseTester().channels(20).out_channels(20).activation(Activation::hard_sigmoid(0.5f, 0.1f)).isa(isa).Test();
  }
}

TEST_CASE("pointwise: a layer split into pixel / row slices, as threads run it") {
  for (Isa isa : kIsas)
    for (int stride : {1, 2})
      for (int parts : {2, 3, 5})
        for (int64_t hw : {1, 3, 7, 13, 23}) {
          PointwiseTester().channels(20).out_channels(40).size(hw).stride(stride).slices(parts)
              .activation(Activation::relu6()).isa(isa).Test();
          PointwiseTester().channels(17).out_channels(24).height(hw).width(5).stride(stride).slices(parts)
              .residual(true).activation(Activation::silu()).isa(isa).Test();
        }
}

TEST_CASE("pointwise: without bias, batch, in-place residual") {
  for (Isa isa : kIsas) {
    PointwiseTester().channels(33).out_channels(50).bias(false).isa(isa).Test();
    PointwiseTester().channels(33).out_channels(50).batch(3).residual(true).activation(Activation::relu()).isa(isa).Test();
    PointwiseTester().channels(33).out_channels(50).batch(2).stride(2).size(9).isa(isa).Test();
    PointwiseTester().channels(40).out_channels(72).residual(true).in_place(true).activation(Activation::relu()).isa(isa).Test();
    PointwiseTester().channels(200).out_channels(72).residual(true).in_place(true).l2(4 << 10).isa(isa).Test();
  }
}

TEST_CASE("pointwise: dst over src, where pointwise_in_place allows it") {
  for (Isa isa : kIsas) {
    for (int slices : {0, 3})
      for (int64_t c : {32, 64, 100}) {
        PointwiseTester().channels(c).out_channels(16).size(13).slices(slices).over_src(true).isa(isa).Test();
        if (isa == Isa::avx512)  // two blocks: one output-channel tile (AVX2's 8-channel blocks make two)
          PointwiseTester().channels(c).out_channels(30).size(7).activation(Activation::relu()).slices(slices).over_src(true).isa(isa).Test();
      }
    // Several input-channel chunks: partial sums go through dst, over the first chunk's blocks.
    PointwiseTester().channels(96).out_channels(16).size(9).l2(4 << 10).over_src(true).isa(isa).Test();
    PointwiseTester().channels(96).out_channels(16).size(9).l2(4 << 10).slices(2).over_src(true).isa(isa).Test();
    // A residual of its own (an inverted-residual block's project over its depthwise rows).
    for (ResidualMode m : {ResidualMode::before_activation, ResidualMode::after_activation})
      for (int slices : {0, 2}) {
        const int64_t k = isa == Isa::avx512 ? 32 : 16;  // one output-channel tile
        PointwiseTester().channels(k).out_channels(k).size(11).residual(m).activation(Activation::relu())
            .slices(slices).over_src(true).isa(isa).Test();
        PointwiseTester().channels(96).out_channels(16).size(9).l2(4 << 10).residual(m).slices(slices)
            .over_src(true).isa(isa).Test();
      }
  }
  const HostInfo host = host_for(Isa::avx512, 48 << 10, 1 << 20);
  auto plan = [&](PointwiseShape s) { return std::get<PointwisePlan>(plan_pointwise(s, host)); };
  const PointwiseShape base{.in_channels = 64, .out_channels = 32, .height = 8, .width = 8};
  CHECK(pointwise_in_place(plan(base)));
  PointwiseShape wider = base, strided = base, res = base, tiled = base;  // res: a residual of its own
  wider.out_channels = 80;
  strided.stride = 2;
  res.residual = ResidualMode::before_activation;
  tiled.in_channels = 256;
  tiled.out_channels = 200;  // several output-channel tiles
  CHECK_FALSE(pointwise_in_place(plan(wider)));
  CHECK_FALSE(pointwise_in_place(plan(strided)));
  CHECK(pointwise_in_place(plan(res)));
  CHECK_FALSE(pointwise_in_place(plan(tiled)));
  // Pixel runs of a bigger image: in place only where both planes are the same.
  CHECK(pointwise_in_place(pointwise_pixels(plan(base), 24, 64, 64)));
  CHECK(pointwise_in_place(pointwise_pixels(plan(base), 24, 96, 96)));
  CHECK_FALSE(pointwise_in_place(pointwise_pixels(plan(base), 24, 24, 64)));
  CHECK_FALSE(pointwise_in_place(pointwise_pixels(plan(base), 24, 64, 24)));
  // A 1 KiB L2: input-channel chunks narrower than the output.
  CHECK_FALSE(pointwise_in_place(std::get<PointwisePlan>(plan_pointwise(base, host_for(Isa::avx512, 48 << 10, 1 << 10)))));
}

TEST_CASE("pointwise: one call per output-channel tile") {
  for (Isa isa : kIsas)
    for (int64_t k : {16, 40, 100, 200}) {
      PointwiseTester().channels(50).out_channels(k).size(5).activation(Activation::sigmoid()).split_tiles(true).isa(isa).Test();
      PointwiseTester().channels(70).out_channels(k).size(4).residual(true).l2(4 << 10).split_tiles(true).isa(isa).Test();
    }
}

TEST_CASE("pointwise: several input-channel chunks") {
  // A 4 KiB L2 makes chunks of 16-32 channels, so partial sums go through dst.
  for (Isa isa : kIsas)
    for (int64_t c : {40, 100, 161})
      for (ResidualMode mode : {ResidualMode::none, ResidualMode::before_activation, ResidualMode::after_activation})
        PointwiseTester()
            .channels(c)
            .out_channels(70)
            .size(6)
            .stride(c == 161 ? 2 : 1)
            .activation(Activation::silu())
            .residual(mode)
            .l2(4 << 10)
            .isa(isa)
            .Test();
}

TEST_CASE("pointwise: one pixel (Linear layers, squeeze-excitation vectors) and one-pixel tails") {
  // Weights past L2 are read as four streams (PointwisePlan::weight_streams): the plan
  // must choose them where the case says, and the answer must not change.
  struct One {
    int64_t c, k;
    std::size_t l2;
    int streams;  // on AVX-512
    Activation act;
    bool residual;
  };
  const One shapes[] = {
      {1280, 1000, 1 << 20, 4, Activation::none(), false},  // a classifier: 5 MB
      {2048, 1000, 2 << 20, 4, Activation::none(), true},   // (in two chunks with 1 MiB: one stream)
      {1152, 48, 1 << 20, 1, Activation::silu(), false},    // squeeze-excitation: in L2
      {48, 1152, 1 << 20, 1, Activation::sigmoid(), false},
      {300, 200, 240 << 10, 4, Activation::relu(), false},  // blocks past the runs, a partial block
      {131, 1000, 256 << 10, 4, Activation::none(), true},  // 8 blocks and 3 channels; a half block out
      {40, 1000, 64 << 10, 4, Activation::none(), false},   // too few blocks: the kernel walks one run
  };
  for (Isa isa : kIsas)
    for (const One& o : shapes) {
      CAPTURE(o.c);
      CAPTURE(o.k);
      PointwiseShape shape;
      shape.in_channels = o.c;
      shape.out_channels = o.k;
      shape.height = shape.width = 1;
      shape.activation = o.act;
      auto planned = plan_pointwise(shape, host_for(isa, 48 << 10, o.l2));
      REQUIRE(std::holds_alternative<PointwisePlan>(planned));
      if (cpu_has(isa)) CHECK(std::get<PointwisePlan>(planned).weight_streams == (isa == Isa::avx512 ? o.streams : 1));
      PointwiseTester().channels(o.c).out_channels(o.k).size(1).activation(o.act).residual(o.residual).l2(o.l2).isa(isa).Test();
    }
  // Many pixels whose last register tile holds one: summed in order, as the others.
  for (Isa isa : kIsas)
    for (int64_t w : {10, 19, 28})
      PointwiseTester().channels(300).out_channels(64).height(1).width(w).isa(isa).Test();
}

TEST_CASE("pointwise: zoo shapes") {
  struct Zoo {
    int64_t c, k, hw;
    int stride;
    Activation act;
    bool residual;
  };
  const Zoo shapes[] = {
      // MobileNetV2: expansions (ReLU6) and projections (+ residual)
      {24, 144, 56, 1, Activation::relu6(), false},
      {32, 192, 28, 1, Activation::relu6(), false},
      {64, 384, 14, 1, Activation::relu6(), false},
      {96, 576, 14, 1, Activation::relu6(), false},
      {576, 96, 14, 1, Activation::none(), true},
      {160, 960, 7, 1, Activation::relu6(), false},
      {320, 1280, 7, 1, Activation::relu6(), false},
      // ResNet-50: reductions, expansions with residual + ReLU, stride-2 projections
      {64, 256, 56, 1, Activation::none(), false},
      {256, 64, 56, 1, Activation::relu(), false},
      {64, 256, 56, 1, Activation::relu(), true},
      {512, 128, 28, 1, Activation::relu(), false},
      {1024, 256, 14, 1, Activation::relu(), false},
      {2048, 512, 7, 1, Activation::relu(), false},
      {256, 512, 56, 2, Activation::none(), false},
      {512, 1024, 28, 2, Activation::none(), false},
      {1024, 2048, 14, 2, Activation::none(), false},
      // EfficientNet-B0: SiLU expansions
      {40, 240, 28, 1, Activation::silu(), false},
  };
  for (Isa isa : kIsas)
    for (const Zoo& z : shapes)
      PointwiseTester()
          .channels(z.c)
          .out_channels(z.k)
          .size(z.hw)
          .stride(z.stride)
          .activation(z.act)
          .residual(z.residual)
          .isa(isa)
          .Test();
}

TEST_CASE("pointwise: the plan refuses what it cannot run, and says why") {
  const HostInfo host = host_for(Isa::avx512);
  auto reason = [&](PointwiseShape s) {
    auto r = plan_pointwise(s, host);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  CHECK(reason({.in_channels = 0, .out_channels = 4, .height = 1, .width = 1}).find("positive") != std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 3, .width = 3, .stride = 3}).find("stride") !=
        std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 1, .width = 1,
                .activation = Activation::clip(2.f, 1.f)})
            .find("clip") != std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 1, .width = 1,
                .activation = Activation::leaky_relu(std::nanf(""))})
            .find("finite") != std::string::npos);
  CHECK(reason({.in_channels = 4, .out_channels = 4, .height = 1 << 20, .width = 1 << 20}).find("32-bit") !=
        std::string::npos);
  HostInfo bare;  // no SIMD
  auto r = plan_pointwise({.in_channels = 4, .out_channels = 4, .height = 1, .width = 1}, bare);
  REQUIRE(std::holds_alternative<std::string>(r));
  CHECK(std::get<std::string>(r).find("AVX2") != std::string::npos);
}

TEST_CASE("pointwise: plans are pure, and pick the ISA and tiles from the host") {
  const PointwiseShape s{.in_channels = 256, .out_channels = 64, .height = 56, .width = 56,
                         .activation = Activation::relu()};
  auto a = std::get<PointwisePlan>(plan_pointwise(s, host_for(Isa::avx512)));
  auto b = std::get<PointwisePlan>(plan_pointwise(s, host_for(Isa::avx512)));
  CHECK(a == b);
  CHECK(a.key() == b.key());
  CHECK(a.block == 16);
  CHECK(a.name().find("__avx512") != std::string::npos);
  CHECK(a.name().find("_relu_") != std::string::npos);
  // 28 accumulators (4 blocks x 7 pixels, or similar) on AVX-512; <= 13 on AVX2.
  CHECK(a.main.oc_blocks * a.main.pixels >= 24);
  auto c = std::get<PointwisePlan>(plan_pointwise(s, host_for(Isa::avx2)));
  CHECK(c.block == 8);
  CHECK(c.name().find("__avx2") != std::string::npos);
  CHECK(c.main.oc_blocks * c.main.pixels + c.main.oc_blocks + 1 <= 16);
  // A smaller L2 cuts the input channels into more chunks.
  auto small = std::get<PointwisePlan>(plan_pointwise(s, host_for(Isa::avx512, 48 << 10, 4 << 10)));
  CHECK(small.chunks > a.chunks);
}

TEST_CASE("pointwise: the kernel refuses a plan that was not made for it") {
  if (!cpu_has(Isa::avx2)) return;
  const PointwiseShape s{.in_channels = 32, .out_channels = 32, .height = 4, .width = 4};
  auto plan = std::get<PointwisePlan>(plan_pointwise(s, host_for(Isa::avx2)));
  auto too_big = plan;
  too_big.main.pixels = 16;  // more accumulators than ymm registers
  CHECK_THROWS_AS(PointwiseKernel(too_big, "test"), std::invalid_argument);
  auto uncovered = plan;
  uncovered.main_tiles += 1;
  CHECK_THROWS_AS(PointwiseKernel(uncovered, "test"), std::invalid_argument);
}

TEST_CASE("pointwise: identical layers share one kernel") {
  if (!cpu_has(Isa::avx2)) return;
  const PointwiseShape s{.in_channels = 24, .out_channels = 48, .height = 4, .width = 4};
  auto plan = std::get<PointwisePlan>(plan_pointwise(s, host_for(Isa::avx2)));
  auto k1 = get_pointwise_kernel(plan, "node 'a'");
  auto k2 = get_pointwise_kernel(plan, "node 'b'");
  CHECK(k1.get() == k2.get());
  auto other = plan;
  other.shape.activation = Activation::relu();
  auto k3 = get_pointwise_kernel(std::get<PointwisePlan>(plan_pointwise(other.shape, host_for(Isa::avx2))), "c");
  CHECK(k3.get() != k1.get());
}

}  // TEST_SUITE
