// Conv: the reference against torch values and against a naive per-output loop over a
// sweep of awkward geometries; the shape rule's errors. ConvTranspose: the same against
// hand-computed values and a naive gather, and its errors, hostile sizes included.
#include <doctest/doctest.h>

#include "ops/conv.hpp"
#include "tests/ops/nn_test_helpers.hpp"
#include "tests/ops/op_runner.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using namespace nnjit::testing::nn;
using nnjit::testing::max_abs_diff;
using nnjit::testing::random_tensor;

namespace {

// The obvious convolution: one output at a time, every tap checked against the input
// bounds. Spatial ranks 1..3 are lifted to 3 by prepending unit axes. pads = [begin..., end...].
Tensor naive_conv(const Tensor& x, const Tensor& w, const Tensor* bias, int64_t group, std::vector<int64_t> stride,
                  std::vector<int64_t> dil, const std::vector<int64_t>& pads) {
  const std::size_t r = static_cast<std::size_t>(x.rank() - 2);
  auto lift = [&](std::vector<int64_t> v, int64_t fill) {
    v.insert(v.begin(), 3 - r, fill);
    return v;
  };
  const auto in = lift({x.shape().begin() + 2, x.shape().end()}, 1);
  const auto k = lift({w.shape().begin() + 2, w.shape().end()}, 1);
  const auto s = lift(stride, 1), d = lift(dil, 1);
  const auto pb = lift({pads.begin(), pads.begin() + static_cast<long>(r)}, 0);
  const auto pe = lift({pads.begin() + static_cast<long>(r), pads.end()}, 0);
  std::vector<int64_t> out(3);
  for (int a = 0; a < 3; ++a) out[a] = (in[a] + pb[a] + pe[a] - (k[a] - 1) * d[a] - 1) / s[a] + 1;
  const int64_t N = x.dim(0), C = x.dim(1), M = w.dim(0), cg = C / group, mg = M / group;
  Shape yshape{N, M};
  yshape.insert(yshape.end(), out.end() - static_cast<long>(r), out.end());
  Tensor y(DType::Float32, yshape);
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  float* yp = y.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t od = 0; od < out[0]; ++od)
        for (int64_t oh = 0; oh < out[1]; ++oh)
          for (int64_t ow = 0; ow < out[2]; ++ow) {
            double acc = bias ? bias->data<float>()[m] : 0.0;
            const int64_t g = m / mg;
            for (int64_t c = 0; c < cg; ++c)
              for (int64_t kd = 0; kd < k[0]; ++kd)
                for (int64_t kh = 0; kh < k[1]; ++kh)
                  for (int64_t kw = 0; kw < k[2]; ++kw) {
                    const int64_t id = od * s[0] - pb[0] + kd * d[0];
                    const int64_t ih = oh * s[1] - pb[1] + kh * d[1];
                    const int64_t iw = ow * s[2] - pb[2] + kw * d[2];
                    if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1] || iw < 0 || iw >= in[2]) continue;
                    const int64_t xi = (((n * C + g * cg + c) * in[0] + id) * in[1] + ih) * in[2] + iw;
                    const int64_t wi = (((m * cg + c) * k[0] + kd) * k[1] + kh) * k[2] + kw;
                    acc += static_cast<double>(xp[xi]) * wp[wi];
                  }
            yp[(((n * M + m) * out[0] + od) * out[1] + oh) * out[2] + ow] = static_cast<float>(acc);
          }
  return y;
}

struct ConvCase {
  const char* name;
  Shape x, w;
  int64_t group;
  std::vector<int64_t> strides, dilations;
  std::vector<int64_t> pads;  // explicit pads, or what auto_pad must resolve to
  const char* auto_pad;       // nullptr = explicit pads
  bool bias;
};

