// The ops of ops/loss.cpp (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss),
// ops/einsum.cpp (Einsum) and MeanVarianceNormalization (ops/norm_extra.cpp): values
// checked by hand or pasted from torch/numpy, attribute variants, and the refusals.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ops/op.hpp"
#include "tests/ops/tensor_op_runner.hpp"
#include "tests/test_util.hpp"

using namespace nnjit;
using namespace nnjit::testing::tensor_ops;

namespace {

// Every element of t (float32 or float64) within 1e-5 of want.
void check_close(const Tensor& t, const std::vector<double>& want) {
  REQUIRE(t.numel() == static_cast<int64_t>(want.size()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    CAPTURE(i);
    const double v = t.dtype() == DType::Float64 ? t.data<double>()[i] : t.data<float>()[i];
    CHECK(v == doctest::Approx(want[static_cast<std::size_t>(i)]).epsilon(1e-5));
  }
}

Tensor f64(const std::vector<double>& v, Shape s) { return Tensor::from(v, std::move(s)); }

// 0, 1, 2, ... as float64, minus `shift`.
Tensor iota_f64(Shape s, double shift = 0) {
  Tensor t(DType::Float64, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = static_cast<double>(i) - shift;
  return t;
}

std::string message_of(ErrorCode want, const std::function<void()>& f) {
  std::string m;
  CHECK(error_of(f, &m) == want);
  return m;
}

// Log-probabilities [2, 3] for NegativeLogLikelihoodLoss, targets {0, 2}, weights.
const Tensor kLogp = f32({-1.f, -2.f, -0.5f, -3.f, -0.25f, -4.f}, {2, 3});
const Tensor kWeight = f32({0.5f, 2.f, 1.5f}, {3});

}  // namespace

TEST_SUITE("ops") {

// ---- NegativeLogLikelihoodLoss -------------------------------------------------------------

TEST_CASE("NegativeLogLikelihoodLoss: none, sum and mean, with and without weights") {
  const Tensor t = i64({0, 2}, {2});
  Tensor y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().s("reduction", "none"), {kLogp, t});
  CHECK(y.shape() == Shape{2});
  check_close(y, {1, 4});
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().s("reduction", "sum"), {kLogp, t});
  CHECK(y.shape() == Shape{});
  check_close(y, {5});
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs(), {kLogp, t});  // mean is the default
  check_close(y, {2.5});
  // Weighted: w0 = 0.5 and w2 = 1.5 give losses 0.5 and 6; the mean divides by 0.5 + 1.5.
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().s("reduction", "none"), {kLogp, t, kWeight});
  check_close(y, {0.5, 6});
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().s("reduction", "sum"), {kLogp, t, kWeight});
  check_close(y, {6.5});
  y = run_op("NegativeLogLikelihoodLoss", 12, Attrs().s("reduction", "mean"), {kLogp, t, kWeight});
  check_close(y, {6.5 / 2});
  // int32 targets read the same.
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().s("reduction", "none"), {kLogp, i32({0, 2}, {2})});
  check_close(y, {1, 4});
}

TEST_CASE("NegativeLogLikelihoodLoss: [N, C, d1, d2] and ignore_index, in or out of [0, C)") {
  // x[n, c, d1, d2] = -(c + 1) - 10 * (d1 * 2 + d2): the target picks c at each (d1, d2).
  Tensor x(DType::Float32, {1, 3, 2, 2});
  for (int c = 0; c < 3; ++c)
    for (int d = 0; d < 4; ++d) x.data<float>()[c * 4 + d] = static_cast<float>(-(c + 1) - 10 * d);
  const Tensor t = i64({2, 0, 1, 1}, {1, 2, 2});
  Tensor y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().s("reduction", "none"), {x, t});
  CHECK(y.shape() == Shape{1, 2, 2});
  check_close(y, {3, 11, 22, 32});
  // ignore_index 1 drops the last two: their loss is 0 and the mean counts two targets.
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().s("reduction", "none").i("ignore_index", 1), {x, t});
  check_close(y, {3, 11, 0, 0});
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().i("ignore_index", 1), {x, t});
  check_close(y, {7});
  // With weights the mean divides by the weights of the targets kept: (1.5*3 + 0.5*11) / 2.
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().i("ignore_index", 1), {x, t, kWeight});
  check_close(y, {(1.5 * 3 + 0.5 * 11) / 2});
  // An ignore_index outside [0, C) lets that value through where it is not a class.
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().s("reduction", "sum").i("ignore_index", -1),
             {x, i64({2, -1, 1, -1}, {1, 2, 2})});
  check_close(y, {3 + 22});
  // Every target ignored: the mean is 0 / 0.
  y = run_op("NegativeLogLikelihoodLoss", 13, Attrs().i("ignore_index", 1), {x, i64({1, 1, 1, 1}, {1, 2, 2})});
  CHECK(std::isnan(y.data<float>()[0]));
}

