// GemmTester: runs the gemm JIT kernel on seeded data and compares it with a naive
// double-precision product, act(alpha * X · W + beta * bias).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "jit/gemm/gemm.hpp"
#include "tests/jit/jit_test_util.hpp"

namespace {

using namespace nnjit::jit;
using nnjit::testing::activation_reference;
using nnjit::testing::activation_slope;
using nnjit::testing::cpu_has;
using nnjit::testing::GuardedArray;
using nnjit::testing::host_for;

// What dst holds outside the columns and rows a call may write.
constexpr float kUntouched = 12345.5f;

class GemmTester {
 public:
  GemmTester& m(int64_t v) { shape_.m = v; return *this; }
  GemmTester& k(int64_t v) { shape_.k = v; return *this; }
  GemmTester& n(int64_t v) { shape_.n = v; return *this; }
  GemmTester& bias(bool b) { shape_.has_bias = b; return *this; }
  GemmTester& activation(const Activation& a) { shape_.activation = a; return *this; }
  GemmTester& trans_b(bool t) { trans_b_ = t; return *this; }
  GemmTester& alpha(float a) { alpha_ = a; return *this; }
  GemmTester& beta(float b) { beta_ = b; return *this; }
  // Extra floats at the end of each row of src / dst (lda = K + pad, ldc = N + pad).
  GemmTester& lda_pad(int64_t p) { lda_pad_ = p; return *this; }
  GemmTester& ldc_pad(int64_t p) { ldc_pad_ = p; return *this; }
  GemmTester& isa(Isa i) { isa_ = i; return *this; }
  // Run as threads would: rows in `row_parts` ranges, each panel in its own call.
  GemmTester& split(int row_parts) { row_parts_ = row_parts; return *this; }
  // A small L2 forces several K chunks and row blocks.
  GemmTester& l2(std::size_t bytes) { l2_ = bytes; return *this; }
  GemmTester& seed(uint32_t s) { seed_ = s; return *this; }

  void Test() const {
    const auto& s = shape_;
    const std::string what = s.key() + (trans_b_ ? " transB" : "") + " on " + to_string(isa_);
    auto planned = plan_gemm(s, host_for(isa_, 48 << 10, l2_));
    if (auto* why = std::get_if<std::string>(&planned)) FAIL(what << ": " << *why);
    const GemmPlan& plan = std::get<GemmPlan>(planned);
    REQUIRE(plan.isa == isa_);
    // A variant this machine cannot run is still generated (encodings, plan checks).
    if (!cpu_has(isa_)) {
      REQUIRE(get_gemm_kernel(plan, "GemmTester")->code_size() > 0);
      return;
    }
    const int64_t M = s.m, K = s.k, N = s.n, lda = K + lda_pad_, ldc = N + ldc_pad_;

    std::mt19937 rng(seed_);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    auto random = [&](int64_t count) {
      std::vector<float> v(static_cast<std::size_t>(count));
      for (float& x : v) x = dist(rng);
      return v;
    };
    const std::vector<float> src = random(M * lda), weights = random(K * N), bias = random(N);
    // weights as the caller holds them: [K][N], or [N][K] with trans_b.
    auto w_at = [&](int64_t k, int64_t n) { return double{trans_b_ ? weights[n * K + k] : weights[k * N + n]}; };

    // The reference, and for each output the scale its rounding error grows with.
    std::vector<double> expected(static_cast<std::size_t>(M * N)), scale(expected.size());
    for (int64_t i = 0; i < M; ++i)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double t = double{src[i * lda + k]} * w_at(k, n);
          acc += t;
          mag += std::fabs(t);
        }
        const double b = s.has_bias ? double{beta_} * bias[n] : 0.0;
        const double y = activation_reference(s.activation, alpha_ * acc + b);
        const std::size_t o = static_cast<std::size_t>(i * N + n);
        expected[o] = y;
        scale[o] = (std::fabs(alpha_) * mag + std::fabs(b)) * activation_slope(s.activation) + std::fabs(y);
      }