// The obvious transposed convolution, gathered one output at a time over any number of
// spatial axes: output o along an axis takes input i through tap k exactly when
// o == i * stride + k * dilation - pad_begin. W is [C, M / group, kernel...].
Tensor naive_conv_transpose(const Tensor& x, const Tensor& w, const Tensor* bias, int64_t group,
                            const std::vector<int64_t>& stride, const std::vector<int64_t>& dil,
                            const std::vector<int64_t>& pad_begin, const std::vector<int64_t>& out) {
  const std::size_t r = static_cast<std::size_t>(x.rank() - 2);
  const Shape in(x.shape().begin() + 2, x.shape().end()), k(w.shape().begin() + 2, w.shape().end());
  const int64_t N = x.dim(0), C = x.dim(1), cg = C / group, mg = w.dim(1), M = mg * group;
  Shape yshape{N, M};
  yshape.insert(yshape.end(), out.begin(), out.end());
  Tensor y(DType::Float32, yshape);
  const int64_t out_plane = shape_numel(out), in_plane = shape_numel(in), k_plane = shape_numel(k);
  auto unravel = [r](int64_t flat, const Shape& dims, std::vector<int64_t>& idx) {
    for (std::size_t a = r; a-- > 0;) {
      idx[a] = flat % dims[a];
      flat /= dims[a];
    }
  };
  std::vector<int64_t> oi(r), ki(r);
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) {
      const int64_t g = m / mg;
      for (int64_t o = 0; o < out_plane; ++o) {
        unravel(o, out, oi);
        double acc = bias ? bias->data<float>()[m] : 0.0;
        for (int64_t c = g * cg; c < (g + 1) * cg; ++c)
          for (int64_t t = 0; t < k_plane; ++t) {
            unravel(t, k, ki);
            int64_t xi = 0;
            bool hit = true;
            for (std::size_t a = 0; a < r && hit; ++a) {
              const int64_t num = oi[a] + pad_begin[a] - ki[a] * dil[a];
              hit = num >= 0 && num % stride[a] == 0 && num / stride[a] < in[a];
              xi = xi * in[a] + num / stride[a];
            }
            if (hit) acc += static_cast<double>(xp[(n * C + c) * in_plane + xi]) * wp[(c * mg + m % mg) * k_plane + t];
          }
        y.data<float>()[(n * M + m) * out_plane + o] = static_cast<float>(acc);
      }
    }
  return y;
}

struct ConvTransposeCase {
  const char* name;
  Shape x, w;  // w is [C, M / group, kernel...]
  int64_t group;
  std::vector<int64_t> strides, dilations, output_padding;  // output_padding: empty = absent
  std::vector<int64_t> pads;                                // attribute; empty = absent
  std::vector<int64_t> output_shape;                        // attribute; empty = absent
  const char* auto_pad;                                     // nullptr = absent (NOTSET)
  // Worked out by hand from the spec: the begin pads the attributes resolve to (negative
  // when the output extends past the full result) and the output's spatial sizes.
  std::vector<int64_t> want_pad_begin, want_out;
  bool bias;
};