TEST_CASE("NegativeLogLikelihoodLoss refuses bad targets, shapes, attributes and types") {
  const Tensor t = i64({0, 3}, {2});
  std::string m = message_of(ErrorCode::InvalidInput, [&] {
    run_op("NegativeLogLikelihoodLoss", 13, Attrs(), {kLogp, t});
  });
  CHECK(m.find("target 3") != std::string::npos);
  CHECK(m.find("[0, 3)") != std::string::npos);
  m = message_of(ErrorCode::InvalidInput, [&] {
    run_op("NegativeLogLikelihoodLoss", 13, Attrs().i("ignore_index", 3), {kLogp, i64({-1, 3}, {2})});
  });
  CHECK(m.find("target -1") != std::string::npos);
  CHECK(m.find("ignore_index 3") != std::string::npos);
  m = message_of(ErrorCode::InvalidInput, [&] {
    run_op("NegativeLogLikelihoodLoss", 13, Attrs().s("reduction", "max"), {kLogp, i64({0, 1}, {2})});
  });
  CHECK(m.find("reduction") != std::string::npos);
  CHECK(error_of([&] {
          run_op("NegativeLogLikelihoodLoss", 13, Attrs(), {kLogp, i64({0, 1, 2}, {3})});
        }) == ErrorCode::InvalidInput);  // target is not [N]
  CHECK(error_of([&] {
          run_op("NegativeLogLikelihoodLoss", 13, Attrs(), {kLogp, i64({0, 1}, {2, 1})});
        }) == ErrorCode::InvalidInput);
  CHECK(error_of([&] {
          run_op("NegativeLogLikelihoodLoss", 13, Attrs(), {kLogp, i64({0, 1}, {2}), f32({1, 1}, {2})});
        }) == ErrorCode::InvalidInput);  // weight is not [C]
  CHECK(error_of([&] {
          run_op("NegativeLogLikelihoodLoss", 13, Attrs(), {f32({1, 2}, {2}), i64({0, 1}, {2})});
        }) == ErrorCode::InvalidInput);  // input of rank 1
  CHECK(error_of([&] {
          run_op("NegativeLogLikelihoodLoss", 13, Attrs(), {kLogp, f32({0, 1}, {2})});
        }) == ErrorCode::InvalidInput);  // float targets
  CHECK(error_of([&] {
          run_op("NegativeLogLikelihoodLoss", 13, Attrs(), {iota_f64({2, 3}), i64({0, 1}, {2})});
        }) == ErrorCode::Unsupported);
}

// ---- SoftmaxCrossEntropyLoss ---------------------------------------------------------------

TEST_CASE("SoftmaxCrossEntropyLoss matches torch's cross_entropy, log_prob included") {
  const Tensor x = f32({1.f, 2.f, 0.5f, 0.f, -1.f, 3.f}, {2, 3});
  const Tensor t = i64({0, 2}, {2});
  // torch.nn.functional.cross_entropy(x, t, weight=w, reduction=...)
  std::vector<Tensor> y =
      run_op_all("SoftmaxCrossEntropyLoss", 13, Attrs().s("reduction", "none"), {x, t, kWeight}, {.num_outputs = 2});
  check_close(y[0], {0.73218441, 0.09882587});
  CHECK(y[1].shape() == Shape{2, 3});
  check_close(y[1], {-1.46436882, -0.46436879, -1.96436882, -3.06588387, -4.06588411, -0.06588391});
  check_close(run_op("SoftmaxCrossEntropyLoss", 13, Attrs(), {x, t, kWeight}), {0.41550514});
  check_close(run_op("SoftmaxCrossEntropyLoss", 12, Attrs().s("reduction", "sum"), {x, t, kWeight}), {0.83101028});

  // [N, C, d1] with ignore_index: torch's cross_entropy(x3, t3, ignore_index=0).
  const Tensor x3 = f32({1.f, 0.f, 2.f, 1.f, 0.5f, -1.f}, {1, 3, 2});
  const Tensor t3 = i64({1, 0}, {1, 2});
  check_close(run_op("SoftmaxCrossEntropyLoss", 13, Attrs().s("reduction", "none"), {x3, t3}),
              {0.46436879, 1.40760589});
  check_close(run_op("SoftmaxCrossEntropyLoss", 13, Attrs().i("ignore_index", 0), {x3, t3}), {0.46436879});
}

