// ReduceMean / ReduceSum / ReduceMax schemas (ops/reduce.cpp): axes from attribute or
// (ReduceSum-13) input, negative and repeated axes, keepdims, noop_with_empty_axes,
// empty tensors, rank 0, integer types and type refusal.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "ops/op.hpp"
#include "tests/ops/op_runner.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using namespace nnjit::testing;
using namespace nnjit::testing::ew;
using V = std::vector<double>;

namespace {

// x[i,j,k] = 100i + 10j + k on [2,3,4].
Tensor iota_234() {
  std::vector<float> v;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) v.push_back(float(100 * i + 10 * j + k));
  return f32(v, {2, 3, 4});
}

}  // namespace

TEST_SUITE("ops") {

TEST_CASE("ReduceMean/ReduceMax: axes attribute, negative axes, keepdims") {
  const Tensor x = iota_234();
  auto y = OpRunner("ReduceMean").opset(13).attr_ints("axes", {-1}).attr_i("keepdims", 0).in(x).run()[0];
  CHECK(y.shape() == Shape{2, 3});
  CHECK(values(y) == V{1.5, 11.5, 21.5, 101.5, 111.5, 121.5});
  y = OpRunner("ReduceMean").opset(13).attr_ints("axes", {0, -2}).in(x).run()[0];  // keepdims defaults to 1
  CHECK(y.shape() == Shape{1, 1, 4});
  CHECK(values(y) == V{60, 61, 62, 63});
  y = OpRunner("ReduceMax").opset(13).attr_ints("axes", {1}).in(x).run()[0];
  CHECK(y.shape() == Shape{2, 1, 4});
  CHECK(values(y) == V{20, 21, 22, 23, 120, 121, 122, 123});
  // No axes: every axis.
  y = OpRunner("ReduceMax").opset(11).attr_i("keepdims", 0).in(x).run()[0];
  CHECK(y.shape() == Shape{});
  CHECK(values(y) == V{123});
  y = OpRunner("ReduceMean").opset(11).in(x).run()[0];
  CHECK(y.shape() == Shape{1, 1, 1});
  CHECK(y.data<float>()[0] == doctest::Approx(61.5));
}

TEST_CASE("ReduceSum: axes attribute before opset 13, constant input from 13") {
  const Tensor x = iota_234();
  auto y = OpRunner("ReduceSum").opset(11).attr_ints("axes", {2, 0}).attr_i("keepdims", 0).in(x).run()[0];
  CHECK(y.shape() == Shape{3});
  CHECK(values(y) == V{412, 492, 572});
  y = OpRunner("ReduceSum").opset(13).in(x).in(i64({-3, 2}, {2})).run()[0];
  CHECK(y.shape() == Shape{1, 3, 1});
  CHECK(values(y) == V{412, 492, 572});
  // Absent or empty axes: all axes, unless noop_with_empty_axes.
  y = OpRunner("ReduceSum").opset(13).attr_i("keepdims", 0).in(x).run()[0];
  CHECK(y.shape() == Shape{});
  CHECK(values(y) == V{1476});
  y = OpRunner("ReduceSum").opset(13).in(x).in(i64({}, {0})).run()[0];
  CHECK(y.shape() == Shape{1, 1, 1});
  y = OpRunner("ReduceSum").opset(13).attr_i("noop_with_empty_axes", 1).in(x).in(i64({}, {0})).run()[0];
  CHECK(y.shape() == x.shape());
  CHECK(values(y) == values(x));
  y = OpRunner("ReduceSum").opset(13).attr_i("noop_with_empty_axes", 1).in(x).in(i64({1}, {1})).run()[0];
  CHECK(y.shape() == Shape{2, 1, 4});
  // Before opset 13 noop_with_empty_axes is not an attribute of ReduceSum.
  y = OpRunner("ReduceSum").opset(11).attr_i("noop_with_empty_axes", 1).in(x).run()[0];
  CHECK(y.shape() == Shape{1, 1, 1});

  // The output shape depends on the axes, so they must be known at load.
  CHECK_UNSUPPORTED(OpRunner("ReduceSum").opset(13).in(x).in_runtime(i64({1}, {1})).run());
  CHECK_INVALID(OpRunner("ReduceSum").opset(11).in(x).in(i64({1}, {1})).run());
  CHECK_INVALID(OpRunner("ReduceSum").opset(13).in(x).in(i32({1}, {1})).run());
  CHECK_INVALID(OpRunner("ReduceSum").opset(13).in(x).in(i64({1}, {1, 1})).run());
}

TEST_CASE("reductions refuse bad axes and keepdims") {
  const Tensor x = iota_234();
  CHECK_INVALID(OpRunner("ReduceMean").attr_ints("axes", {3}).in(x).run());
  CHECK_INVALID(OpRunner("ReduceMean").attr_ints("axes", {-4}).in(x).run());
  CHECK_INVALID(OpRunner("ReduceMax").attr_ints("axes", {1, -2}).in(x).run());
  CHECK_INVALID(OpRunner("ReduceSum").opset(13).in(x).in(i64({0, 0}, {2})).run());
  CHECK_INVALID(OpRunner("ReduceMean").attr_i("keepdims", 2).in(x).run());
}

TEST_CASE("reductions of rank 0 and of empty tensors") {
  auto y = OpRunner("ReduceSum").opset(13).in(f32({5}, {})).run()[0];
  CHECK(y.shape() == Shape{});
  CHECK(values(y) == V{5});
  y = OpRunner("ReduceMax").attr_i("keepdims", 1).in(f32({5}, {})).run()[0];
  CHECK(y.shape() == Shape{});
  CHECK(values(y) == V{5});

  // Reducing a zero-sized axis: Sum 0, Max -inf, Mean NaN.
  const Tensor empty = f32({}, {0, 3});
  y = OpRunner("ReduceSum").opset(13).attr_i("keepdims", 0).in(empty).in(i64({0}, {1})).run()[0];
  CHECK(y.shape() == Shape{3});
  CHECK(values(y) == V{0, 0, 0});
  y = OpRunner("ReduceMax").attr_ints("axes", {0}).in(empty).run()[0];
  CHECK(y.shape() == Shape{1, 3});
  CHECK(values(y) == V{-INFINITY, -INFINITY, -INFINITY});
  y = OpRunner("ReduceMean").attr_ints("axes", {0}).in(empty).run()[0];
  CHECK(std::isnan(y.data<float>()[0]));
  // Reducing a non-empty axis of an empty tensor gives an empty output.
  y = OpRunner("ReduceMean").attr_ints("axes", {1}).in(empty).run()[0];
  CHECK(y.shape() == Shape{0, 1});
  y = OpRunner("ReduceMax").attr_ints("axes", {1}).attr_i("keepdims", 0).in(i64({}, {0, 2})).run()[0];
  CHECK(y.shape() == Shape{0});
  y = OpRunner("ReduceMax").attr_ints("axes", {1}).in(i64({}, {2, 0})).run()[0];
  CHECK(y.data<int64_t>()[0] == std::numeric_limits<int64_t>::lowest());
  y = OpRunner("ReduceMean").attr_ints("axes", {1}).in(i32({}, {2, 0})).run()[0];
  CHECK(values(y) == V{0, 0});
}

TEST_CASE("reductions of integers, and of NaN") {
  auto y = OpRunner("ReduceSum").opset(13).in(i64({1, 2, 3, 4}, {2, 2})).in(i64({1}, {1})).run()[0];
  CHECK(y.dtype() == DType::Int64);
  CHECK(values(y) == V{3, 7});
  // Integer mean truncates toward zero.
  y = OpRunner("ReduceMean").attr_ints("axes", {1}).attr_i("keepdims", 0).in(i32({1, 2, -1, -2}, {2, 2})).run()[0];
  CHECK(y.dtype() == DType::Int32);
  CHECK(values(y) == V{1, -1});
  y = OpRunner("ReduceMax").attr_ints("axes", {0}).in(i32({-5, 7, -3, 2}, {2, 2})).run()[0];
  CHECK(values(y) == V{-3, 7});
  // A large int64 sum stays exact.
  const int64_t big = int64_t{1} << 60;
  y = OpRunner("ReduceSum").opset(11).in(i64({big, 1, -big}, {3})).run()[0];
  CHECK(y.data<int64_t>()[0] == 1);

  const float nan = std::numeric_limits<float>::quiet_NaN();
  y = OpRunner("ReduceMax").attr_ints("axes", {1}).in(f32({1, nan, 3, 4}, {2, 2})).run()[0];
  CHECK(std::isnan(y.data<float>()[0]));
  CHECK(y.data<float>()[1] == 4);
}

TEST_CASE("reductions refuse types they do not compute") {
  for (const char* op : {"ReduceMean", "ReduceSum", "ReduceMax"}) {
    CAPTURE(op);
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Float16, {2})).run());
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::Float64, {2})).run());
    CHECK_UNSUPPORTED(OpRunner(op).in(Tensor(DType::UInt8, {2})).run());
    CHECK_UNSUPPORTED(OpRunner(op).in(bools({1, 0}, {2})).run());
  }
}

TEST_CASE("ReduceMean over H,W of an activation matches a plain loop") {
  const Tensor x = random_tensor({2, 16, 7, 9}, 11);
  auto y = OpRunner("ReduceMean").attr_ints("axes", {2, 3}).in(x).run()[0];
  REQUIRE(y.shape() == Shape{2, 16, 1, 1});
  for (int64_t nc = 0; nc < 32; ++nc) {
    double s = 0;
    for (int64_t i = 0; i < 63; ++i) s += x.data<float>()[nc * 63 + i];
    CHECK(y.data<float>()[nc] == doctest::Approx(s / 63).epsilon(1e-6));
  }
}

}  // TEST_SUITE
