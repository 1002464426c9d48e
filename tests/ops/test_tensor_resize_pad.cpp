// Resize and Pad references (ops/tensor_resize.cpp, ops/tensor_slice_pad.cpp). Expected
// values come from the ONNX spec examples and its backend-test reference
// (onnx/backend/test/case/node/resize.py), PyTorch's interpolate, or numpy.pad.
#include <doctest/doctest.h>

#include <cmath>

#include "tensor_op_runner.hpp"

using namespace nnjit;
using namespace nnjit::testing::tensor_ops;

namespace {

bool close(const std::vector<float>& a, const std::vector<float>& b, float tol = 1e-5f) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= tol)) return false;
  return true;
}

const Tensor k2x2 = f32({1, 2, 3, 4}, {1, 1, 2, 2});

Tensor resize_scales(int opset, const Attributes& a, const Tensor& x, std::vector<float> scales) {
  if (opset < 11) return run_op("Resize", opset, a, {x, f32(scales)});
  return run_op("Resize", opset, a, {x, Tensor(), f32(scales)});
}

Tensor resize_sizes(const Attributes& a, const Tensor& x, std::vector<int64_t> sizes) {
  return run_op("Resize", 13, a, {x, Tensor(), Tensor(), i64(sizes)});
}

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("Pad: constant, reflect and edge modes (spec examples)") {
    const Tensor x = f32({1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f}, {3, 2});
    const Tensor pads = i64({0, 2, 0, 0});
    const Tensor c = run_op("Pad", 13, Attrs(), {x, pads});
    CHECK(c.shape() == Shape{3, 4});
    CHECK(fvals(c) == std::vector<float>{0, 0, 1.0f, 1.2f, 0, 0, 2.3f, 3.4f, 0, 0, 4.5f, 5.7f});
    CHECK(fvals(run_op("Pad", 13, Attrs().s("mode", "reflect"), {x, pads})) ==
          std::vector<float>{1.0f, 1.2f, 1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f, 4.5f, 5.7f});
    CHECK(fvals(run_op("Pad", 13, Attrs().s("mode", "edge"), {x, pads})) ==
          std::vector<float>{1.0f, 1.0f, 1.0f, 1.2f, 2.3f, 2.3f, 2.3f, 3.4f, 4.5f, 4.5f, 4.5f, 5.7f});
    CHECK(fvals(run_op("Pad", 11, Attrs(), {x, i64({1, 0, 0, 0}), f32({9}, {})})) ==
          std::vector<float>{9, 9, 1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f});
  }

  TEST_CASE("Pad: reflect wider than the axis repeats the mirror, as numpy does") {
    const Tensor x = f32({1, 2, 3});
    CHECK(fvals(run_op("Pad", 13, Attrs().s("mode", "reflect"), {x, i64({4, 4})})) ==
          std::vector<float>{1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3});
    CHECK(fvals(run_op("Pad", 13, Attrs().s("mode", "edge"), {x, i64({2, 1})})) ==
          std::vector<float>{1, 1, 1, 2, 3, 3});
    CHECK(fvals(run_op("Pad", 13, Attrs().s("mode", "reflect"), {f32({5}), i64({2, 1})})) ==
          std::vector<float>{5, 5, 5, 5});
  }

  TEST_CASE("Pad: opset < 11 attributes, integer data, negative pads crop") {
    const Tensor y = run_op("Pad", 2, Attrs().ints("pads", {1, 1}).f("value", 5), {i64({1, 2})});
    CHECK(ivals(y) == std::vector<int64_t>{5, 1, 2, 5});
    CHECK(ivals(run_op("Pad", 13, Attrs(), {i64({1, 2}), i64({0, 2}), i64({-7}, {})})) ==
          std::vector<int64_t>{1, 2, -7, -7});

    const Tensor x = f32({1, 2, 3, 4, 5});
    CHECK(fvals(run_op("Pad", 13, Attrs(), {x, i64({-1, 2})})) == std::vector<float>{2, 3, 4, 5, 0, 0});
    // Edge and reflect extend what is left after cropping.
    CHECK(fvals(run_op("Pad", 13, Attrs().s("mode", "edge"), {x, i64({-2, 1})})) == std::vector<float>{3, 4, 5, 5});
    CHECK(fvals(run_op("Pad", 13, Attrs().s("mode", "reflect"), {x, i64({1, -2})})) == std::vector<float>{2, 1, 2, 3});
    CHECK(run_op("Pad", 13, Attrs(), {x, i64({-5, 0})}).shape() == Shape{0});
  }

  TEST_CASE("Pad refuses bad pads and modes") {
    const Tensor x = f32({1, 2, 3});
    CHECK(error_of([&] { run_op("Pad", 13, Attrs(), {x, i64({1})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Pad", 13, Attrs(), {x, i64({-2, -2})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("Pad", 13, Attrs().s("mode", "edge"), {Tensor(DType::Float32, {0}), i64({1, 0})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("Pad", 13, Attrs().s("mode", "mirror"), {x, i64({1, 0})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Pad", 13, Attrs(), {x, i64({1, 0}), i64({0}, {})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Pad", 13, Attrs(), {x, i64({1, 0})}, {{false, true}}); }) == ErrorCode::Unsupported);
    CHECK(check_problems("Pad", 13, Attrs().s("mode", "wrap")).size() == 1);
    CHECK(check_problems("Pad", 13, Attrs().s("mode", "reflect")).empty());
  }

  TEST_CASE("Resize nearest: half_pixel upsampling and each nearest_mode") {
    const Tensor y = resize_scales(13, Attrs(), k2x2, {1, 1, 2, 2});
    CHECK(y.shape() == Shape{1, 1, 4, 4});
    CHECK(fvals(y) == std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});

    const Tensor x = iota_f32({4});
    auto asym = [&](const char* mode, int64_t size) {
      return fvals(
          resize_sizes(Attrs().s("coordinate_transformation_mode", "asymmetric").s("nearest_mode", mode), x, {size}));
    };
    // Ties (x / 2 = k + 0.5) separate the two round modes.
    CHECK(asym("round_prefer_floor", 8) == std::vector<float>{0, 0, 1, 1, 2, 2, 3, 3});
    CHECK(asym("round_prefer_ceil", 8) == std::vector<float>{0, 1, 1, 2, 2, 3, 3, 3});
    CHECK(asym("floor", 7) == std::vector<float>{0, 0, 1, 1, 2, 2, 3});
    CHECK(asym("ceil", 7) == std::vector<float>{0, 1, 2, 2, 3, 3, 3});
    CHECK(fvals(resize_sizes(Attrs(), iota_f32({5}), {2})) == std::vector<float>{1, 3});
  }

  TEST_CASE("Resize nearest moves any element type") {
    const Tensor y = resize_scales(13, Attrs(), i64({1, 2}, {1, 2}), {1, 2});
    CHECK(y.dtype() == DType::Int64);
    CHECK(ivals(y) == std::vector<int64_t>{1, 1, 2, 2});
    // Linear needs float32.
    CHECK(error_of([&] {
            resize_scales(13, Attrs().s("mode", "linear"), i64({1, 2}, {1, 2}), {1, 2});
          }) == ErrorCode::Unsupported);
  }

  TEST_CASE("Resize linear: half_pixel, align_corners, pytorch_half_pixel, asymmetric") {
    CHECK(close(fvals(resize_scales(13, Attrs().s("mode", "linear"), k2x2, {1, 1, 2, 2})),
                {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3, 3.25f, 3.75f, 4}));
    const Attrs corners = Attrs().s("mode", "linear").s("coordinate_transformation_mode", "align_corners");
    CHECK(close(fvals(resize_scales(13, corners, k2x2, {1, 1, 2, 2})),
                {1, 4 / 3.f, 5 / 3.f, 2, 5 / 3.f, 2, 7 / 3.f, 8 / 3.f, 7 / 3.f, 8 / 3.f, 3, 10 / 3.f, 3, 10 / 3.f,
                 11 / 3.f, 4}));
    // With scales, align_corners divides by the unrounded length in * scale = 2.4 (backend test).
    const Tensor d = f32({1, 2, 3, 4, 5, 6, 7, 8}, {1, 1, 2, 4});
    CHECK(close(fvals(resize_scales(13, corners, d, {1, 1, 0.6f, 0.6f})), {1, 3.142857f}));
    // pytorch_half_pixel samples index 0 when an axis resizes to length 1.
    const Tensor p = resize_sizes(Attrs().s("mode", "linear").s("coordinate_transformation_mode", "pytorch_half_pixel"),
                                  iota_f32({1, 1, 4, 4}), {1, 1, 3, 1});
    CHECK(close(fvals(p), {2 / 3.f, 6, 34 / 3.f}));
    const Tensor a = resize_scales(13, Attrs().s("mode", "linear").s("coordinate_transformation_mode", "asymmetric"),
                                   k2x2, {1, 1, 2, 2});
    CHECK(close(fvals(a), {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4}));
  }

  TEST_CASE("Resize linear is n-linear over every axis") {
    // An affine function of the indices is reproduced exactly by n-linear interpolation.
    const Tensor x = iota_f32({2, 3, 4});  // x[a][b][c] = 12a + 4b + c
    const Tensor y =
        resize_sizes(Attrs().s("mode", "linear").s("coordinate_transformation_mode", "align_corners"), x, {3, 5, 7});
    CHECK(y.shape() == Shape{3, 5, 7});
    float worst = 0;
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 5; ++b)
        for (int c = 0; c < 7; ++c) {
          const float want = 12 * (a * 0.5f) + 4 * (b * 0.5f) + c * 0.5f;
          worst = std::max(worst, std::fabs(y.data<float>()[(a * 5 + b) * 7 + c] - want));
        }
    CHECK(worst < 1e-5f);
    const Tensor h = resize_scales(13, Attrs().s("mode", "linear"), x, {1, 2, 0.5f});
    CHECK(h.shape() == Shape{2, 6, 2});
    CHECK(close(fvals(h), {0.5f,  2.5f,  1.5f,  3.5f,  3.5f,  5.5f,  5.5f,  7.5f,  7.5f,  9.5f,  8.5f,  10.5f,
                           12.5f, 14.5f, 13.5f, 15.5f, 15.5f, 17.5f, 17.5f, 19.5f, 19.5f, 21.5f, 20.5f, 22.5f}));
  }

  TEST_CASE("Resize-10: asymmetric coordinates, legacy nearest rounding") {
    const Tensor d = f32({1, 2, 3, 4, 5, 6, 7, 8}, {1, 1, 2, 4});
    CHECK(fvals(resize_scales(10, Attrs(), d, {1, 1, 0.6f, 0.6f})) == std::vector<float>{1, 3});
    CHECK(fvals(resize_scales(10, Attrs(), k2x2, {1, 1, 2, 3})) ==
          std::vector<float>{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
    CHECK(close(fvals(resize_scales(10, Attrs().s("mode", "linear"), k2x2, {1, 1, 2, 2})),
                {1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 3, 3.5f, 4, 4, 3, 3.5f, 4, 4}));
    CHECK(close(fvals(resize_scales(10, Attrs().s("mode", "linear"), d, {1, 1, 0.6f, 0.6f})), {1, 8 / 3.f}));
  }

  TEST_CASE("Resize tf_crop_and_resize writes extrapolation_value outside the crop") {
    const Attrs a = Attrs()
                        .s("mode", "linear")
                        .s("coordinate_transformation_mode", "tf_crop_and_resize")
                        .f("extrapolation_value", 9);
    const Tensor x = iota_f32({5});
    CHECK(close(fvals(run_op("Resize", 13, a, {x, f32({0.25f, 0.75f}), Tensor(), i64({3})})), {1, 2, 3}));
    CHECK(close(fvals(run_op("Resize", 13, a, {x, f32({-0.25f, 0.25f}), Tensor(), i64({3})})), {9, 0, 1}));
  }

  // x[i] = i^1.5 on a 4x4 plane: not a cubic polynomial, so every tap and weight counts.
  const Tensor kPow = f32({0, 1, 2.828427f, 5.196153f, 8, 11.180340f, 14.696939f, 18.520258f, 22.627417f, 27,
                           31.622776f, 36.482872f, 41.569221f, 46.872166f, 52.383202f, 58.094749f},
                          {1, 1, 4, 4});

  TEST_CASE("Resize cubic: half_pixel matches PyTorch's bicubic, sizes and scales") {
    // torch.nn.functional.interpolate(mode='bicubic', align_corners=False, size=(3, 6)),
    // which the backend tests' reference (resize.py's interpolate_nd) agrees with.
    const Tensor y = resize_sizes(Attrs().s("mode", "cubic"), kPow, {1, 1, 3, 6});
    CHECK(y.shape() == Shape{1, 1, 3, 6});
    CHECK(close(fvals(y),
                {0.782027f, 1.347981f, 2.548600f, 3.743829f, 5.709571f, 7.018661f, 13.949924f, 15.846174f, 19.038029f,
                 21.417199f, 24.913977f, 27.106387f, 38.654139f, 41.193221f, 45.423366f, 48.525509f, 53.007730f,
                 55.791645f},
                2e-4f));
    // Integer sample positions (scale 1) reproduce the input exactly.
    CHECK(fvals(resize_scales(13, Attrs().s("mode", "cubic"), kPow, {1, 1, 1, 1})) == fvals(kPow));
    // Cubic needs float32.
    CHECK(error_of([&] {
            resize_scales(13, Attrs().s("mode", "cubic"), i64({1, 2}, {1, 2}), {1, 2});
          }) == ErrorCode::Unsupported);
  }

  TEST_CASE("Resize cubic: cubic_coeff_a, exclude_outside, align_corners, asymmetric") {
    // Values from resize.py's interpolate_nd with the same arguments.
    const Tensor e = resize_scales(
        13, Attrs().s("mode", "cubic").f("cubic_coeff_a", -0.5f).i("exclude_outside", 1), kPow, {1, 1, 0.8f, 0.8f});
    CHECK(e.shape() == Shape{1, 1, 3, 3});
    CHECK(close(fvals(e),
                {0.626535f, 2.365707f, 5.428925f, 13.081748f, 17.983753f, 23.549979f, 36.437335f, 43.070024f,
                 50.319540f},
                2e-4f));
    // Without exclude_outside (and with a = -0.75) the edge outputs differ.
    const Tensor plain = resize_scales(13, Attrs().s("mode", "cubic"), kPow, {1, 1, 0.8f, 0.8f});
    CHECK(std::fabs(fvals(plain)[0] - 0.626535f) > 1e-2f);
    const Tensor a = resize_scales(13, Attrs().s("mode", "cubic").s("coordinate_transformation_mode", "align_corners"),
                                   kPow, {1, 1, 1, 1.5f});
    CHECK(a.shape() == Shape{1, 1, 4, 6});
    const std::vector<float> row0(a.data<float>(), a.data<float>() + 6);
    CHECK(close(row0, {0, 0.414530f, 1.360978f, 2.303322f, 3.944575f, 5.196153f}, 2e-4f));
    const Tensor s = resize_scales(13, Attrs().s("mode", "cubic").s("coordinate_transformation_mode", "asymmetric"),
                                   f32({0, 1, 2.828427f, 5.196153f}, {4}), {2});
    CHECK(close(fvals(s), {0, 0.328585f, 1, 1.785989f, 2.828427f, 4.183705f, 5.196153f, 5.418127f}, 2e-4f));
    CHECK(error_of([&] {
            resize_scales(13, Attrs().s("mode", "cubic").i("exclude_outside", 2), kPow, {1, 1, 2, 2});
          }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("Resize refuses what it cannot plan or does not support") {
    // Cubic came with Resize-11.
    CHECK(error_of([&] {
            resize_scales(10, Attrs().s("mode", "cubic"), k2x2, {1, 1, 2, 2});
          }) == ErrorCode::InvalidInput);
    CHECK(check_problems("Resize", 13, Attrs().s("mode", "linear")).empty());
    CHECK(error_of([&] {
            run_op("Resize", 13, Attrs(), {k2x2, Tensor(), f32({1, 1, 2, 2})}, {{false, false, true}});
          }) == ErrorCode::Unsupported);
    CHECK(error_of([&] {
            run_op("Resize", 13, Attrs(), {k2x2, Tensor(), f32({1, 1, 2, 2}), i64({1, 1, 4, 4})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Resize", 13, Attrs(), {k2x2}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { resize_scales(13, Attrs(), k2x2, {1, 2}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { resize_scales(13, Attrs(), k2x2, {1, 1, 0, 2}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            resize_scales(13, Attrs().s("coordinate_transformation_mode", "bogus"), k2x2, {1, 1, 2, 2});
          }) == ErrorCode::InvalidInput);
    // Empty scales with sizes is the opset 11 way of giving sizes.
    CHECK(run_op("Resize", 11, Attrs(), {k2x2, f32({}), f32({}), i64({1, 1, 3, 3})}).shape() == Shape{1, 1, 3, 3});
  }

}  // TEST_SUITE
