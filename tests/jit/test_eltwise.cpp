// EltwiseTester: runs the eltwise JIT kernel on seeded blocked data and compares every
// element with a plain double-precision loop (activation_reference of jit_test_util).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "jit/eltwise/eltwise.hpp"
#include "jit/layout.hpp"
#include "tests/jit/jit_test_util.hpp"

namespace {

using namespace nnjit::jit;
using nnjit::testing::activation_reference;
using nnjit::testing::activation_slope;
using nnjit::testing::cpu_has;
using nnjit::testing::GuardedArray;
using nnjit::testing::host_for;

class EltwiseTester {
 public:
  enum class InPlace { none, a, b };

  EltwiseTester& batch(int64_t n) { shape_.batch = n; return *this; }
  EltwiseTester& channels(int64_t c) { shape_.channels = c; return *this; }
  EltwiseTester& plane(int64_t p) { shape_.plane = p; return *this; }
  EltwiseTester& op(EltwiseOp o) { shape_.op = o; return *this; }
  EltwiseTester& activation(const Activation& a) { shape_.activation = a; return *this; }
  // dst is a (any op) or b (add, mul).
  EltwiseTester& in_place(InPlace i) { in_place_ = i; return *this; }
  EltwiseTester& isa(Isa i) { isa_ = i; return *this; }
  // Calls on ranges of `chunk` vectors, last first (how threads split a layer); 0: one call.
  EltwiseTester& split(int64_t chunk) { chunk_ = chunk; return *this; }
  EltwiseTester& seed(uint32_t s) { seed_ = s; return *this; }

  void Test() const {
    const auto& s = shape_;
    const std::string what = s.key() + " on " + to_string(isa_) +
                             (in_place_ == InPlace::a ? " dst=a" : in_place_ == InPlace::b ? " dst=b" : "");
    auto planned = plan_eltwise(s, host_for(isa_));
    if (auto* why = std::get_if<std::string>(&planned)) FAIL(what << ": " << *why);
    const EltwisePlan& plan = std::get<EltwisePlan>(planned);
    REQUIRE(plan.isa == isa_);
    if (!cpu_has(isa_)) {  // this machine cannot run the variant: only emit it
      CHECK_NOTHROW(EltwiseKernel(plan, "EltwiseTester"));
      return;
    }
    const int64_t N = s.batch, C = s.channels, P = s.plane, B = plan.block, CB = plan.blocks;
    const bool binary = eltwise_is_binary(s.op), scale = s.op == EltwiseOp::scale_channels;

    // Blocked a (and b) with garbage in the padding lanes: dst's must still be 0.
    std::mt19937 rng(seed_);
    std::uniform_real_distribution<float> dist(-4.f, 4.f);
    auto random_blocked = [&](int64_t plane) {
      AlignedBuffer<float> v(N * CB * plane * B);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t cb = 0; cb < CB; ++cb)
          for (int64_t px = 0; px < plane; ++px)
            for (int64_t l = 0; l < B; ++l)
              v[static_cast<std::size_t>(((n * CB + cb) * plane + px) * B + l)] = cb * B + l < C ? dist(rng) : 7.f;
      return v;
    };
    const AlignedBuffer<float> a = random_blocked(P);
    const AlignedBuffer<float> b = binary ? random_blocked(P) : scale ? random_blocked(1) : AlignedBuffer<float>();

    auto kernel = get_eltwise_kernel(plan, "EltwiseTester");
    AlignedBuffer<float> out(static_cast<int64_t>(a.size()));
    {
      GuardedArray ga(a.size(), a.data()), gb(b.size(), b.data()), gdst(a.size());
      std::fill(gdst.data(), gdst.data() + gdst.size(), std::nanf(""));  // every lane must be written
      float* dst = in_place_ == InPlace::a ? ga.data() : in_place_ == InPlace::b ? gb.data() : gdst.data();
      const float* bp = b.size() ? gb.data() : nullptr;
      for (int64_t n = 0; n < N; ++n) {
        EltwiseArgs args{ga.data() + n * plan.image_floats(), bp ? bp + n * plan.b_image_floats() : nullptr,
                         dst + n * plan.image_floats(), 0, plan.image_vectors()};
        if (chunk_ == 0) {
          (*kernel)(args);
          continue;
        }
        const int64_t V = plan.image_vectors();
        for (int64_t begin = (V - 1) / chunk_ * chunk_; begin >= 0; begin -= chunk_) {
          args.begin = begin, args.end = std::min(V, begin + chunk_);
          (*kernel)(args);
        }
        args.begin = args.end = V / 2;  // an empty range writes nothing
        (*kernel)(args);
      }
      std::copy(dst, dst + out.size(), out.data());
    }

