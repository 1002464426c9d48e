// Elementwise op schemas (ops/elementwise*.cpp): the edge cases the ONNX node tests miss —
// broadcasting both ways, scalars, empty tensors, integer types and their overflow
// corners, NaN, opset-dependent behaviour and type refusal.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/op.hpp"
#include "tests/ops/op_runner.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using namespace nnjit::testing;
using namespace nnjit::testing::ew;
using V = std::vector<double>;

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
}  // namespace

TEST_SUITE("ops") {

TEST_CASE("Add broadcasts both ways, with scalars and rank 0") {
  // [3,1] + [1,4] -> [3,4]: each side is broadcast along the other's dim.
  auto y = OpRunner("Add").in(f32({0, 10, 20}, {3, 1})).in(f32({1, 2, 3, 4}, {1, 4})).run()[0];
  CHECK(y.shape() == Shape{3, 4});
  CHECK(values(y) == V{1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24});

  // Lower rank on either side is right-aligned.
  y = OpRunner("Sub").in(f32({1, 2}, {2})).in(f32({10, 20, 30, 40, 50, 60}, {3, 2})).run()[0];
  CHECK(y.shape() == Shape{3, 2});
  CHECK(values(y) == V{-9, -18, -29, -38, -49, -58});
  y = OpRunner("Sub").in(f32({10, 20, 30, 40, 50, 60}, {3, 2})).in(f32({1, 2}, {2})).run()[0];
  CHECK(values(y) == V{9, 18, 29, 38, 49, 58});

  // A rank-0 scalar on each side, and two scalars giving a scalar.
  y = OpRunner("Mul").in(f32({3}, {})).in(f32({1, 2, 3}, {3})).run()[0];
  CHECK(values(y) == V{3, 6, 9});
  y = OpRunner("Div").in(f32({1, 2, 3}, {3})).in(f32({2}, {})).run()[0];
  CHECK(values(y) == V{0.5, 1, 1.5});
  y = OpRunner("Add").in(f32({3}, {})).in(f32({4}, {})).run()[0];
  CHECK(y.shape() == Shape{});
  CHECK(values(y) == V{7});

  // The general path: every input broadcast in some dim.
  y = OpRunner("Add").in(f32({0, 100}, {2, 1, 1})).in(f32({1, 2, 3, 4, 5, 6}, {1, 2, 3})).run()[0];
  CHECK(y.shape() == Shape{2, 2, 3});
  CHECK(values(y) == V{1, 2, 3, 4, 5, 6, 101, 102, 103, 104, 105, 106});
}

TEST_CASE("binary ops refuse shapes that do not broadcast, and mixed types") {
  CHECK_INVALID(OpRunner("Add").in(f32({1, 2, 3}, {3})).in(f32({1, 2}, {2})).run());
  CHECK_INVALID(OpRunner("Add").in(f32({1}, {1})).in(i64({1}, {1})).run());
  CHECK_INVALID(OpRunner("Add").in(f32({1}, {1})).run());
  CHECK_INVALID(OpRunner("Where").in(bools({1, 0}, {2})).in(f32({1, 2, 3}, {3})).in(f32({0}, {})).run());
}

TEST_CASE("elementwise ops handle empty tensors") {
  auto y = OpRunner("Add").in(f32({}, {0, 3})).in(f32({1, 2, 3}, {1, 3})).run()[0];
  CHECK(y.shape() == Shape{0, 3});
  y = OpRunner("Mul").in(f32({}, {0})).in(f32({2}, {})).run()[0];
  CHECK(y.shape() == Shape{0});
  y = OpRunner("Relu").in(f32({}, {2, 0})).run()[0];
  CHECK(y.shape() == Shape{2, 0});
  y = OpRunner("Where").in(bools({}, {0, 1})).in(f32({1, 2}, {2})).in(f32({0}, {})).run()[0];
  CHECK(y.shape() == Shape{0, 2});
  y = OpRunner("Max").in(f32({}, {0, 2})).in(f32({1, 2}, {2})).in(f32({1}, {1})).run()[0];
  CHECK(y.shape() == Shape{0, 2});
  y = OpRunner("Cast").attr_i("to", static_cast<int>(DType::Int64)).in(f32({}, {0})).run()[0];
  CHECK(y.dtype() == DType::Int64);
  CHECK(y.shape() == Shape{0});
  CHECK(OpRunner("Equal").in(i64({}, {0})).in(i64({}, {0})).run()[0].shape() == Shape{0});
}

TEST_CASE("integer arithmetic wraps and divides toward zero") {
  constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();
  constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min();
  auto y = OpRunner("Add").in(i32({kMax32, 1}, {2})).in(i32({1}, {1})).run()[0];
  CHECK(y.dtype() == DType::Int32);
  CHECK(values(y) == V{double(std::numeric_limits<int32_t>::min()), 2});
  y = OpRunner("Mul").in(i64({kMin64, 3}, {2})).in(i64({-1, -4}, {2})).run()[0];
  CHECK(y.data<int64_t>()[0] == kMin64);
  CHECK(y.data<int64_t>()[1] == -12);
  y = OpRunner("Sub").in(i64({5}, {})).in(i64({7, -7}, {2})).run()[0];
  CHECK(values(y) == V{-2, 12});

  // C truncation (not numpy floor division); x/0 and INT_MIN/-1 do not trap.
  y = OpRunner("Div").in(i64({7, -7, 7, -7, 5, kMin64}, {6})).in(i64({2, 2, -2, -2, 0, -1}, {6})).run()[0];
  CHECK(y.data<int64_t>()[0] == 3);
  CHECK(y.data<int64_t>()[1] == -3);
  CHECK(y.data<int64_t>()[2] == -3);
  CHECK(y.data<int64_t>()[3] == 3);
  CHECK(y.data<int64_t>()[4] == 0);
  CHECK(y.data<int64_t>()[5] == kMin64);
  y = OpRunner("Div").in(i32({9, -9}, {2})).in(i32({4}, {})).run()[0];
  CHECK(values(y) == V{2, -2});

  // Float division by zero is IEEE.
  y = OpRunner("Div").in(f32({1, -1}, {2})).in(f32({0}, {})).run()[0];
  CHECK(values(y) == V{kInf, -kInf});
}

TEST_CASE("Abs and Neg of integers, INT_MIN included") {
  constexpr int32_t kMin32 = std::numeric_limits<int32_t>::min();
  auto y = OpRunner("Abs").in(i32({-3, 4, kMin32}, {3})).run()[0];
  CHECK(values(y) == V{3, 4, double(kMin32)});
  y = OpRunner("Neg").in(i64({-3, 4, 0}, {3})).run()[0];
  CHECK(values(y) == V{3, -4, 0});
  y = OpRunner("Neg").in(i32({kMin32}, {1})).run()[0];
  CHECK(values(y) == V{double(kMin32)});
  y = OpRunner("Abs").in(f32({-0.5f, 2}, {2})).run()[0];
  CHECK(values(y) == V{0.5, 2});
}

TEST_CASE("Pow: base type decides the output; mixed exponent types") {
  // float base, integer exponent (Pow-12+).
  auto y = OpRunner("Pow").in(f32({2, -3, 0.5f}, {3})).in(i64({3, 2, -1}, {3})).run()[0];
  CHECK(y.dtype() == DType::Float32);
  CHECK(values(y) == V{8, 9, 2});
  y = OpRunner("Pow").in(f32({4, 9}, {2})).in(i32({2}, {})).run()[0];
  CHECK(values(y) == V{16, 81});
  // float^float, broadcasting a scalar exponent; negative base to a fraction is NaN.
  y = OpRunner("Pow").in(f32({4, 9, -4}, {3})).in(f32({0.5f}, {})).run()[0];
  CHECK(y.data<float>()[0] == doctest::Approx(2));
  CHECK(y.data<float>()[1] == doctest::Approx(3));
  CHECK(std::isnan(y.data<float>()[2]));
  // A scalar exponent 2 (x * x) gives powf's bits, over a rank-raising [1,1] exponent too.
  const std::vector<float> xs = {1.5f, -3.25f, 1e-20f, -0.f, 3e19f, 1.1f, INFINITY, NAN};
  y = OpRunner("Pow").in(f32(xs, {8})).in(f32({2.f}, {1, 1})).run()[0];
  CHECK(y.shape() == Shape{1, 8});
  for (std::size_t i = 0; i < xs.size(); ++i) {
    CAPTURE(xs[i]);
    const float want = std::pow(xs[i], 2.f), got = y.data<float>()[i];
    CHECK((std::isnan(want) ? std::isnan(got) : std::memcmp(&got, &want, sizeof got) == 0));
  }
  // integer base, integer exponent: exact, wrapping; negative exponents truncate.
  y = OpRunner("Pow").in(i64({3, 2, 2, -1, 1, 5}, {6})).in(i64({4, 62, 64, -3, -5, -1}, {6})).run()[0];
  CHECK(y.dtype() == DType::Int64);
  CHECK(y.data<int64_t>()[0] == 81);
  CHECK(y.data<int64_t>()[1] == (int64_t{1} << 62));
  CHECK(y.data<int64_t>()[2] == 0);  // 2^64 wraps to 0
  CHECK(y.data<int64_t>()[3] == -1);
  CHECK(y.data<int64_t>()[4] == 1);
  CHECK(y.data<int64_t>()[5] == 0);
  // integer base, float exponent: computed in double, truncated.
  y = OpRunner("Pow").in(i32({2, 9, 10}, {3})).in(f32({3, 0.5f, -1}, {3})).run()[0];
  CHECK(y.dtype() == DType::Int32);
  CHECK(values(y) == V{8, 3, 0});
  CHECK_UNSUPPORTED(OpRunner("Pow").in(f32({2}, {1})).in(Tensor(DType::UInt32, {1})).run());
  CHECK_UNSUPPORTED(OpRunner("Pow").in(Tensor(DType::Float64, {1})).in(f32({2}, {1})).run());
}

TEST_CASE("Clip: attributes before opset 11, optional inputs after") {
  const Tensor x = f32({-5, -1, 0, 1, 5, kNaN}, {6});
  auto y = OpRunner("Clip").opset(6).attr_f("min", -2).attr_f("max", 2).in(x).run()[0];
  CHECK(values(y)[0] == -2);
  CHECK(values(y)[4] == 2);
  CHECK(std::isnan(values(y)[5]));  // NaN passes through
  // Only a min attribute: max defaults to FLT_MAX, so +inf is clipped to it.
  y = OpRunner("Clip").opset(6).attr_f("min", 0).in(f32({-1, kInf}, {2})).run()[0];
  CHECK(values(y) == V{0, FLT_MAX});

  y = OpRunner("Clip").opset(13).in(x).in(f32({-2}, {})).in(f32({2}, {})).run()[0];
  CHECK(values(y)[0] == -2);
  CHECK(values(y)[4] == 2);
  // Only max (min absent in the middle), then only min.
  y = OpRunner("Clip").opset(13).in(f32({-5, 5}, {2})).absent().in(f32({1}, {})).run()[0];
  CHECK(values(y) == V{-5, 1});
  // An absent max is numeric_limits::max() (the spec's words, and ONNX Runtime's), so
  // +inf is clipped to it.
  y = OpRunner("Clip").opset(11).in(f32({-5, 5, kInf}, {3})).in(f32({1}, {})).run()[0];
  CHECK(values(y) == V{1, 5, FLT_MAX});
  // No bounds at all: identity. Bounds computed at run time work too.
  y = OpRunner("Clip").opset(13).in(x).run()[0];
  CHECK(values(y)[0] == -5);
  y = OpRunner("Clip").opset(13).in(x).in_runtime(f32({0}, {1})).run()[0];
  CHECK(values(y)[1] == 0);
  // min > max gives max everywhere, as numpy.clip does.
  y = OpRunner("Clip").opset(13).in(f32({-5, 0, 5}, {3})).in(f32({2}, {})).in(f32({1}, {})).run()[0];
  CHECK(values(y) == V{1, 1, 1});
  // Integer clip (opset 12+).
  y = OpRunner("Clip").opset(13).in(i64({-5, 3, 9}, {3})).in(i64({0}, {})).in(i64({4}, {})).run()[0];
  CHECK(values(y) == V{0, 3, 4});

  CHECK_INVALID(OpRunner("Clip").opset(13).in(x).in(f32({0, 1}, {2})).run());
  CHECK_INVALID(OpRunner("Clip").opset(13).in(x).in(i64({0}, {})).run());
  CHECK_UNSUPPORTED(OpRunner("Clip").opset(13).in(Tensor(DType::Int8, {3})).run());
  CHECK_UNSUPPORTED(OpRunner("Clip").opset(6).in(i64({1}, {1})).run());
}

TEST_CASE("activations: defaults, extremes, integer Relu") {
  auto y = OpRunner("Relu").in(i32({-3, 0, 7}, {3})).run()[0];
  CHECK(y.dtype() == DType::Int32);
  CHECK(values(y) == V{0, 0, 7});
  y = OpRunner("Relu").in(f32({-1.5f}, {})).run()[0];
  CHECK(y.shape() == Shape{});
  CHECK(values(y) == V{0});
  CHECK(std::isnan(OpRunner("Relu").in(f32({kNaN}, {1})).run()[0].data<float>()[0]));

  y = OpRunner("LeakyRelu").in(f32({-10, 10}, {2})).run()[0];  // alpha defaults to 0.01
  CHECK(y.data<float>()[0] == doctest::Approx(-0.1));
  CHECK(y.data<float>()[1] == 10);
  y = OpRunner("LeakyRelu").attr_f("alpha", 0.5f).in(f32({-4}, {1})).run()[0];
  CHECK(values(y) == V{-2});

  // HardSigmoid defaults alpha 0.2, beta 0.5: max(0, min(1, 0.2x + 0.5)).
  y = OpRunner("HardSigmoid").in(f32({-10, 0, 1, 10}, {4})).run()[0];
  CHECK(y.data<float>()[0] == 0);
  CHECK(y.data<float>()[1] == doctest::Approx(0.5));
  CHECK(y.data<float>()[2] == doctest::Approx(0.7));
  CHECK(y.data<float>()[3] == 1);
  y = OpRunner("HardSigmoid").attr_f("alpha", 0.5f).attr_f("beta", 0.6f).in(f32({-1, 1}, {2})).run()[0];
  CHECK(y.data<float>()[0] == doctest::Approx(0.1));
  CHECK(y.data<float>()[1] == doctest::Approx(1));

  y = OpRunner("HardSwish").in(f32({-4, -3, 0, 1, 3, 4}, {6})).run()[0];
  CHECK(y.data<float>()[0] == 0);
  CHECK(y.data<float>()[1] == 0);
  CHECK(y.data<float>()[3] == doctest::Approx(1.f * (1.f / 6 + 0.5f)));
  CHECK(y.data<float>()[4] == 3);
  CHECK(y.data<float>()[5] == 4);

  // Sigmoid saturates without NaN at the extremes.
  y = OpRunner("Sigmoid").in(f32({-1000, 0, 1000, -kInf, kInf}, {5})).run()[0];
  CHECK(values(y) == V{0, 0.5, 1, 0, 1});
  y = OpRunner("Tanh").in(f32({-1000, 0, 1000}, {3})).run()[0];
  CHECK(values(y) == V{-1, 0, 1});
}

TEST_CASE("float math: Erf, Exp, Log, Sqrt") {
  const Tensor x = random_tensor({2, 3, 5}, 7, 0.01f, 3.f);
  const std::pair<const char*, double (*)(double)> fns[] = {
      {"Erf", [](double v) { return std::erf(v); }},
      {"Exp", [](double v) { return std::exp(v); }},
      {"Log", [](double v) { return std::log(v); }},
      {"Sqrt", [](double v) { return std::sqrt(v); }},
  };
  for (const auto& [op, fn] : fns) {
    CAPTURE(op);
    auto y = OpRunner(op).in(x).run()[0];
    REQUIRE(y.shape() == x.shape());
    for (int64_t i = 0; i < x.numel(); ++i)
      CHECK(y.data<float>()[i] == doctest::Approx(fn(x.data<float>()[i])).epsilon(1e-6));
  }
  auto y = OpRunner("Log").in(f32({0, -1}, {2})).run()[0];
  CHECK(y.data<float>()[0] == -kInf);
  CHECK(std::isnan(y.data<float>()[1]));
  CHECK(std::isnan(OpRunner("Sqrt").in(f32({-1}, {})).run()[0].data<float>()[0]));
}

TEST_CASE("Max/Min propagate NaN; Max/Min/Sum/Mean are variadic and broadcast") {
  auto y = OpRunner("Max").in(f32({1, kNaN, 3}, {3})).in(f32({kNaN, 2, 1}, {3})).run()[0];
  CHECK(std::isnan(y.data<float>()[0]));
  CHECK(std::isnan(y.data<float>()[1]));
  CHECK(y.data<float>()[2] == 3);
  y = OpRunner("Min").in(f32({1, kNaN, 3}, {3})).in(f32({kNaN, 2, 1}, {3})).run()[0];
  CHECK(std::isnan(y.data<float>()[0]));
  CHECK(std::isnan(y.data<float>()[1]));
  CHECK(y.data<float>()[2] == 1);

  // Three inputs of three different shapes: [2,1], [3], [] -> [2,3].
  y = OpRunner("Max").in(f32({0, 5}, {2, 1})).in(f32({1, 6, 3}, {3})).in(f32({2}, {})).run()[0];
  CHECK(y.shape() == Shape{2, 3});
  CHECK(values(y) == V{2, 6, 3, 5, 6, 5});
  y = OpRunner("Min").in(i64({0, 5}, {2, 1})).in(i64({1, 6, 3}, {3})).in(i64({2}, {})).run()[0];
  CHECK(y.dtype() == DType::Int64);
  CHECK(values(y) == V{0, 0, 0, 1, 2, 2});
  y = OpRunner("Sum").in(f32({1, 2}, {2, 1})).in(f32({10, 20, 30}, {3})).in(f32({100}, {})).run()[0];
  CHECK(values(y) == V{111, 121, 131, 112, 122, 132});
  y = OpRunner("Mean").in(f32({1, 2}, {2, 1})).in(f32({4, 5, 6}, {3})).in(f32({3}, {})).run()[0];
  const V mean = {8.0 / 3, 3, 10.0 / 3, 3, 10.0 / 3, 11.0 / 3};
  for (std::size_t i = 0; i < mean.size(); ++i) CHECK(values(y)[i] == doctest::Approx(mean[i]));

  // One input: a copy.
  y = OpRunner("Sum").in(f32({1, 2}, {2})).run()[0];
  CHECK(values(y) == V{1, 2});
  y = OpRunner("Mean").in(f32({1, 2}, {2})).run()[0];
  CHECK(values(y) == V{1, 2});

  CHECK_INVALID(OpRunner("Max").in(f32({1}, {1})).in(i64({1}, {1})).run());
  CHECK_INVALID(OpRunner("Max").in(f32({1, 2}, {2})).in(f32({1, 2, 3}, {3})).run());
  CHECK_UNSUPPORTED(OpRunner("Sum").in(i64({1}, {1})).in(i64({1}, {1})).run());
  CHECK_UNSUPPORTED(OpRunner("Mean").in(Tensor(DType::Float64, {1})).run());
  CHECK_UNSUPPORTED(OpRunner("Max").in(Tensor(DType::UInt8, {1})).in(Tensor(DType::UInt8, {1})).run());
}

TEST_CASE("comparisons give bool and broadcast") {
  auto y = OpRunner("Equal").in(i64({1, 2, 3}, {3, 1})).in(i64({1, 3}, {2})).run()[0];
  CHECK(y.dtype() == DType::Bool);
  CHECK(y.shape() == Shape{3, 2});
  CHECK(values(y) == V{1, 0, 0, 0, 0, 1});
  y = OpRunner("Equal").in(bools({1, 0}, {2})).in(bools({1}, {})).run()[0];
  CHECK(values(y) == V{1, 0});
  y = OpRunner("Equal").in(f32({kNaN, 1}, {2})).in(f32({kNaN, 1}, {2})).run()[0];
  CHECK(values(y) == V{0, 1});
  y = OpRunner("Less").in(f32({1, 2, 3}, {3})).in(f32({2}, {})).run()[0];
  CHECK(values(y) == V{1, 0, 0});
  y = OpRunner("Greater").in(i32({2}, {})).in(i32({1, 2, 3}, {3})).run()[0];
  CHECK(values(y) == V{1, 0, 0});
  CHECK_UNSUPPORTED(OpRunner("Less").in(bools({1}, {1})).in(bools({1}, {1})).run());
  CHECK_UNSUPPORTED(OpRunner("Greater").in(Tensor(DType::Float16, {1})).in(Tensor(DType::Float16, {1})).run());
}

TEST_CASE("Cast to and from float16 and bfloat16: exact up, nearest-even down, specials kept") {
  auto cast = [](const Tensor& x, DType to) {
    return OpRunner("Cast").attr_i("to", static_cast<int>(to)).in(x).run()[0];
  };
  auto bits = [](const Tensor& t) {
    const auto* p = static_cast<const uint16_t*>(t.raw());
    return std::vector<uint16_t>(p, p + t.numel());
  };
  auto sixteen = [](DType d, const std::vector<uint16_t>& v) {
    Tensor t(d, {static_cast<int64_t>(v.size())});
    std::memcpy(t.raw(), v.data(), v.size() * 2);
    return t;
  };
  const float tiny = std::ldexp(1.f, -24), one_ulp_half = std::ldexp(1.f, -11);
  // 1, the largest half, a value rounding to it, the first rounding to inf, the smallest
  // subnormal, ties between subnormals (to even: 0 and 2), a tie above 1 (to 1), a value
  // past it, -0, -inf, the smallest normal, a value below every subnormal.
  Tensor h = cast(f32({1.f, 65504.f, 65519.f, 65520.f, tiny, tiny / 2, 3 * tiny / 2, 1 + one_ulp_half,
                       1 + 3 * one_ulp_half, -0.f, -INFINITY, std::ldexp(1.f, -14), 1e-8f},
                      {13}),
                  DType::Float16);
  CHECK(h.dtype() == DType::Float16);
  CHECK(bits(h) == std::vector<uint16_t>{0x3c00, 0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0002, 0x3c00, 0x3c02,
                                         0x8000, 0xfc00, 0x0400, 0x0000});
  Tensor nan_h = cast(f32({kNaN}, {1}), DType::Float16);
  CHECK((bits(nan_h)[0] & 0x7c00) == 0x7c00);
  CHECK((bits(nan_h)[0] & 0x3ff) != 0);
  // Up: exact, subnormals and specials included; to float64 and int32 through float32.
  Tensor f = cast(sixteen(DType::Float16, {0x0001, 0x7bff, 0x8000, 0x3555, 0xfc00, 0x7e00}), DType::Float32);
  CHECK(f.data<float>()[0] == tiny);
  CHECK(f.data<float>()[1] == 65504.f);
  CHECK(std::signbit(f.data<float>()[2]));
  CHECK(f.data<float>()[3] == 0x1.554p-2f);
  CHECK(f.data<float>()[4] == -INFINITY);
  CHECK(std::isnan(f.data<float>()[5]));
  CHECK(values(cast(sixteen(DType::Float16, {0x4500, 0xc500}), DType::Int32)) == V{5, -5});
  CHECK(values(cast(sixteen(DType::Float16, {0x3c00}), DType::Float64)) == V{1});
  // bfloat16: the top half of float32, rounded to nearest even; NaN stays NaN.
  const float bf_ulp = std::ldexp(1.f, -8);
  Tensor b = cast(f32({1.f, 1 + bf_ulp, 1 + 3 * bf_ulp, -2.5f, INFINITY}, {5}), DType::BFloat16);
  CHECK(bits(b) == std::vector<uint16_t>{0x3f80, 0x3f80, 0x3f82, 0xc020, 0x7f80});
  CHECK(std::isnan(cast(cast(f32({kNaN}, {1}), DType::BFloat16), DType::Float32).data<float>()[0]));
  CHECK(values(cast(sixteen(DType::BFloat16, {0x3f80, 0xc020}), DType::Float32)) == V{1, -2.5});
  // float16 <-> bfloat16 through float32; CastLike takes the same path.
  CHECK(bits(cast(sixteen(DType::Float16, {0x3c00, 0x4500}), DType::BFloat16)) == std::vector<uint16_t>{0x3f80, 0x40a0});
  Tensor like = OpRunner("CastLike").opset(15).in(f32({2.f}, {1})).in(Tensor(DType::Float16, {1})).run()[0];
  CHECK(bits(like) == std::vector<uint16_t>{0x4000});
}

TEST_CASE("Not and Where") {
  auto y = OpRunner("Not").in(bools({1, 0, 0}, {3})).run()[0];
  CHECK(values(y) == V{0, 1, 1});
  CHECK_UNSUPPORTED(OpRunner("Not").in(i32({1}, {1})).run());

  // cond [2,1], x [3], y scalar -> [2,3].
  y = OpRunner("Where").in(bools({1, 0}, {2, 1})).in(i64({1, 2, 3}, {3})).in(i64({-1}, {})).run()[0];
  CHECK(y.dtype() == DType::Int64);
  CHECK(y.shape() == Shape{2, 3});
  CHECK(values(y) == V{1, 2, 3, -1, -1, -1});
  y = OpRunner("Where").in(bools({1, 0, 1}, {3})).in(f32({1, 2, 3}, {3})).in(f32({4, 5, 6}, {3})).run()[0];
  CHECK(values(y) == V{1, 5, 3});
  CHECK_UNSUPPORTED(OpRunner("Where").in(f32({1}, {1})).in(f32({1}, {1})).in(f32({1}, {1})).run());
  CHECK_INVALID(OpRunner("Where").in(bools({1}, {1})).in(f32({1}, {1})).in(i64({1}, {1})).run());
}

TEST_CASE("Cast between the supported types") {
  auto cast = [](const Tensor& x, DType to) {
    return OpRunner("Cast").attr_i("to", static_cast<int>(to)).in(x).run()[0];
  };
  // Float to integer truncates toward zero; NaN gives 0; out of range saturates.
  const Tensor f = f32({-1.7f, 1.7f, 300, -300, kNaN, 3e10f}, {6});
  auto y = cast(f, DType::Int32);
  CHECK(y.dtype() == DType::Int32);
  CHECK(values(y) == V{-1, 1, 300, -300, 0, double(std::numeric_limits<int32_t>::max())});
  CHECK(values(cast(f, DType::Int8)) == V{-1, 1, 127, -128, 0, 127});
  CHECK(values(cast(f, DType::UInt8)) == V{0, 1, 255, 0, 0, 255});
  CHECK(values(cast(f, DType::Bool)) == V{1, 1, 1, 1, 1, 1});
  CHECK(values(cast(f32({0, -0.f}, {2}), DType::Bool)) == V{0, 0});
  // Integer narrowing wraps.
  CHECK(values(cast(i64({(int64_t{1} << 32) + 5, -1}, {2}), DType::Int32)) == V{5, -1});
  CHECK(values(cast(i64({257, -1}, {2}), DType::UInt8)) == V{1, 255});
  // Widening and to float.
  y = cast(i32({-3, 4}, {2}), DType::Int64);
  CHECK(y.dtype() == DType::Int64);
  CHECK(values(y) == V{-3, 4});
  y = cast(bools({1, 0}, {2}), DType::Float32);
  CHECK(values(y) == V{1, 0});
  y = cast(f32({0.1f}, {}), DType::Float64);
  CHECK(y.shape() == Shape{});
  CHECK(y.data<double>()[0] == double(0.1f));
  y = cast(cast(f32({1.5f, -2}, {2}), DType::Float64), DType::Float32);
  CHECK(values(y) == V{1.5, -2});
  y = cast(f32({1.5f}, {1}), DType::Float32);
  CHECK(values(y) == V{1.5});

  // string, uint16... are refused, both by check (at load) and by infer.
  OpRunner to_string = OpRunner("Cast").attr_i("to", static_cast<int>(DType::String)).in(f32({1}, {1}));
  CHECK(to_string.check().size() == 1);
  CHECK_UNSUPPORTED(to_string.run());
  CHECK(OpRunner("Cast").attr_i("to", static_cast<int>(DType::Int64)).check().empty());
  CHECK(OpRunner("Cast").attr_i("to", static_cast<int>(DType::Float16)).check().empty());
  CHECK_UNSUPPORTED(cast(Tensor(DType::UInt16, {1}), DType::Float32));
  CHECK_INVALID(OpRunner("Cast").in(f32({1}, {1})).run());  // no 'to'
}

TEST_CASE("Identity and Dropout pass data through") {
  auto y = OpRunner("Identity").in(i64({1, 2, 3}, {3})).run()[0];
  CHECK(values(y) == V{1, 2, 3});
  y = OpRunner("Identity").in(f32({4}, {})).run()[0];
  CHECK(values(y) == V{4});
  CHECK_UNSUPPORTED(OpRunner("Identity").in(Tensor(DType::Float16, {1})).run());

  const Tensor x = f32({1, -2, 3}, {3});
  auto outs = OpRunner("Dropout").opset(13).outputs(2).in(x).run();
  CHECK(values(outs[0]) == V{1, -2, 3});
  CHECK(outs[1].dtype() == DType::Bool);
  CHECK(values(outs[1]) == V{1, 1, 1});
  // Ratio is ignored at inference; training_mode false is fine.
  outs = OpRunner("Dropout").opset(13).outputs(2).in(x).in(f32({0.9f}, {})).in(bools({0}, {})).run();
  CHECK(values(outs[0]) == V{1, -2, 3});
  // Before opset 10 the mask has the data's type.
  outs = OpRunner("Dropout").opset(7).attr_f("ratio", 0.3f).outputs(2).in(x).run();
  CHECK(outs[1].dtype() == DType::Float32);
  CHECK(values(outs[1]) == V{1, 1, 1});
  // Dropout in training is refused: at load when constant, at run time otherwise...
  CHECK_UNSUPPORTED(OpRunner("Dropout").opset(13).in(x).absent().in(bools({1}, {})).run());
  CHECK_UNSUPPORTED(OpRunner("Dropout").opset(13).in(x).absent().in_runtime(bools({1}, {})).run());
  CHECK_UNSUPPORTED(OpRunner("Dropout").opset(13).in(x).in(f32({0.1f}, {})).in(bools({1}, {})).run());
  CHECK_UNSUPPORTED(
      OpRunner("Dropout").opset(13).in(x).in_runtime(f32({0.1f}, {})).in_runtime(bools({1}, {})).run());
  // ... unless its ratio is 0, which drops nothing (torchvision's swin_t exports that).
  outs = OpRunner("Dropout").opset(13).outputs(2).in(x).in(f32({0.f}, {})).in(bools({1}, {})).run();
  CHECK(values(outs[0]) == V{1, -2, 3});
  CHECK(values(outs[1]) == V{1, 1, 1});
  outs = OpRunner("Dropout").opset(13).in(x).in_runtime(f32({0.f}, {})).in_runtime(bools({1}, {})).run();
  CHECK(values(outs[0]) == V{1, -2, 3});
  CHECK_INVALID(OpRunner("Dropout").opset(13).in(x).in(f32({0.f, 0.f}, {2})).run());  // ratio not a scalar
  CHECK_INVALID(OpRunner("Dropout").opset(10).in(x).in(f32({0.5f}, {})).run());
  CHECK_UNSUPPORTED(OpRunner("Dropout").in(Tensor(DType::Float64, {1})).run());
}

TEST_CASE("math ops refuse types they do not compute") {
  for (const char* op : {"Sigmoid", "Tanh", "Erf", "Exp", "Log", "Sqrt", "LeakyRelu", "HardSigmoid", "HardSwish"}) {
    CAPTURE(op);
    CHECK_UNSUPPORTED(OpRunner(op).in(i64({1}, {1})).run());
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Float16, {1})).run());
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Float64, {1})).run());
  }
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    CAPTURE(op);
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::UInt8, {2})).in(Tensor(DType::UInt8, {2})).run());
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Float16, {2})).in(Tensor(DType::Float16, {2})).run());
    CHECK_UNSUPPORTED(OpRunner(op).in(bools({1}, {1})).in(bools({1}, {1})).run());
  }
  for (const char* op : {"Relu", "Abs", "Neg"}) {
    CAPTURE(op);
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Int8, {1})).run());
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Float64, {1})).run());
  }
}

TEST_CASE("broadcast add on a model-sized activation matches a plain loop") {
  // A per-channel bias and a full residual on 1x32x56x56, as in a real network.
  const Tensor x = random_tensor({1, 32, 56, 56}, 1);
  const Tensor bias = random_tensor({1, 32, 1, 1}, 2);
  const Tensor res = random_tensor({1, 32, 56, 56}, 3);
  auto y = OpRunner("Add").in(x).in(bias).run()[0];
  auto z = OpRunner("Add").in(y).in(res).run()[0];
  const float* px = x.data<float>();
  const float* pb = bias.data<float>();
  const float* pr = res.data<float>();
  double worst = 0;
  for (int64_t c = 0; c < 32; ++c)
    for (int64_t i = 0; i < 56 * 56; ++i) {
      const int64_t e = c * 56 * 56 + i;
      worst = std::max(worst, double(std::fabs(z.data<float>()[e] - (px[e] + pb[c] + pr[e]))));
    }
  CHECK(worst == 0);
}

}  // TEST_SUITE
