// Runs one op's schema directly (check, infer, then compute), as graph::finalize would.
//
//   auto y = OpRunner("Add").in(a).in(b).run();          // y[0] is the output
//   OpRunner("Clip").opset(6).attr_f("min", 0).in(x).run();
//   CHECK_UNSUPPORTED(OpRunner("Relu").in(Tensor(DType::Float16, {2})).run());
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "nnjit/error.hpp"
#include "nnjit/tensor.hpp"
#include "ops/op.hpp"

namespace nnjit::testing::ew {

class OpRunner {
 public:
  explicit OpRunner(std::string op) : op_(std::move(op)) {}

  OpRunner& opset(int v) {
    opset_ = v;
    return *this;
  }
  // An input whose value infer may read (a constant in the graph).
  OpRunner& in(Tensor t) {
    inputs_.push_back({std::move(t), true});
    return *this;
  }
  // An input computed at run time: infer sees only its type and shape.
  OpRunner& in_runtime(Tensor t) {
    inputs_.push_back({std::move(t), false});
    return *this;
  }
  // An optional input left out.
  OpRunner& absent() {
    inputs_.push_back({Tensor{}, false});
    return *this;
  }
  OpRunner& outputs(int n) {
    num_outputs_ = n;
    return *this;
  }
  OpRunner& attr_i(const std::string& name, int64_t v) {
    ops::Attribute a;
    a.kind = ops::Attribute::Kind::Int;
    a.i = v;
    attrs_.set(name, a);
    return *this;
  }
  OpRunner& attr_f(const std::string& name, float v) {
    ops::Attribute a;
    a.kind = ops::Attribute::Kind::Float;
    a.f = v;
    attrs_.set(name, a);
    return *this;
  }
  OpRunner& attr_ints(const std::string& name, std::vector<int64_t> v) {
    ops::Attribute a;
    a.kind = ops::Attribute::Kind::Ints;
    a.ints = std::move(v);
    attrs_.set(name, a);
    return *this;
  }
  OpRunner& attr_floats(const std::string& name, std::vector<float> v) {
    ops::Attribute a;
    a.kind = ops::Attribute::Kind::Floats;
    a.floats = std::move(v);
    attrs_.set(name, a);
    return *this;
  }
  OpRunner& attr_s(const std::string& name, std::string v) {
    ops::Attribute a;
    a.kind = ops::Attribute::Kind::String;
    a.s = std::move(v);
    attrs_.set(name, a);
    return *this;
  }
  OpRunner& attr_strings(const std::string& name, std::vector<std::string> v) {
    ops::Attribute a;
    a.kind = ops::Attribute::Kind::Strings;
    a.strings = std::move(v);
    attrs_.set(name, a);
    return *this;
  }

  // The attribute problems the schema's check reports.
  std::vector<std::string> check() const {
    std::vector<std::string> problems;
    const ops::OpSchema* s = schema();
    if (s->check) s->check(attrs_, opset_, problems);
    return problems;
  }

  // Output types and shapes as inferred.
  std::vector<ops::OutputInfo> infer() const {
    std::vector<ops::InputInfo> infos;
    for (const Input& i : inputs_) {
      if (!i.t.defined()) {
        infos.emplace_back();
        continue;
      }
      infos.push_back({i.t.dtype(), i.t.shape(), i.constant ? &i.t : nullptr});
    }
    ops::InferContext ctx("n", op_, opset_, attrs_, std::move(infos), num_outputs_);
    schema()->infer(ctx);
    return ctx.outputs();
  }

  // Infers, allocates the outputs (filled with garbage, as the contract allows) and computes.
  std::vector<Tensor> run() const {
    std::vector<ops::OutputInfo> infos = infer();
    std::vector<Tensor> outs;
    for (const ops::OutputInfo& o : infos) {
      outs.emplace_back(o.dtype, o.shape);
      auto* p = static_cast<unsigned char*>(outs.back().raw());
      for (std::size_t b = 0; b < outs.back().nbytes(); ++b) p[b] = 0xA5;
    }
    ops::ComputeContext ctx{attrs_, opset_, {}, {}};
    for (const Input& i : inputs_) ctx.inputs.push_back(i.t.defined() ? &i.t : nullptr);
    for (Tensor& t : outs) ctx.outputs.push_back(&t);
    schema()->compute(ctx);
    return outs;
  }

 private:
  struct Input {
    Tensor t;
    bool constant;
  };
  const ops::OpSchema* schema() const {
    const ops::OpSchema* s = ops::find_schema(op_);
    REQUIRE_MESSAGE(s != nullptr, "no schema for " << op_);
    return s;
  }

  std::string op_;
  int opset_ = 17;
  int num_outputs_ = 1;
  std::vector<Input> inputs_;
  ops::Attributes attrs_;
};

inline Tensor f32(const std::vector<float>& v, Shape s) { return Tensor::from(v, std::move(s)); }
inline Tensor i64(const std::vector<int64_t>& v, Shape s) { return Tensor::from(v, std::move(s)); }
inline Tensor i32(const std::vector<int32_t>& v, Shape s) { return Tensor::from(v, std::move(s)); }
inline Tensor bools(const std::vector<int>& v, Shape s) {
  Tensor t(DType::Bool, std::move(s));
  for (std::size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i] != 0;
  return t;
}

// Element values of any supported tensor, as doubles, for comparisons.
inline std::vector<double> values(const Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype()) {
      case DType::Float32: v.push_back(t.data<float>()[i]); break;
      case DType::Float64: v.push_back(t.data<double>()[i]); break;
      case DType::Int64: v.push_back(static_cast<double>(t.data<int64_t>()[i])); break;
      case DType::Int32: v.push_back(t.data<int32_t>()[i]); break;
      case DType::Int8: v.push_back(t.data<int8_t>()[i]); break;
      case DType::UInt8: v.push_back(t.data<uint8_t>()[i]); break;
      case DType::Bool: v.push_back(t.data<bool>()[i]); break;
      default: FAIL("values(): unexpected type " << dtype_name(t.dtype()));
    }
  }
  return v;
}

inline ErrorCode error_code(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  FAIL("expected an nnjit::Error");
  return ErrorCode::Internal;
}

}  // namespace nnjit::testing::ew

#define CHECK_UNSUPPORTED(expr) \
  CHECK(::nnjit::testing::ew::error_code([&] { (void)(expr); }) == ::nnjit::ErrorCode::Unsupported)
#define CHECK_INVALID(expr) \
  CHECK(::nnjit::testing::ew::error_code([&] { (void)(expr); }) == ::nnjit::ErrorCode::InvalidInput)
