// MaxPool, AveragePool and the global pools: padding, ceil_mode, count_include_pad and
// auto_pad against torch and hand-computed values; refused attributes and outputs.
#include <doctest/doctest.h>

#include "ops/pool.hpp"
#include "tests/ops/nn_test_helpers.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using namespace nnjit::testing::nn;
using nnjit::testing::random_tensor;

namespace {

Tensor one_to_nine() { return Tensor::from(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3}); }

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("MaxPool ceil_mode drops a window that would start in the end padding (torch)") {
    // in 4, kernel 2, stride 3, pads 1/1: ceil((4+2-2)/3)+1 = 3 windows, but the third
    // would start at 5 > 4 + 1 - 1, inside the end pad, so there are 2.
    auto y = run_op(
        "MaxPool",
        attrs({{"kernel_shape", ints({2})}, {"strides", ints({3})}, {"pads", ints({1, 1})}, {"ceil_mode", integer(1)}}),
        {xs({1, 1, 4})}, 12);
    check_close(y[0], {1, 1, 2}, {-1.375f, 1.f});
  }

  TEST_CASE("AveragePool ceil_mode with and without count_include_pad (torch)") {
    // The last window [5, 8) reaches past the end pad (which ends at 7): with
    // count_include_pad it is divided by 2 (one element, one pad), not 3.
    const ops::Attributes base =
        attrs({{"kernel_shape", ints({3})}, {"strides", ints({2})}, {"pads", ints({1, 1})}, {"ceil_mode", integer(1)}});
    ops::Attributes inc = base;
    inc.set("count_include_pad", integer(1));
    check_close(run_op("AveragePool", inc, {xs({1, 2, 6})}, 11)[0], {1, 2, 4},
                {-0.333333f, 0.208333f, -0.125f, -0.625f, -0.0416667f, 0.166667f, -0.166667f, 0.3125f});
    check_close(run_op("AveragePool", base, {xs({1, 2, 6})}, 11)[0], {1, 2, 4},
                {-0.5f, 0.208333f, -0.125f, -1.25f, -0.0625f, 0.166667f, -0.166667f, 0.625f});
  }

  TEST_CASE("MaxPool with dilation 2, stride 2, pads, floor and ceil (torch)") {
    const ops::Attributes a = attrs({{"kernel_shape", ints({3, 3})},
                                     {"strides", ints({2, 2})},
                                     {"dilations", ints({2, 2})},
                                     {"pads", ints({1, 1, 1, 1})}});
    check_close(run_op("MaxPool", a, {xs({1, 1, 7, 7})}, 12)[0], {1, 1, 3, 3},
                {1.125f, 1.125f, 1.f, 1.25f, 1.25f, 1.f, 1.25f, 1.25f, 1.f});
    ops::Attributes c = a;
    c.set("ceil_mode", integer(1));
    check_close(run_op("MaxPool", c, {xs({1, 1, 8, 8})}, 12)[0], {1, 1, 4, 4},
                {0.625f, 1.25f, 1.25f, 1.25f, 1.375f, 1.375f, 1.25f, 1.25f, 1.375f, 1.375f, 1.25f, 1.125f, 1.375f,
                 1.375f, 1.25f, 0.375f});
  }

  TEST_CASE("Pooling SAME_UPPER pads the end, SAME_LOWER the beginning") {
    auto pool = [](const char* op, const char* auto_pad, int64_t include_pad = 0) {
      return run_op(op,
                    attrs({{"kernel_shape", ints({2, 2})},
                           {"auto_pad", text(auto_pad)},
                           {"count_include_pad", integer(include_pad)}}),
                    {one_to_nine()}, 11)[0];
    };
    check_close(pool("AveragePool", "SAME_UPPER"), {1, 1, 3, 3}, {3, 4, 4.5f, 6, 7, 7.5f, 7.5f, 8.5f, 9});
    check_close(pool("AveragePool", "SAME_LOWER"), {1, 1, 3, 3}, {1, 1.5f, 2.5f, 2.5f, 3, 4, 5.5f, 6, 7});
    check_close(pool("AveragePool", "SAME_UPPER", 1), {1, 1, 3, 3}, {3, 4, 2.25f, 6, 7, 3.75f, 3.75f, 4.25f, 2.25f});
    const ops::Attributes max_upper = attrs({{"kernel_shape", ints({2, 2})}, {"auto_pad", text("SAME_UPPER")}});
    const ops::Attributes max_lower = attrs({{"kernel_shape", ints({2, 2})}, {"auto_pad", text("SAME_LOWER")}});
    check_close(run_op("MaxPool", max_upper, {one_to_nine()}, 12)[0], {1, 1, 3, 3}, {5, 6, 6, 8, 9, 9, 8, 9, 9});
    check_close(run_op("MaxPool", max_lower, {one_to_nine()}, 12)[0], {1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    // VALID: no padding, floor.
    const ops::Attributes valid =
        attrs({{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}, {"auto_pad", text("VALID")}});
    check_close(run_op("MaxPool", valid, {one_to_nine()}, 12)[0], {1, 1, 1, 1}, {5});
  }

  TEST_CASE("AveragePool asymmetric pads, stride 2, odd size") {
    // 1x1x3x3 = 1..9, kernel 2x2, stride 2, pads [top 1, left 0, bottom 0, right 1].
    // Windows: rows {-1,0} and {1,2}; cols {0,1} and {2,3}.
    const ops::Attributes a =
        attrs({{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}, {"pads", ints({1, 0, 0, 1})}});
    check_close(run_op("AveragePool", a, {one_to_nine()}, 11)[0], {1, 1, 2, 2}, {1.5f, 3, 6, 7.5f});
    ops::Attributes inc = a;
    inc.set("count_include_pad", integer(1));
    check_close(run_op("AveragePool", inc, {one_to_nine()}, 11)[0], {1, 1, 2, 2}, {0.75f, 0.75f, 6, 3.75f});
  }

  TEST_CASE("MaxPool on int8 and uint8, and with an empty batch") {
    const ops::Attributes a = attrs({{"kernel_shape", ints({2})}, {"pads", ints({1, 0})}});
    auto y = run_op("MaxPool", a, {Tensor::from(std::vector<int8_t>{-128, -5, 7, -100}, {1, 1, 4})}, 12);
    REQUIRE(y[0].dtype() == DType::Int8);
    CHECK(std::vector<int8_t>(y[0].data<int8_t>(), y[0].data<int8_t>() + 4) == std::vector<int8_t>{-128, -5, 7, 7});
    y = run_op("MaxPool", a, {Tensor::from(std::vector<uint8_t>{0, 255, 3, 4}, {1, 1, 4})}, 12);
    CHECK(std::vector<uint8_t>(y[0].data<uint8_t>(), y[0].data<uint8_t>() + 4) == std::vector<uint8_t>{0, 255, 255, 4});
    CHECK(run_op("MaxPool", a, {Tensor(DType::Float32, {0, 3, 4})}, 12)[0].shape() == Shape{0, 3, 4});
    CHECK(run_op("AveragePool", a, {Tensor(DType::Float32, {0, 3, 4})}, 12)[0].shape() == Shape{0, 3, 4});
  }

  TEST_CASE("3-D MaxPool and 1-D AveragePool agree with the 2-D op on unit axes") {
    const Tensor x = random_tensor({2, 3, 5, 7}, 7);
    const ops::Attributes a2 = attrs({{"kernel_shape", ints({2, 3})},
                                      {"strides", ints({2, 2})},
                                      {"pads", ints({1, 1, 0, 2})},
                                      {"ceil_mode", integer(1)}});
    const ops::Attributes a3 = attrs({{"kernel_shape", ints({1, 2, 3})},
                                      {"strides", ints({1, 2, 2})},
                                      {"pads", ints({0, 1, 1, 0, 0, 2})},
                                      {"ceil_mode", integer(1)}});
    const Tensor y2 = run_op("MaxPool", a2, {x}, 12)[0];
    const Tensor y3 = run_op("MaxPool", a3, {x.reshaped({2, 3, 1, 5, 7})}, 12)[0];
    REQUIRE(y3.shape() == Shape{2, 3, 1, 3, 4});
    CHECK(nnjit::testing::max_abs_diff(y2, y3.reshaped(y2.shape())) == 0);

    const ops::Attributes b1 = attrs({{"kernel_shape", ints({3})}, {"strides", ints({2})}, {"pads", ints({1, 2})}});
    const ops::Attributes b2 =
        attrs({{"kernel_shape", ints({1, 3})}, {"strides", ints({1, 2})}, {"pads", ints({0, 1, 0, 2})}});
    const Tensor z1 = run_op("AveragePool", b1, {x.reshaped({2, 15, 7})}, 11)[0];
    const Tensor z2 = run_op("AveragePool", b2, {x.reshaped({2, 15, 1, 7})}, 11)[0];
    CHECK(nnjit::testing::max_abs_diff(z1, z2.reshaped(z1.shape())) < 1e-6);
  }

  TEST_CASE("Pooling refuses unsupported outputs and malformed attributes") {
    const Tensor x = random_tensor({1, 2, 5, 5}, 3);
    const ops::Attributes k = attrs({{"kernel_shape", ints({2, 2})}});
    CHECK(error_code_of([&] { run_op("MaxPool", k, {x}, 12, 2); }) == ErrorCode::Unsupported);
    CHECK(error_code_of([&] {
            run_op("MaxPool", attrs({{"kernel_shape", ints({2, 2})}, {"storage_order", integer(1)}}), {x}, 12);
          }) == ErrorCode::Unsupported);
    CHECK(error_code_of([&] { run_op("MaxPool", {}, {x}, 12); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("MaxPool", attrs({{"kernel_shape", ints({2})}}), {x}, 12);
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("AveragePool", attrs({{"kernel_shape", ints({2, 2})}, {"pads", ints({2, 0, 0, 0})}}), {x}, 11);
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("MaxPool", attrs({{"kernel_shape", ints({6, 6})}}), {x}, 12);
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("AveragePool", k, {Tensor(DType::Int8, {1, 2, 5, 5})}, 11);
          }) == ErrorCode::Unsupported);
    CHECK(error_code_of([&] {
            run_op("MaxPool", k, {Tensor(DType::Float64, {1, 2, 5, 5})}, 12);
          }) == ErrorCode::Unsupported);
  }

  TEST_CASE("GlobalAveragePool and GlobalMaxPool") {
    const Tensor x = random_tensor({2, 3, 4, 5}, 9);
    const Tensor avg = run_op("GlobalAveragePool", {}, {x}, 11)[0];
    const Tensor max = run_op("GlobalMaxPool", {}, {x}, 11)[0];
    REQUIRE(avg.shape() == Shape{2, 3, 1, 1});
    REQUIRE(max.shape() == Shape{2, 3, 1, 1});
    for (int64_t plane = 0; plane < 6; ++plane) {
      double sum = 0;
      float m = -1e30f;
      for (int64_t i = 0; i < 20; ++i) {
        sum += x.data<float>()[plane * 20 + i];
        m = std::max(m, x.data<float>()[plane * 20 + i]);
      }
      CHECK(avg.data<float>()[plane] == doctest::Approx(sum / 20).epsilon(1e-6));
      CHECK(max.data<float>()[plane] == m);
    }
    CHECK(run_op("GlobalAveragePool", {}, {Tensor(DType::Float32, {0, 3, 4, 5})}, 11)[0].shape() == Shape{0, 3, 1, 1});
    CHECK(run_op("GlobalAveragePool", {}, {random_tensor({1, 2, 7}, 1)}, 11)[0].shape() == Shape{1, 2, 1});
    CHECK(error_code_of([&] {
            run_op("GlobalAveragePool", {}, {random_tensor({2, 3}, 1)}, 11);
          }) == ErrorCode::InvalidInput);
  }
}