    for (int64_t n = 0; n < N; ++n)
      for (int64_t cb = 0; cb < CB; ++cb)
        for (int64_t px = 0; px < P; ++px)
          for (int64_t l = 0; l < B; ++l) {
            const int64_t c = cb * B + l;
            const std::size_t i = static_cast<std::size_t>(((n * CB + cb) * P + px) * B + l);
            const double got = out[i];
            if (c >= C) {
              if (got != 0.0)
                FAIL(what << " [" << plan.name() << "]: padding lane n=" << n << " c=" << c << " px=" << px
                          << " holds " << got << ", not 0");
              continue;
            }
            const double x = a[i];
            double y = 0, allowed = 0;
            const double slope = activation_slope(s.activation);
            if (scale) {
              const double sv = b[static_cast<std::size_t>((n * CB + cb) * B + l)];
              const double act = activation_reference(s.activation, sv);
              y = x * act;
              allowed = 2e-6 * std::fabs(x) * (std::fabs(act) + slope * std::fabs(sv));
            } else {
              double z = x;
              if (s.op == EltwiseOp::add) z = x + b[i];
              if (s.op == EltwiseOp::mul) z = x * b[i];
              z = static_cast<float>(z);  // the kernel rounds a op b before the activation
              y = activation_reference(s.activation, z);
              allowed = 2e-6 * (slope * std::fabs(z) + std::fabs(y));
            }
            allowed += 1e-6 * std::fabs(y) + 1e-30;
            const double err = std::fabs(got - y);
            if (!(err <= allowed))
              FAIL(what << " [" << plan.name() << "]: mismatch at n=" << n << " c=" << c << " px=" << px << " (flat "
                        << i << "): got " << got << ", expected " << y << " (error " << err << ", allowed " << allowed
                        << ")");
          }
  }

 private:
  EltwiseShape shape_{.channels = 16, .plane = 9};
  InPlace in_place_ = InPlace::none;
  Isa isa_ = Isa::avx512;
  int64_t chunk_ = 0;
  uint32_t seed_ = 42;
};

const Isa kIsas[] = {
#define NNJIT_ELTWISE_VARIANT(id) Isa::id,
#include "jit/eltwise/eltwise.inc"
#undef NNJIT_ELTWISE_VARIANT
};

const EltwiseOp kOps[] = {EltwiseOp::unary, EltwiseOp::add, EltwiseOp::mul, EltwiseOp::scale_channels};

}  // namespace

