// The quantization ops (ops/quant.cpp, ops/quant_conv.cpp) on hand-checked cases:
// round-half-to-even ties, saturation, NaN and infinities, per-axis parameters, per-row
// and per-column zero points, int32 wrap-around, convolutions against Conv's float
// reference on the same integers, and the errors (shapes, types, scale values, whether
// the parameters are constants or computed at run time).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "ops/conv.hpp"
#include "tests/ops/nn_test_helpers.hpp"
#include "tests/ops/op_runner.hpp"

using namespace nnjit;
using namespace nnjit::testing::ew;
using V = std::vector<double>;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

Tensor u8(const std::vector<uint8_t>& v, Shape s) { return Tensor::from(v, std::move(s)); }
Tensor s8(const std::vector<int8_t>& v, Shape s) { return Tensor::from(v, std::move(s)); }
Tensor scalar_f(float v) { return f32({v}, {}); }

Tensor run1(const OpRunner& r) { return r.run()[0]; }

// Seeded uniform integers in [lo, hi] as a uint8 or int8 tensor.
Tensor random_q(DType t, const Shape& s, uint32_t seed, int lo, int hi) {
  Tensor x(t, s);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (t == DType::UInt8)
      x.data<uint8_t>()[i] = static_cast<uint8_t>(dist(rng));
    else
      x.data<int8_t>()[i] = static_cast<int8_t>(dist(rng));
  }
  return x;
}

// (q - zero_point) as float32, the zero point per slice of `per` elements (one slice when
// zps has one value).
Tensor minus_zp(const Tensor& q, const std::vector<int>& zps) {
  Tensor f(DType::Float32, q.shape());
  const int64_t per = q.numel() / static_cast<int64_t>(zps.size());
  const std::vector<double> v = values(q);
  for (int64_t i = 0; i < q.numel(); ++i)
    f.data<float>()[i] = static_cast<float>(v[static_cast<std::size_t>(i)] - zps[static_cast<std::size_t>(i / per)]);
  return f;
}

}  // namespace

