// Shape rules and references of the shape and data-movement ops (ops/tensor_*.cpp).
// Resize and Pad are in test_tensor_resize_pad.cpp.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>

#include "tensor_op_runner.hpp"

using namespace nnjit;
using namespace nnjit::testing::tensor_ops;

namespace {
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("Flatten splits the dims at axis, negative axes count from the end") {
    const Tensor x = iota_f32({2, 3, 4});
    CHECK(run_op("Flatten", 13, Attrs(), {x}).shape() == Shape{2, 12});
    CHECK(run_op("Flatten", 13, Attrs().i("axis", -1), {x}).shape() == Shape{6, 4});
    CHECK(run_op("Flatten", 13, Attrs().i("axis", 0), {x}).shape() == Shape{1, 24});
    const Tensor y = run_op("Flatten", 13, Attrs().i("axis", 3), {x});
    CHECK(y.shape() == Shape{24, 1});
    CHECK(fvals(y) == fvals(x));
    CHECK(error_of([&] { run_op("Flatten", 13, Attrs().i("axis", 4), {x}); }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("Reshape: 0 copies a dim, -1 is inferred, allowzero keeps real zeros") {
    const Tensor x = iota_f32({2, 3, 4});
    const Tensor y = run_op("Reshape", 13, Attrs(), {x, i64({0, -1})});
    CHECK(y.shape() == Shape{2, 12});
    CHECK(fvals(y) == fvals(x));
    CHECK(run_op("Reshape", 13, Attrs(), {x, i64({-1, 0, 2})}).shape() == Shape{4, 3, 2});
    CHECK(run_op("Reshape", 13, Attrs(), {x, i64({24})}).shape() == Shape{24});

    const Tensor empty(DType::Float32, {0, 3});
    // Without allowzero the 0 copies the input's dim 1 (3): [3,3] holds 9, not 0, elements.
    CHECK(error_of([&] { run_op("Reshape", 14, Attrs(), {empty, i64({3, 0})}); }) == ErrorCode::InvalidInput);
    CHECK(run_op("Reshape", 14, Attrs().i("allowzero", 1), {empty, i64({3, 0})}).shape() == Shape{3, 0});
    // allowzero only exists from opset 14.
    CHECK(error_of([&] {
            run_op("Reshape", 13, Attrs().i("allowzero", 1), {empty, i64({3, 0})});
          }) == ErrorCode::InvalidInput);
    CHECK(run_op("Reshape", 14, Attrs(), {empty, i64({0, 3})}).shape() == Shape{0, 3});
  }

  TEST_CASE("Reshape refuses bad shapes, naming the node") {
    const Tensor x = iota_f32({2, 3});
    std::string msg;
    CHECK(error_of([&] { run_op("Reshape", 13, Attrs(), {x, i64({4, 2})}); }, &msg) == ErrorCode::InvalidInput);
    CHECK(msg.find("node 'n1' (Reshape)") != std::string::npos);
    CHECK(msg.find("[2,3]") != std::string::npos);
    CHECK(error_of([&] { run_op("Reshape", 13, Attrs(), {x, i64({-1, -1})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Reshape", 13, Attrs(), {x, i64({-1, 4})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Reshape", 13, Attrs(), {x, i64({2, -2})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Reshape", 13, Attrs(), {x, i64({1, 1, 0})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Reshape", 13, Attrs(), {x, f32({6})}); }) == ErrorCode::InvalidInput);
    // A shape computed at run time cannot be planned.
    CHECK(error_of([&] { run_op("Reshape", 13, Attrs(), {x, i64({6})}, {{false, true}}); }) == ErrorCode::Unsupported);
  }

  TEST_CASE("Transpose: default reverses the dims; any element size moves") {
    const Tensor x = iota_f32({2, 3});
    const Tensor y = run_op("Transpose", 13, Attrs(), {x});
    CHECK(y.shape() == Shape{3, 2});
    CHECK(fvals(y) == std::vector<float>{0, 3, 1, 4, 2, 5});

    const Tensor z = run_op("Transpose", 13, Attrs().ints("perm", {1, 0, 2}), {iota_f32({2, 3, 4})});
    CHECK(z.shape() == Shape{3, 2, 4});
    CHECK(z.data<float>()[1 * 8 + 1 * 4 + 3] == 1 * 12 + 1 * 4 + 3);  // z[1][1][3] = x[1][1][3]

    Tensor h(DType::Float16, {2, 2});
    auto* hp = static_cast<uint16_t*>(h.raw());
    for (uint16_t i = 0; i < 4; ++i) hp[i] = static_cast<uint16_t>(0x3c00 + i);
    const Tensor ht = run_op("Transpose", 13, Attrs(), {h});
    const auto* htp = static_cast<const uint16_t*>(ht.raw());
    CHECK(ht.dtype() == DType::Float16);
    CHECK((htp[0] == 0x3c00 && htp[1] == 0x3c02 && htp[2] == 0x3c01 && htp[3] == 0x3c03));

    CHECK(run_op("Transpose", 13, Attrs(), {Tensor(DType::Float32, {0, 3})}).shape() == Shape{3, 0});
    CHECK(error_of([&] { run_op("Transpose", 13, Attrs().ints("perm", {0, 0}), {x}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Transpose", 13, Attrs().ints("perm", {0}), {x}); }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("Concat joins along a negative axis and skips empty inputs") {
    const Tensor a = f32({0, 1}, {2, 1});
    const Tensor b = f32({10, 11, 12, 13}, {2, 2});
    const Tensor e(DType::Float32, {2, 0});
    const Tensor y = run_op("Concat", 13, Attrs().i("axis", -1), {a, e, b});
    CHECK(y.shape() == Shape{2, 3});
    CHECK(fvals(y) == std::vector<float>{0, 10, 11, 1, 12, 13});
    CHECK(ivals(run_op("Concat", 13, Attrs().i("axis", 0), {i64({1}), i64({2, 3})})) == std::vector<int64_t>{1, 2, 3});
    CHECK(error_of([&] { run_op("Concat", 13, Attrs().i("axis", 0), {a, b}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Concat", 13, Attrs(), {a, a}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("Concat", 13, Attrs().i("axis", 0), {a, i64({1, 2}, {2, 1})});
          }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("Split: attribute before opset 13, input from 13, equal parts when absent") {
    const Tensor x = iota_f32({3, 2});
    auto parts = run_op_all("Split", 11, Attrs().ints("split", {1, 2}), {x}, {{}, 2});
    CHECK(parts[0].shape() == Shape{1, 2});
    CHECK(fvals(parts[1]) == std::vector<float>{2, 3, 4, 5});

    parts = run_op_all("Split", 13, Attrs().i("axis", -1), {x, i64({1, 1})}, {{}, 2});
    CHECK(fvals(parts[0]) == std::vector<float>{0, 2, 4});
    CHECK(fvals(parts[1]) == std::vector<float>{1, 3, 5});

    parts = run_op_all("Split", 13, Attrs(), {f32({1, 2, 3, 4, 5, 6})}, {{}, 3});
    CHECK(fvals(parts[2]) == std::vector<float>{5, 6});
    parts = run_op_all("Split", 13, Attrs(), {f32({1, 2, 3}), i64({0, 3})}, {{}, 2});
    CHECK(parts[0].shape() == Shape{0});

    CHECK(error_of([&] { run_op_all("Split", 13, Attrs(), {f32({1, 2, 3})}, {{}, 2}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op_all("Split", 13, Attrs(), {f32({1, 2, 3}), i64({1, 1})}, {{}, 2});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op_all("Split", 13, Attrs(), {f32({1, 2}), i64({1, 1})}, {{false, true}, 2});
          }) == ErrorCode::Unsupported);
  }

  TEST_CASE("Slice: negative steps, clamping of out-of-range starts and ends") {
    const Tensor x = iota_f32({10});
    auto slice = [&](std::vector<int64_t> s, std::vector<int64_t> e, std::vector<int64_t> st) {
      return fvals(run_op("Slice", 13, Attrs(), {x, i64(s), i64(e), i64({0}), i64(st)}));
    };
    CHECK(slice({8}, {2}, {-2}) == std::vector<float>{8, 6, 4});
    CHECK(slice({-1}, {kMin}, {-1}) == std::vector<float>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
    CHECK(slice({20}, {0}, {-3}) == std::vector<float>{9, 6, 3});
    CHECK(slice({kMax}, {-12}, {-4}) == std::vector<float>{9, 5, 1});
    CHECK(slice({-100}, {kMax}, {3}) == std::vector<float>{0, 3, 6, 9});
    CHECK(slice({5}, {3}, {1}).empty());
    CHECK(slice({3}, {5}, {-1}).empty());
    CHECK(slice({-3}, {kMax}, {kMax}) == std::vector<float>{7});

    // 2-D, a negative axis, default steps.
    const Tensor m = iota_f32({3, 4});
    const Tensor y = run_op("Slice", 13, Attrs(), {m, i64({1}), i64({kMax}), i64({-1}), i64({2})});
    CHECK(y.shape() == Shape{3, 2});
    CHECK(fvals(y) == std::vector<float>{1, 3, 5, 7, 9, 11});
    CHECK(fvals(run_op("Slice", 13, Attrs(), {m, i64({1, 1}), i64({3, 3})})) == std::vector<float>{5, 6, 9, 10});
    CHECK(fvals(run_op("Slice", 13, Attrs(), {m, i32({2}, {1}), i32({1}, {1}), Tensor(), i32({-1}, {1})})) ==
          std::vector<float>{8, 9, 10, 11});

    // Opset < 10 takes attributes; the spec's example 2.
    const Tensor d = f32({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});
    const Tensor z = run_op("Slice", 9, Attrs().ints("starts", {0, 1}).ints("ends", {-1, 1000}), {d});
    CHECK(z.shape() == Shape{1, 3});
    CHECK(fvals(z) == std::vector<float>{2, 3, 4});
    CHECK(run_op("Slice", 9, Attrs().ints("starts", {1}).ints("ends", {2}).ints("axes", {1}), {d}).shape() ==
          Shape{2, 1});
  }

  TEST_CASE("Slice of empty tensors and bad arguments") {
    const Tensor e(DType::Float32, {0, 3});
    CHECK(run_op("Slice", 13, Attrs(), {e, i64({-1}), i64({kMin}), i64({0}), i64({-1})}).shape() == Shape{0, 3});
    CHECK(run_op("Slice", 13, Attrs(), {e, i64({0}), i64({2}), i64({1})}).shape() == Shape{0, 2});
    const Tensor x = iota_f32({4});
    CHECK(error_of([&] {
            run_op("Slice", 13, Attrs(), {x, i64({0}), i64({2}), i64({0}), i64({0})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("Slice", 13, Attrs(), {iota_f32({2, 2}), i64({0, 0}), i64({1, 1}), i64({0, -2})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("Slice", 13, Attrs(), {x, i64({0}), i64({2}), i64({1})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Slice", 13, Attrs(), {x, i64({0, 1}), i64({2})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("Slice", 13, Attrs(), {x, i64({0}), i64({2})}, {{false, true}});
          }) == ErrorCode::Unsupported);
  }

  TEST_CASE("extreme integers neither overflow nor crash") {
  const Tensor x = iota_f32({10});
  CHECK(fvals(run_op("Slice", 13, Attrs(), {x, i64({kMax}), i64({kMin}), i64({0}), i64({kMin})})) ==
        std::vector<float>{9});
  CHECK(fvals(run_op("Slice", 13, Attrs(), {x, i64({kMin}), i64({kMax}), i64({0}), i64({kMax})})) ==
        std::vector<float>{0});
  CHECK(ivals(run_op("Range", 11, Attrs(), {i64({kMin + 1}, {}), i64({kMax}, {}), i64({int64_t{1} << 62}, {})})) ==
        std::vector<int64_t>{kMin + 1, kMin + 1 + (int64_t{1} << 62), 1, 1 + (int64_t{1} << 62)});
  CHECK(error_of([&] { run_op("Pad", 13, Attrs(), {x, i64({kMin, 0})}); }) == ErrorCode::InvalidInput);
  CHECK(error_of([&] { run_op("Pad", 13, Attrs(), {x, i64({kMax, kMax})}); }) == ErrorCode::InvalidInput);
  CHECK(error_of([&] { run_op_all("Split", 13, Attrs(), {x, i64({kMax, kMax})}, {{}, 2}); }) ==
        ErrorCode::InvalidInput);
  CHECK(error_of([&] { run_op("Reshape", 13, Attrs(), {x, i64({kMax, kMax})}); }) == ErrorCode::InvalidInput);
  CHECK(error_of([&] { run_op("Tile", 13, Attrs(), {x, i64({kMax})}); }) == ErrorCode::InvalidInput);
  CHECK(error_of([&] { run_op("Expand", 13, Attrs(), {x, i64({kMax, kMax, 1})}); }) == ErrorCode::InvalidInput);
  CHECK(error_of([&] { run_op("Range", 11, Attrs(), {f32({0}, {}), f32({1}, {}), f32({1e-30f}, {})}); }) ==
        ErrorCode::InvalidInput);
}

TEST_CASE("Shape, with opset 15 start/end clamped to the rank") {
    const Tensor x(DType::Float32, {2, 3, 4});
    // The input need not be a constant: shapes are static.
    const RunOptions runtime{{true}};
    CHECK(ivals(run_op("Shape", 13, Attrs(), {x}, runtime)) == std::vector<int64_t>{2, 3, 4});
    CHECK(ivals(run_op("Shape", 15, Attrs().i("start", -1), {x}, runtime)) == std::vector<int64_t>{4});
    CHECK(ivals(run_op("Shape", 15, Attrs().i("end", -1), {x}, runtime)) == std::vector<int64_t>{2, 3});
    CHECK(ivals(run_op("Shape", 15, Attrs().i("start", -10).i("end", 10), {x}, runtime)) ==
          std::vector<int64_t>{2, 3, 4});
    CHECK(run_op("Shape", 15, Attrs().i("start", 2).i("end", 1), {x}, runtime).shape() == Shape{0});
    CHECK(ivals(run_op("Shape", 13, Attrs().i("start", 1), {x}, runtime)) == std::vector<int64_t>{2, 3, 4});
    CHECK(run_op("Shape", 13, Attrs(), {f32({5}, {})}).shape() == Shape{0});
  }

  TEST_CASE("Gather: negative and int32 indices, any axis, bool data") {
    const Tensor x = iota_f32({3, 2});
    const Tensor y = run_op("Gather", 13, Attrs(), {x, i64({-1, 0})});
    CHECK(y.shape() == Shape{2, 2});
    CHECK(fvals(y) == std::vector<float>{4, 5, 0, 1});

    const Tensor z = run_op("Gather", 13, Attrs().i("axis", -1), {x, i32({1, 1, 0}, {1, 3})});
    CHECK(z.shape() == Shape{3, 1, 3});
    CHECK(fvals(z) == std::vector<float>{1, 1, 0, 3, 3, 2, 5, 5, 4});

    CHECK(fvals(run_op("Gather", 13, Attrs().i("axis", 1), {x, i64({1}, {})})) == std::vector<float>{1, 3, 5});

    const bool flags[] = {true, false, false};
    const Tensor b = run_op("Gather", 13, Attrs(), {Tensor::from(flags, {3}), i64({2, 0})});
    CHECK(b.dtype() == DType::Bool);
    CHECK((!b.data<bool>()[0] && b.data<bool>()[1]));

    CHECK(run_op("Gather", 13, Attrs(), {x, i64({}, {0})}).shape() == Shape{0, 2});
    std::string msg;
    CHECK(error_of([&] { run_op("Gather", 13, Attrs(), {x, i64({3})}); }, &msg) == ErrorCode::InvalidInput);
    CHECK(msg.find("n1") != std::string::npos);
    CHECK(error_of([&] { run_op("Gather", 13, Attrs(), {x, i64({-4})}, {{false, true}}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Gather", 13, Attrs(), {x, f32({0})}); }) == ErrorCode::Unsupported);
    CHECK(error_of([&] { run_op("Gather", 13, Attrs().i("axis", 2), {x, i64({0})}); }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("Unsqueeze and Squeeze: axes attribute before opset 13, input from 13") {
    const Tensor x = f32({1, 2, 3});
    CHECK(run_op("Unsqueeze", 11, Attrs().ints("axes", {0, -1}), {x}).shape() == Shape{1, 3, 1});
    CHECK(run_op("Unsqueeze", 13, Attrs(), {x, i64({2, 0})}).shape() == Shape{1, 3, 1});
    CHECK(run_op("Unsqueeze", 13, Attrs(), {f32({7}, {}), i64({0})}).shape() == Shape{1});
    CHECK(fvals(run_op("Unsqueeze", 13, Attrs(), {x, i64({1})})) == std::vector<float>{1, 2, 3});
    CHECK(error_of([&] { run_op("Unsqueeze", 13, Attrs(), {x, i64({0, -3})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Unsqueeze", 13, Attrs(), {x, i64({3})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Unsqueeze", 11, Attrs(), {x}); }) == ErrorCode::InvalidInput);

    const Tensor y(DType::Float32, {1, 3, 1});
    CHECK(run_op("Squeeze", 13, Attrs(), {y}).shape() == Shape{3});
    CHECK(run_op("Squeeze", 13, Attrs(), {y, i64({-1})}).shape() == Shape{1, 3});
    CHECK(run_op("Squeeze", 11, Attrs().ints("axes", {0}), {y}).shape() == Shape{3, 1});
    CHECK(run_op("Squeeze", 13, Attrs(), {Tensor(DType::Float32, {1, 0})}).shape() == Shape{0});
    CHECK(error_of([&] { run_op("Squeeze", 13, Attrs(), {y, i64({1})}); }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("Constant: value tensor and the scalar/list attributes") {
    CHECK(fvals(run_op("Constant", 13, Attrs().t("value", f32({1, 2}, {2, 1})), {})) == std::vector<float>{1, 2});
    CHECK(run_op("Constant", 13, Attrs().t("value", f32({1, 2}, {2, 1})), {}).shape() == Shape{2, 1});
    const Tensor f = run_op("Constant", 13, Attrs().f("value_float", 2.5f), {});
    CHECK((f.shape().empty() && f.data<float>()[0] == 2.5f));
    CHECK(fvals(run_op("Constant", 13, Attrs().floats("value_floats", {1, 2, 3}), {})) == std::vector<float>{1, 2, 3});
    CHECK(ivals(run_op("Constant", 13, Attrs().i("value_int", 7), {})) == std::vector<int64_t>{7});
    CHECK(ivals(run_op("Constant", 13, Attrs().ints("value_ints", {4, 5}), {})) == std::vector<int64_t>{4, 5});
    CHECK(check_problems("Constant", 13, Attrs().other("sparse_value")).size() == 1);
    CHECK(check_problems("Constant", 13, Attrs().s("value_string", "x")).size() == 1);
    CHECK(check_problems("Constant", 13, Attrs().i("value_int", 1)).empty());
    CHECK(error_of([&] { run_op("Constant", 13, Attrs(), {}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Constant", 13, Attrs().i("value_int", 1).f("value_float", 1), {}); }) ==
          ErrorCode::InvalidInput);
  }

  TEST_CASE("ConstantOfShape: float zero by default, else the value's type") {
    const Tensor z = run_op("ConstantOfShape", 13, Attrs(), {i64({2, 3})});
    CHECK((z.dtype() == DType::Float32 && z.shape() == Shape{2, 3}));
    CHECK(fvals(z) == std::vector<float>(6, 0.f));
    const Tensor s = run_op("ConstantOfShape", 13, Attrs().t("value", i64({7}, {1})), {i64({}, {0})});
    CHECK((s.dtype() == DType::Int64 && s.shape().empty() && s.data<int64_t>()[0] == 7));
    CHECK(run_op("ConstantOfShape", 13, Attrs().t("value", f32({1})), {i64({4, 0})}).shape() == Shape{4, 0});
    CHECK(error_of([&] { run_op("ConstantOfShape", 13, Attrs(), {i64({2, -1})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("ConstantOfShape", 13, Attrs().t("value", f32({1, 2})), {i64({2})});
          }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("Expand broadcasts both ways") {
    const Tensor x = f32({1, 2, 3}, {3, 1});
    const Tensor y = run_op("Expand", 13, Attrs(), {x, i64({2, 1, 2})});
    CHECK(y.shape() == Shape{2, 3, 2});
    CHECK(fvals(y) == std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
    CHECK(run_op("Expand", 13, Attrs(), {x, i64({1})}).shape() == Shape{3, 1});
    CHECK(run_op("Expand", 13, Attrs(), {x, i64({3, 0})}).shape() == Shape{3, 0});
    CHECK(error_of([&] { run_op("Expand", 13, Attrs(), {x, i64({2, 2, 2})}); }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("Range: float32, int32 with a negative delta, empty ranges") {
    CHECK(fvals(run_op("Range", 11, Attrs(), {f32({1}, {}), f32({5}, {}), f32({1.5f}, {})})) ==
          std::vector<float>{1, 2.5f, 4});
    const Tensor r = run_op("Range", 11, Attrs(), {i32({10}, {}), i32({4}, {}), i32({-3}, {})});
    CHECK((r.dtype() == DType::Int32 && r.numel() == 2 && r.data<int32_t>()[0] == 10 && r.data<int32_t>()[1] == 7));
    CHECK(run_op("Range", 11, Attrs(), {i64({0}, {}), i64({0}, {}), i64({1}, {})}).shape() == Shape{0});
    CHECK(run_op("Range", 11, Attrs(), {i64({5}, {}), i64({0}, {}), i64({1}, {})}).shape() == Shape{0});
    CHECK(ivals(run_op("Range", 11, Attrs(), {i64({-3}, {}), i64({3}, {}), i64({4}, {})})) ==
          std::vector<int64_t>{-3, 1});
    CHECK(error_of([&] {
            run_op("Range", 11, Attrs(), {i64({0}, {}), i64({3}, {}), i64({0}, {})});
          }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] {
            run_op("Range", 11, Attrs(), {i64({0}, {}), f32({3}, {}), i64({1}, {})});
          }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("Tile repeats each axis") {
    const Tensor x = f32({1, 2, 3, 4}, {2, 2});
    const Tensor y = run_op("Tile", 13, Attrs(), {x, i64({1, 2})});
    CHECK(y.shape() == Shape{2, 4});
    CHECK(fvals(y) == std::vector<float>{1, 2, 1, 2, 3, 4, 3, 4});
    CHECK(fvals(run_op("Tile", 13, Attrs(), {x, i64({2, 1})})) == std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4});
    CHECK(run_op("Tile", 13, Attrs(), {x, i64({0, 3})}).shape() == Shape{0, 6});
    CHECK(error_of([&] { run_op("Tile", 13, Attrs(), {x, i64({2})}); }) == ErrorCode::InvalidInput);
    CHECK(error_of([&] { run_op("Tile", 13, Attrs(), {x, i64({1, -1})}); }) == ErrorCode::InvalidInput);
  }

  TEST_CASE("tensor ops are registered") {
    for (const char* op :
         {"Flatten", "Reshape", "Transpose", "Concat", "Split", "Slice", "Shape", "Gather", "Unsqueeze", "Squeeze",
          "Constant", "ConstantOfShape", "Expand", "Range", "Tile", "Pad", "Resize"})
      CHECK_MESSAGE(ops::find_schema(op) != nullptr, op);
  }

}  // TEST_SUITE
