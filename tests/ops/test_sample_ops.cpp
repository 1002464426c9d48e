// GridSample and RoiAlign (ops/sample_ops.cpp). GridSample's expected values are
// torch.nn.functional.grid_sample's; RoiAlign's are worked by hand on a linear ramp,
// which bilinear sampling reproduces exactly inside the image.
#include <doctest/doctest.h>

#include <cmath>

#include "tensor_op_runner.hpp"

using namespace nnjit;
using namespace nnjit::testing::tensor_ops;

namespace {

bool close(const std::vector<float>& a, const std::vector<float>& b, float tol = 1e-4f) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= tol * std::max(1.f, std::fabs(b[i])))) return false;
  return true;
}

// x[i] = i^1.5 on a 3x4 plane, and a grid with points inside, on the corners, and outside
// (for the padding modes).
const Tensor kX =
    f32({0, 1, 2.828427f, 5.196153f, 8, 11.180340f, 14.696939f, 18.520258f, 22.627417f, 27, 31.622776f, 36.482872f},
        {1, 1, 3, 4});
const Tensor kGrid =
    f32({-1, -1, -0.9f, 0.3f, 0.25f, -0.6f, 1, 1, 1.3f, 0.5f, -1.7f, -1.2f, 0.5f, 2.6f, 0.1f, 0.1f}, {1, 2, 4, 2});

Attrs grid_attrs(const char* mode, const char* padding, int align) {
  return Attrs().s("mode", mode).s("padding_mode", padding).i("align_corners", align);
}

