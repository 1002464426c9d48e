// The ops of ops/math_extra.cpp, ops/logic.cpp, ops/index_ops.cpp, ops/norm_extra.cpp and
// the newer reductions of ops/reduce.cpp: the edge cases the ONNX node tests miss —
// negative axes, empty tensors, broadcasting, ties, Mod's signs, integer corners, NaN,
// values computed at run time, out-of-range indices, and type refusal.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/op.hpp"
#include "tests/ops/op_runner.hpp"
#include "tests/ops/tensor_op_runner.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using namespace nnjit::testing;
using namespace nnjit::testing::ew;
using V = std::vector<double>;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// 0, 1, 2, ... of the given shape.
Tensor iota(Shape s) {
  Tensor t(DType::Float32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

Tensor run1(const OpRunner& r) { return r.run()[0]; }

}  // namespace

TEST_SUITE("ops") {

// ---- unary math ---------------------------------------------------------------------------

TEST_CASE("Round rounds half to even; Floor and Ceil go the right way for negatives") {
  const Tensor x = f32({0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 2.4f, -2.6f, 3.f}, {8});
  CHECK(values(run1(OpRunner("Round").in(x))) == V{0, 2, 2, 0, -2, 2, -3, 3});
  CHECK(values(run1(OpRunner("Floor").in(x))) == V{0, 1, 2, -1, -3, 2, -3, 3});
  CHECK(values(run1(OpRunner("Ceil").in(x))) == V{1, 2, 3, 0, -2, 3, -2, 3});
  CHECK(std::isnan(run1(OpRunner("Round").in(f32({kNaN}, {1}))).data<float>()[0]));
  auto y = run1(OpRunner("Reciprocal").in(f32({0.f, -4.f, 0.5f}, {3})));
  CHECK(values(y) == V{INFINITY, -0.25, 2});
}

TEST_CASE("trigonometric and hyperbolic ops match the C library") {
  const std::vector<float> v = {-0.9f, -0.3f, 0.f, 0.4f, 0.8f};
  const Tensor x = f32(v, {5});
  struct Case {
    const char* op;
    double (*f)(double);
  };
  const Case cases[] = {{"Sin", std::sin},   {"Cos", std::cos},   {"Tan", std::tan},     {"Asin", std::asin},
                        {"Acos", std::acos}, {"Atan", std::atan}, {"Sinh", std::sinh},   {"Cosh", std::cosh},
                        {"Asinh", std::asinh}, {"Atanh", std::atanh}};
  for (const Case& c : cases) {
    CAPTURE(c.op);
    auto y = run1(OpRunner(c.op).in(x));
    for (std::size_t i = 0; i < v.size(); ++i) CHECK(y.data<float>()[i] == doctest::Approx(c.f(v[i])).epsilon(1e-6));
  }
  auto y = run1(OpRunner("Acosh").in(f32({1.f, 2.f, 0.5f}, {3})));
  CHECK(y.data<float>()[0] == 0.f);
  CHECK(y.data<float>()[1] == doctest::Approx(std::acosh(2.0)));
  CHECK(std::isnan(y.data<float>()[2]));  // outside the domain
}

TEST_CASE("Softplus, Softsign and the ELU family") {
  auto y = run1(OpRunner("Softplus").in(f32({-100.f, 0.f, 1.f, 100.f}, {4})));
  CHECK(y.data<float>()[0] == doctest::Approx(0).epsilon(1e-30));
  CHECK(y.data<float>()[1] == doctest::Approx(std::log(2.0)));
  CHECK(y.data<float>()[2] == doctest::Approx(std::log1p(std::exp(1.0))));
  CHECK(y.data<float>()[3] == 100.f);  // exp(100) overflows float; the result must not
  CHECK(values(run1(OpRunner("Softsign").in(f32({-3.f, 0.f, 1.f}, {3})))) == V{-0.75, 0, 0.5});

  const Tensor x = f32({-1.f, 0.f, 2.f}, {3});
  y = run1(OpRunner("Elu").attr_f("alpha", 2.f).in(x));
  CHECK(y.data<float>()[0] == doctest::Approx(2 * (std::exp(-1.0) - 1)));
  CHECK(values(y)[1] == 0);
  CHECK(values(y)[2] == 2);
  y = run1(OpRunner("Selu").attr_f("alpha", 2.f).attr_f("gamma", 3.f).in(x));
  CHECK(y.data<float>()[0] == doctest::Approx(3 * (2 * std::exp(-1.0) - 2)));
  CHECK(values(y)[2] == 6);
  y = run1(OpRunner("Selu").in(x));  // the defaults
  CHECK(y.data<float>()[0] == doctest::Approx(1.0507009873554805 * 1.6732632423543772 * (std::exp(-1.0) - 1)));
  y = run1(OpRunner("Celu").attr_f("alpha", 2.f).in(x));
  CHECK(y.data<float>()[0] == doctest::Approx(2 * (std::exp(-0.5) - 1)));
  CHECK(values(y)[2] == 2);
  CHECK_INVALID(OpRunner("Celu").attr_f("alpha", 0.f).in(x).run());
  y = run1(OpRunner("ThresholdedRelu").attr_f("alpha", 1.f).in(f32({0.5f, 1.f, 1.5f, -2.f}, {4})));
  CHECK(values(y) == V{0, 0, 1.5, 0});
}

TEST_CASE("Shrink, Sign, IsNaN and IsInf, with integers and NaN") {
  const Tensor x = f32({-2.f, -0.5f, 0.f, 0.5f, 2.f}, {5});
  CHECK(values(run1(OpRunner("Shrink").in(x))) == V{-2, 0, 0, 0, 2});  // lambd 0.5, bias 0
  CHECK(values(run1(OpRunner("Shrink").attr_f("lambd", 1.f).attr_f("bias", 0.5f).in(x))) == V{-1.5, 0, 0, 0, 1.5});
  // An integer result is truncated toward zero: -5 + 1.5 = -3.5 -> -3, 5 - 1.5 = 3.5 -> 3.
  auto y = run1(OpRunner("Shrink").attr_f("lambd", 1.f).attr_f("bias", 1.5f).in(i32({-5, -1, 0, 1, 5}, {5})));
  CHECK(y.dtype() == DType::Int32);
  CHECK(values(y) == V{-3, 0, 0, 0, 3});

  y = run1(OpRunner("Sign").in(f32({-3.f, 0.f, 7.f, kNaN}, {4})));
  CHECK(values(y)[0] == -1);
  CHECK(values(y)[1] == 0);
  CHECK(values(y)[2] == 1);
  CHECK(std::isnan(values(y)[3]));
  const int64_t lo = std::numeric_limits<int64_t>::min();
  CHECK(values(run1(OpRunner("Sign").in(i64({lo, -1, 0, 9}, {4})))) == V{-1, -1, 0, 1});

  const Tensor z = f32({kInf, -kInf, kNaN, 1.f}, {2, 2});
  y = run1(OpRunner("IsNaN").in(z));
  CHECK(y.dtype() == DType::Bool);
  CHECK(y.shape() == Shape{2, 2});
  CHECK(values(y) == V{0, 0, 1, 0});
  CHECK(values(run1(OpRunner("IsInf").in(z))) == V{1, 1, 0, 0});
  CHECK(values(run1(OpRunner("IsInf").attr_i("detect_negative", 0).in(z))) == V{1, 0, 0, 0});
  CHECK(values(run1(OpRunner("IsInf").attr_i("detect_positive", 0).in(z))) == V{0, 1, 0, 0});
}

TEST_CASE("unary ops pass empty tensors and refuse types they do not compute") {
  for (const char* op : {"Floor", "Sin", "Softplus", "Elu", "Sign", "IsNaN", "Round"}) {
    CAPTURE(op);
    auto y = run1(OpRunner(op).in(f32({}, {0, 3})));
    CHECK(y.shape() == Shape{0, 3});
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Float16, {2})).run());
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Float64, {2})).run());
  }
  // Float-only math refuses integers; Sign and Shrink take them.
  for (const char* op : {"Floor", "Reciprocal", "Cos", "IsInf", "ThresholdedRelu"}) {
    CAPTURE(op);
    CHECK_UNSUPPORTED(OpRunner(op).in(i64({1}, {1})).run());
  }
  CHECK_UNSUPPORTED(OpRunner("Sign").in(bools({1}, {1})).run());
}

