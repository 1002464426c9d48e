// plan_eltwise: the ISA and unroll the eltwise emitter follows, from the shape and the
// host alone.
#include <algorithm>

#include "jit/eltwise/eltwise.hpp"
#include "jit/key_text.hpp"

namespace nnjit::jit {

namespace {

// Vectors in flight per loop step: enough to cover load and activation latency.
constexpr int kMaxUnroll = 8;

}  // namespace

const char* eltwise_op_name(EltwiseOp op) {
  switch (op) {
    case EltwiseOp::unary: return "unary";
    case EltwiseOp::add: return "add";
    case EltwiseOp::mul: return "mul";
    case EltwiseOp::scale_channels: return "scale";
  }
  return "?";
}

std::string EltwiseShape::key() const {
  KeyText s;
  s << "n" << batch << "_c" << channels << "_p" << plane << "_" << eltwise_op_name(op) << "_act:" << activation.key();
  return std::move(s).str();
}

int64_t EltwisePlan::b_image_floats() const {
  if (eltwise_is_binary(shape.op)) return image_floats();
  if (shape.op == EltwiseOp::scale_channels) return blocks * block;
  return 0;
}

std::string EltwisePlan::name() const {
  KeyText n;
  n << "f32_eltwise";
  if (shape.op != EltwiseOp::unary) n << "_" << eltwise_op_name(shape.op);
  if (shape.activation.kind != ActivationKind::none) n << "_" << shape.activation.name();
  else if (shape.op == EltwiseOp::unary) n << "_copy";
  n << "__" << to_string(isa);
  return std::move(n).str();
}

std::string EltwisePlan::key() const {
  KeyText s;
  s << "eltwise/" << shape.key() << "/" << to_string(isa) << "/b" << block << "x" << blocks << "/u" << unroll;
  return std::move(s).str();
}

std::variant<EltwisePlan, std::string> plan_eltwise(const EltwiseShape& shape, const HostInfo& host) {
  const auto& s = shape;
  if (s.batch < 1 || s.channels < 1 || s.plane < 1)
    return "eltwise: batch, channels and plane must be positive (got " + s.key() + ")";
  constexpr int64_t kMaxDim = int64_t{1} << 30;
  if (s.batch > kMaxDim || s.channels > kMaxDim || s.plane > kMaxDim || s.channels * s.plane > (int64_t{1} << 40))
    return "eltwise: the tensor is too large (got " + s.key() + ")";
  if (s.op != EltwiseOp::unary && !eltwise_is_binary(s.op) && s.op != EltwiseOp::scale_channels)
    return "eltwise: unknown op";
  if (auto why = s.activation.invalid_reason()) return "eltwise: " + *why;

  EltwisePlan plan;
  plan.shape = s;
  bool found = false;
#define NNJIT_ELTWISE_VARIANT(id)          \
  if (!found && host_has(host, Isa::id)) { \
    plan.isa = Isa::id;                    \
    found = true;                          \
  }
#include "jit/eltwise/eltwise.inc"
#undef NNJIT_ELTWISE_VARIANT
  if (!found) return "eltwise: the host has neither AVX-512 (F/BW/VL/DQ) nor AVX2 with FMA";

  plan.block = isa_block(plan.isa);
  plan.blocks = div_up(s.channels, plan.block);
  // Each vector in flight holds its value and the activation's temporaries (scale's
  // activation runs once per block, so its vectors need none); one register holds the
  // scale.
  const int temps = s.op == EltwiseOp::scale_channels ? 0 : activation_temps(s.activation.kind);
  plan.unroll = std::clamp((isa_vector_registers(plan.isa) - 1) / (1 + temps), 1, kMaxUnroll);
  return plan;
}

}  // namespace nnjit::jit
