// Gemm, MatMul, Softmax/LogSoftmax, BatchNormalization and LayerNormalization against
// naive computations written out in the tests; broadcasting, opset-dependent axes,
// refused attributes and outputs, empty tensors.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <map>
#include <optional>

#include "tests/ops/nn_test_helpers.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using namespace nnjit::testing::nn;
using nnjit::testing::max_abs_diff;
using nnjit::testing::random_tensor;

namespace {

// Row-major offset of multi-index `idx` (aligned to the right of `shape`) into a tensor of
// `shape`, where dims of size 1 broadcast.
int64_t broadcast_offset(const Shape& shape, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  const std::size_t lead = idx.size() - shape.size();
  for (std::size_t d = 0; d < shape.size(); ++d) off = off * shape[d] + (shape[d] == 1 ? 0 : idx[lead + d]);
  return off;
}

std::vector<int64_t> unravel(int64_t i, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}

Tensor naive_gemm(const Tensor& a, const Tensor& b, const Tensor* c, bool ta, bool tb, float alpha, float beta) {
  const int64_t M = a.dim(ta ? 1 : 0), K = a.dim(ta ? 0 : 1), N = b.dim(tb ? 0 : 1);
  Tensor y(DType::Float32, {M, N});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += static_cast<double>(a.data<float>()[ta ? k * M + i : i * K + k]) *
               b.data<float>()[tb ? j * K + k : k * N + j];
      double v = alpha * acc;
      if (c) v += beta * c->data<float>()[broadcast_offset(c->shape(), {i, j})];
      y.data<float>()[i * N + j] = static_cast<float>(v);
    }
  return y;
}

// numpy.matmul, spelled out: promote 1-D operands, broadcast the batch dims element by element.
Tensor naive_matmul(const Tensor& a, const Tensor& b, const Shape& out_shape) {
  const Shape as = a.rank() == 1 ? Shape{1, a.dim(0)} : a.shape();
  const Shape bs = b.rank() == 1 ? Shape{b.dim(0), 1} : b.shape();
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  Shape batch = a_batch.size() > b_batch.size() ? a_batch : b_batch;
  for (std::size_t d = 0; d < batch.size(); ++d) {
    const int64_t da = d + a_batch.size() >= batch.size() ? a_batch[d + a_batch.size() - batch.size()] : 1;
    const int64_t db = d + b_batch.size() >= batch.size() ? b_batch[d + b_batch.size() - batch.size()] : 1;
    batch[d] = da == 1 ? db : da;
  }
  Tensor y(DType::Float32, out_shape);
  const int64_t batches = shape_numel(batch);
  REQUIRE(y.numel() == batches * M * N);
  for (int64_t e = 0; e < batches; ++e) {
    const std::vector<int64_t> idx = unravel(e, batch);
    const float* ap = a.data<float>() + broadcast_offset(a_batch, idx) * M * K;
    const float* bp = b.data<float>() + broadcast_offset(b_batch, idx) * K * N;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(ap[i * K + k]) * bp[k * N + j];
        y.data<float>()[e * M * N + i * N + j] = static_cast<float>(acc);
      }
  }
  return y;
}