TEST_CASE("PRelu broadcasts the slope to X one way only") {
  // slope [C,1,1] against X [N,C,H,W]: per-channel slopes.
  const Tensor x = f32({-1, 2, -3, 4, -1, 2, -3, 4}, {2, 2, 1, 2});
  auto y = run1(OpRunner("PRelu").in(x).in(f32({0.5f, 10.f}, {2, 1, 1})));
  CHECK(y.shape() == x.shape());
  CHECK(values(y) == V{-0.5, 2, -30, 4, -0.5, 2, -30, 4});
  // A scalar slope, and integers.
  CHECK(values(run1(OpRunner("PRelu").in(i64({-3, 3}, {2})).in(i64({2}, {})))) == V{-6, 3});
  // A slope that would make X bigger is refused.
  CHECK_INVALID(OpRunner("PRelu").in(f32({-1, 2}, {2})).in(f32({1, 2, 3, 4}, {2, 2})).run());
  CHECK_INVALID(OpRunner("PRelu").in(f32({-1, 2}, {2})).in(i64({1}, {1})).run());
}

// ---- logic and Mod ---------------------------------------------------------------------------

TEST_CASE("And, Or, Xor broadcast over bools and refuse other types") {
  const Tensor a = bools({0, 0, 1, 1}, {2, 2}), b = bools({0, 1}, {2});
  CHECK(values(run1(OpRunner("And").in(a).in(b))) == V{0, 0, 0, 1});
  CHECK(values(run1(OpRunner("Or").in(a).in(b))) == V{0, 1, 1, 1});
  CHECK(values(run1(OpRunner("Xor").in(a).in(b))) == V{0, 1, 1, 0});
  auto y = run1(OpRunner("Xor").in(bools({1}, {})).in(bools({1, 0, 1}, {3, 1})));
  CHECK(y.shape() == Shape{3, 1});
  CHECK(values(y) == V{0, 1, 0});
  CHECK_UNSUPPORTED(OpRunner("And").in(i32({1}, {1})).in(i32({1}, {1})).run());
  CHECK_UNSUPPORTED(OpRunner("Or").in(bools({1}, {1})).in(f32({1}, {1})).run());
  CHECK_INVALID(OpRunner("Xor").in(bools({1, 0}, {2})).in(bools({1, 0, 1}, {3})).run());
}

TEST_CASE("GreaterOrEqual and LessOrEqual: equality, NaN, broadcasting, integers") {
  const Tensor a = f32({1, 2, 3, kNaN}, {4}), b = f32({2}, {});
  CHECK(values(run1(OpRunner("GreaterOrEqual").in(a).in(b))) == V{0, 1, 1, 0});
  CHECK(values(run1(OpRunner("LessOrEqual").in(a).in(b))) == V{1, 1, 0, 0});
  auto y = run1(OpRunner("LessOrEqual").in(i64({1, 5}, {2, 1})).in(i64({1, 2, 5}, {3})));
  CHECK(y.dtype() == DType::Bool);
  CHECK(values(y) == V{1, 1, 1, 0, 0, 1});
  CHECK_INVALID(OpRunner("GreaterOrEqual").in(f32({1}, {1})).in(i32({1}, {1})).run());
  CHECK_UNSUPPORTED(OpRunner("GreaterOrEqual").in(bools({1}, {1})).in(bools({1}, {1})).run());
}

TEST_CASE("Mod: the divisor's sign (fmod=0) or the dividend's (fmod=1), and the corners") {
  const Tensor a = i64({7, -7, 7, -7, 6, 0}, {6}), b = i64({3, 3, -3, -3, 3, -5}, {6});
  CHECK(values(run1(OpRunner("Mod").in(a).in(b))) == V{1, 2, -2, -1, 0, 0});
  CHECK(values(run1(OpRunner("Mod").attr_i("fmod", 1).in(a).in(b))) == V{1, -1, 1, -1, 0, 0});
  // Division by zero gives 0 (numpy's answer) and INT_MIN % -1 does not trap.
  const int32_t lo = std::numeric_limits<int32_t>::min();
  const Tensor c = i32({5, lo, lo, -5}, {4}), d = i32({0, -1, 3, 0}, {4});
  CHECK(values(run1(OpRunner("Mod").in(c).in(d))) == V{0, 0, 1, 0});  // INT_MIN mod 3 = 1 (Python)
  CHECK(values(run1(OpRunner("Mod").attr_i("fmod", 1).in(c).in(d))) == V{0, 0, -2, 0});
  // Broadcasting an int32 divisor row.
  auto y = run1(OpRunner("Mod").in(i32({-4, 4}, {2, 1})).in(i32({3, -3}, {2})));
  CHECK(values(y) == V{2, -1, 1, -2});
  // Floats need fmod = 1.
  y = run1(OpRunner("Mod").attr_i("fmod", 1).in(f32({5.5f, -5.5f}, {2})).in(f32({2.f, 2.f}, {2})));
  CHECK(values(y) == V{1.5, -1.5});
  CHECK_INVALID(OpRunner("Mod").in(f32({5.5f}, {1})).in(f32({2.f}, {1})).run());
  CHECK_INVALID(OpRunner("Mod").attr_i("fmod", 2).in(a).in(b).run());
  CHECK_UNSUPPORTED(OpRunner("Mod").in(Tensor(DType::UInt8, {1})).in(Tensor(DType::UInt8, {1})).run());
}

// ---- reductions -------------------------------------------------------------------------------

TEST_CASE("ReduceMin/Prod/L1/L2/LogSum/LogSumExp/SumSquare over axes, negative axes, keepdims") {
  const Tensor x = iota({2, 3, 4});
  auto y = run1(OpRunner("ReduceMin").opset(13).attr_ints("axes", {-1}).attr_i("keepdims", 0).in(x));
  CHECK(y.shape() == Shape{2, 3});
  CHECK(values(y) == V{0, 4, 8, 12, 16, 20});
  y = run1(OpRunner("ReduceMin").opset(13).attr_ints("axes", {0, 2}).in(x));
  CHECK(y.shape() == Shape{1, 3, 1});
  CHECK(values(y) == V{0, 4, 8});

  y = run1(OpRunner("ReduceSumSquare").opset(13).attr_ints("axes", {1}).attr_i("keepdims", 0).in(x));
  CHECK(y.shape() == Shape{2, 4});
  CHECK(values(y)[0] == 0 + 16 + 64);
  y = run1(OpRunner("ReduceL2").opset(13).attr_ints("axes", {-2}).attr_i("keepdims", 0).in(x));
  const V l2 = {8.9442720413208, 10.344079971313477, 11.832159996032715, 13.379088401794434,
                28.284271240234375, 29.983327865600586, 31.685958862304688, 33.39161682128906};
  for (std::size_t i = 0; i < l2.size(); ++i) CHECK(values(y)[i] == doctest::Approx(l2[i]).epsilon(1e-6));

  y = run1(OpRunner("ReduceL1").opset(13).in(f32({-1, 2, -3, 4}, {2, 2})));  // all axes
  CHECK(y.shape() == Shape{1, 1});
  CHECK(values(y) == V{10});
  y = run1(OpRunner("ReduceProd").opset(13).attr_ints("axes", {0}).attr_i("keepdims", 0).in(f32({-1, 2, -3, 4}, {2, 2})));
  CHECK(values(y) == V{3, 8});
  y = run1(OpRunner("ReduceLogSum").opset(13).attr_ints("axes", {1}).in(f32({1, 2, 3, 4}, {2, 2})));
  CHECK(y.data<float>()[0] == doctest::Approx(std::log(3.0)));
  CHECK(y.data<float>()[1] == doctest::Approx(std::log(7.0)));

  Tensor s = iota({2, 3, 4});
  for (int64_t i = 0; i < s.numel(); ++i) s.data<float>()[i] /= 10;
  y = run1(OpRunner("ReduceLogSumExp").opset(13).attr_ints("axes", {0, -1}).attr_i("keepdims", 0).in(s));
  const V lse = {3.0058181285858154, 3.405817985534668, 3.8058180809020996};
  for (std::size_t i = 0; i < lse.size(); ++i) CHECK(values(y)[i] == doctest::Approx(lse[i]).epsilon(1e-6));
}

