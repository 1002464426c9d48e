// MaxUnpool and ReverseSequence (ops/rearrange_ops.cpp): the ONNX spec examples, then
// what they miss: several channels (MaxUnpool's indices address the whole output), pads,
// output_shape, other element types, and refusals.
#include <doctest/doctest.h>

#include "tensor_op_runner.hpp"

using namespace nnjit;
using namespace nnjit::testing::tensor_ops;

namespace {

const Attrs k2s2 = Attrs().ints("kernel_shape", {2, 2}).ints("strides", {2, 2});

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("MaxUnpool: the spec examples, with and without output_shape") {
    const Tensor x = f32({1, 2, 3, 4}, {1, 1, 2, 2});
    const Tensor i = i64({5, 7, 13, 15}, {1, 1, 2, 2});
    const Tensor y = run_op("MaxUnpool", 11, k2s2, {x, i});
    CHECK(y.shape() == Shape{1, 1, 4, 4});
    CHECK(fvals(y) == std::vector<float>{0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4});
    const Tensor z = run_op("MaxUnpool", 11, k2s2, {x, i, i64({1, 1, 5, 5})});
    CHECK(z.shape() == Shape{1, 1, 5, 5});
    CHECK(fvals(z) == std::vector<float>{0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  }

  TEST_CASE("MaxUnpool: indices address the whole output; pads and strides size it") {
    // Two channels of 1x2: kernel [1, 2] and strides [1, 2] give 1x4 planes, and pads
    // [0, 1, 0, 0] take one column off: 1x3 per channel, 6 elements in all.
    const Attrs a = Attrs().ints("kernel_shape", {1, 2}).ints("strides", {1, 2}).ints("pads", {0, 1, 0, 0});
    const Tensor y = run_op("MaxUnpool", 9, a, {f32({1, 2, 3, 4}, {1, 2, 1, 2}), i64({0, 2, 4, 3}, {1, 2, 1, 2})});
    CHECK(y.shape() == Shape{1, 2, 1, 3});
    CHECK(fvals(y) == std::vector<float>{1, 0, 2, 4, 3, 0});
    // float64 moves too; 1-D spatial.
    Tensor d(DType::Float64, {1, 1, 2});
    d.data<double>()[0] = 0.25;
    d.data<double>()[1] = -8;
    const Tensor y1 = run_op("MaxUnpool", 11, Attrs().ints("kernel_shape", {3}), {d, i64({3, 0}, {1, 1, 2})});
    REQUIRE(y1.shape() == Shape{1, 1, 4});
    CHECK(y1.data<double>()[0] == -8);
    CHECK(y1.data<double>()[3] == 0.25);
    CHECK(y1.data<double>()[1] == 0);
  }

  TEST_CASE("MaxUnpool refuses bad indices, shapes and attributes") {
    const Tensor x = f32({1, 2, 3, 4}, {1, 1, 2, 2});
    const auto code = [&](const Attrs& a, std::vector<Tensor> in) {
      return error_of([&] { run_op("MaxUnpool", 11, a, in); });
    };
    CHECK(code(k2s2, {x, i64({5, 7, 13, 16}, {1, 1, 2, 2})}) == ErrorCode::InvalidInput);  // 16 elements
    CHECK(code(k2s2, {x, i64({5, -1, 13, 15}, {1, 1, 2, 2})}) == ErrorCode::InvalidInput);
    CHECK(code(k2s2, {x, i64({5, 7, 13}, {1, 1, 3})}) == ErrorCode::InvalidInput);
    CHECK(code(k2s2, {x, i32({5, 7, 13, 15}, {1, 1, 2, 2})}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs().ints("strides", {2, 2}), {x, i64({5, 7, 13, 15}, {1, 1, 2, 2})}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs().ints("kernel_shape", {2}), {x, i64({5, 7, 13, 15}, {1, 1, 2, 2})}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs().ints("kernel_shape", {1, 1}).ints("pads", {1, 1, 1, 1}), {x, i64({0, 0, 0, 0}, {1, 1, 2, 2})}) ==
          ErrorCode::InvalidInput);  // size 2 - 2 = 0
    CHECK(code(k2s2, {x, i64({5, 7, 13, 15}, {1, 1, 2, 2}), i64({1, 2, 5, 5})}) == ErrorCode::InvalidInput);  // C
    CHECK(code(k2s2, {x, i64({5, 7, 13, 15}, {1, 1, 2, 2}), i64({1, 1, 5})}) == ErrorCode::InvalidInput);
    // output_shape computed at run time: the output's shape is unknown at load.
    CHECK(error_of([&] {
            run_op("MaxUnpool", 11, k2s2, {x, i64({5, 7, 13, 15}, {1, 1, 2, 2}), i64({1, 1, 5, 5})},
                   {{false, false, true}});
          }) == ErrorCode::Unsupported);
    CHECK(code(k2s2, {i64({1, 2, 3, 4}, {1, 1, 2, 2}), i64({5, 7, 13, 15}, {1, 1, 2, 2})}) == ErrorCode::Unsupported);
  }

  TEST_CASE("ReverseSequence: the spec examples, time-major and batch-major") {
    const Tensor x = iota_f32({4, 4});
    // time_axis 0, batch_axis 1: column b reverses its first lens[b] rows.
    const Tensor y =
        run_op("ReverseSequence", 10, Attrs().i("time_axis", 0).i("batch_axis", 1), {x, i64({4, 3, 2, 1})});
    CHECK(fvals(y) == std::vector<float>{12, 9, 6, 3, 8, 5, 2, 7, 4, 1, 10, 11, 0, 13, 14, 15});
    const Tensor z =
        run_op("ReverseSequence", 10, Attrs().i("time_axis", 1).i("batch_axis", 0), {x, i64({1, 2, 3, 4})});
    CHECK(fvals(z) == std::vector<float>{0, 1, 2, 3, 5, 4, 6, 7, 10, 9, 8, 11, 15, 14, 13, 12});
  }

  TEST_CASE("ReverseSequence moves trailing dims whole, any type; refuses bad lengths") {
    // [time 3, batch 2, 2] int64 (the defaults: time_axis 0, batch_axis 1); lens 0 keeps a sequence.
    const Tensor x = i64({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 2, 2});
    const Tensor y = run_op("ReverseSequence", 10, Attrs(), {x, i64({3, 0})});
    CHECK(ivals(y) == std::vector<int64_t>{8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11});
    const auto code = [&](const Attrs& a, std::vector<Tensor> in) {
      return error_of([&] { run_op("ReverseSequence", 10, a, in); });
    };
    CHECK(code(Attrs(), {x, i64({4, 0})}) == ErrorCode::InvalidInput);  // longer than the 3 steps
    CHECK(code(Attrs(), {x, i64({-1, 0})}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs(), {x, i64({1, 1, 1})}) == ErrorCode::InvalidInput);  // batch is 2
    CHECK(code(Attrs(), {x, i32({1, 1}, {2})}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs().i("batch_axis", 0), {x, i64({1, 1, 1})}) == ErrorCode::InvalidInput);  // both 0
    CHECK(code(Attrs().i("time_axis", 2), {x, i64({1, 1})}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs(), {i64({1, 2}), i64({1})}) == ErrorCode::InvalidInput);  // rank 1
  }
}
