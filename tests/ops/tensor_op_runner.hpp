// Runs one op schema the way the graph does: infer (with constant inputs), then compute
// into outputs of the inferred shapes. Used by the tensor op suites.
//
//   auto y = run_op("Reshape", 14, Attrs().i("allowzero", 1), {x, i64({0, -1})});
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "nnjit/error.hpp"
#include "nnjit/tensor.hpp"
#include "ops/op.hpp"

namespace nnjit::testing::tensor_ops {

using nnjit::ops::Attribute;
using nnjit::ops::Attributes;

struct Attrs {
  Attributes a;
  Attrs& i(const std::string& n, int64_t v) {
    return put(n, Attribute::Kind::Int, [&](Attribute& x) { x.i = v; });
  }
  Attrs& f(const std::string& n, float v) {
    return put(n, Attribute::Kind::Float, [&](Attribute& x) { x.f = v; });
  }
  Attrs& s(const std::string& n, std::string v) {
    return put(n, Attribute::Kind::String, [&](Attribute& x) { x.s = v; });
  }
  Attrs& ints(const std::string& n, std::vector<int64_t> v) {
    return put(n, Attribute::Kind::Ints, [&](Attribute& x) { x.ints = v; });
  }
  Attrs& floats(const std::string& n, std::vector<float> v) {
    return put(n, Attribute::Kind::Floats, [&](Attribute& x) { x.floats = v; });
  }
  Attrs& t(const std::string& n, Tensor v) {
    return put(n, Attribute::Kind::Tensor, [&](Attribute& x) { x.t = v; });
  }
  Attrs& other(const std::string& n) {
    return put(n, Attribute::Kind::Other, [](Attribute&) {});
  }
  operator const Attributes&() const { return a; }

 private:
  template <class F>
  Attrs& put(const std::string& n, Attribute::Kind k, F&& fill) {
    Attribute x;
    x.kind = k;
    fill(x);
    a.set(n, x);
    return *this;
  }
};

inline Tensor f32(std::vector<float> v, Shape s) { return Tensor::from(v, std::move(s)); }
inline Tensor f32(std::vector<float> v) { return f32(v, {static_cast<int64_t>(v.size())}); }
inline Tensor i64(std::vector<int64_t> v, Shape s) { return Tensor::from(v, std::move(s)); }
inline Tensor i64(std::vector<int64_t> v) { return i64(v, {static_cast<int64_t>(v.size())}); }
inline Tensor i32(std::vector<int32_t> v, Shape s) { return Tensor::from(v, std::move(s)); }
// 0, 1, 2, ... as float32 of the given shape.
inline Tensor iota_f32(Shape s) {
  Tensor t(DType::Float32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

inline std::vector<float> fvals(const Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }
inline std::vector<int64_t> ivals(const Tensor& t) { return {t.data<int64_t>(), t.data<int64_t>() + t.numel()}; }

struct RunOptions {
  std::vector<bool> runtime;  // inputs that are not constants (true at index i)
  int num_outputs = 1;
};

// The inferred outputs (shape and dtype) without running compute.
inline std::vector<ops::OutputInfo> infer_op(const char* op, int opset, const Attributes& attrs,
                                             const std::vector<Tensor>& inputs, RunOptions o = {}) {
  const ops::OpSchema* s = ops::find_schema(op);
  REQUIRE(s != nullptr);
  std::vector<ops::InputInfo> infos;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    ops::InputInfo in;
    if (inputs[i].defined()) {
      in.dtype = inputs[i].dtype();
      in.shape = inputs[i].shape();
      const bool runtime = i < o.runtime.size() && o.runtime[i];
      if (!runtime) in.value = &inputs[i];
    }
    infos.push_back(in);
  }
  ops::InferContext ctx("n1", op, opset, attrs, infos, o.num_outputs);
  s->infer(ctx);
  return ctx.outputs();
}

// Undefined tensors in `inputs` are absent optional inputs.
inline std::vector<Tensor> run_op_all(const char* op, int opset, const Attributes& attrs,
                                      const std::vector<Tensor>& inputs, RunOptions o = {}) {
  const std::vector<ops::OutputInfo> infos = infer_op(op, opset, attrs, inputs, o);
  std::vector<Tensor> outs;
  std::vector<Tensor*> ptrs;
  for (const auto& info : infos) {
    outs.emplace_back(info.dtype, info.shape);
    std::memset(outs.back().raw(), 0xA5, outs.back().nbytes());  // outputs may hold garbage on entry
  }
  for (auto& t : outs) ptrs.push_back(&t);
  ops::ComputeContext ctx{attrs, opset, {}, ptrs};
  for (const Tensor& t : inputs) ctx.inputs.push_back(t.defined() ? &t : nullptr);
  ops::find_schema(op)->compute(ctx);
  return outs;
}

inline Tensor run_op(const char* op, int opset, const Attributes& attrs, const std::vector<Tensor>& inputs,
                     RunOptions o = {}) {
  return run_op_all(op, opset, attrs, inputs, o).at(0);
}

// The code of the nnjit::Error that f throws; fails the test if it throws none.
template <class F>
ErrorCode error_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  FAIL("expected an nnjit::Error");
  return ErrorCode::Internal;
}

inline std::vector<std::string> check_problems(const char* op, int opset, const Attributes& attrs) {
  std::vector<std::string> problems;
  const ops::OpSchema* s = ops::find_schema(op);
  REQUIRE(s != nullptr);
  if (s->check) s->check(attrs, opset, problems);
  return problems;
}

}  // namespace nnjit::testing::tensor_ops