TEST_CASE("ReduceLogSumExp does not overflow; infinities and NaN pass through") {
  auto y = run1(OpRunner("ReduceLogSumExp").attr_i("keepdims", 0).in(f32({1000.f, 1000.f}, {2})));
  CHECK(y.data<float>()[0] == doctest::Approx(1000 + std::log(2.0)));
  y = run1(OpRunner("ReduceLogSumExp").attr_ints("axes", {1}).in(
      f32({-kInf, -kInf, kInf, 1.f, kNaN, 1.f, -kInf, 3.f}, {4, 2})));
  CHECK(values(y)[0] == -INFINITY);
  CHECK(values(y)[1] == INFINITY);
  CHECK(std::isnan(values(y)[2]));
  CHECK(values(y)[3] == doctest::Approx(3));
}

TEST_CASE("new reductions of empty axes give their fold's identity") {
  const Tensor empty = f32({}, {0, 2});
  auto at0 = [&](const char* op) { return values(run1(OpRunner(op).attr_ints("axes", {0}).in(empty))); };
  CHECK(at0("ReduceMin") == V{INFINITY, INFINITY});
  CHECK(at0("ReduceProd") == V{1, 1});
  CHECK(at0("ReduceL1") == V{0, 0});
  CHECK(at0("ReduceL2") == V{0, 0});
  CHECK(at0("ReduceSumSquare") == V{0, 0});
  CHECK(at0("ReduceLogSum") == V{-INFINITY, -INFINITY});
  CHECK(at0("ReduceLogSumExp") == V{-INFINITY, -INFINITY});
  auto y = run1(OpRunner("ReduceMin").attr_ints("axes", {1}).in(i32({}, {2, 0})));
  CHECK(values(y) == V{std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::max()});
  y = run1(OpRunner("ReduceProd").attr_ints("axes", {1}).attr_i("keepdims", 0).in(f32({}, {0, 3})));
  CHECK(y.shape() == Shape{0});
}

TEST_CASE("new reductions of integers wrap; L2/LogSum/LogSumExp refuse them") {
  auto y = run1(OpRunner("ReduceProd").in(i64({int64_t{1} << 40, int64_t{1} << 30}, {2})));
  CHECK(y.data<int64_t>()[0] == 0);  // 2^70 wraps to 0
  y = run1(OpRunner("ReduceProd").in(i32({65536, 65537}, {2})));
  CHECK(y.data<int32_t>()[0] == 65536);  // 2^32 + 2^16 wraps to 2^16
  y = run1(OpRunner("ReduceL1").in(i32({-3, 4, std::numeric_limits<int32_t>::min()}, {3})));
  CHECK(y.data<int32_t>()[0] == std::numeric_limits<int32_t>::min() + 7);
  y = run1(OpRunner("ReduceSumSquare").attr_ints("axes", {1}).in(i64({-3, 4, 1, 2}, {2, 2})));
  CHECK(values(y) == V{25, 5});
  y = run1(OpRunner("ReduceMin").attr_ints("axes", {0}).in(f32({1, kNaN, 0, 3}, {2, 2})));
  CHECK(values(y)[0] == 0);
  CHECK(std::isnan(values(y)[1]));
  for (const char* op : {"ReduceL2", "ReduceLogSum", "ReduceLogSumExp"}) {
    CAPTURE(op);
    CHECK_UNSUPPORTED(OpRunner(op).in(i64({1}, {1})).run());
  }
  for (const char* op : {"ReduceMin", "ReduceProd", "ReduceL1", "ReduceSumSquare"}) {
    CAPTURE(op);
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Float64, {1})).run());
    CHECK_INVALID(OpRunner(op).attr_ints("axes", {2}).in(f32({1, 2}, {2})).run());
  }
}

TEST_CASE("ArgMax/ArgMin: axis, negative axis, keepdims, ties with select_last_index") {
  const Tensor x = f32({1, 5, 5, 2, 0, 0, 7, 7}, {2, 4});
  auto y = run1(OpRunner("ArgMax").opset(13).attr_i("axis", 1).in(x));
  CHECK(y.dtype() == DType::Int64);
  CHECK(y.shape() == Shape{2, 1});
  CHECK(values(y) == V{1, 2});
  y = run1(OpRunner("ArgMax").opset(13).attr_i("axis", -1).attr_i("select_last_index", 1).in(x));
  CHECK(values(y) == V{2, 3});
  y = run1(OpRunner("ArgMin").opset(13).attr_i("axis", 1).attr_i("keepdims", 0).in(x));
  CHECK(y.shape() == Shape{2});
  CHECK(values(y) == V{0, 0});
  y = run1(OpRunner("ArgMin").opset(13).attr_i("axis", 1).attr_i("keepdims", 0).attr_i("select_last_index", 1).in(x));
  CHECK(values(y) == V{0, 1});
  // Before opset 12 select_last_index does not exist.
  y = run1(OpRunner("ArgMax").opset(11).attr_i("axis", 1).attr_i("select_last_index", 1).in(x));
  CHECK(values(y) == V{1, 2});
  // Axis 0 (the default), over a middle of inner elements.
  y = run1(OpRunner("ArgMax").in(i32({3, 9, 4, 1}, {2, 2})));
  CHECK(values(y) == V{1, 0});
  y = run1(OpRunner("ArgMin").in(i32({3, 9, 4, 1}, {2, 2})));
  CHECK(values(y) == V{0, 1});
}

TEST_CASE("ArgMax/ArgMin: NaN wins as in numpy; empty axes refused, empty others allowed") {
  const Tensor x = f32({1, kNaN, 3, kNaN}, {4});
  CHECK(values(run1(OpRunner("ArgMax").opset(13).attr_i("keepdims", 0).in(x))) == V{1});
  CHECK(values(run1(OpRunner("ArgMin").opset(13).attr_i("keepdims", 0).in(x))) == V{1});
  CHECK(values(run1(OpRunner("ArgMax").opset(13).attr_i("select_last_index", 1).in(x))) == V{3});
  CHECK_INVALID(OpRunner("ArgMax").attr_i("axis", 0).in(f32({}, {0, 2})).run());
  auto y = run1(OpRunner("ArgMax").attr_i("axis", 1).in(f32({}, {0, 2})));
  CHECK(y.shape() == Shape{0, 1});
  CHECK_INVALID(OpRunner("ArgMax").attr_i("axis", 2).in(f32({1, 2}, {1, 2})).run());
  CHECK_INVALID(OpRunner("ArgMax").in(f32({1}, {})).run());  // rank 0 has no axis
  CHECK_INVALID(OpRunner("ArgMin").opset(13).attr_i("keepdims", 3).in(x).run());
  CHECK_UNSUPPORTED(OpRunner("ArgMax").in(bools({1, 0}, {2})).run());
}