    GemmWeights packed =
        pack_gemm_weights(plan, weights.data(), trans_b_, alpha_, s.has_bias ? bias.data() : nullptr, beta_);
    auto kernel = get_gemm_kernel(plan, "GemmTester");
    REQUIRE(kernel->panels() == plan.panels());
    std::vector<float> got(static_cast<std::size_t>(M * ldc));
    {
      // The kernel sees every buffer just before a guard page.
      GuardedArray gsrc(src.size(), src.data()), gdst(got.size()), gw(packed.weights.size(), packed.weights.data()),
          gb(packed.bias.size(), packed.bias.data());
      std::fill(gdst.data(), gdst.data() + gdst.size(), kUntouched);
      GemmArgs args{gsrc.data(), gdst.data(), gw.data(), gb.data(), lda, ldc, 0, M, 0, plan.panels()};
      if (row_parts_ == 0) {
        (*kernel)(args);
      } else {
        // Last panel first, rows in uneven ranges.
        for (int64_t pnl = plan.panels() - 1; pnl >= 0; --pnl)
          for (int part = 0; part < row_parts_; ++part) {
            GemmArgs a = args;
            a.row_begin = M * part / row_parts_;
            a.row_end = M * (part + 1) / row_parts_;
            a.panel_begin = pnl;
            a.panel_end = pnl + 1;
            (*kernel)(a);
          }
      }
      std::copy(gdst.data(), gdst.data() + gdst.size(), got.data());
    }

    // Float accumulation error grows like sqrt(K) ulps of the summed magnitudes; the
    // activations' own error is ~1e-6 relative.
    const double tol = 2e-7 * std::sqrt(static_cast<double>(K) + 1) * 4;
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t n = N; n < ldc; ++n)
        if (got[static_cast<std::size_t>(i * ldc + n)] != kUntouched)
          FAIL(what << " [" << plan.name() << "]: wrote row " << i << " column " << n << " past N");
      for (int64_t n = 0; n < N; ++n) {
        const std::size_t o = static_cast<std::size_t>(i * N + n);
        const double g = got[static_cast<std::size_t>(i * ldc + n)];
        const double err = std::fabs(g - expected[o]);
        const double allowed = tol * scale[o] + 1e-6 * std::fabs(expected[o]) + 1e-30;
        if (!(err <= allowed))
          FAIL(what << " [" << plan.key() << "]: mismatch at row " << i << " column " << n << ": got " << g
                    << ", expected " << expected[o] << " (error " << err << ", allowed " << allowed << ")");
      }
    }
  }

 private:
  GemmShape shape_{.m = 3, .k = 16, .n = 16};
  bool trans_b_ = false;
  float alpha_ = 1.f, beta_ = 1.f;
  int64_t lda_pad_ = 0, ldc_pad_ = 0;
  Isa isa_ = Isa::avx512;
  int row_parts_ = 0;
  std::size_t l2_ = 1 << 20;
  uint32_t seed_ = 42;
};

const Isa kIsas[] = {
#define NNJIT_GEMM_VARIANT(id) Isa::id,
#include "jit/gemm/gemm.inc"
#undef NNJIT_GEMM_VARIANT
};

const int64_t kRows[] = {1, 2, 3, 5, 7, 13, 197};
const int64_t kCols[] = {1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000};
const int64_t kDepths[] = {1, 3, 16, 17, 64, 577, 1280};

}  // namespace