TEST_CASE("SoftmaxCrossEntropyLoss refuses what NegativeLogLikelihoodLoss refuses") {
  const Tensor x = f32({1.f, 2.f, 0.5f, 0.f, -1.f, 3.f}, {2, 3});
  const std::string m = message_of(ErrorCode::InvalidInput, [&] {
    run_op("SoftmaxCrossEntropyLoss", 13, Attrs(), {x, i64({0, 5}, {2})});
  });
  CHECK(m.find("target 5") != std::string::npos);
  CHECK(error_of([&] {
          run_op("SoftmaxCrossEntropyLoss", 13, Attrs(), {x, i64({0}, {1})});
        }) == ErrorCode::InvalidInput);
  CHECK(error_of([&] {
          run_op("SoftmaxCrossEntropyLoss", 13, Attrs().s("reduction", "avg"), {x, i64({0, 1}, {2})});
        }) == ErrorCode::InvalidInput);
  // NegativeLogLikelihoodLoss has one output, SoftmaxCrossEntropyLoss two.
  CHECK(error_of([&] {
          run_op_all("NegativeLogLikelihoodLoss", 13, Attrs(), {x, i64({0, 1}, {2})}, {.num_outputs = 2});
        }) == ErrorCode::InvalidInput);
  CHECK(error_of([&] {
          run_op_all("SoftmaxCrossEntropyLoss", 13, Attrs(), {x, i64({0, 1}, {2})}, {.num_outputs = 3});
        }) == ErrorCode::InvalidInput);
}

// ---- MeanVarianceNormalization -------------------------------------------------------------

TEST_CASE("MeanVarianceNormalization: default axes [0, 2, 3], other axes, zero variance") {
  // Channel 0 holds {1, 3, 5, 7} over (n, w): mean 4, std sqrt(5); channel 1 is constant.
  const Tensor x = f32({1.f, 3.f, 2.f, 2.f, 5.f, 7.f, 2.f, 2.f}, {2, 2, 1, 2});
  Tensor y = run_op("MeanVarianceNormalization", 13, Attrs(), {x});
  CHECK(y.shape() == x.shape());
  const double s = std::sqrt(5.0);
  check_close(y, {-3 / s, -1 / s, 0, 0, 1 / s, 3 / s, 0, 0});
  // axes [-1] on [2, 2]: each row on its own.
  y = run_op("MeanVarianceNormalization", 9, Attrs().ints("axes", {-1}), {f32({1.f, 3.f, 10.f, 14.f}, {2, 2})});
  check_close(y, {-1, 1, -1, 1});
  // axes [0] on [2, 2]: each column.
  y = run_op("MeanVarianceNormalization", 13, Attrs().ints("axes", {0}), {f32({1.f, 3.f, 10.f, 14.f}, {2, 2})});
  check_close(y, {-1, -1, 1, 1});
  CHECK(run_op("MeanVarianceNormalization", 13, Attrs(), {f32({}, {0, 2, 1, 1})}).shape() == Shape{0, 2, 1, 1});
}

TEST_CASE("MeanVarianceNormalization refuses axes out of range or repeated, and other types") {
  const Tensor x = f32({1.f, 3.f, 10.f, 14.f}, {2, 2});
  CHECK(error_of([&] { run_op("MeanVarianceNormalization", 13, Attrs(), {x}); }) ==
        ErrorCode::InvalidInput);  // the default axes need rank 4
  CHECK(error_of([&] {
          run_op("MeanVarianceNormalization", 13, Attrs().ints("axes", {0, -2}), {x});
        }) == ErrorCode::InvalidInput);
  CHECK(error_of([&] { run_op("MeanVarianceNormalization", 13, Attrs().ints("axes", {2}), {x}); }) ==
        ErrorCode::InvalidInput);
  CHECK(error_of([&] {
          run_op("MeanVarianceNormalization", 13, Attrs().ints("axes", {0}), {i64({1, 2}, {2})});
        }) == ErrorCode::Unsupported);
}

// ---- Einsum ------------------------------------------------------------------------------

