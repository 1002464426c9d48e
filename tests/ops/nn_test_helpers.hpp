// Helpers for the nn op tests: run one schema the way the executor would (check, infer,
// allocate, compute), build attributes, and make deterministic inputs.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "nnjit/tensor.hpp"
#include "ops/op.hpp"

namespace nnjit::testing::nn {

inline ops::Attribute ints(std::vector<int64_t> v) {
  ops::Attribute a;
  a.kind = ops::Attribute::Kind::Ints;
  a.ints = std::move(v);
  return a;
}
inline ops::Attribute integer(int64_t v) {
  ops::Attribute a;
  a.kind = ops::Attribute::Kind::Int;
  a.i = v;
  return a;
}
inline ops::Attribute real(float v) {
  ops::Attribute a;
  a.kind = ops::Attribute::Kind::Float;
  a.f = v;
  return a;
}
inline ops::Attribute text(std::string v) {
  ops::Attribute a;
  a.kind = ops::Attribute::Kind::String;
  a.s = std::move(v);
  return a;
}

inline ops::Attributes attrs(std::initializer_list<std::pair<const char*, ops::Attribute>> list) {
  ops::Attributes a;
  for (const auto& [name, value] : list) a.set(name, value);
  return a;
}

// Runs op `type` on `inputs` (an undefined Tensor = absent optional input), requesting
// `num_outputs` outputs. Problems reported by the schema's check are thrown as Unsupported.
inline std::vector<Tensor> run_op(const std::string& type, const ops::Attributes& a, const std::vector<Tensor>& inputs,
                                  int opset = 13, int num_outputs = 1) {
  const ops::OpSchema* s = ops::find_schema(type);
  REQUIRE(s != nullptr);
  std::vector<std::string> problems;
  if (s->check) s->check(a, opset, problems);
  if (!problems.empty()) throw_unsupported(problems.front());
  std::vector<ops::InputInfo> infos;
  for (const Tensor& t : inputs)
    infos.push_back(t.defined() ? ops::InputInfo{t.dtype(), t.shape(), nullptr} : ops::InputInfo{});
  ops::InferContext ic("n", type, opset, a, infos, num_outputs);
  s->infer(ic);
  std::vector<Tensor> outs;
  for (const ops::OutputInfo& o : ic.outputs()) outs.emplace_back(o.dtype, o.shape);
  ops::ComputeContext cc{a, opset, {}, {}};
  for (const Tensor& t : inputs) cc.inputs.push_back(t.defined() ? &t : nullptr);
  for (Tensor& t : outs) cc.outputs.push_back(&t);
  s->compute(cc);
  return outs;
}

// Element i = ((i * mul) % mod - mod / 2) / div: exactly representable, and the same
// formula generated the torch reference values embedded in the tests.
inline Tensor pattern(const Shape& shape, int64_t mul, int64_t mod, float div) {
  Tensor t(DType::Float32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>((i * mul) % mod - mod / 2) / div;
  return t;
}

// The values embedded for x / w in the torch-generated cases.
inline Tensor xs(const Shape& shape) { return pattern(shape, 37, 23, 8.f); }
inline Tensor ws(const Shape& shape) { return pattern(shape, 29, 17, 16.f); }

inline void check_close(const Tensor& got, const Shape& shape, const std::vector<float>& want, double tol = 1e-5) {
  REQUIRE(got.shape() == shape);
  REQUIRE(static_cast<std::size_t>(got.numel()) == want.size());
  for (int64_t i = 0; i < got.numel(); ++i) {
    INFO("element " << i);
    CHECK(got.data<float>()[i] == doctest::Approx(want[static_cast<std::size_t>(i)]).epsilon(tol).scale(1));
  }
}

inline ErrorCode error_code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return static_cast<ErrorCode>(0);
}

}  // namespace nnjit::testing::nn