TEST_SUITE("jit") {

TEST_CASE("gemm: rows, columns and depths around the tile edges") {
  // Every (M, N, K); activation, bias and transB rotate through their values.
  const auto& kinds = all_activation_kinds();
  for (Isa isa : kIsas) {
    std::size_t i = 0;
    for (int64_t m : kRows)
      for (int64_t n : kCols)
        for (int64_t k : kDepths) {
          ++i;
          GemmTester()
              .m(m)
              .n(n)
              .k(k)
              .activation(Activation::of(kinds[i % kinds.size()]))
              .bias(i % 2 == 0)
              .trans_b(i / 2 % 2 == 0)
              .isa(isa)
              .seed(static_cast<uint32_t>(i))
              .Test();
        }
  }
}

TEST_CASE("gemm: every activation, with and without bias, W and W transposed") {
  for (Isa isa : kIsas)
    for (ActivationKind kind : all_activation_kinds())
      for (bool bias : {false, true})
        for (bool trans : {false, true})
          for (int64_t m : {1, 5, 13})
            for (int64_t n : {9, 40, 65})
              GemmTester().m(m).n(n).k(m == 5 ? 64 : 17).activation(Activation::of(kind)).bias(bias).trans_b(trans).isa(isa).Test();
}

TEST_CASE("gemm: activation parameters, alpha and beta") {
  for (Isa isa : kIsas) {
    GemmTester().m(3).n(20).k(20).activation(Activation::clip(-0.3f, 0.4f)).isa(isa).Test();
    GemmTester().m(3).n(20).k(20).activation(Activation::leaky_relu(0.2f)).isa(isa).Test();
    GemmTester().m(3).n(20).k(20).activation(Activation::hard_sigmoid(0.5f, 0.1f)).isa(isa).Test();
    GemmTester().m(4).n(33).k(50).alpha(0.5f).beta(-2.f).isa(isa).Test();
    GemmTester().m(1).n(33).k(50).alpha(-1.5f).beta(0.f).trans_b(true).isa(isa).Test();
  }
}

TEST_CASE("gemm: K chunks and row blocks (a small L2), with the column tail in partial sums") {
  for (Isa isa : kIsas)
    for (int64_t m : {1, 13, 197})
      for (int64_t n : {65, 100})
        for (int64_t k : {577, 1280})
          for (ActivationKind kind : {ActivationKind::none, ActivationKind::gelu}) {
            GemmTester t;
            t.m(m).n(n).k(k).activation(Activation::of(kind)).l2(16 << 10).isa(isa);
            t.Test();
            t.split(3).Test();
          }
}

TEST_CASE("gemm: strided rows, and split over rows and panels as threads run it") {
  for (Isa isa : kIsas)
    for (int64_t m : {1, 7, 29})
      for (int64_t n : {17, 130}) {
        GemmTester().m(m).n(n).k(33).lda_pad(5).ldc_pad(3).isa(isa).Test();
        GemmTester().m(m).n(n).k(33).split(4).activation(Activation::silu()).isa(isa).Test();
      }
}

TEST_CASE("gemm: the classifier heads and attention shapes") {
  const int64_t shapes[][3] = {{1, 1280, 1000}, {1, 2048, 1000}, {1, 1024, 1000}, {1, 576, 1024}, {197, 768, 768}};
  for (Isa isa : kIsas)
    for (const auto& mkn : shapes) GemmTester().m(mkn[0]).k(mkn[1]).n(mkn[2]).trans_b(true).isa(isa).Test();
}

TEST_CASE("gemm: plans, names and refusals") {
  for (Isa isa : kIsas) {
    const HostInfo host = host_for(isa);
    auto planned = plan_gemm({.m = 1, .k = 1280, .n = 1000, .activation = Activation::relu()}, host);
    REQUIRE(std::holds_alternative<GemmPlan>(planned));
    const GemmPlan& plan = std::get<GemmPlan>(planned);
    const std::string name = plan.name();
    CHECK(name.rfind("f32_gemm_relu_", 0) == 0);
    CHECK(name.size() > 8);
    CHECK(name.substr(name.size() - std::string(to_string(isa)).size() - 2) == std::string("__") + to_string(isa));
    CHECK(plan.main.rows == 1);
    CHECK(plan.chunks == 1);  // one row: the weights are streamed once, unchunked
    int64_t cols = 0;
    for (int64_t p = 0; p < plan.panels(); ++p) cols += plan.panel_width(p);
    CHECK(cols == plan.n_blocks * plan.block);

    auto big = plan_gemm({.m = 197, .k = 3072, .n = 768}, host_for(isa, 48 << 10, 256 << 10));
    REQUIRE(std::holds_alternative<GemmPlan>(big));
    CHECK(std::get<GemmPlan>(big).chunks > 1);
    CHECK(std::get<GemmPlan>(big).main.rows > 1);

    CHECK(std::holds_alternative<std::string>(plan_gemm({.m = 0, .k = 4, .n = 4}, host)));
    CHECK(std::holds_alternative<std::string>(plan_gemm({.m = 1, .k = 4, .n = int64_t{1} << 25}, host)));
    CHECK(std::holds_alternative<std::string>(
        plan_gemm({.m = 1, .k = 4, .n = 4, .activation = Activation::clip(1.f, 0.f)}, host)));
    CHECK_THROWS_AS(pack_gemm_weights(plan, nullptr), std::invalid_argument);
    GemmPlan bad = plan;
    bad.main.rows = 9;
    CHECK_THROWS_AS(GemmKernel(bad, "bad"), std::invalid_argument);
  }
  CHECK(std::holds_alternative<std::string>(plan_gemm({.m = 1, .k = 4, .n = 4}, HostInfo{})));
}

}  // TEST_SUITE