TEST_CASE("Einsum: matmul, implicit output, transpose, sum, outer product (numpy's values)") {
  const Tensor a = iota_f64({2, 3}), b = iota_f64({3, 4}, 5);
  Tensor y = run_op("Einsum", 12, Attrs().s("equation", "ij,jk->ik"), {a, b});
  CHECK(y.shape() == Shape{2, 4});
  check_close(y, {5, 8, 11, 14, -4, 8, 20, 32});
  check_close(run_op("Einsum", 12, Attrs().s("equation", " ij , jk "), {a, b}), {5, 8, 11, 14, -4, 8, 20, 32});
  y = run_op("Einsum", 12, Attrs().s("equation", "ij->ji"), {a});
  CHECK(y.shape() == Shape{3, 2});
  check_close(y, {0, 3, 1, 4, 2, 5});
  y = run_op("Einsum", 12, Attrs().s("equation", "ij->"), {a});
  CHECK(y.shape() == Shape{});
  check_close(y, {15});
  check_close(run_op("Einsum", 12, Attrs().s("equation", "i,j->ij"), {f64({1, 2}, {2}), f64({3, 4, 5}, {3})}),
              {3, 4, 5, 6, 8, 10});
  check_close(run_op("Einsum", 12, Attrs().s("equation", "i,i"), {f64({1, 2}, {2}), f64({3, 4}, {2})}), {11});
  // Implicit output: the letters seen once, in ASCII order (upper case first).
  y = run_op("Einsum", 12, Attrs().s("equation", "Ba,a"), {iota_f64({2, 3}), f64({1, 2, 3}, {3})});
  CHECK(y.shape() == Shape{2});
  check_close(y, {8, 26});
  CHECK(run_op("Einsum", 12, Attrs().s("equation", "ba,Ab"), {iota_f64({2, 3}), iota_f64({2, 2})}).shape() ==
        Shape{2, 3});
  // float32 two-operand products run as a batched matrix product; integers exactly.
  check_close(
      run_op("Einsum", 12, Attrs().s("equation", "ij,jk"), {f32({1, 2, 3, 4}, {2, 2}), f32({1, 2, 3, 4}, {2, 2})}),
      {7, 10, 15, 22});
  y = run_op("Einsum", 12, Attrs().s("equation", "ij,jk"), {i32({1, 2, 3, 4}, {2, 2}), i32({1, 2, 3, 4}, {2, 2})});
  CHECK(y.dtype() == DType::Int32);
  CHECK(std::vector<int32_t>(y.data<int32_t>(), y.data<int32_t>() + 4) == std::vector<int32_t>{7, 10, 15, 22});
  CHECK(ivals(run_op("Einsum", 12, Attrs().s("equation", "i->"), {i64({4, 5, 6}, {3})})) == std::vector<int64_t>{15});
  y = run_op("Einsum", 12, Attrs().s("equation", "i->"), {i32({2147483647, 1}, {2})});  // wraps, as numpy
  CHECK(y.data<int32_t>()[0] == -2147483647 - 1);
}

TEST_CASE("Einsum: diagonals, traces, ellipsis with broadcasting, empty dims") {
  const Tensor m = iota_f64({3, 3});
  check_close(run_op("Einsum", 12, Attrs().s("equation", "ii"), {m}), {12});
  check_close(run_op("Einsum", 12, Attrs().s("equation", "ii->i"), {m}), {0, 4, 8});
  check_close(run_op("Einsum", 12, Attrs().s("equation", "iij->j"), {iota_f64({2, 2, 2})}), {6, 8});
  Tensor y = run_op("Einsum", 12, Attrs().s("equation", "...ii ->...i"), {iota_f64({2, 3, 3})});
  CHECK(y.shape() == Shape{2, 3});
  check_close(y, {0, 4, 8, 9, 13, 17});
  check_close(run_op("Einsum", 12, Attrs().s("equation", "i...->..."), {iota_f64({2, 3})}), {3, 5, 7});
  // "..." of [2, 1] and [3] broadcast to [2, 3].
  y = run_op("Einsum", 12, Attrs().s("equation", "...ij,...jk->...ik"),
             {iota_f64({2, 1, 2, 2}), iota_f64({3, 2, 2}, 3)});
  CHECK(y.shape() == Shape{2, 3, 2, 2});
  check_close(y, {-1, 0, -9, -4, 3, 4, 11, 16, 7, 8, 31, 36, -17, -8, -25, -12, 19, 28, 27, 40, 55, 64, 79, 92});
  // "..." standing for no dims; a summed dim of size 0 gives zeros.
  check_close(run_op("Einsum", 12, Attrs().s("equation", "...ij->ij"), {iota_f64({1, 2})}), {0, 1});
  check_close(run_op("Einsum", 12, Attrs().s("equation", "ij,jk->ik"), {iota_f64({2, 0}), iota_f64({0, 2})}),
              {0, 0, 0, 0});
}