TEST_CASE("Hardmax: along an axis from opset 13, over the 2-D coercion before") {
  const Tensor x = f32({1, 3, 3, 0, 2, 5, 0, 1}, {2, 2, 2});
  // Opset 13, axis 1: per (i, k), the larger of x[i,0,k] and x[i,1,k]; ties go to the first.
  auto y = run1(OpRunner("Hardmax").opset(13).attr_i("axis", 1).in(x));
  CHECK(values(y) == V{0, 1, 1, 0, 1, 1, 0, 0});
  // Default axis -1.
  CHECK(values(run1(OpRunner("Hardmax").opset(13).in(x))) == V{0, 1, 1, 0, 0, 1, 0, 1});
  // Opset 11, axis 1: each of the 2 rows of 4 gets a single 1.
  CHECK(values(run1(OpRunner("Hardmax").opset(11).in(x))) == V{0, 1, 0, 0, 0, 1, 0, 0});
  CHECK(values(run1(OpRunner("Hardmax").opset(13).in(f32({1, kNaN, 2}, {3})))) == V{0, 1, 0});
  CHECK(run1(OpRunner("Hardmax").opset(13).in(f32({}, {2, 0}))).shape() == Shape{2, 0});
  CHECK_INVALID(OpRunner("Hardmax").opset(13).attr_i("axis", 3).in(x).run());
  CHECK_UNSUPPORTED(OpRunner("Hardmax").in(i64({1}, {1})).run());
}

// ---- index and movement ---------------------------------------------------------------------

TEST_CASE("Size and CastLike") {
  auto y = run1(OpRunner("Size").in(f32({}, {3, 0})));
  CHECK(y.dtype() == DType::Int64);
  CHECK(y.shape() == Shape{});
  CHECK(values(y) == V{0});
  CHECK(values(run1(OpRunner("Size").in(bools({1, 0, 1, 1, 0, 0}, {2, 3})))) == V{6});
  CHECK(ops::find_schema("Size")->reads_shapes_only);

  y = run1(OpRunner("CastLike").in(f32({-1.7f, 2.9f}, {2})).in(i64({0}, {1})));
  CHECK(y.dtype() == DType::Int64);
  CHECK(values(y) == V{-1, 2});
  y = run1(OpRunner("CastLike").in(i32({0, 3}, {2})).in(bools({1}, {})));
  CHECK(y.dtype() == DType::Bool);
  CHECK(values(y) == V{0, 1});
  CHECK_UNSUPPORTED(OpRunner("CastLike").in(f32({1}, {1})).in(Tensor(DType::UInt16, {1})).run());
}