TEST_SUITE("ops") {

TEST_CASE("QuantizeLinear: ties round to even, results saturate") {
  // Ties: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, 0.5 -> 0, 1.5 -> 2, -1.5 -> -2; with scale 2
  // the quotient 5 / 2 is a tie too.
  const Tensor x = f32({2.5f, 3.5f, -2.5f, 0.5f, 1.5f, -1.5f, -0.5f, 2.4f, 2.6f}, {9});
  CHECK(values(run1(OpRunner("QuantizeLinear").in(x).in(scalar_f(1)).in(s8({0}, {})))) ==
        V{2, 4, -2, 0, 2, -2, 0, 2, 3});
  CHECK(values(run1(OpRunner("QuantizeLinear").in(f32({5, 7, -5, -7}, {4})).in(scalar_f(2)).in(s8({0}, {})))) ==
        V{2, 4, -2, -4});
  // The zero point is added after rounding: 2.5 -> 2 + 128.
  CHECK(values(run1(OpRunner("QuantizeLinear").in(f32({2.5f, 3.5f, -2.5f}, {3})).in(scalar_f(1)).in(u8({128}, {})))) ==
        V{130, 132, 126});

  // Saturation, NaN (the lowest value) and infinities; the ONNX test's values included.
  const Tensor big = f32({0, 2, 3, 1000, -254, -1000, kNaN, kInf, -kInf}, {9});
  CHECK(values(run1(OpRunner("QuantizeLinear").in(big).in(scalar_f(2)).in(u8({128}, {})))) ==
        V{128, 129, 130, 255, 1, 0, 0, 255, 0});
  CHECK(values(run1(OpRunner("QuantizeLinear").in(big).in(scalar_f(2)).in(s8({-10}, {})))) ==
        V{-10, -9, -8, 127, -128, -128, -128, 127, -128});

  // Without a zero point the output is uint8 with zero point 0.
  const Tensor y = run1(OpRunner("QuantizeLinear").in(f32({-3, 0.4f, 300}, {3})).in(scalar_f(1)));
  CHECK(y.dtype() == DType::UInt8);
  CHECK(values(y) == V{0, 0, 255});

  // Opset 10 takes int32 x too (divided in double: 5 / 2 = 2.5 -> 2, 7 / 2 = 3.5 -> 4).
  const Tensor yi = run1(OpRunner("QuantizeLinear").opset(10).in(i32({5, 7, -5, 1000}, {2, 2})).in(scalar_f(2)).in(
      s8({1}, {})));
  CHECK(yi.shape() == Shape{2, 2});
  CHECK(values(yi) == V{3, 5, -1, 127});

  // A 1-D scale and zero point of one value are per tensor, whatever the axis.
  CHECK(values(run1(OpRunner("QuantizeLinear").attr_i("axis", 0).in(f32({1, 2, 3, 4}, {2, 2})).in(f32({0.5f}, {1})).in(
            u8({3}, {1})))) == V{5, 7, 9, 11});
  // Scales and zero points may be computed at run time.
  CHECK(values(run1(OpRunner("QuantizeLinear").in(f32({1, 2}, {2})).in_runtime(scalar_f(0.25f)).in_runtime(
            u8({1}, {})))) == V{5, 9});
}

TEST_CASE("QuantizeLinear and DequantizeLinear per axis") {
  // x [2, 3, 2], axis 1: scales 1, 2, 4 and zero points 0, 10, -10.
  const Tensor x = f32({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 3, 2});
  const Tensor scale = f32({1, 2, 4}, {3});
  const Tensor zp = s8({0, 10, -10}, {3});
  // 3 / 2 = 1.5 -> 2, 5 / 4 = 1.25 -> 1, 6 / 4 = 1.5 -> 2, 9 / 2 = 4.5 -> 4, 11 / 4 = 2.75 -> 3.
  const V want{1, 2, 12, 12, -9, -8, 7, 8, 14, 15, -7, -7};
  CHECK(values(run1(OpRunner("QuantizeLinear").in(x).in(scale).in(zp))) == want);
  CHECK(values(run1(OpRunner("QuantizeLinear").attr_i("axis", -2).in(x).in(scale).in(zp))) == want);
  // Dequantized back: (q - zp) * scale.
  const Tensor q = s8({1, 2, 12, 12, -9, -8, 7, 8, 14, 15, -7, -7}, {2, 3, 2});
  const Tensor d = run1(OpRunner("DequantizeLinear").in(q).in(scale).in(zp));
  CHECK(d.dtype() == DType::Float32);
  CHECK(values(d) == V{1, 2, 4, 4, 4, 8, 7, 8, 8, 10, 12, 12});

  // Axis 0 of a [2, 3] tensor, and the last axis.
  CHECK(values(run1(OpRunner("QuantizeLinear").attr_i("axis", 0).in(f32({10, 20, 30, 10, 20, 30}, {2, 3})).in(
            f32({10, 5}, {2})))) == V{1, 2, 3, 2, 4, 6});
  CHECK(values(run1(OpRunner("QuantizeLinear").attr_i("axis", -1).in(f32({10, 20, 30, 10, 20, 30}, {2, 3})).in(
            f32({10, 5, 1}, {3})))) == V{1, 4, 30, 1, 4, 30});
  // Per axis without a zero point.
  CHECK(values(run1(OpRunner("DequantizeLinear").attr_i("axis", 0).in(u8({1, 2, 3, 4}, {2, 2})).in(
            f32({1, 0.5f}, {2})))) == V{1, 2, 1.5, 2});
}

TEST_CASE("DequantizeLinear: uint8, int8 and int32") {
  // The ONNX test: (x - 128) * 2.
  CHECK(values(run1(OpRunner("DequantizeLinear").in(u8({0, 3, 128, 255}, {4})).in(scalar_f(2)).in(u8({128}, {})))) ==
        V{-256, -250, 0, 254});
  CHECK(values(run1(OpRunner("DequantizeLinear").in(s8({-128, -1, 0, 127}, {2, 2})).in(scalar_f(0.5f)).in(
            s8({-1}, {})))) == V{-63.5, 0, 0.5, 64});
  // int32 without a zero point, or with a zero point of 0.
  CHECK(values(run1(OpRunner("DequantizeLinear").in(i32({-7, 0, 1 << 20}, {3})).in(scalar_f(0.25f)))) ==
        V{-1.75, 0, 262144});
  CHECK(values(run1(OpRunner("DequantizeLinear").in(i32({-7, 3}, {2})).in(scalar_f(2)).in(i32({0}, {})))) ==
        V{-14, 6});
  // A uint8 zero point is optional.
  CHECK(values(run1(OpRunner("DequantizeLinear").in(u8({0, 255}, {2})).in(scalar_f(1)))) == V{0, 255});
  // Opset 10 (per tensor only).
  CHECK(values(run1(OpRunner("DequantizeLinear").opset(10).in(u8({10}, {1})).in(scalar_f(3)).in(u8({4}, {})))) ==
        V{18});
}

TEST_CASE("QuantizeLinear and DequantizeLinear: errors") {
  const Tensor x = f32({1, 2, 3, 4, 5, 6}, {1, 3, 2});
  // Scale shapes that fit neither per tensor nor axis 1 (extent 3).
  CHECK_INVALID(OpRunner("QuantizeLinear").in(x).in(f32({1, 2}, {2})).run());
  CHECK_INVALID(OpRunner("QuantizeLinear").in(x).in(f32({1, 2, 3}, {1, 3})).run());
  CHECK_INVALID(OpRunner("QuantizeLinear").attr_i("axis", 2).in(x).in(f32({1, 2, 3}, {3})).run());
  CHECK_INVALID(OpRunner("QuantizeLinear").attr_i("axis", 3).in(x).in(f32({1, 2, 3}, {3})).run());
  CHECK_INVALID(OpRunner("QuantizeLinear").attr_i("axis", -4).in(x).in(f32({1, 2, 3}, {3})).run());
  // Scale and zero point must hold as many values, each fitting the axis.
  CHECK_INVALID(OpRunner("QuantizeLinear").in(x).in(f32({1, 2, 3}, {3})).in(u8({1}, {})).run());
  CHECK_INVALID(OpRunner("QuantizeLinear").in(x).in(scalar_f(1)).in(u8({1, 2, 3}, {3})).run());
  CHECK_INVALID(OpRunner("QuantizeLinear").in(x).in(f32({1, 2, 3}, {3})).in(u8({1, 2}, {2})).run());
  // Before opset 13 a scale is a scalar.
  CHECK_INVALID(OpRunner("QuantizeLinear").opset(10).in(x).in(f32({1, 2, 3}, {3})).run());
  CHECK_INVALID(OpRunner("DequantizeLinear").opset(10).in(u8({1, 2, 3}, {3})).in(f32({1, 2, 3}, {3})).run());
  // Types: a zero point that is not 8-bit, a scale that is not float, a zero point of
  // another type than x.
  CHECK_INVALID(OpRunner("QuantizeLinear").in(x).in(scalar_f(1)).in(i32({1}, {})).run());
  CHECK_INVALID(OpRunner("QuantizeLinear").in(x).in(i32({1}, {})).run());
  CHECK_INVALID(OpRunner("DequantizeLinear").in(u8({1}, {1})).in(scalar_f(1)).in(s8({1}, {})).run());
  CHECK_INVALID(OpRunner("DequantizeLinear").in(i32({1}, {1})).in(scalar_f(1)).in(u8({1}, {})).run());
  CHECK_UNSUPPORTED(OpRunner("DequantizeLinear").in(f32({1}, {1})).in(scalar_f(1)).run());

  // Zero, negative and non-finite scales: at infer when constant, at compute otherwise.
  for (float bad : {0.f, -1.f, kNaN, kInf}) {
    INFO("scale " << bad);
    CHECK_INVALID(OpRunner("QuantizeLinear").in(x).in(scalar_f(bad)).infer());
    CHECK_INVALID(OpRunner("DequantizeLinear").in(u8({1}, {1})).in(scalar_f(bad)).infer());
    const OpRunner q = OpRunner("QuantizeLinear").in(x).in_runtime(f32({1, bad, 1}, {3}));
    CHECK_NOTHROW(q.infer());
    CHECK_INVALID(q.run());
    const OpRunner d = OpRunner("DequantizeLinear").in(u8({1}, {1})).in_runtime(scalar_f(bad));
    CHECK_NOTHROW(d.infer());
    CHECK_INVALID(d.run());
  }
  // int32 x has no zero point but 0: at infer when constant, at compute otherwise.
  CHECK_INVALID(OpRunner("DequantizeLinear").in(i32({1}, {1})).in(scalar_f(1)).in(i32({3}, {})).infer());
  const OpRunner d = OpRunner("DequantizeLinear").in(i32({1}, {1})).in(scalar_f(1)).in_runtime(i32({3}, {}));
  CHECK_NOTHROW(d.infer());
  CHECK_INVALID(d.run());
}

TEST_CASE("DynamicQuantizeLinear: scale, zero point and data, as the ONNX tests") {
  auto run = [](const Tensor& x) { return OpRunner("DynamicQuantizeLinear").opset(11).outputs(3).in(x).run(); };
  // Range [-3, 2]: scale 5 / 255, zero point round(3 / scale) = round(153) = 153.
  std::vector<Tensor> o = run(f32({0, 2, -3, -2.5f, 1.34f, 0.5f}, {6}));
  CHECK(o[0].dtype() == DType::UInt8);
  CHECK(values(o[0]) == V{153, 255, 0, 26, 221, 179});
  CHECK(o[1].shape() == Shape{});
  CHECK(o[1].data<float>()[0] == doctest::Approx(5.0 / 255).epsilon(1e-6));
  CHECK(o[2].shape() == Shape{});
  CHECK(values(o[2]) == V{153});
  // All negative: the range is widened to include 0, the zero point is 255.
  o = run(f32({-1, -2.1f, -1.3f, -2.5f, -3.34f, -4}, {6}));
  CHECK(values(o[0]) == V{191, 121, 172, 96, 42, 0});
  CHECK(values(o[2]) == V{255});
  // All positive: zero point 0.
  o = run(f32({1, 2.1f, 1.3f, 2.5f, 3.34f, 4, 1.5f, 2.6f, 3.9f, 4, 3, 2.345f}, {3, 4}));
  CHECK(o[0].shape() == Shape{3, 4});
  CHECK(values(o[0]) == V{64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149});
  CHECK(values(o[2]) == V{0});
  // All zeros (and empty): scale 1 / 255 rather than a division by zero.
  for (const Tensor& x : {f32({0, 0}, {2}), Tensor(DType::Float32, {0, 3})}) {
    o = run(x);
    CHECK(o[0].shape() == x.shape());
    CHECK(values(o[0]) == V(static_cast<std::size_t>(x.numel()), 0));
    CHECK(o[1].data<float>()[0] == doctest::Approx(1.0 / 255));
    CHECK(values(o[2]) == V{0});
  }
  // A NaN is left out of the range and quantizes to 0. (The range [-1, 1] gives the
  // scale 2 / 255 and, 1 / scale being 127.49999 in float32, the zero point 127.)
  o = run(f32({kNaN, -1, 1}, {3}));
  CHECK(values(o[0]) == V{0, 0, 254});
  CHECK(values(o[2]) == V{127});
  CHECK_UNSUPPORTED(run(i32({1}, {1})));
}

TEST_CASE("MatMulInteger: zero points per tensor, row and column; int32 wraps") {
  // The ONNX test: A - 12 times B.
  const Tensor a = u8({11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0}, {4, 3});
  const Tensor b = u8({1, 4, 2, 5, 3, 6}, {3, 2});
  Tensor y = run1(OpRunner("MatMulInteger").in(a).in(b).in(u8({12}, {1})).in(u8({0}, {1})));
  CHECK(y.dtype() == DType::Int32);
  CHECK(y.shape() == Shape{4, 2});
  CHECK(values(y) == V{-38, -83, -44, -98, -50, -113, -56, -128});
  // Without zero points.
  CHECK(values(run1(OpRunner("MatMulInteger").in(a).in(b))) == V{34, 97, 28, 82, 22, 67, 16, 52});
  // Per row of A ([M] and [M, 1]) and per column of B ([N] and [1, N]), computed at run
  // time: A - [1, 2, 0, 3] = [[10, 6, 2], [8, 4, 0], [9, 5, 1], [5, 1, -3]] times
  // B - [0, 1] = [[1, 3], [2, 4], [3, 5]].
  const V want{28, 64, 16, 40, 22, 52, -2, 4};
  const Tensor za = u8({1, 2, 0, 3}, {4}), zb = u8({0, 1}, {2});
  CHECK(values(run1(OpRunner("MatMulInteger").in(a).in(b).in_runtime(za).in_runtime(zb))) == want);
  CHECK(values(run1(OpRunner("MatMulInteger").in(a).in(b).in(za.reshaped({4, 1})).in(zb.reshaped({1, 2})))) == want);

  // int8 A with uint8 B, batch broadcast [2, 1, 2] x [2, 1]: [[-1, 2]] and [[3, -4]] times [5, 6].
  y = run1(OpRunner("MatMulInteger").in(s8({-1, 2, 3, -4}, {2, 1, 2})).in(u8({5, 6}, {2, 1})).in(s8({-1}, {})));
  CHECK(y.shape() == Shape{2, 1, 1});
  CHECK(values(y) == V{0 * 5 + 3 * 6, 4 * 5 + (-3) * 6});
  // 1-D operands.
  y = run1(OpRunner("MatMulInteger").in(u8({1, 2, 3}, {3})).in(u8({4, 5, 6}, {3})));
  CHECK(y.shape() == Shape{});
  CHECK(values(y) == V{32});

  // 33026 products of 255 * 255 pass 2^31 - 1: the int32 accumulator wraps.
  const int64_t K = 33026;
  const Tensor ones_a = u8(std::vector<uint8_t>(K, 255), {1, K}), ones_b = u8(std::vector<uint8_t>(K, 255), {K, 1});
  CHECK(values(run1(OpRunner("MatMulInteger").in(ones_a).in(ones_b))) == V{65025.0 * K - 4294967296.0});

  // Errors: a zero point of another type, or fitting neither rows nor columns.
  CHECK_INVALID(OpRunner("MatMulInteger").in(a).in(b).in(s8({1}, {})).run());
  CHECK_INVALID(OpRunner("MatMulInteger").in(a).in(b).absent().in(s8({1}, {})).run());
  CHECK_INVALID(OpRunner("MatMulInteger").in(a).in(b).in(u8({1, 2, 3}, {3})).run());
  CHECK_INVALID(OpRunner("MatMulInteger").in(a).in(b).in(u8({1, 2, 3, 4}, {1, 4})).run());
  CHECK_INVALID(OpRunner("MatMulInteger").in(a).in(b).absent().in(u8({1, 2}, {2, 1})).run());
  CHECK_INVALID(OpRunner("MatMulInteger").in(a).in(b).absent().in(u8({1, 2, 3}, {3})).run());
  CHECK_INVALID(OpRunner("MatMulInteger").in(a).in(u8({1, 2}, {2, 1})).run());
  CHECK_INVALID(OpRunner("MatMulInteger").in(f32({1}, {1, 1})).in(u8({1}, {1, 1})).run());
}

TEST_CASE("QLinearMatMul: requantised as the ONNX tests, per column, int8 output") {
  const Tensor a = u8({208, 236, 0, 238, 3, 214, 255, 29}, {2, 4});
  const Tensor b = u8({152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247}, {4, 3});
  auto run = [&](const Tensor& b_scale, const Tensor& b_zp, const Tensor& y_zp) {
    return run1(OpRunner("QLinearMatMul")
                    .opset(10)
                    .in(a)
                    .in(f32({0.0066f}, {1}))
                    .in(u8({113}, {1}))
                    .in(b)
                    .in(b_scale)
                    .in(b_zp)
                    .in(f32({0.0107f}, {1}))
                    .in(y_zp));
  };
  CHECK(values(run(f32({0.00705f}, {1}), u8({114}, {1}), u8({118}, {1}))) == V{168, 115, 255, 1, 66, 151});
  // The same scale given per column gives the same result.
  CHECK(values(run(f32({0.00705f, 0.00705f, 0.00705f}, {3}), u8({114, 114, 114}, {1, 3}), u8({118}, {}))) ==
        V{168, 115, 255, 1, 66, 151});
  // Column 1 with twice the scale: its accumulators -778 and -11872 times
  // 0.0066 * 0.0141 / 0.0107 give -6.77 -> -7 and -103.25 -> -103 (at the ONNX test's
  // scale -3.38 -> -3 and -51.63 -> -52). An int8 output saturates at 127.
  CHECK(values(run(f32({0.00705f, 0.0141f, 0.00705f}, {3}), u8({114, 114, 114}, {3}), u8({118}, {}))) ==
        V{168, 111, 255, 1, 15, 151});
  const Tensor y = run(f32({0.00705f}, {1}), u8({114}, {1}), s8({-10}, {}));
  CHECK(y.dtype() == DType::Int8);
  CHECK(values(y) == V{40, -13, 127, -127, -62, 23});

  // Errors: y per row, scale and zero point of different counts, a bad scale at run time.
  CHECK_INVALID(run(f32({0.00705f}, {1}), u8({114}, {1}), u8({1, 2}, {2})));
  CHECK_INVALID(run(f32({0.00705f, 0.00705f, 0.00705f}, {3}), u8({114}, {1}), u8({118}, {})));
  CHECK_INVALID(run(f32({0.00705f, 0.00705f}, {2}), u8({114, 114}, {2}), u8({118}, {})));
  const OpRunner bad = OpRunner("QLinearMatMul")
                           .in(a)
                           .in_runtime(f32({-1}, {}))
                           .in(u8({113}, {}))
                           .in(b)
                           .in(f32({1}, {}))
                           .in(u8({114}, {}))
                           .in(f32({1}, {}))
                           .in(u8({118}, {}));
  CHECK_NOTHROW(bad.infer());
  CHECK_INVALID(bad.run());
}

TEST_CASE("ConvInteger: the ONNX tests, and Conv's reference on the same integers") {
  const Tensor x = u8({2, 3, 4, 5, 6, 7, 8, 9, 10}, {1, 1, 3, 3});
  const Tensor w = u8({1, 1, 1, 1}, {1, 1, 2, 2});
  Tensor y = run1(OpRunner("ConvInteger").opset(10).in(x).in(w).in(u8({1}, {})));
  CHECK(y.dtype() == DType::Int32);
  CHECK(y.shape() == Shape{1, 1, 2, 2});
  CHECK(values(y) == V{12, 16, 24, 28});
  // Padding stands for the zero point: it adds nothing.
  y = run1(OpRunner("ConvInteger").opset(10).attr_ints("pads", {1, 1, 1, 1}).in(x).in(w).in(u8({1}, {})));
  CHECK(values(y) == V{1, 3, 5, 3, 5, 12, 16, 9, 11, 24, 28, 15, 7, 15, 17, 9});

  // Groups, strides, dilations, padding; int8 and uint8; per-channel weight zero points.
  struct Case {
    DType xt, wt;
    Shape x, w;
    int64_t group;
    std::vector<int64_t> strides, dilations, pads;
    bool per_channel;
  };
  const Case cases[] = {
      {DType::UInt8, DType::Int8, {2, 4, 7, 6}, {6, 2, 3, 3}, 2, {2, 1}, {1, 2}, {1, 0, 2, 1}, true},
      {DType::Int8, DType::UInt8, {1, 3, 9}, {4, 3, 2}, 1, {3}, {2}, {0, 1}, false},
      {DType::UInt8, DType::UInt8, {1, 4, 5, 5}, {4, 1, 3, 3}, 4, {1, 1}, {1, 1}, {1, 1, 1, 1}, true},
      {DType::Int8, DType::Int8, {1, 2, 3, 4, 3}, {2, 2, 2, 1, 2}, 1, {1, 2, 1}, {1, 1, 2}, {0, 1, 0, 1, 0, 1}, true},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w));
    const bool xu = c.xt == DType::UInt8, wu = c.wt == DType::UInt8;
    const Tensor xq = random_q(c.xt, c.x, seed++, xu ? 0 : -128, xu ? 255 : 127);
    const Tensor wq = random_q(c.wt, c.w, seed++, wu ? 0 : -128, wu ? 255 : 127);
    const int zx = xu ? 131 : -7;
    std::vector<int> zw(c.per_channel ? static_cast<std::size_t>(c.w[0]) : 1u);
    for (std::size_t i = 0; i < zw.size(); ++i) zw[i] = static_cast<int>(wu ? 100 + 7 * i : -50 + 11 * i);
    const Tensor zxt = xu ? u8({static_cast<uint8_t>(zx)}, {}) : s8({static_cast<int8_t>(zx)}, {});
    Tensor zwt(c.wt, c.per_channel ? Shape{c.w[0]} : Shape{});
    for (std::size_t i = 0; i < zw.size(); ++i) {
      if (wu)
        zwt.data<uint8_t>()[i] = static_cast<uint8_t>(zw[i]);
      else
        zwt.data<int8_t>()[i] = static_cast<int8_t>(zw[i]);
    }
    ops::Attributes attrs = testing::nn::attrs({{"group", testing::nn::integer(c.group)},
                                                {"strides", testing::nn::ints(c.strides)},
                                                {"dilations", testing::nn::ints(c.dilations)},
                                                {"pads", testing::nn::ints(c.pads)}});
    OpRunner r("ConvInteger");
    r.attr_i("group", c.group).attr_ints("strides", c.strides).attr_ints("dilations", c.dilations).attr_ints("pads",
                                                                                                            c.pads);
    y = run1(r.in(xq).in(wq).in_runtime(zxt).in_runtime(zwt));
    // Conv's float reference on x - zx and w - zw: exact, the sums being far below 2^24.
    const Tensor want = testing::nn::run_op("Conv", attrs, {minus_zp(xq, {zx}), minus_zp(wq, zw)})[0];
    REQUIRE(y.shape() == want.shape());
    CHECK(values(y) == values(want));
  }

  // Errors: zero points of another type, per-channel x, w's zero point not one per output
  // channel; Conv's own shape errors.
  CHECK_INVALID(OpRunner("ConvInteger").in(x).in(w).in(s8({1}, {})).run());
  CHECK_INVALID(OpRunner("ConvInteger").in(x).in(w).absent().in(s8({1}, {})).run());
  CHECK_INVALID(OpRunner("ConvInteger").in(x).in(w).in(u8({1, 1}, {2})).run());
  CHECK_INVALID(OpRunner("ConvInteger").in(x).in(w).absent().in(u8({1, 1}, {2})).run());
  CHECK_INVALID(OpRunner("ConvInteger").in(x).in(u8({1, 1}, {1, 2, 1, 1})).run());
  CHECK_INVALID(OpRunner("ConvInteger").attr_ints("strides", {0, 1}).in(x).in(w).run());
  CHECK_INVALID(OpRunner("ConvInteger").in(f32({1}, {1, 1, 1, 1})).in(w).run());
}