// Runs infer only, on shapes alone: for nodes whose tensors would be too large to build.
std::vector<ops::OutputInfo> infer_conv_transpose(const ops::Attributes& a, const Shape& x, const Shape& w) {
  ops::InferContext ctx("n", "ConvTranspose", 11, a, {{DType::Float32, x}, {DType::Float32, w}}, 1);
  ops::find_schema("ConvTranspose")->infer(ctx);
  return ctx.outputs();
}

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("Conv matches torch: grouped 2-D, asymmetric pads, stride and dilation") {
    const std::vector<float> want = {
        0.601562f, 1.03125f,   -0.15625f,  1.53125f,   -0.195312f, -0.28125f, 0.109375f,  0.898438f,  -0.109375f,
        -0.21875f, 2.36719f,   -0.203125f, -0.835938f, 0.84375f,   0.90625f,  0.789062f,  -0.046875f, 1.36719f,
        0.421875f, -0.664062f, -0.3125f,   -0.140625f, -0.328125f, 0.53125f,  -0.445312f, 0.40625f,   -0.539062f,
        0.851562f, -1.17188f,  -0.9375f,   -0.789062f, -0.203125f, 0.203125f, -1.1875f,   1.375f,     -0.828125f,
        -0.0625f,  2.54688f,   0.484375f,  1.11719f,   1.57031f,   0.21875f,  1.45312f,   -0.625f,    0.351562f,
        0.96875f,  0.6875f,    2.42969f,   0.882812f,  2.10938f,   0.640625f, 0.96875f,   1.65625f,   0.148438f,
        1.69531f,  -1.46094f,  -0.125f,    0.851562f,  -1.40625f,  0.734375f, -1.70312f,  2.39062f,   -1.24219f,
        0.875f,    0.65625f,   -0.726562f, -0.695312f, -0.984375f, 0.523438f, -0.664062f, 0.125f,     0.734375f};
    const Tensor bias = Tensor::from(std::vector<float>{0.5f, -0.25f, 1.f, 0.f}, {4});
    auto y = run_op("Conv",
                    attrs({{"group", integer(2)},
                           {"strides", ints({2, 1})},
                           {"dilations", ints({2, 1})},
                           {"pads", ints({1, 0, 2, 1})},
                           {"kernel_shape", ints({3, 2})}}),
                    {xs({1, 4, 7, 6}), ws({4, 2, 3, 2}), bias}, 11);
    check_close(y[0], {1, 4, 3, 6}, want);
  }

  TEST_CASE("Conv matches torch: 1-D, batch 2, stride 2, dilation 4, no bias") {
    const std::vector<float> want = {0.382812f,  -0.414062f, 0.75f,       0.296875f,  0.976562f, -0.171875f,
                                     -0.257812f, 0.0078125f, 0.40625f,    -0.210938f, 0.265625f, -0.78125f,
                                     -0.601562f, 0.40625f,   -0.0390625f, 0.632812f};
    auto y = run_op("Conv", attrs({{"strides", ints({2})}, {"dilations", ints({4})}, {"pads", ints({4, 3})}}),
                    {xs({2, 3, 9}), ws({2, 3, 3})});
    check_close(y[0], {2, 2, 4}, want);
  }

  TEST_CASE("Conv matches torch: 3-D depthwise, SAME_LOWER, stride 2") {
    const std::vector<float> want = {0.578125f,  0.289062f, 0.179688f,  1.14062f,   0.742188f, -0.0546875f,
                                     0.992188f,  -1.38281f, 0.664062f,  -0.695312f, -2.04688f, 1.03906f,
                                     -0.414062f, 0.257812f, 1.45312f,   -0.257812f, 0.867188f, -0.265625f,
                                     0.25f,      0.148438f, -0.421875f, 2.21875f,   -1.07031f, -0.609375f};
    auto y =
        run_op("Conv", attrs({{"group", integer(2)}, {"strides", ints({2, 2, 2})}, {"auto_pad", text("SAME_LOWER")}}),
               {xs({1, 2, 3, 4, 5}), ws({2, 1, 2, 3, 3})});
    check_close(y[0], {1, 2, 2, 2, 3}, want);
  }

  TEST_CASE("Conv matches a naive loop over awkward geometries") {
    // clang-format off
    const ConvCase cases[] = {
        {"1x1", {2, 8, 5, 7}, {6, 8, 1, 1}, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}, nullptr, true},
        {"3x3 pad 1", {1, 3, 8, 8}, {4, 3, 3, 3}, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, nullptr, true},
        {"asymmetric pads", {1, 2, 6, 5}, {3, 2, 3, 3}, 1, {1, 1}, {1, 1}, {0, 2, 1, 0}, nullptr, false},
        {"stride 2, odd sizes", {1, 3, 9, 11}, {2, 3, 3, 3}, 1, {2, 2}, {1, 1}, {1, 1, 1, 1}, nullptr, true},
        {"stride 2, even kernel", {1, 2, 7, 7}, {2, 2, 2, 2}, 1, {2, 2}, {1, 1}, {0, 0, 0, 0}, nullptr, false},
        {"stride 3x2, 5x3 kernel", {1, 2, 13, 10}, {2, 2, 5, 3}, 1, {3, 2}, {1, 1}, {2, 1, 1, 2}, nullptr, true},
        {"dilation 2", {1, 2, 9, 8}, {3, 2, 3, 3}, 1, {1, 1}, {2, 2}, {2, 2, 2, 2}, nullptr, true},
        {"dilation 4", {1, 1, 13, 12}, {2, 1, 3, 3}, 1, {1, 1}, {4, 4}, {1, 0, 0, 3}, nullptr, false},
        {"dilation 4 > input", {1, 1, 5, 5}, {1, 1, 3, 3}, 1, {1, 1}, {4, 4}, {4, 4, 4, 4}, nullptr, false},
        {"depthwise stride 2", {2, 6, 7, 7}, {6, 1, 3, 3}, 6, {2, 2}, {1, 1}, {1, 1, 1, 1}, nullptr, true},
        {"depthwise multiplier 2", {1, 3, 6, 5}, {6, 1, 3, 3}, 3, {1, 1}, {1, 1}, {1, 1, 1, 1}, nullptr, true},
        {"grouped", {1, 8, 5, 6}, {12, 2, 3, 3}, 4, {1, 1}, {1, 1}, {1, 1, 1, 1}, nullptr, true},
        {"SAME_UPPER even kernel", {1, 2, 5, 6}, {2, 2, 2, 4}, 1, {1, 1}, {1, 1}, {0, 1, 1, 2}, "SAME_UPPER", true},
        {"SAME_LOWER even kernel", {1, 2, 5, 6}, {2, 2, 2, 4}, 1, {1, 1}, {1, 1}, {1, 2, 0, 1}, "SAME_LOWER", true},
        {"SAME_UPPER stride 2", {1, 1, 7, 8}, {1, 1, 3, 3}, 1, {2, 2}, {1, 1}, {1, 0, 1, 1}, "SAME_UPPER", false},
        {"SAME_LOWER stride 2", {1, 1, 7, 8}, {1, 1, 3, 3}, 1, {2, 2}, {1, 1}, {1, 1, 1, 0}, "SAME_LOWER", false},
        {"SAME_UPPER dilation 2", {1, 1, 6, 6}, {1, 1, 3, 3}, 1, {1, 1}, {2, 2}, {2, 2, 2, 2}, "SAME_UPPER", false},
        {"SAME_UPPER stride > kernel", {1, 1, 5, 7}, {1, 1, 1, 1}, 1, {3, 3}, {1, 1}, {0, 0, 0, 0}, "SAME_UPPER",
         false},
        {"VALID", {1, 2, 6, 7}, {2, 2, 3, 2}, 1, {2, 3}, {1, 1}, {0, 0, 0, 0}, "VALID", true},
        {"kernel larger than input", {1, 1, 2, 2}, {1, 1, 3, 3}, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, nullptr, false},
        {"1-D", {2, 3, 10}, {4, 3, 3}, 1, {2}, {2}, {1, 2}, nullptr, true},
        {"1-D SAME_UPPER", {1, 2, 9}, {2, 2, 4}, 1, {2}, {1}, {1, 2}, "SAME_UPPER", true},
        {"3-D", {1, 2, 4, 5, 6}, {3, 2, 2, 3, 3}, 1, {1, 2, 1}, {1, 1, 1}, {1, 0, 1, 0, 1, 1}, nullptr, true},
        {"3-D grouped, dilation 2", {1, 4, 5, 6, 7}, {4, 2, 2, 2, 3}, 2, {1, 1, 2}, {2, 2, 2}, {1, 1, 1, 1, 1, 1},
         nullptr, true},
        {"empty batch", {0, 3, 5, 5}, {2, 3, 3, 3}, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}, nullptr, true},
    };
    // clang-format on
    uint32_t seed = 1;
    for (const ConvCase& c : cases) {
      CAPTURE(c.name);
      const Tensor x = random_tensor(c.x, seed++), w = random_tensor(c.w, seed++);
      const Tensor b = random_tensor({c.w[0]}, seed++);
      ops::Attributes a =
          attrs({{"group", integer(c.group)}, {"strides", ints(c.strides)}, {"dilations", ints(c.dilations)}});
      if (c.auto_pad)
        a.set("auto_pad", text(c.auto_pad));
      else
        a.set("pads", ints(c.pads));
      auto y = run_op("Conv", a, {x, w, c.bias ? b : Tensor{}});
      const Tensor want = naive_conv(x, w, c.bias ? &b : nullptr, c.group, c.strides, c.dilations, c.pads);
      REQUIRE(y[0].shape() == want.shape());
      CHECK(max_abs_diff(y[0], want) < 1e-4);
    }
  }

  TEST_CASE("resolve_conv exposes the resolved geometry") {
    const ops::Attributes a =
        attrs({{"auto_pad", text("SAME_LOWER")}, {"strides", ints({2, 2})}, {"group", integer(2)}});
    ops::InferContext ctx("c", "Conv", 13, a,
                          {{DType::Float32, {3, 4, 7, 8}}, {DType::Float32, {6, 2, 3, 3}}, {DType::Float32, {6}}}, 1);
    const ops::ConvParams p = ops::resolve_conv(ctx);
    CHECK(p.batch == 3);
    CHECK(p.in_channels == 4);
    CHECK(p.out_channels == 6);
    CHECK(p.groups == 2);
    CHECK(p.in_channels_per_group() == 2);
    CHECK(p.out_channels_per_group() == 3);
    CHECK(p.has_bias);
    CHECK_FALSE(p.depthwise());
    CHECK(p.kernel == std::vector<int64_t>{3, 3});
    CHECK(p.out_size == std::vector<int64_t>{4, 4});
    CHECK(p.pad_begin == std::vector<int64_t>{1, 1});  // totals 2 and 1; LOWER puts the odd one first
    CHECK(p.pad_end == std::vector<int64_t>{1, 0});
    CHECK(p.dst_shape() == Shape{3, 6, 4, 4});
    CHECK(p.weights_shape() == Shape{6, 2, 3, 3});
    CHECK(p.macs() == 3 * 6 * 16 * 2 * 9);
  }

  TEST_CASE("Conv refuses malformed nodes and unsupported types") {
    const Tensor x = random_tensor({1, 4, 5, 5}, 1), w = random_tensor({2, 4, 3, 3}, 2);
    CHECK(error_code_of([&] { run_op("Conv", attrs({{"group", integer(3)}}), {x, w}); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] { run_op("Conv", attrs({{"group", integer(2)}}), {x, w}); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("Conv", attrs({{"kernel_shape", ints({3, 2})}}), {x, w});
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] { run_op("Conv", attrs({{"pads", ints({1, 1})}}), {x, w}); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("Conv", attrs({{"pads", ints({-1, 0, 0, 0})}}), {x, w});
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("Conv", attrs({{"strides", ints({0, 1})}}), {x, w});
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("Conv", attrs({{"auto_pad", text("SAME")}}), {x, w});
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] { run_op("Conv", {}, {x, random_tensor({2, 4, 7, 7}, 3)}); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] { run_op("Conv", {}, {x, w, random_tensor({3}, 4)}); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("Conv", {}, {random_tensor({4, 5}, 5), random_tensor({2, 4}, 6)});
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("Conv", {}, {Tensor(DType::Float64, {1, 4, 5, 5}), Tensor(DType::Float64, {2, 4, 3, 3})});
          }) == ErrorCode::Unsupported);
  }

  TEST_CASE("ConvTranspose matches hand-computed values: 3x3 ones kernel, two output channels") {
    // The example of the ONNX operator documentation: x = 0..8 as 3x3, W all ones.
    Tensor x(DType::Float32, {1, 1, 3, 3});
    for (int i = 0; i < 9; ++i) x.data<float>()[i] = static_cast<float>(i);
    Tensor w(DType::Float32, {1, 2, 3, 3});
    std::fill(w.data<float>(), w.data<float>() + w.numel(), 1.f);
    // clang-format off
    const std::vector<float> plane = {0, 1,  3,  3,  2,
                                      3, 8,  15, 12, 7,
                                      9, 21, 36, 27, 15,
                                      9, 20, 33, 24, 13,
                                      6, 13, 21, 15, 8};
    // clang-format on
    std::vector<float> want = plane;
    want.insert(want.end(), plane.begin(), plane.end());
    auto y = run_op("ConvTranspose", {}, {x, w}, 11);
    check_close(y[0], {1, 2, 5, 5}, want);
  }

  TEST_CASE("ConvTranspose matches a naive gather over awkward geometries") {
    // clang-format off
    const ConvTransposeCase cases[] = {
        {"1-D stride 2, pads", {2, 3, 5}, {3, 2, 3}, 1, {2}, {1}, {}, {1, 0}, {}, nullptr, {1}, {10}, true},
        {"2-D strides, pads, dilations, group 2, bias", {1, 4, 5, 4}, {4, 3, 3, 2}, 2, {2, 3}, {2, 1}, {},
         {1, 0, 2, 1}, {}, nullptr, {1, 0}, {10, 10}, true},
        {"depthwise", {2, 3, 4, 4}, {3, 1, 3, 3}, 3, {2, 2}, {1, 1}, {}, {1, 1, 1, 1}, {}, nullptr, {1, 1}, {7, 7},
         true},
        {"output_padding < stride", {1, 2, 3, 4}, {2, 2, 3, 3}, 1, {2, 3}, {1, 1}, {1, 2}, {1, 1, 0, 1}, {}, nullptr,
         {1, 1}, {7, 12}, true},
        {"output_padding < dilation, stride 1", {1, 1, 4}, {1, 1, 2}, 1, {1}, {3}, {2}, {}, {}, nullptr, {0}, {9},
         false},
        {"stride > kernel leaves gaps", {1, 2, 3, 3}, {2, 1, 1, 1}, 1, {3, 2}, {1, 1}, {}, {}, {}, nullptr, {0, 0},
         {7, 5}, true},
        {"pads crop past the kernel", {1, 1, 6, 5}, {1, 2, 2, 3}, 1, {1, 1}, {2, 1}, {}, {3, 2, 1, 1}, {}, nullptr,
         {3, 2}, {4, 4}, false},
        {"output_shape, NOTSET, odd and negative totals", {1, 2, 3, 3}, {2, 1, 3, 3}, 1, {2, 2}, {1, 1}, {}, {},
         {6, 8}, nullptr, {1, 0}, {6, 8}, true},
        {"output_shape, NOTSET, explicit pads ignored", {1, 2, 3, 3}, {2, 1, 3, 3}, 1, {2, 2}, {1, 1}, {},
         {2, 2, 2, 2}, {6, 8}, nullptr, {1, 0}, {6, 8}, true},
        {"output_shape, SAME_UPPER", {1, 2, 3, 3}, {2, 1, 3, 3}, 1, {2, 2}, {1, 1}, {}, {}, {4, 6}, "SAME_UPPER",
         {1, 0}, {4, 6}, true},
        {"output_shape, SAME_LOWER", {1, 2, 3, 3}, {2, 1, 3, 3}, 1, {2, 2}, {1, 1}, {}, {}, {4, 6}, "SAME_LOWER",
         {2, 1}, {4, 6}, true},
        {"output_shape, VALID", {1, 2, 3, 3}, {2, 1, 3, 3}, 1, {2, 2}, {1, 1}, {}, {}, {4, 9}, "VALID", {2, -1},
         {4, 9}, true},
        {"output_shape with output_padding", {1, 1, 3, 3}, {1, 1, 3, 3}, 1, {3, 3}, {1, 1}, {1, 2}, {}, {10, 8},
         nullptr, {0, 2}, {10, 8}, false},
        {"output_shape as [N, M, spatial...]", {1, 2, 3, 3}, {2, 1, 3, 3}, 1, {2, 2}, {1, 1}, {}, {}, {1, 1, 6, 8},
         nullptr, {1, 0}, {6, 8}, true},
        {"SAME_UPPER", {1, 2, 3, 5}, {2, 2, 3, 3}, 1, {2, 3}, {1, 1}, {}, {}, {}, "SAME_UPPER", {0, 0}, {6, 15},
         true},
        {"SAME_LOWER", {1, 2, 3, 5}, {2, 2, 3, 3}, 1, {2, 3}, {1, 1}, {}, {}, {}, "SAME_LOWER", {1, 0}, {6, 15},
         true},
        {"SAME_UPPER stride > kernel", {1, 1, 4}, {1, 1, 1}, 1, {3}, {1}, {}, {}, {}, "SAME_UPPER", {-1}, {12},
         true},
        {"VALID", {1, 2, 3, 3}, {2, 3, 2, 2}, 1, {2, 1}, {1, 1}, {}, {}, {}, "VALID", {0, 0}, {6, 4}, true},
        {"3-D", {1, 2, 3, 4, 3}, {2, 2, 2, 3, 2}, 1, {1, 2, 2}, {1, 1, 2}, {0, 1, 0}, {0, 1, 1, 1, 0, 0}, {},
         nullptr, {0, 1, 1}, {3, 9, 6}, true},
        {"3-D depthwise, batch 2", {2, 4, 2, 3, 3}, {4, 1, 2, 2, 2}, 4, {2, 2, 2}, {1, 1, 1}, {}, {}, {}, nullptr,
         {0, 0, 0}, {4, 6, 6}, true},
        {"3-D output_shape SAME_LOWER", {1, 2, 2, 2, 3}, {2, 2, 3, 2, 2}, 2, {2, 2, 1}, {1, 2, 1}, {}, {},
         {7, 4, 4}, "SAME_LOWER", {-1, 1, 0}, {7, 4, 4}, true},
        {"4 spatial axes", {1, 2, 2, 3, 2, 3}, {2, 1, 2, 2, 1, 2}, 1, {2, 1, 3, 1}, {1, 1, 1, 2}, {}, {}, {}, nullptr,
         {0, 0, 0, 0}, {4, 4, 4, 5}, true},
        {"empty batch", {0, 2, 3, 3}, {2, 2, 3, 3}, 1, {1, 1}, {1, 1}, {}, {}, {}, nullptr, {0, 0}, {5, 5}, true},
    };
    // clang-format on
    uint32_t seed = 100;
    for (const ConvTransposeCase& c : cases) {
      CAPTURE(c.name);
      const Tensor x = random_tensor(c.x, seed++), w = random_tensor(c.w, seed++);
      const Tensor b = random_tensor({c.w[1] * c.group}, seed++);
      ops::Attributes a =
          attrs({{"group", integer(c.group)}, {"strides", ints(c.strides)}, {"dilations", ints(c.dilations)}});
      if (!c.output_padding.empty()) a.set("output_padding", ints(c.output_padding));
      if (!c.pads.empty()) a.set("pads", ints(c.pads));
      if (!c.output_shape.empty()) a.set("output_shape", ints(c.output_shape));
      if (c.auto_pad) a.set("auto_pad", text(c.auto_pad));
      auto y = run_op("ConvTranspose", a, {x, w, c.bias ? b : Tensor{}}, 11);
      const Tensor want = naive_conv_transpose(x, w, c.bias ? &b : nullptr, c.group, c.strides, c.dilations,
                                               c.want_pad_begin, c.want_out);
      REQUIRE(y[0].shape() == want.shape());
      CHECK(max_abs_diff(y[0], want) < 1e-4);
    }
  }

  TEST_CASE("ConvTranspose accepts kernel_shape equal to the weights' and infers it when absent") {
    const Tensor x = random_tensor({1, 2, 3, 4}, 1), w = random_tensor({2, 3, 2, 3}, 2);
    auto with = run_op("ConvTranspose", attrs({{"kernel_shape", ints({2, 3})}}), {x, w});
    auto without = run_op("ConvTranspose", {}, {x, w});
    REQUIRE(with[0].shape() == Shape{1, 3, 4, 6});
    CHECK(max_abs_diff(with[0], without[0]) == 0);
  }

  TEST_CASE("ConvTranspose refuses malformed nodes and unsupported types") {
    const Tensor x = random_tensor({1, 4, 5, 5}, 1), w = random_tensor({4, 2, 3, 3}, 2);
    auto run = [&](const ops::Attributes& a, std::vector<Tensor> inputs) { run_op("ConvTranspose", a, inputs); };
    // Ranks and channels.
    CHECK_INVALID(run({}, {random_tensor({4, 5}, 3), random_tensor({4, 2}, 4)}));
    CHECK_INVALID(run({}, {x, random_tensor({4, 2, 3}, 3)}));
    CHECK_INVALID(run({}, {x, random_tensor({2, 2, 3, 3}, 3)}));  // W[0] must be C
    CHECK_INVALID(run(attrs({{"group", integer(3)}}), {x, w}));
    CHECK_INVALID(run(attrs({{"group", integer(0)}}), {x, w}));
    CHECK_INVALID(run(attrs({{"group", integer(-2)}}), {x, w}));
    // B must have M = W[1] * group entries: 2, then 4.
    CHECK_INVALID(run({}, {x, w, random_tensor({4}, 4)}));
    CHECK_INVALID(run(attrs({{"group", integer(2)}}), {x, w, random_tensor({2}, 4)}));
    CHECK_INVALID(run({}, {x, w, random_tensor({1, 2}, 4)}));
    CHECK_INVALID(run({}, {random_tensor({1, 4, 0, 5}, 3), w}));
    // Attributes of the wrong length, sign or size.
    CHECK_INVALID(run(attrs({{"kernel_shape", ints({3, 2})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"kernel_shape", ints({3})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"strides", ints({2})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"strides", ints({0, 1})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"strides", ints({1, -1})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"strides", integer(2)}}), {x, w}));
    CHECK_INVALID(run(attrs({{"dilations", ints({0, 1})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"dilations", ints({1, 1, 1})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"pads", ints({1, 1})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"pads", ints({-1, 0, 0, 0})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"pads", ints({7, 0, 0, 0})}}), {x, w}));  // crops all 7 rows
    CHECK_INVALID(run(attrs({{"output_padding", ints({1})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"output_padding", ints({-1, 0})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"output_padding", ints({1, 0})}}), {x, w}));  // stride 1, dilation 1
    CHECK_INVALID(run(attrs({{"strides", ints({2, 2})}, {"output_padding", ints({2, 0})}}), {x, w}));
    CHECK_INVALID(
        run(attrs({{"strides", ints({2, 1})}, {"dilations", ints({3, 1})}, {"output_padding", ints({3, 0})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"auto_pad", text("SAME")}}), {x, w}));
    CHECK_INVALID(run(attrs({{"output_shape", ints({7})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"output_shape", ints({7, 7, 7})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"output_shape", ints({0, 7})}}), {x, w}));
    CHECK_INVALID(run(attrs({{"output_shape", ints({7, -3})}}), {x, w}));
    // Types: float32 only; X, W and B must agree.
    CHECK_INVALID(run({}, {x, Tensor(DType::Float64, {4, 2, 3, 3})}));
    CHECK_INVALID(run({}, {x, w, Tensor(DType::Float64, {2})}));
    CHECK_UNSUPPORTED(run({}, {Tensor(DType::Float64, {1, 4, 5, 5}), Tensor(DType::Float64, {4, 2, 3, 3})}));
    CHECK_UNSUPPORTED(run({}, {Tensor(DType::Int32, {1, 4, 5, 5}), Tensor(DType::Int32, {4, 2, 3, 3})}));
    CHECK_INVALID(run({}, {x}));
  }

  TEST_CASE("ConvTranspose refuses hostile sizes without overflowing") {
    constexpr int64_t big = int64_t{1} << 40;
    // Attribute values far out of range.
    CHECK_INVALID(infer_conv_transpose(attrs({{"strides", ints({big, 1})}}), {1, 1, 3, 3}, {1, 1, 3, 3}));
    CHECK_INVALID(infer_conv_transpose(attrs({{"dilations", ints({1, INT64_MAX})}}), {1, 1, 3, 3}, {1, 1, 3, 3}));
    CHECK_INVALID(infer_conv_transpose(attrs({{"pads", ints({0, 0, INT64_MAX, 0})}}), {1, 1, 3, 3}, {1, 1, 3, 3}));
    CHECK_INVALID(infer_conv_transpose(attrs({{"output_shape", ints({INT64_MAX, 4})}}), {1, 1, 3, 3}, {1, 1, 3, 3}));
    CHECK_INVALID(infer_conv_transpose(attrs({{"group", integer(INT64_MAX)}}), {1, 0, 3, 3}, {0, 4, 3, 3}));
    CHECK_INVALID(infer_conv_transpose(attrs({{"output_padding", ints({INT64_MAX, 0})}, {"strides", ints({2, 2})}}),
                                       {1, 1, 3, 3}, {1, 1, 3, 3}));
    // Huge inputs: stride * (in - 1) and in * stride overflow int64.
    const ops::Attributes s = attrs({{"strides", ints({int64_t{1} << 31, 1})}});
    CHECK_INVALID(infer_conv_transpose(s, {1, 1, big, 1}, {1, 1, 3, 3}));
    ops::Attributes same = s;
    same.set("auto_pad", text("SAME_UPPER"));
    CHECK_INVALID(infer_conv_transpose(same, {1, 1, big, 1}, {1, 1, 3, 3}));
    // Each axis fits, but the output's element count does not.
    CHECK_INVALID(infer_conv_transpose(attrs({{"strides", ints({int64_t{1} << 30, int64_t{1} << 30})}}),
                                       {1, 1, int64_t{1} << 20, int64_t{1} << 20}, {1, 1, 1, 1}));
    CHECK_INVALID(infer_conv_transpose(attrs({{"kernel_shape", ints({big, 1})}}), {1, 1, 3, 3}, {1, 1, big, 1}));
  }
}