TEST_CASE("Einsum: float32 pairs run as batched matrix products, equal to the loop (float64) on any equation") {
  struct Case {
    const char* equation;
    Shape a, b;
  };
  const Case cases[] = {
      {"bhid,bhjd->bhij", {2, 3, 5, 4}, {2, 3, 6, 4}},  // attention scores
      {"bhij,bhjd->bhid", {2, 3, 5, 6}, {2, 3, 6, 4}},  // attention output
      {"ij,kj->ik", {3, 7}, {5, 7}},                    // B transposed
      {"ij,jk", {4, 3}, {3, 2}},                        // implicit output
      {"...ij,...jk->...ik", {2, 1, 3, 4}, {5, 4, 2}},  // broadcast batch
      {"ij,ij->ij", {3, 4}, {3, 4}},                    // no summed letter
      {"ij,ij->", {3, 4}, {3, 4}},                      // no output letter
      {"ii,ij->j", {3, 3}, {3, 5}},                     // a diagonal
      {"ij,j->i", {4, 3}, {3}},                         // matrix-vector
      {"i,j->ij", {3}, {4}},                            // outer product
      {"bij,bjk->bki", {2, 3, 4}, {2, 4, 5}},           // output transposed
      {"ij,jk->ik", {0, 3}, {3, 2}},                    // empty rows
      {"ij,jk->ik", {2, 0}, {0, 3}},                    // empty sum: zeros
      {"ij,k->i", {2, 3}, {4}},                         // a sum over one operand alone: the loop
  };
  uint32_t seed = 11;
  for (const Case& c : cases) {
    CAPTURE(c.equation);
    const Tensor a32 = testing::random_tensor(c.a, seed++), b32 = testing::random_tensor(c.b, seed++);
    auto widen = [](const Tensor& t) {
      Tensor w(DType::Float64, t.shape());
      for (int64_t i = 0; i < t.numel(); ++i) w.data<double>()[i] = t.data<float>()[i];
      return w;
    };
    const Tensor y32 = run_op("Einsum", 12, Attrs().s("equation", c.equation), {a32, b32});
    const Tensor y64 = run_op("Einsum", 12, Attrs().s("equation", c.equation), {widen(a32), widen(b32)});
    REQUIRE(y32.shape() == y64.shape());
    check_close(y32, std::vector<double>(y64.data<double>(), y64.data<double>() + y64.numel()));
  }
}

TEST_CASE("Einsum refuses malformed equations and operands that do not fit them") {
  const Tensor a = iota_f64({2, 3}), b = iota_f64({3, 4});
  auto fails_with = [&](const char* eq, std::vector<Tensor> in, const char* says) {
    CAPTURE(eq);
    const std::string m =
        message_of(ErrorCode::InvalidInput, [&] { run_op("Einsum", 12, Attrs().s("equation", eq), in); });
    CAPTURE(m);
    CHECK(m.find(says) != std::string::npos);
  };
  fails_with("ij,jk->ik", {a}, "names 2 operands, the node has 1 inputs");
  fails_with("ijk,jk->ik", {a, b}, "has rank 2 but its subscripts name 3 dims");
  fails_with("ij...k,jk", {a, b}, "at least 3 dims");
  fails_with("ij,kj->ik", {a, b}, "subscript 'j' has size 3 in operand 0");
  fails_with("ii", {a}, "subscript 'i' has size 2");
  fails_with("i.j", {a}, "not part of '...'");
  fails_with("......", {a}, "'...' twice");
  fails_with("ij->i->j", {a}, "unexpected character '-'");
  fails_with("i2", {a}, "unexpected character '2'");
  fails_with("ij->ik", {a}, "output subscript 'k' names no operand dim");
  fails_with("ij->ii", {a}, "output subscript 'i' appears twice");
  fails_with("...j->j", {a}, "no '...' to put them in");
  fails_with("...ij,...jk", {iota_f64({2, 2, 3}), iota_f64({3, 3, 4})}, "do not broadcast");
  CHECK(error_of([&] { run_op("Einsum", 12, Attrs(), {a}); }) == ErrorCode::InvalidInput);  // no equation
  CHECK(error_of([&] {
          run_op("Einsum", 12, Attrs().s("equation", "ij,jk"), {a, Tensor(DType::Float32, {3, 4})});
        }) == ErrorCode::InvalidInput);  // mixed types
  CHECK(error_of([&] { run_op("Einsum", 12, Attrs().s("equation", "i"), {Tensor(DType::Int8, {2})}); }) ==
        ErrorCode::Unsupported);
}

}  // TEST_SUITE("ops")