TEST_SUITE("jit") {

TEST_CASE("eltwise: every op and activation over channels and planes") {
  for (Isa isa : kIsas)
    for (EltwiseOp op : kOps)
      for (ActivationKind kind : all_activation_kinds())
        for (int64_t c : {1, 3, 8, 15, 16, 17, 33})
          for (int64_t p : {1, 2, 3, 5, 7, 13, 23, 55})
            EltwiseTester().channels(c).plane(p).op(op).activation(Activation::of(kind)).isa(isa).Test();
}

TEST_CASE("eltwise: in place, batch and split ranges") {
  using IP = EltwiseTester::InPlace;
  for (Isa isa : kIsas)
    for (EltwiseOp op : kOps)
      for (ActivationKind kind : {ActivationKind::none, ActivationKind::relu, ActivationKind::sigmoid,
                                  ActivationKind::hard_sigmoid, ActivationKind::gelu})
        for (int64_t c : {3, 17, 40}) {
          const Activation act = Activation::of(kind);
          EltwiseTester().channels(c).plane(29).op(op).activation(act).in_place(IP::a).isa(isa).Test();
          if (eltwise_is_binary(op))
            EltwiseTester().channels(c).plane(29).op(op).activation(act).in_place(IP::b).isa(isa).Test();
          EltwiseTester().batch(3).channels(c).plane(13).op(op).activation(act).isa(isa).Test();
          for (int64_t chunk : {1, 5, 13, 64})
            EltwiseTester().batch(2).channels(c).plane(13).op(op).activation(act).split(chunk)
                .in_place(chunk == 5 ? IP::a : IP::none).isa(isa).Test();
        }
}

TEST_CASE("eltwise: activation parameters") {
  const float inf = std::numeric_limits<float>::infinity();
  for (Isa isa : kIsas)
    for (EltwiseOp op : kOps) {
      EltwiseTester().channels(20).op(op).activation(Activation::clip(-0.3f, 0.4f)).isa(isa).Test();
      EltwiseTester().channels(20).op(op).activation(Activation::clip(0.1f, inf)).isa(isa).Test();
      EltwiseTester().channels(20).op(op).activation(Activation::clip(-inf, 0.2f)).isa(isa).Test();
      EltwiseTester().channels(20).op(op).activation(Activation::leaky_relu(0.2f)).isa(isa).Test();
      EltwiseTester().channels(20).op(op).activation(Activation::hard_sigmoid(1.f / 6.f, 0.5f)).isa(isa).Test();
    }
}

TEST_CASE("eltwise: zoo shapes") {
  struct Zoo {
    int64_t c, hw;
    EltwiseOp op;
    Activation act;
  };
  const Zoo shapes[] = {
      // ResNet-50: Add -> Relu.
      {256, 56, EltwiseOp::add, Activation::relu()},
      {2048, 7, EltwiseOp::add, Activation::relu()},
      // EfficientNet-B0: SE Sigmoid -> Mul, SiLU; MobileNetV3: HardSigmoid -> Mul, HardSwish.
      {32, 112, EltwiseOp::scale_channels, Activation::sigmoid()},
      {144, 56, EltwiseOp::scale_channels, Activation::sigmoid()},
      {1152, 7, EltwiseOp::scale_channels, Activation::sigmoid()},
      {72, 28, EltwiseOp::scale_channels, Activation::hard_sigmoid(1.f / 6.f, 0.5f)},
      {96, 112, EltwiseOp::unary, Activation::silu()},
      {16, 112, EltwiseOp::unary, Activation::hard_swish()},
      {960, 7, EltwiseOp::unary, Activation::hard_swish()},
      // SE's squeeze path runs on [N][C][1][1].
      {8, 1, EltwiseOp::unary, Activation::silu()},
      {1152, 1, EltwiseOp::unary, Activation::sigmoid()},
  };
  for (Isa isa : kIsas)
    for (const Zoo& z : shapes) EltwiseTester().channels(z.c).plane(z.hw * z.hw).op(z.op).activation(z.act).isa(isa).Test();
}

TEST_CASE("eltwise: the plan refuses what it cannot run, says why, and names kernels") {
  const HostInfo host = host_for(Isa::avx512);
  auto reason = [&](EltwiseShape s) {
    auto r = plan_eltwise(s, host);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : std::string();
  };
  auto has = [](const std::string& s, const char* what) { return s.find(what) != std::string::npos; };
  CHECK(has(reason({.channels = 0, .plane = 4}), "positive"));
  CHECK(has(reason({.channels = 4, .plane = 0}), "positive"));
  CHECK(has(reason({.channels = 4, .plane = 4, .activation = Activation::clip(2.f, 1.f)}), "clip"));
  CHECK(has(reason({.channels = 4, .plane = 4, .op = static_cast<EltwiseOp>(17)}), "unknown op"));
  HostInfo bare;
  auto r = plan_eltwise({.channels = 4, .plane = 4}, bare);
  REQUIRE(std::holds_alternative<std::string>(r));
  CHECK(has(std::get<std::string>(r), "AVX2"));

  auto name = [](EltwiseShape s, Isa isa) { return std::get<EltwisePlan>(plan_eltwise(s, host_for(isa))).name(); };
  CHECK(name({.channels = 64, .plane = 9, .op = EltwiseOp::add, .activation = Activation::relu()}, Isa::avx512) ==
        "f32_eltwise_add_relu__avx512");
  CHECK(name({.channels = 64, .plane = 9, .op = EltwiseOp::scale_channels, .activation = Activation::sigmoid()},
             Isa::avx2) == "f32_eltwise_scale_sigmoid__avx2");
  CHECK(name({.channels = 64, .plane = 9, .activation = Activation::silu()}, Isa::avx512) == "f32_eltwise_silu__avx512");
  CHECK(name({.channels = 64, .plane = 9, .op = EltwiseOp::mul}, Isa::avx2) == "f32_eltwise_mul__avx2");

  const EltwiseShape s{.channels = 24, .plane = 6, .op = EltwiseOp::add};
  auto plan = std::get<EltwisePlan>(plan_eltwise(s, host_for(Isa::avx2)));
  CHECK(plan == std::get<EltwisePlan>(plan_eltwise(s, host_for(Isa::avx2))));
  CHECK(plan.block == 8);
  if (cpu_has(Isa::avx2)) {
    auto k1 = get_eltwise_kernel(plan, "node 'a'");
    auto k2 = get_eltwise_kernel(plan, "node 'b'");
    CHECK(k1.get() == k2.get());
    auto bad = plan;
    bad.unroll = 16;  // 16 values + the scale register > 16 ymm
    CHECK_THROWS_AS(EltwiseKernel(bad, "test"), std::invalid_argument);
  }
}

}  // TEST_SUITE