Tensor roi_align(const Attrs& a, const Tensor& x, std::vector<float> rois, std::vector<int64_t> batch, int opset = 16) {
  const int64_t r = static_cast<int64_t>(batch.size());
  return run_op("RoiAlign", opset, a, {x, f32(rois, {r, 4}), i64(batch, {r})});
}

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("GridSample: every mode, padding_mode and align_corners matches PyTorch") {
    struct Case {
      const char* mode;
      const char* padding;
      int align;
      std::vector<float> want;
    };
    const Case cases[] = {
        {"bilinear", "zeros", 0, {0, 10.20764f, 4.01528f, 9.12072f, 0, 0, 0, 16.13106f}},
        {"bilinear", "zeros", 1, {0, 12.91893f, 7.26287f, 36.48287f, 15.12587f, 0, 0, 15.12000f}},
        {"bilinear", "border", 0, {0, 14.58234f, 4.01528f, 36.48287f, 31.99222f, 0, 34.05283f, 16.13106f}},
        {"bilinear", "border", 1, {0, 12.91893f, 7.26287f, 36.48287f, 27.50156f, 0, 32.83780f, 15.12000f}},
        {"bilinear", "reflection", 0, {0, 14.58234f, 4.01528f, 36.48287f, 31.53213f, 0.90000f, 5.27193f, 16.13106f}},
        {"bilinear", "reflection", 1, {0, 12.91893f, 7.26287f, 36.48287f, 25.54780f, 3.14437f, 8.31332f, 15.12000f}},
        {"nearest", "zeros", 0, {0, 8, 2.82843f, 0, 0, 0, 0, 14.69694f}},
        {"nearest", "zeros", 1, {0, 8, 2.82843f, 36.48287f, 36.48287f, 0, 0, 14.69694f}},
        {"nearest", "border", 0, {0, 8, 2.82843f, 36.48287f, 36.48287f, 0, 31.62278f, 14.69694f}},
        {"nearest", "border", 1, {0, 8, 2.82843f, 36.48287f, 36.48287f, 0, 31.62278f, 14.69694f}},
        {"nearest", "reflection", 0, {0, 8, 2.82843f, 36.48287f, 36.48287f, 1, 2.82843f, 14.69694f}},
        {"nearest", "reflection", 1, {0, 8, 2.82843f, 36.48287f, 36.48287f, 1, 2.82843f, 14.69694f}},
        {"bicubic", "zeros", 0, {-0.40271f, 11.92647f, 3.85922f, 10.19964f, -2.23131f, 0.00130f, 0, 16.91107f}},
        {"bicubic", "zeros", 1, {0, 15.61772f, 6.04407f, 36.48287f, 18.39681f, 0.02599f, -2.48357f, 15.53232f}},
        {"bicubic",
         "border",
         0,
         {-0.82459f, 14.87508f, 3.68739f, 38.63161f, 32.88165f, -0.19200f, 34.48619f, 16.48071f}},
        {"bicubic", "border", 1, {0, 13.38477f, 5.77648f, 36.48287f, 29.20790f, -0.76800f, 33.21144f, 15.33114f}},
        {"bicubic",
         "reflection",
         0,
         {-1.61085f, 14.68929f, 3.68739f, 40.79858f, 32.52809f, -0.38096f, 5.11112f, 16.48071f}},
        {"bicubic", "reflection", 1, {0, 13.77270f, 4.52260f, 36.48287f, 29.23304f, 1.54531f, 5.87405f, 15.44260f}},
    };
    for (const Case& c : cases) {
      CAPTURE(c.mode);
      CAPTURE(c.padding);
      CAPTURE(c.align);
      const Tensor y = run_op("GridSample", 16, grid_attrs(c.mode, c.padding, c.align), {kX, kGrid});
      CHECK(y.shape() == Shape{1, 1, 2, 4});
      CHECK(close(fvals(y), c.want, 2e-4f));
    }
  }

  TEST_CASE("GridSample: defaults, batches and channels, non-finite grid points") {
    // Default: bilinear, zeros, align_corners 0. Two batch entries, two channels each.
    Tensor x(DType::Float32, {2, 2, 3, 4});
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = kX.data<float>()[i % 12] + static_cast<float>(i / 12);
    Tensor grid(DType::Float32, {2, 2, 4, 2});
    for (int64_t i = 0; i < grid.numel(); ++i) grid.data<float>()[i] = kGrid.data<float>()[i % 16];
    grid.data<float>()[16] = NAN;  // batch 1, first point: outside, so 0
    const Tensor y = run_op("GridSample", 16, Attrs(), {x, grid});
    REQUIRE(y.shape() == Shape{2, 2, 2, 4});
    const std::vector<float> v = fvals(y);
    // Batch 0 channel 1 is channel 0 plus 1 wherever all bilinear weight lies inside.
    CHECK(v[1] == doctest::Approx(10.20764f).epsilon(1e-5));
    CHECK(v[8 + 2] == doctest::Approx(4.01528f + 1).epsilon(1e-5));
    CHECK(v[8 + 7] == doctest::Approx(16.13106f + 1).epsilon(1e-5));
    CHECK(std::isnan(v[16]));  // the NaN point: NaN, as in PyTorch (and no out-of-bounds read)
    CHECK(v[16 + 7] == doctest::Approx(16.13106f + 2).epsilon(1e-5));  // batch 1 reads its own image
  }

  TEST_CASE("GridSample: nearest reads nothing at a non-finite grid point") {
    const Tensor g = f32({NAN, 0, INFINITY, 0, -INFINITY, 0, 1e30f, 0}, {1, 1, 4, 2});
    CHECK(fvals(run_op("GridSample", 16, grid_attrs("nearest", "zeros", 0), {kX, g})) ==
          std::vector<float>{0, 0, 0, 0});
    // Border padding clamps an infinite or huge point to the edge.
    const std::vector<float> b = fvals(run_op("GridSample", 16, grid_attrs("nearest", "border", 0), {kX, g}));
    CHECK(b[1] == 18.520258f);  // y = 0 is the middle row; x = +inf its last column
    CHECK(b[2] == 8);
    CHECK(b[3] == 18.520258f);
    const Tensor r = run_op("GridSample", 16, grid_attrs("bicubic", "reflection", 1), {kX, g});
    CHECK(r.shape() == Shape{1, 1, 1, 4});
  }

  TEST_CASE("GridSample: an empty image samples zeros in every padding mode") {
    for (const char* pad : {"zeros", "border", "reflection"}) {
      CAPTURE(pad);
      const Tensor y =
          run_op("GridSample", 16, grid_attrs("bicubic", pad, 1), {Tensor(DType::Float32, {1, 1, 0, 4}), kGrid});
      CHECK(fvals(y) == std::vector<float>(8, 0.f));
    }
  }

  TEST_CASE("GridSample refuses bad shapes, attributes and 5-D inputs") {
    const auto code = [](const Attrs& a, const Tensor& x, const Tensor& grid) {
      return error_of([&] { run_op("GridSample", 16, a, {x, grid}); });
    };
    CHECK(code(Attrs(), Tensor(DType::Float32, {1, 1, 2, 3, 4}), Tensor(DType::Float32, {1, 2, 2, 2, 3})) ==
          ErrorCode::Unsupported);
    CHECK(code(Attrs(), Tensor(DType::Float32, {3, 4}), kGrid) == ErrorCode::InvalidInput);
    CHECK(code(Attrs(), kX, Tensor(DType::Float32, {2, 2, 4, 2})) == ErrorCode::InvalidInput);  // N differs
    CHECK(code(Attrs(), kX, Tensor(DType::Float32, {1, 2, 4, 3})) == ErrorCode::InvalidInput);  // not (x, y)
    CHECK(code(Attrs().s("mode", "linear"), kX, kGrid) == ErrorCode::InvalidInput);
    CHECK(code(Attrs().s("padding_mode", "edge"), kX, kGrid) == ErrorCode::InvalidInput);
    CHECK(code(Attrs().i("align_corners", 2), kX, kGrid) == ErrorCode::InvalidInput);
    CHECK(code(Attrs(), i64({1}, {1, 1, 1, 1}), kGrid) == ErrorCode::Unsupported);
  }

  // X[y][x] = 4y + x on a 4x4 plane: bilinear samples inside give 4y + x exactly.
  TEST_CASE("RoiAlign avg: half_pixel and output_half_pixel on a ramp") {
    const Tensor x = iota_f32({1, 1, 4, 4});
    // output_half_pixel: roi [0, 3] samples its one bin's centre (1.5, 1.5).
    const Attrs legacy = Attrs().i("sampling_ratio", 1).s("coordinate_transformation_mode", "output_half_pixel");
    CHECK(fvals(roi_align(legacy, x, {0, 0, 3, 3}, {0})) == std::vector<float>{7.5f});
    // Opset 10 has no coordinate_transformation_mode: output_half_pixel.
    CHECK(fvals(roi_align(Attrs().i("sampling_ratio", 1), x, {0, 0, 3, 3}, {0}, 10)) == std::vector<float>{7.5f});
    // half_pixel shifts the roi by -0.5: the centre is (1, 1).
    CHECK(fvals(roi_align(Attrs().i("sampling_ratio", 1), x, {0, 0, 3, 3}, {0})) == std::vector<float>{5});
    // 2x2 bins of 1.5 pixels, 2x2 samples each: rows at -0.125 (clamped to 0) and 0.625,
    // then 1.375 and 2.125; the mean row of the bins is 0.3125 and 1.75 (columns alike).
    const Tensor y =
        roi_align(Attrs().i("output_height", 2).i("output_width", 2).i("sampling_ratio", 2), x, {0, 0, 3, 3}, {0});
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(close(fvals(y), {1.5625f, 3, 7.3125f, 8.75f}));
    // spatial_scale maps the roi onto the map: [0, 6] at scale 0.5 is [0, 3].
    CHECK(fvals(roi_align(Attrs(legacy).f("spatial_scale", 0.5f), x, {0, 0, 6, 6}, {0})) == std::vector<float>{7.5f});
  }

  TEST_CASE("RoiAlign: adaptive sampling, max mode, batch indices, rois outside the image") {
    Tensor x(DType::Float32, {2, 2, 4, 4});  // batch b, channel c: 4y + x + 100b + 10c
    for (int64_t i = 0; i < x.numel(); ++i)
      x.data<float>()[i] = static_cast<float>(i % 16 + 100 * (i / 32) + 10 * (i / 16 % 2));
    const Attrs legacy = Attrs().s("coordinate_transformation_mode", "output_half_pixel");
    // sampling_ratio 0: ceil(3 / 1) = 3 samples per axis at 0.5, 1.5, 2.5: mean 1.5.
    const Tensor y = roi_align(legacy, x, {0, 0, 3, 3, 0, 0, 3, 3}, {1, 0});
    CHECK(y.shape() == Shape{2, 2, 1, 1});
    CHECK(close(fvals(y), {107.5f, 117.5f, 7.5f, 17.5f}));
    // ONNX Runtime's max: the largest of the weighted taps; at (1.5, 1.5) each of 5, 6, 9,
    // 10 weighs 0.25.
    const Tensor m = roi_align(Attrs(legacy).s("mode", "max").i("sampling_ratio", 1), x, {0, 0, 3, 3}, {0});
    CHECK(close(fvals(m), {2.5f, 5}));
    // A roi far outside the image samples nothing: 0.
    CHECK(fvals(roi_align(Attrs(legacy).i("sampling_ratio", 1), x, {20, 20, 23, 23}, {0})) == std::vector<float>{0, 0});
  }

  TEST_CASE("RoiAlign refuses bad shapes, attributes and batch indices") {
    const Tensor x = iota_f32({1, 1, 4, 4});
    const auto code = [&](const Attrs& a, std::vector<float> rois, std::vector<int64_t> batch) {
      return error_of([&] { roi_align(a, x, rois, batch); });
    };
    CHECK(code(Attrs(), {0, 0, 1, 1}, {1}) == ErrorCode::InvalidInput);  // batch of 1
    CHECK(code(Attrs(), {0, 0, 1, 1}, {-1}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs(), {0, 0, NAN, 1}, {0}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs(), {0, 0, 1e30f, 1}, {0}) == ErrorCode::InvalidInput);  // too many adaptive samples
    CHECK(code(Attrs().s("mode", "sum"), {0, 0, 1, 1}, {0}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs().i("output_height", 0), {0, 0, 1, 1}, {0}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs().i("sampling_ratio", -1), {0, 0, 1, 1}, {0}) == ErrorCode::InvalidInput);
    CHECK(code(Attrs().s("coordinate_transformation_mode", "align_corners"), {0, 0, 1, 1}, {0}) ==
          ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("RoiAlign", 16, Attrs(), {x, f32({0, 0, 1}, {1, 3}), i64({0}, {1})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("RoiAlign", 16, Attrs(), {x, f32({0, 0, 1, 1}, {1, 4}), i64({0, 0}, {2})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("RoiAlign", 16, Attrs(), {x, f32({0, 0, 1, 1}, {1, 4}), i32({0}, {1})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("RoiAlign", 16, Attrs(), {iota_f32({4, 4}), f32({0, 0, 1, 1}, {1, 4}), i64({0}, {1})});
          }) == ErrorCode::InvalidInput);
  }
}