TEST_CASE("QLinearConv: the ONNX test, per-channel scales, bias, int8 output") {
  const Tensor x = u8({255, 174, 162, 25,  203, 168, 58,  15,  59,  237, 95,  129, 0,   64,  56,  242, 153,
                       221, 168, 12,  166, 232, 178, 186, 195, 237, 162, 237, 188, 39,  124, 77,  80,  102,
                       43,  127, 230, 21,  83,  41,  40,  134, 255, 154, 92,  141, 42,  148, 247},
                      {1, 1, 7, 7});
  const Tensor y = run1(OpRunner("QLinearConv")
                            .opset(10)
                            .in(x)
                            .in(scalar_f(0.00369204697f))
                            .in(u8({132}, {}))
                            .in(u8({0}, {1, 1, 1, 1}))
                            .in(f32({0.00172794575f}, {1}))
                            .in(u8({255}, {1}))
                            .in(scalar_f(0.00162681262f))
                            .in(u8({123}, {})));
  CHECK(values(y) == V{0,   81,  93,  230, 52,  87,  197, 240, 196, 18,  160, 126, 255, 191, 199, 13,  102,
                       34,  87,  243, 89,  23,  77,  69,  60,  18,  93,  18,  67,  216, 131, 178, 175, 153,
                       212, 128, 25,  234, 172, 214, 215, 121, 0,   101, 163, 114, 213, 107, 8});

  // Two output channels with their own weight scales and zero points, and a bias:
  // x - 2 = [1, 3, -1, 0], channel 0: w - 1 = [1, 2, 0, 1] (sum 7, + bias 5 = 12) at
  // scale 1 * 0.5 / 2 = 0.25 -> 3, + 10 = 13; channel 1: w - (-2) = [2, 2, 2, 2] (sum 6, + bias -100
  // = -94) at scale 1 * 1 / 2 = 0.5 -> -47, + 10 = -37.
  const Tensor y2 = run1(OpRunner("QLinearConv")
                             .in(u8({3, 5, 1, 2}, {1, 1, 2, 2}))
                             .in(scalar_f(1))
                             .in(u8({2}, {}))
                             .in(s8({2, 3, 1, 2, 0, 0, 0, 0}, {2, 1, 2, 2}))
                             .in(f32({0.5f, 1}, {2}))
                             .in(s8({1, -2}, {2}))
                             .in(scalar_f(2))
                             .in(s8({10}, {}))
                             .in(i32({5, -100}, {2})));
  CHECK(y2.dtype() == DType::Int8);
  CHECK(y2.shape() == Shape{1, 2, 1, 1});
  CHECK(values(y2) == V{13, -37});

  // Errors: w's scale per channel but its zero point not, a per-channel x scale, a bias
  // of another type or size, a bad scale at run time.
  auto base = [&](const Tensor& w_scale, const Tensor& w_zp) {
    return OpRunner("QLinearConv")
        .in(u8({3, 5, 1, 2}, {1, 1, 2, 2}))
        .in(scalar_f(1))
        .in(u8({2}, {}))
        .in(s8({2, 3, 1, 2, 0, 0, 0, 0}, {2, 1, 2, 2}))
        .in(w_scale)
        .in(w_zp)
        .in(scalar_f(2))
        .in(s8({10}, {}));
  };
  CHECK_NOTHROW(base(f32({0.5f, 1}, {2}), s8({1, -2}, {2})).run());
  CHECK_INVALID(base(f32({0.5f, 1}, {2}), s8({1}, {})).run());
  CHECK_INVALID(base(f32({0.5f, 1, 1}, {3}), s8({1, -2, 1}, {3})).run());
  CHECK_INVALID(base(f32({0.5f, 1}, {2}), u8({1, 2}, {2})).run());
  CHECK_INVALID(base(f32({0.5f, 1}, {2}), s8({1, -2}, {2})).in(f32({1, 2}, {2})).run());
  CHECK_INVALID(base(f32({0.5f, 1}, {2}), s8({1, -2}, {2})).in(i32({1, 2, 3}, {3})).run());
  CHECK_INVALID(OpRunner("QLinearConv")
                    .in(u8({3, 5, 1, 2}, {1, 1, 2, 2}))
                    .in(f32({1, 1}, {2}))
                    .in(u8({2}, {}))
                    .in(s8({2}, {1, 1, 1, 1}))
                    .in(scalar_f(1))
                    .in(s8({0}, {}))
                    .in(scalar_f(1))
                    .in(s8({0}, {}))
                    .run());
  OpRunner bad_runtime = OpRunner("QLinearConv")
                             .in(u8({3, 5, 1, 2}, {1, 1, 2, 2}))
                             .in(scalar_f(1))
                             .in(u8({2}, {}))
                             .in(s8({2, 3, 1, 2, 0, 0, 0, 0}, {2, 1, 2, 2}))
                             .in_runtime(f32({0.5f, 0}, {2}))
                             .in(s8({1, -2}, {2}))
                             .in(scalar_f(2))
                             .in(s8({10}, {}));
  CHECK_NOTHROW(bad_runtime.infer());
  CHECK_INVALID(bad_runtime.run());
  CHECK_INVALID(base(f32({0.5f, 0}, {2}), s8({1, -2}, {2})).infer());
}

}  // TEST_SUITE