// Softmax over groups of elements: group(i) names the group element i belongs to.
Tensor naive_softmax(const Tensor& x, const std::function<int64_t(int64_t)>& group, bool log) {
  std::map<int64_t, double> max, sum;
  const float* p = x.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto [it, fresh] = max.emplace(group(i), p[i]);
    if (!fresh) it->second = std::max<double>(it->second, p[i]);
  }
  for (int64_t i = 0; i < x.numel(); ++i) sum[group(i)] += std::exp(p[i] - max[group(i)]);
  Tensor y(DType::Float32, x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double shifted = p[i] - max[group(i)];
    y.data<float>()[i] =
        static_cast<float>(log ? shifted - std::log(sum[group(i)]) : std::exp(shifted) / sum[group(i)]);
  }
  return y;
}

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("Gemm: transposes, alpha/beta and every broadcast of C") {
    const Shape c_shapes[] = {{}, {1}, {5}, {3, 1}, {1, 5}, {3, 5}, {1, 1}};
    uint32_t seed = 10;
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        const Tensor a = random_tensor(ta ? Shape{4, 3} : Shape{3, 4}, seed++);
        const Tensor b = random_tensor(tb ? Shape{5, 4} : Shape{4, 5}, seed++);
        const ops::Attributes at =
            attrs({{"transA", integer(ta)}, {"transB", integer(tb)}, {"alpha", real(0.5f)}, {"beta", real(-2.f)}});
        CAPTURE(ta);
        CAPTURE(tb);
        const Tensor y = run_op("Gemm", at, {a, b})[0];
        CHECK(max_abs_diff(y, naive_gemm(a, b, nullptr, ta, tb, 0.5f, -2.f)) < 1e-5);
        for (const Shape& cs : c_shapes) {
          CAPTURE(shape_str(cs));
          const Tensor c = random_tensor(cs, seed++);
          const Tensor yc = run_op("Gemm", at, {a, b, c})[0];
          REQUIRE(yc.shape() == Shape{3, 5});
          CHECK(max_abs_diff(yc, naive_gemm(a, b, &c, ta, tb, 0.5f, -2.f)) < 1e-5);
        }
      }
  }

  TEST_CASE("Gemm: defaults, empty and degenerate sizes, refusals") {
    const Tensor a = random_tensor({2, 3}, 1), b = random_tensor({3, 4}, 2), c = random_tensor({4}, 3);
    CHECK(max_abs_diff(run_op("Gemm", {}, {a, b, c}, 9)[0], naive_gemm(a, b, &c, false, false, 1, 1)) < 1e-5);
    CHECK(run_op("Gemm", {}, {Tensor(DType::Float32, {0, 3}), b, c})[0].shape() == Shape{0, 4});
    // K = 0: the product is empty, only beta * C remains.
    const Tensor y = run_op("Gemm", attrs({{"beta", real(3.f)}}),
                            {Tensor(DType::Float32, {2, 0}), Tensor(DType::Float32, {0, 4}), c})[0];
    for (int64_t i = 0; i < 8; ++i) CHECK(y.data<float>()[i] == doctest::Approx(3 * c.data<float>()[i % 4]));

    CHECK(error_code_of([&] { run_op("Gemm", {}, {a, b, random_tensor({3}, 4)}); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] { run_op("Gemm", {}, {a, b, random_tensor({2, 4, 1}, 4)}); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] { run_op("Gemm", {}, {a, random_tensor({4, 3}, 4)}); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] { run_op("Gemm", {}, {random_tensor({2, 2, 3}, 4), b}); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("Gemm", {}, {Tensor(DType::Int32, {2, 3}), Tensor(DType::Int32, {3, 4})});
          }) == ErrorCode::Unsupported);
    CHECK(error_code_of([&] {
            run_op("Gemm", {}, {Tensor(DType::Float64, {2, 3}), Tensor(DType::Float64, {3, 4})});
          }) == ErrorCode::Unsupported);
  }

  TEST_CASE("MatMul: 1-D operands and batch broadcasting") {
    struct Case {
      Shape a, b, out;
    };
    const Case cases[] = {
        {{4}, {4, 5}, {5}},
        {{3, 4}, {4}, {3}},
        {{4}, {4}, {}},
        {{2, 3, 4}, {4}, {2, 3}},
        {{4}, {2, 4, 5}, {2, 5}},
        {{3, 4}, {2, 4, 6}, {2, 3, 6}},
        {{2, 1, 3, 4}, {5, 4, 2}, {2, 5, 3, 2}},
        {{1, 3, 4}, {6, 4, 2}, {6, 3, 2}},
        {{7, 1, 1}, {7, 1, 3}, {7, 1, 3}},
        {{0, 3, 4}, {4, 2}, {0, 3, 2}},
        {{3, 0}, {0, 2}, {3, 2}},
    };
    uint32_t seed = 40;
    for (const Case& c : cases) {
      CAPTURE(shape_str(c.a));
      CAPTURE(shape_str(c.b));
      const Tensor a = random_tensor(c.a, seed++), b = random_tensor(c.b, seed++);
      const Tensor y = run_op("MatMul", {}, {a, b})[0];
      REQUIRE(y.shape() == c.out);
      CHECK(max_abs_diff(y, naive_matmul(a, b, c.out)) < 1e-5);
    }
    CHECK(error_code_of([] {
            run_op("MatMul", {}, {random_tensor({3, 4}, 1), random_tensor({5, 6}, 2)});
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([] {
            run_op("MatMul", {}, {random_tensor({2, 3, 4}, 1), random_tensor({3, 4, 5}, 2)});
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([] {
            run_op("MatMul", {}, {random_tensor({}, 1), random_tensor({3}, 2)});
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([] {
            run_op("MatMul", {}, {Tensor(DType::Int64, {2, 3}), Tensor(DType::Int64, {3, 2})});
          }) == ErrorCode::Unsupported);
  }

  TEST_CASE("Softmax axis: coerced to 2-D before opset 13, a single axis from 13") {
    const Tensor x = random_tensor({2, 3, 4}, 5, -4.f, 4.f);
    for (bool log : {false, true}) {
      const char* op = log ? "LogSoftmax" : "Softmax";
      CAPTURE(op);
      auto run = [&](int opset, std::optional<int64_t> axis) {
        return run_op(op, axis ? attrs({{"axis", integer(*axis)}}) : ops::Attributes{}, {x}, opset)[0];
      };
      // opset 11: default axis 1 = each batch's 12 elements; axis 0 = all 24; axis -1 = rows of 4.
      CHECK(max_abs_diff(run(11, {}), naive_softmax(
                                          x, [](int64_t i) { return i / 12; }, log)) < 1e-6);
      CHECK(max_abs_diff(run(11, 0), naive_softmax(
                                         x, [](int64_t) { return 0; }, log)) < 1e-6);
      CHECK(max_abs_diff(run(11, -1), naive_softmax(
                                          x, [](int64_t i) { return i / 4; }, log)) < 1e-6);
      // opset 13: default axis -1 = rows of 4; axis 1 = the 3 elements sharing (batch, last index).
      CHECK(max_abs_diff(run(13, {}), naive_softmax(
                                          x, [](int64_t i) { return i / 4; }, log)) < 1e-6);
      CHECK(max_abs_diff(run(13, 1), naive_softmax(
                                         x, [](int64_t i) { return (i / 12) * 4 + i % 4; }, log)) < 1e-6);
      CHECK(max_abs_diff(run(13, -3), naive_softmax(
                                          x, [](int64_t i) { return i % 12; }, log)) < 1e-6);
    }
    // Large inputs must not overflow.
    const Tensor big = Tensor::from(std::vector<float>{1000, 1001, 1002}, {1, 3});
    check_close(run_op("Softmax", {}, {big}, 13)[0], {1, 3}, {0.0900306f, 0.244728f, 0.665241f});
    check_close(run_op("LogSoftmax", {}, {big}, 13)[0], {1, 3}, {-2.40761f, -1.40761f, -0.407606f});
    CHECK(run_op("Softmax", {}, {Tensor(DType::Float32, {0, 5})}, 13)[0].shape() == Shape{0, 5});
    CHECK(error_code_of([&] { run_op("Softmax", attrs({{"axis", integer(3)}}), {x}, 13); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] { run_op("Softmax", {}, {random_tensor({4}, 1)}, 11); }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] { run_op("Softmax", {}, {Tensor(DType::Int32, {2, 3})}, 13); }) == ErrorCode::Unsupported);
  }

  TEST_CASE("BatchNormalization inference, and what it refuses") {
    const Tensor x = random_tensor({2, 3, 2, 5}, 1);
    const Tensor scale = random_tensor({3}, 2), bias = random_tensor({3}, 3), mean = random_tensor({3}, 4);
    const Tensor var = random_tensor({3}, 5, 0.1f, 2.f);
    const float eps = 1e-3f;
    const ops::Attributes a = attrs({{"epsilon", real(eps)}});
    for (int opset : {7, 9, 14, 15}) {
      CAPTURE(opset);
      const Tensor y = run_op("BatchNormalization", a, {x, scale, bias, mean, var}, opset)[0];
      REQUIRE(y.shape() == x.shape());
      for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t c = (i / 10) % 3;
        const double want = (x.data<float>()[i] - mean.data<float>()[c]) / std::sqrt(var.data<float>()[c] + eps) *
                                scale.data<float>()[c] +
                            bias.data<float>()[c];
        CHECK(y.data<float>()[i] == doctest::Approx(want).epsilon(1e-5));
      }
    }
    // [N, C] input and an empty batch.
    const Tensor y2 = run_op("BatchNormalization", {}, {random_tensor({4, 3}, 6), scale, bias, mean, var}, 15)[0];
    CHECK(y2.shape() == Shape{4, 3});
    CHECK(
        run_op("BatchNormalization", {}, {Tensor(DType::Float32, {0, 3, 4}), scale, bias, mean, var}, 15)[0].shape() ==
        Shape{0, 3, 4});

    CHECK(error_code_of([&] {
            run_op("BatchNormalization", attrs({{"training_mode", integer(1)}}), {x, scale, bias, mean, var}, 14);
          }) == ErrorCode::Unsupported);
    CHECK(error_code_of([&] {
            run_op("BatchNormalization", {}, {x, scale, bias, mean, var}, 15, 3);
          }) == ErrorCode::Unsupported);
    CHECK(error_code_of([&] {
            run_op("BatchNormalization", attrs({{"spatial", integer(0)}}), {x, scale, bias, mean, var}, 7);
          }) == ErrorCode::Unsupported);
    CHECK(error_code_of([&] {
            run_op("BatchNormalization", {}, {x, random_tensor({4}, 1), bias, mean, var}, 15);
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("BatchNormalization", {}, {x, scale, bias, mean}, 15);
          }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("LayerNormalization: axes, Scale/B broadcasting, Mean and InvStdDev outputs") {
    const Tensor x = random_tensor({2, 3, 4}, 7, -3.f, 3.f);
    struct Case {
      int64_t axis;
      Shape scale, bias;  // empty bias shape with has_bias=false = no B
      bool has_bias;
    };
    const Case cases[] = {
        {-1, {4}, {4}, true},   {2, {4}, {}, false},     {1, {3, 4}, {3, 4}, true},
        {1, {1, 4}, {4}, true}, {-2, {4}, {3, 1}, true}, {0, {2, 3, 4}, {1}, true},
    };
    uint32_t seed = 70;
    for (const Case& c : cases) {
      CAPTURE(c.axis);
      CAPTURE(shape_str(c.scale));
      const Tensor scale = random_tensor(c.scale, seed++), bias = random_tensor(c.bias, seed++);
      const auto outs = run_op("LayerNormalization", attrs({{"axis", integer(c.axis)}, {"epsilon", real(1e-3f)}}),
                               {x, scale, c.has_bias ? bias : Tensor{}}, 17, 3);
      const int axis = static_cast<int>(c.axis < 0 ? c.axis + 3 : c.axis);
      const Shape norm(x.shape().begin() + axis, x.shape().end());
      const int64_t n = shape_numel(norm), rows = x.numel() / n;
      Shape stats = x.shape();
      std::fill(stats.begin() + axis, stats.end(), 1);
      REQUIRE(outs[0].shape() == x.shape());
      REQUIRE(outs[1].shape() == stats);
      REQUIRE(outs[2].shape() == stats);
      for (int64_t r = 0; r < rows; ++r) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; ++i) mean += x.data<float>()[r * n + i];
        mean /= n;
        for (int64_t i = 0; i < n; ++i) var += std::pow(x.data<float>()[r * n + i] - mean, 2);
        const double inv_std = 1 / std::sqrt(var / n + 1e-3);
        CHECK(outs[1].data<float>()[r] == doctest::Approx(mean).epsilon(1e-5));
        CHECK(outs[2].data<float>()[r] == doctest::Approx(inv_std).epsilon(1e-5));
        for (int64_t i = 0; i < n; ++i) {
          const std::vector<int64_t> idx = unravel(i, norm);
          double want =
              (x.data<float>()[r * n + i] - mean) * inv_std * scale.data<float>()[broadcast_offset(c.scale, idx)];
          if (c.has_bias) want += bias.data<float>()[broadcast_offset(c.bias, idx)];
          CHECK(outs[0].data<float>()[r * n + i] == doctest::Approx(want).epsilon(1e-5));
        }
      }
    }
    // Only Y requested.
    const auto y = run_op("LayerNormalization", {}, {x, random_tensor({4}, 1)}, 17);
    CHECK(y.size() == 1);
    CHECK(error_code_of([&] {
            run_op("LayerNormalization", attrs({{"axis", integer(4)}}), {x, random_tensor({4}, 1)}, 17);
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("LayerNormalization", {}, {x, random_tensor({3}, 1)}, 17);
          }) == ErrorCode::InvalidInput);
    CHECK(error_code_of([&] {
            run_op("LayerNormalization", attrs({{"axis", integer(2)}}), {x, random_tensor({3, 4}, 1)}, 17);
          }) == ErrorCode::InvalidInput);
    CHECK(run_op("LayerNormalization", {}, {Tensor(DType::Float32, {0, 4}), random_tensor({4}, 1)}, 17)[0].shape() ==
          Shape{0, 4});
  }
}