TEST_CASE("GatherElements: axes, negative indices, smaller indices, out-of-range refusal") {
  const Tensor data = f32({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
  auto y = run1(OpRunner("GatherElements").in(data).in(i64({1, 2, 0, 2, 0, 0}, {2, 3})));
  CHECK(y.shape() == Shape{2, 3});
  CHECK(values(y) == V{4, 8, 3, 7, 2, 3});
  y = run1(OpRunner("GatherElements").attr_i("axis", -1).in(data).in(i32({-1, 0, 1, -3}, {2, 2})));
  CHECK(values(y) == V{3, 1, 5, 4});
  y = run1(OpRunner("GatherElements").attr_i("axis", 1).in(bools({1, 0, 0, 1}, {2, 2})).in(i64({1, 1, 1, 0}, {2, 2})));
  CHECK(values(y) == V{0, 0, 1, 0});
  y = run1(OpRunner("GatherElements").in(data).in(i64({}, {0, 3})));
  CHECK(y.shape() == Shape{0, 3});
  CHECK_INVALID(OpRunner("GatherElements").in(data).in(i64({3}, {1, 1})).run());
  CHECK_INVALID(OpRunner("GatherElements").in(data).in(i64({-4}, {1, 1})).run());
  CHECK_INVALID(OpRunner("GatherElements").in(data).in(i64({0}, {1})).run());           // rank differs
  CHECK_INVALID(OpRunner("GatherElements").in(data).in(i64({0, 0, 0, 0}, {1, 4})).run());  // too wide
  CHECK_INVALID(OpRunner("GatherElements").in(data).in(f32({0}, {1, 1})).run());
  CHECK_UNSUPPORTED(OpRunner("GatherElements").in(Tensor(DType::Float16, {1})).in(i64({0}, {1})).run());
}

TEST_CASE("Trilu: upper and lower, k either side, k at run time, batches, non-square") {
  const Tensor x = iota({3, 4});
  CHECK(values(run1(OpRunner("Trilu").in(x))) == V{0, 1, 2, 3, 0, 5, 6, 7, 0, 0, 10, 11});
  CHECK(values(run1(OpRunner("Trilu").in(x).in(i64({1}, {})))) == V{0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11});
  CHECK(values(run1(OpRunner("Trilu").attr_i("upper", 0).in(x).in(i64({-1}, {})))) ==
        V{0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0});
  CHECK(values(run1(OpRunner("Trilu").attr_i("upper", 0).in(x).in_runtime(i64({1}, {})))) ==
        V{0, 1, 0, 0, 4, 5, 6, 0, 8, 9, 10, 11});
  // k past either edge keeps all or nothing.
  CHECK(values(run1(OpRunner("Trilu").in(x).in(i64({100}, {})))) == V(12, 0));
  CHECK(values(run1(OpRunner("Trilu").in(x).in(i64({-100}, {})))) == values(x));
  auto y = run1(OpRunner("Trilu").attr_i("upper", 0).in(i32({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2})));
  CHECK(values(y) == V{1, 0, 3, 4, 5, 0, 7, 8});
  CHECK(run1(OpRunner("Trilu").in(f32({}, {0, 4}))).shape() == Shape{0, 4});
  CHECK_INVALID(OpRunner("Trilu").in(f32({1, 2}, {2})).run());
  CHECK_INVALID(OpRunner("Trilu").in(x).in(i64({1, 2}, {2})).run());
  CHECK_INVALID(OpRunner("Trilu").in(x).in(i32({1}, {})).run());
}

TEST_CASE("CumSum: exclusive and reverse, negative and run-time axes, integers") {
  const Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(values(run1(OpRunner("CumSum").in(x).in(i64({1}, {})))) == V{1, 3, 6, 4, 9, 15});
  CHECK(values(run1(OpRunner("CumSum").in(x).in(i32({-2}, {1})))) == V{1, 2, 3, 5, 7, 9});
  CHECK(values(run1(OpRunner("CumSum").attr_i("exclusive", 1).in(x).in(i64({1}, {})))) == V{0, 1, 3, 0, 4, 9});
  CHECK(values(run1(OpRunner("CumSum").attr_i("reverse", 1).in(x).in(i64({1}, {})))) == V{6, 5, 3, 15, 11, 6});
  CHECK(values(run1(OpRunner("CumSum").attr_i("reverse", 1).attr_i("exclusive", 1).in(x).in_runtime(i64({-1}, {})))) ==
        V{5, 3, 0, 11, 6, 0});
  const int32_t hi = std::numeric_limits<int32_t>::max();
  auto y = run1(OpRunner("CumSum").in(i32({hi, 1, 5}, {3})).in(i64({0}, {})));
  CHECK(y.dtype() == DType::Int32);
  CHECK(values(y) == V{hi, double(std::numeric_limits<int32_t>::min()), double(std::numeric_limits<int32_t>::min() + 5)});
  CHECK(run1(OpRunner("CumSum").in(f32({}, {0, 2})).in(i64({0}, {}))).shape() == Shape{0, 2});
  CHECK_INVALID(OpRunner("CumSum").in(x).in(i64({2}, {})).run());
  CHECK_INVALID(OpRunner("CumSum").in(x).in_runtime(i64({-3}, {})).run());  // caught at run time
  CHECK_INVALID(OpRunner("CumSum").in(x).in(i64({0, 1}, {2})).run());
  CHECK_INVALID(OpRunner("CumSum").in(x).in(f32({0}, {})).run());
  CHECK_UNSUPPORTED(OpRunner("CumSum").in(Tensor(DType::Float64, {2})).in(i64({0}, {})).run());
}

TEST_CASE("DepthToSpace (DCR and CRD) and SpaceToDepth match numpy's reshape-transpose") {
  namespace to = nnjit::testing::tensor_ops;
  const Tensor x = iota({1, 8, 1, 2});
  auto y = to::run_op("DepthToSpace", 13, to::Attrs().i("blocksize", 2), {x});
  CHECK(y.shape() == Shape{1, 2, 2, 4});
  CHECK(values(y) == V{0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15});
  y = to::run_op("DepthToSpace", 13, to::Attrs().i("blocksize", 2).s("mode", "CRD"), {x});
  CHECK(values(y) == V{0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15});
  // Before opset 11 there is no mode: always DCR.
  y = to::run_op("DepthToSpace", 10, to::Attrs().i("blocksize", 2).s("mode", "CRD"), {x});
  CHECK(values(y)[1] == 4);

  const Tensor z = iota({1, 1, 4, 4});
  y = to::run_op("SpaceToDepth", 13, to::Attrs().i("blocksize", 2), {z});
  CHECK(y.shape() == Shape{1, 4, 2, 2});
  CHECK(values(y) == V{0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15});
  // SpaceToDepth undoes DCR DepthToSpace, for any element type.
  const Tensor w = to::i64({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, {1, 2, 3, 3});
  auto d2s = to::run_op("DepthToSpace", 13, to::Attrs().i("blocksize", 1), {w});
  CHECK(values(d2s) == values(w));
  const Tensor v = iota({2, 8, 3, 2});
  auto back = to::run_op("SpaceToDepth", 13, to::Attrs().i("blocksize", 2),
                         {to::run_op("DepthToSpace", 13, to::Attrs().i("blocksize", 2), {v})});
  CHECK(values(back) == values(v));

  CHECK_INVALID(to::run_op("DepthToSpace", 13, to::Attrs().i("blocksize", 3), {x}));
  CHECK_INVALID(to::run_op("DepthToSpace", 13, to::Attrs().i("blocksize", 2).s("mode", "XYZ"), {x}));
  CHECK_INVALID(to::run_op("DepthToSpace", 13, to::Attrs(), {x}));
  CHECK_INVALID(to::run_op("DepthToSpace", 13, to::Attrs().i("blocksize", 0), {x}));
  CHECK_INVALID(to::run_op("SpaceToDepth", 13, to::Attrs().i("blocksize", 3), {z}));
  CHECK_INVALID(to::run_op("SpaceToDepth", 13, to::Attrs().i("blocksize", 2), {iota({4, 4})}));
}

TEST_CASE("EyeLike: diagonal offsets, dtype, and refusal of other ranks") {
  auto y = run1(OpRunner("EyeLike").in(i32({9, 9, 9, 9, 9, 9}, {2, 3})));
  CHECK(y.dtype() == DType::Int32);
  CHECK(values(y) == V{1, 0, 0, 0, 1, 0});
  y = run1(OpRunner("EyeLike").attr_i("k", 1).attr_i("dtype", static_cast<int64_t>(DType::Float32)).in(Tensor(DType::Int32, {3, 3})));
  CHECK(y.dtype() == DType::Float32);
  CHECK(values(y) == V{0, 1, 0, 0, 0, 1, 0, 0, 0});
  y = run1(OpRunner("EyeLike").attr_i("k", -2).in(bools({0, 0, 0, 0, 0, 0}, {3, 2})));
  CHECK(values(y) == V{0, 0, 0, 0, 1, 0});
  y = run1(OpRunner("EyeLike").attr_i("k", std::numeric_limits<int64_t>::max()).in(f32({0, 0}, {1, 2})));
  CHECK(values(y) == V{0, 0});
  y = run1(OpRunner("EyeLike").attr_i("k", std::numeric_limits<int64_t>::min()).in(f32({0, 0}, {1, 2})));
  CHECK(values(y) == V{0, 0});
  CHECK(ops::find_schema("EyeLike")->reads_shapes_only);
  CHECK_INVALID(OpRunner("EyeLike").in(f32({0, 0}, {2})).run());
  CHECK_UNSUPPORTED(OpRunner("EyeLike").attr_i("dtype", static_cast<int64_t>(DType::Float16)).in(f32({0}, {1, 1})).run());
}

TEST_CASE("OneHot: axes, negative and out-of-range indices, float indices, constant depth") {
  const Tensor values2 = f32({-1, 5}, {2});
  auto y = run1(OpRunner("OneHot").in(i64({0, 2, -1, 3}, {4})).in(i64({3}, {})).in(values2));
  CHECK(y.shape() == Shape{4, 3});
  CHECK(values(y) == V{5, -1, -1, -1, -1, 5, -1, -1, 5, -1, -1, -1});  // 3 is out of range: all off
  y = run1(OpRunner("OneHot").attr_i("axis", 0).in(i32({1, 0}, {2})).in(f32({2.f}, {1})).in(values2));
  CHECK(y.shape() == Shape{2, 2});
  CHECK(values(y) == V{-1, 5, 5, -1});
  // Axis in the middle of [2, 2] indices: output [2, depth, 2].
  y = run1(OpRunner("OneHot").attr_i("axis", -2).in(f32({0.f, 1.9f, -3.f, 2.f}, {2, 2})).in(i64({3}, {}))
               .in(i64({0, 1}, {2})));
  CHECK(y.shape() == Shape{2, 3, 2});
  CHECK(y.dtype() == DType::Int64);
  CHECK(values(y) == V{1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1});  // 1.9 truncates to 1; -3 wraps to 0
  CHECK_UNSUPPORTED(OpRunner("OneHot").in(i64({0}, {1})).in_runtime(i64({3}, {})).in(values2).run());
  CHECK_INVALID(OpRunner("OneHot").in(i64({0}, {1})).in(i64({0}, {})).in(values2).run());
  CHECK_INVALID(OpRunner("OneHot").in(i64({0}, {1})).in(i64({3}, {})).in(f32({1, 2, 3}, {3})).run());
  CHECK_INVALID(OpRunner("OneHot").attr_i("axis", 2).in(i64({0}, {1})).in(i64({3}, {})).in(values2).run());
}

TEST_CASE("TopK: largest and smallest, axes, ties to the lower index, NaN as the largest") {
  const Tensor x = f32({3, 1, 4, 1, 5, 9, 2, 6}, {2, 4});
  auto y = OpRunner("TopK").outputs(2).in(x).in(i64({2}, {1})).run();
  CHECK(y[0].shape() == Shape{2, 2});
  CHECK(y[1].dtype() == DType::Int64);
  CHECK(values(y[0]) == V{4, 3, 9, 6});
  CHECK(values(y[1]) == V{2, 0, 1, 3});
  y = OpRunner("TopK").outputs(2).attr_i("largest", 0).in(x).in(i64({2}, {1})).run();
  CHECK(values(y[0]) == V{1, 1, 2, 5});
  CHECK(values(y[1]) == V{1, 3, 2, 0});  // the two 1s in index order
  for (int64_t axis : {0, -2}) {
    y = OpRunner("TopK").outputs(2).attr_i("axis", axis).in(x).in(i64({1}, {1})).run();
    CHECK(y[0].shape() == Shape{1, 4});
    CHECK(values(y[0]) == V{5, 9, 4, 6});
    CHECK(values(y[1]) == V{1, 1, 0, 1});
  }
  // A middle axis of [2, 3, 2]: the output is [2, K, 2].
  y = OpRunner("TopK").outputs(2).attr_i("axis", 1).in(iota({2, 3, 2})).in(i64({2}, {1})).run();
  CHECK(y[0].shape() == Shape{2, 2, 2});
  CHECK(values(y[0]) == V{4, 5, 2, 3, 10, 11, 8, 9});
  CHECK(values(y[1]) == V{2, 2, 1, 1, 2, 2, 1, 1});
  y = OpRunner("TopK").outputs(2).in(f32({2, 7, 7, 2}, {4})).in(i64({4}, {1})).run();
  CHECK(values(y[1]) == V{1, 2, 0, 3});
  // NaN counts as larger than every number: first when largest, last when smallest.
  const Tensor z = f32({1, kNaN, 3, kNaN, -kInf}, {5});
  y = OpRunner("TopK").outputs(2).in(z).in(i64({3}, {1})).run();
  CHECK(std::isnan(values(y[0])[0]));
  CHECK(std::isnan(values(y[0])[1]));
  CHECK(values(y[0])[2] == 3);
  CHECK(values(y[1]) == V{1, 3, 2});
  y = OpRunner("TopK").outputs(2).attr_i("largest", 0).in(z).in(i64({5}, {1})).run();
  CHECK(values(y[0])[0] == -INFINITY);
  CHECK(values(y[0])[2] == 3);
  CHECK(std::isnan(values(y[0])[4]));
  CHECK(values(y[1]) == V{4, 0, 2, 1, 3});
  // sorted = 0 allows any order; the reference sorts anyway.
  y = OpRunner("TopK").outputs(2).attr_i("sorted", 0).in(x).in(i64({2}, {1})).run();
  CHECK(values(y[1]) == V{2, 0, 1, 3});
}

TEST_CASE("TopK: k as an attribute before opset 10, integer and float64 types, K of 0") {
  const Tensor x = f32({3, 1, 4, 1, 5, 9, 2, 6}, {2, 4});
  auto y = OpRunner("TopK").opset(9).outputs(2).attr_i("k", 2).in(x).run();
  CHECK(values(y[0]) == V{4, 3, 9, 6});
  CHECK(values(y[1]) == V{2, 0, 1, 3});
  // largest arrives at opset 11: before, TopK always takes the largest.
  y = OpRunner("TopK").opset(10).outputs(2).attr_i("largest", 0).in(x).in(i64({1}, {1})).run();
  CHECK(values(y[0]) == V{4, 9});
  y = OpRunner("TopK").outputs(2).in(i32({5, -2, 7}, {3})).in(i64({2}, {1})).run();
  CHECK(y[0].dtype() == DType::Int32);
  CHECK(values(y[0]) == V{7, 5});
  CHECK(values(y[1]) == V{2, 0});
  const int64_t lo = std::numeric_limits<int64_t>::min();
  y = OpRunner("TopK").outputs(2).attr_i("largest", 0).in(i64({0, lo, 9}, {3})).in(i64({1}, {1})).run();
  CHECK(y[0].data<int64_t>()[0] == lo);
  y = OpRunner("TopK").outputs(2).in(Tensor::from(std::vector<double>{0.5, -1, 2}, {3})).in(i64({2}, {1})).run();
  CHECK(y[0].dtype() == DType::Float64);
  CHECK(values(y[0]) == V{2, 0.5});
  y = OpRunner("TopK").outputs(2).in(x).in(i64({0}, {1})).run();
  CHECK(y[0].shape() == Shape{2, 0});
  CHECK(OpRunner("TopK").outputs(2).in(f32({}, {0, 3})).in(i64({3}, {1})).run()[1].shape() == Shape{0, 3});
  const int64_t huge = int64_t{1} << 40;  // an empty X with a huge axis must not allocate per the axis
  CHECK(OpRunner("TopK").outputs(2).in(f32({}, {0, huge})).in(i64({huge}, {1})).run()[0].shape() == Shape{0, huge});
}

TEST_CASE("TopK refuses a bad K, a run-time K, bad attributes and types") {
  const Tensor x = f32({3, 1, 4, 1}, {2, 2});
  CHECK_INVALID(OpRunner("TopK").outputs(2).in(x).in(i64({3}, {1})).run());   // K > the axis
  CHECK_INVALID(OpRunner("TopK").outputs(2).in(x).in(i64({-1}, {1})).run());
  CHECK_INVALID(OpRunner("TopK").outputs(2).in(x).in(i64({1, 1}, {2})).run());
  CHECK_INVALID(OpRunner("TopK").outputs(2).in(x).in(i32({1}, {1})).run());
  CHECK_UNSUPPORTED(OpRunner("TopK").outputs(2).in(x).in_runtime(i64({1}, {1})).run());  // the shape needs K
  CHECK_INVALID(OpRunner("TopK").outputs(2).attr_i("axis", 2).in(x).in(i64({1}, {1})).run());
  CHECK_INVALID(OpRunner("TopK").outputs(2).attr_i("largest", 2).in(x).in(i64({1}, {1})).run());
  CHECK_INVALID(OpRunner("TopK").outputs(2).in(f32({1}, {})).in(i64({1}, {1})).run());  // a scalar has no axis
  CHECK_INVALID(OpRunner("TopK").opset(9).outputs(2).in(x).run());                        // k is required
  CHECK_INVALID(OpRunner("TopK").opset(9).outputs(2).attr_i("k", 5).in(x).run());
  CHECK_INVALID(OpRunner("TopK").outputs(2).in(x).run());  // K is an input from opset 10
  CHECK_UNSUPPORTED(OpRunner("TopK").outputs(2).in(bools({1, 0}, {2})).in(i64({1}, {1})).run());
}

TEST_CASE("GatherND: whole elements, slices, batch_dims, negative indices, any element type") {
  const Tensor d2 = i64({0, 1, 2, 3}, {2, 2});
  auto y = run1(OpRunner("GatherND").in(d2).in(i64({0, 0, 1, 1}, {2, 2})));
  CHECK(y.shape() == Shape{2});
  CHECK(values(y) == V{0, 3});
  y = run1(OpRunner("GatherND").in(d2).in(i64({1, 0}, {2, 1})));
  CHECK(y.shape() == Shape{2, 2});
  CHECK(values(y) == V{2, 3, 0, 1});
  y = run1(OpRunner("GatherND").in(d2).in(i32({-1, -2}, {1, 2})));
  CHECK(values(y) == V{2});
  const Tensor d3 = iota({2, 2, 2});
  y = run1(OpRunner("GatherND").in(d3).in(i64({0, 1, 1, 0}, {2, 1, 2})));
  CHECK(y.shape() == Shape{2, 1, 2});
  CHECK(values(y) == V{2, 3, 4, 5});
  // batch_dims = 1: indices row b indexes data[b].
  y = run1(OpRunner("GatherND").attr_i("batch_dims", 1).in(d3).in(i64({1, 0}, {2, 1})));
  CHECK(y.shape() == Shape{2, 2});
  CHECK(values(y) == V{2, 3, 4, 5});
  y = run1(OpRunner("GatherND").attr_i("batch_dims", 1).in(d3).in(i64({0, 1, 1, 1}, {2, 1, 2})));
  CHECK(y.shape() == Shape{2, 1});
  CHECK(values(y) == V{1, 7});
  // batch_dims arrives at opset 12.
  CHECK(run1(OpRunner("GatherND").opset(11).attr_i("batch_dims", 1).in(d3).in(i64({1, 0}, {2, 1}))).shape() ==
        Shape{2, 2, 2});
  y = run1(OpRunner("GatherND").in(bools({1, 0, 0, 1}, {2, 2})).in(i64({1, 1, 0, 1}, {2, 2})));
  CHECK(y.dtype() == DType::Bool);
  CHECK(values(y) == V{1, 0});
  y = run1(OpRunner("GatherND").in(Tensor(DType::Float16, {3, 2})).in(i64({2}, {1, 1})));
  CHECK(y.shape() == Shape{1, 2});
  CHECK(run1(OpRunner("GatherND").in(d2).in(i64({}, {0, 2}))).shape() == Shape{0});
}

TEST_CASE("GatherND refuses out-of-range indices at run time and malformed shapes at load") {
  const Tensor d2 = i64({0, 1, 2, 3}, {2, 2});
  CHECK_INVALID(OpRunner("GatherND").in(d2).in_runtime(i64({0, 2}, {1, 2})).run());
  CHECK_INVALID(OpRunner("GatherND").in(d2).in_runtime(i64({-3}, {1, 1})).run());
  CHECK_INVALID(OpRunner("GatherND").in(d2).in(i64({0, 0, 0}, {1, 3})).run());  // tuple longer than the rank
  CHECK_INVALID(OpRunner("GatherND").in(d2).in(i64({}, {1, 0})).run());         // empty tuples
  CHECK_INVALID(OpRunner("GatherND").in(d2).in(i64({0}, {})).run());
  CHECK_INVALID(OpRunner("GatherND").in(d2).in(f32({0}, {1, 1})).run());
  CHECK_INVALID(OpRunner("GatherND").attr_i("batch_dims", 2).in(d2).in(i64({0, 0}, {2, 1})).run());
  CHECK_INVALID(OpRunner("GatherND").attr_i("batch_dims", -1).in(d2).in(i64({0, 0}, {2, 1})).run());
  CHECK_INVALID(OpRunner("GatherND").attr_i("batch_dims", 1).in(d2).in(i64({0, 0, 0}, {3, 1})).run());
  CHECK_INVALID(OpRunner("GatherND").attr_i("batch_dims", 1).in(d2).in(i64({0, 0, 0, 0}, {2, 2})).run());
}

TEST_CASE("ScatterND: elements and slices, duplicates, reductions, negative indices") {
  namespace to = nnjit::testing::tensor_ops;
  const Tensor d8 = f32({1, 2, 3, 4, 5, 6, 7, 8}, {8});
  auto y = run1(OpRunner("ScatterND").in(d8).in(i64({4, 3, 1, 7}, {4, 1})).in(f32({9, 10, 11, 12}, {4})));
  CHECK(values(y) == V{1, 11, 3, 10, 9, 6, 7, 12});
  y = run1(OpRunner("ScatterND").in(f32({1, 2, 3, 4}, {2, 2})).in(i64({1}, {1, 1})).in(f32({9, 8}, {1, 2})));
  CHECK(values(y) == V{1, 2, 9, 8});
  y = run1(OpRunner("ScatterND").in(f32({1, 2, 3, 4}, {2, 2})).in(i32({-1, 0}, {1, 2})).in(f32({7}, {1})));
  CHECK(values(y) == V{1, 2, 7, 4});
  // Without a reduction the last of duplicate indices wins.
  y = run1(OpRunner("ScatterND").in(f32({1, 2, 3, 4}, {4})).in(i64({0, 0}, {2, 1})).in(f32({5, 6}, {2})));
  CHECK(values(y) == V{6, 2, 3, 4});
  const Tensor d4 = i64({1, 2, 3, 4}, {4}), idx = i64({0, 0, 2}, {3, 1}), upd = i64({10, 20, 30}, {3});
  CHECK(values(to::run_op("ScatterND", 16, to::Attrs().s("reduction", "add"), {d4, idx, upd})) == V{31, 2, 33, 4});
  CHECK(values(to::run_op("ScatterND", 16, to::Attrs().s("reduction", "mul"), {d4, idx, upd})) == V{200, 2, 90, 4});
  CHECK(values(to::run_op("ScatterND", 18, to::Attrs().s("reduction", "max"), {d4, idx, i64({0, 5, 1}, {3})})) ==
        V{5, 2, 3, 4});
  CHECK(values(to::run_op("ScatterND", 18, to::Attrs().s("reduction", "min"), {d4, idx, i64({0, 5, 1}, {3})})) ==
        V{0, 2, 1, 4});
  // The attribute does not exist before opset 16: updates overwrite.
  CHECK(values(to::run_op("ScatterND", 13, to::Attrs().s("reduction", "add"), {d4, idx, upd})) == V{20, 2, 30, 4});
  const int32_t hi = std::numeric_limits<int32_t>::max();
  y = to::run_op("ScatterND", 16, to::Attrs().s("reduction", "add"), {to::i32({hi}, {1}), i64({0}, {1, 1}), to::i32({1}, {1})});
  CHECK(values(y) == V{double(std::numeric_limits<int32_t>::min())});  // wraps
  auto yn = to::run_op("ScatterND", 18, to::Attrs().s("reduction", "max"), {f32({1, 2}, {2}), i64({0}, {1, 1}), f32({kNaN}, {1})});
  CHECK(std::isnan(values(yn)[0]));
  y = run1(OpRunner("ScatterND").in(bools({0, 0, 0}, {3})).in(i64({2}, {1, 1})).in(bools({1}, {1})));
  CHECK(values(y) == V{0, 0, 1});
  CHECK(values(run1(OpRunner("ScatterND").in(d8).in(i64({}, {0, 1})).in(f32({}, {0})))) == values(d8));
}

TEST_CASE("ScatterND refuses bad indices, shapes, types and reductions") {
  namespace to = nnjit::testing::tensor_ops;
  const Tensor d = f32({1, 2, 3, 4}, {2, 2});
  CHECK_INVALID(OpRunner("ScatterND").in(d).in_runtime(i64({2}, {1, 1})).in(f32({0, 0}, {1, 2})).run());
  CHECK_INVALID(OpRunner("ScatterND").in(d).in_runtime(i64({0, -3}, {1, 2})).in(f32({0}, {1})).run());
  CHECK_INVALID(OpRunner("ScatterND").in(d).in(i64({0}, {1, 1})).in(f32({0}, {1})).run());  // updates need [1, 2]
  CHECK_INVALID(OpRunner("ScatterND").in(d).in(i64({0, 0, 0}, {1, 3})).in(f32({0}, {1})).run());
  CHECK_INVALID(OpRunner("ScatterND").in(d).in(i64({0}, {1, 1})).in(i64({0, 0}, {1, 2})).run());
  CHECK_INVALID(OpRunner("ScatterND").in(d).in(f32({0}, {1, 1})).in(f32({0, 0}, {1, 2})).run());
  CHECK_INVALID(to::run_op("ScatterND", 16, to::Attrs().s("reduction", "max"), {d, i64({0}, {1, 1}), f32({0, 0}, {1, 2})}));
  CHECK_INVALID(to::run_op("ScatterND", 16, to::Attrs().s("reduction", "sub"), {d, i64({0}, {1, 1}), f32({0, 0}, {1, 2})}));
  CHECK_UNSUPPORTED(to::run_op("ScatterND", 16, to::Attrs().s("reduction", "add"),
                               {bools({0, 0}, {2}), i64({0}, {1, 1}), bools({1}, {1})}));
}

TEST_CASE("ScatterElements and Scatter: axes, negative indices, smaller indices, reductions") {
  namespace to = nnjit::testing::tensor_ops;
  const Tensor zeros = f32({0, 0, 0, 0, 0, 0, 0, 0, 0}, {3, 3});
  const Tensor idx = i64({1, 0, 2, 0, 2, 1}, {2, 3}), upd = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  auto y = run1(OpRunner("ScatterElements").in(zeros).in(idx).in(upd));
  CHECK(values(y) == V{4, 2, 0, 1, 0, 6, 0, 5, 3});
  CHECK(values(run1(OpRunner("Scatter").opset(9).in(zeros).in(idx).in(upd))) == values(y));
  const Tensor row = f32({1, 2, 3, 4, 5}, {1, 5});
  y = run1(OpRunner("ScatterElements").attr_i("axis", 1).in(row).in(i64({1, 3}, {1, 2})).in(f32({9, 8}, {1, 2})));
  CHECK(values(y) == V{1, 9, 3, 8, 5});
  y = run1(OpRunner("ScatterElements").attr_i("axis", -1).in(row).in(i32({1, -3}, {1, 2})).in(f32({9, 8}, {1, 2})));
  CHECK(values(y) == V{1, 9, 8, 4, 5});
  y = run1(OpRunner("Scatter").opset(10).attr_i("axis", 1).in(row).in(i64({4}, {1, 1})).in(f32({0}, {1, 1})));
  CHECK(values(y) == V{1, 2, 3, 4, 0});
  const Tensor r64 = i64({1, 2, 3, 4, 5}, {1, 5}), twice = i64({1, 1}, {1, 2}), u = i64({10, -1}, {1, 2});
  auto attrs = [](const char* red) { return to::Attrs().i("axis", 1).s("reduction", red); };
  CHECK(values(to::run_op("ScatterElements", 16, attrs("none"), {r64, twice, u})) == V{1, -1, 3, 4, 5});
  CHECK(values(to::run_op("ScatterElements", 16, attrs("add"), {r64, twice, u})) == V{1, 11, 3, 4, 5});
  CHECK(values(to::run_op("ScatterElements", 16, attrs("mul"), {r64, twice, u})) == V{1, -20, 3, 4, 5});
  CHECK(values(to::run_op("ScatterElements", 18, attrs("max"), {r64, twice, u})) == V{1, 10, 3, 4, 5});
  CHECK(values(to::run_op("ScatterElements", 18, attrs("min"), {r64, twice, u})) == V{1, -1, 3, 4, 5});
  Tensor bytes(DType::UInt8, {2, 2});
  y = run1(OpRunner("ScatterElements").in(bytes).in(i64({1}, {1, 1})).in(Tensor::from(std::vector<uint8_t>{200}, {1, 1})));
  CHECK(values(y) == V{0, 0, 200, 0});
}

TEST_CASE("ScatterElements refuses bad indices, shapes and types") {
  namespace to = nnjit::testing::tensor_ops;
  const Tensor d = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK_INVALID(OpRunner("ScatterElements").in(d).in_runtime(i64({2}, {1, 1})).in(f32({0}, {1, 1})).run());
  CHECK_INVALID(OpRunner("ScatterElements").in(d).in_runtime(i64({-3}, {1, 1})).in(f32({0}, {1, 1})).run());
  CHECK_INVALID(OpRunner("Scatter").opset(10).in(d).in_runtime(i64({5}, {1, 1})).in(f32({0}, {1, 1})).run());
  CHECK_INVALID(OpRunner("ScatterElements").in(d).in(i64({0}, {1})).in(f32({0}, {1})).run());           // rank differs
  CHECK_INVALID(OpRunner("ScatterElements").in(d).in(i64({0, 0}, {1, 2})).in(f32({0}, {1, 1})).run());  // updates differ
  CHECK_INVALID(OpRunner("ScatterElements").in(d).in(i64({0, 0, 0, 0}, {1, 4})).in(f32({0, 0, 0, 0}, {1, 4})).run());
  CHECK_INVALID(OpRunner("ScatterElements").attr_i("axis", 2).in(d).in(i64({0}, {1, 1})).in(f32({0}, {1, 1})).run());
  CHECK_INVALID(OpRunner("ScatterElements").in(d).in(f32({0}, {1, 1})).in(f32({0}, {1, 1})).run());
  CHECK_INVALID(OpRunner("ScatterElements").in(d).in(i64({0}, {1, 1})).in(i64({0}, {1, 1})).run());
  CHECK_INVALID(to::run_op("ScatterElements", 17, to::Attrs().s("reduction", "min"), {d, i64({0}, {1, 1}), f32({0}, {1, 1})}));
  CHECK_UNSUPPORTED(to::run_op("ScatterElements", 16, to::Attrs().s("reduction", "mul"),
                               {bools({0, 0}, {2}), i64({0}, {1}), bools({1}, {1})}));
}

// ---- normalisation ----------------------------------------------------------------------------

TEST_CASE("InstanceNormalization matches a plain per-(n, c) loop") {
  const Tensor x = random_tensor({2, 3, 5, 7}, 3, -2.f, 2.f);
  const Tensor scale = f32({1.f, -0.5f, 2.f}, {3}), bias = f32({0.f, 1.f, -1.f}, {3});
  auto y = run1(OpRunner("InstanceNormalization").attr_f("epsilon", 1e-3f).in(x).in(scale).in(bias));
  REQUIRE(y.shape() == x.shape());
  for (int64_t nc = 0; nc < 6; ++nc) {
    const float* p = x.data<float>() + nc * 35;
    double m = 0, v = 0;
    for (int i = 0; i < 35; ++i) m += p[i];
    m /= 35;
    for (int i = 0; i < 35; ++i) v += (p[i] - m) * (p[i] - m);
    v /= 35;
    const int64_t c = nc % 3;
    for (int i = 0; i < 35; ++i)
      CHECK(y.data<float>()[nc * 35 + i] ==
            doctest::Approx((p[i] - m) / std::sqrt(v + 1e-3) * scale.data<float>()[c] + bias.data<float>()[c]).epsilon(1e-5));
  }
  CHECK(run1(OpRunner("InstanceNormalization").in(f32({}, {0, 3, 2})).in(scale).in(bias)).shape() == Shape{0, 3, 2});
  CHECK_INVALID(OpRunner("InstanceNormalization").in(x).in(f32({1, 1}, {2})).in(bias).run());
  CHECK_INVALID(OpRunner("InstanceNormalization").in(f32({1}, {1})).in(scale).in(bias).run());
}

TEST_CASE("LRN sums squares over a channel window clipped at the edges") {
  // [1, 4, 1, 1] with size 3: the window of channel c is [c - 1, c + 1].
  const Tensor x = f32({1, 2, 3, 4}, {1, 4, 1, 1});
  auto y = run1(OpRunner("LRN").attr_i("size", 3).attr_f("alpha", 3.f).attr_f("beta", 0.5f).attr_f("bias", 2.f).in(x));
  const double sq[] = {1 + 4, 1 + 4 + 9, 4 + 9 + 16, 9 + 16};
  for (int c = 0; c < 4; ++c) CHECK(y.data<float>()[c] == doctest::Approx((c + 1) / std::sqrt(2 + 1.0 * sq[c])));
  // An even size reaches one further up than down: size 2 covers [c, c + 1].
  y = run1(OpRunner("LRN").attr_i("size", 2).attr_f("alpha", 2.f).attr_f("beta", 1.f).attr_f("bias", 0.f).in(x));
  CHECK(y.data<float>()[0] == doctest::Approx(1 / 5.0));
  CHECK(y.data<float>()[3] == doctest::Approx(4 / 16.0));
  CHECK_INVALID(OpRunner("LRN").in(x).run());  // size is required
  CHECK_INVALID(OpRunner("LRN").attr_i("size", 0).in(x).run());
  CHECK_UNSUPPORTED(OpRunner("LRN").attr_i("size", 3).in(i64({1, 2}, {1, 2})).run());
}

}  // TEST_SUITE
