// What every kernel family fuses into its stores — an activation and a residual add —
// and the emitter that turns an activation into vector code.
//
//   Activation act = Activation::clip(0.f, 6.f);          // ReLU6
//   ConstantTable table;
//   ActivationEmitter emit_act(*this, Isa::avx512, act, table, reg_table, k2);
//   emit_act(zmm0, {zmm28, zmm29});                       // zmm0 = act(zmm0)
//   ...
//   table.emit(*this, table_label);                       // once, after the code
//
// Contracts:
//  - The emitter writes only the value register, the temporaries it is given (at least
//    activation_temps(kind) of them, distinct from the value) and, on AVX-512, the one
//    opmask register it is given. Constants are read from memory at [table_reg + offset].
//  - Accuracy against the exact function in float: sigmoid and SiLU within a few ulp
//    (exp is a degree-6 polynomial, ~1 ulp on [-87.3, 88]); GELU within ~1e-6 relative
//    (erfc in Numerical Recipes' Chebyshev form, fractional error < 1.2e-7) down to
//    where x * Phi(x) leaves the normal float range. exp's argument is clamped to
//    [-87.33, 88], so sigmoid(x < -88) returns 1/(1+e^88) ~ 6e-39 instead of a smaller
//    denormal. hard_swish within 3 ulp; hard_sigmoid as fma(x, alpha, beta) rounds
//    (absolute error ~6e-8 where the result nears 0).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <xbyak/xbyak.h>

#include "jit/isa.hpp"

namespace nnjit::jit {

enum class ActivationKind {
#define NNJIT_ACTIVATION(id, temps) id,
#include "jit/activations.inc"
#undef NNJIT_ACTIVATION
};

// Every kind in activations.inc order.
const std::vector<ActivationKind>& all_activation_kinds();
// "none", "relu", "clip", ... as spelled in activations.inc.
const char* activation_name(ActivationKind kind);
// Vector temporaries ActivationEmitter needs for `kind`.
int activation_temps(ActivationKind kind);

struct Activation {
  ActivationKind kind = ActivationKind::none;
  float alpha = 0.f;  // clip: min; leaky_relu: slope; hard_sigmoid: slope
  float beta = 0.f;   // clip: max; hard_sigmoid: offset

  static Activation none() { return {}; }
  static Activation relu() { return {ActivationKind::relu}; }
  static Activation clip(float lo, float hi) { return {ActivationKind::clip, lo, hi}; }
  static Activation relu6() { return clip(0.f, 6.f); }
  static Activation leaky_relu(float alpha = 0.01f) { return {ActivationKind::leaky_relu, alpha}; }
  static Activation sigmoid() { return {ActivationKind::sigmoid}; }
  static Activation silu() { return {ActivationKind::silu}; }
  static Activation hard_sigmoid(float alpha = 0.2f, float beta = 0.5f) {
    return {ActivationKind::hard_sigmoid, alpha, beta};
  }
  static Activation hard_swish() { return {ActivationKind::hard_swish}; }
  static Activation gelu() { return {ActivationKind::gelu}; }
  // The default parameters of `kind` (ReLU6 for clip).
  static Activation of(ActivationKind kind);

  // The fragment a kernel name carries: "relu", "clip", "" for none.
  std::string name() const;
  // Every field, exactly (floats as hex), for plan keys.
  std::string key() const;
  // Why these parameters cannot be fused (non-finite, clip min > max), or nothing.
  std::optional<std::string> invalid_reason() const;
  bool operator==(const Activation&) const = default;
};

// Where a fused residual add goes relative to the activation.
enum class ResidualMode {
  none,
  before_activation,  // act(conv + residual): ResNet's conv -> Add -> Relu
  after_activation,   // act(conv) + residual
};
const char* residual_mode_name(ResidualMode mode);

// Constants the generated code reads, one 64-byte row (usually a value repeated 16
// times) each, so any vector width can use a row as a full memory operand.
class ConstantTable {
 public:
  static constexpr int kRowBytes = 64;
  static constexpr int kLanes = kRowBytes / 4;
  using Row = std::array<uint32_t, kLanes>;
  // Byte offset of the row holding `bits` in every lane; added on first use.
  int offset_of_bits(uint32_t bits);
  int offset_of(float value);
  int offset_of_int(int32_t value) { return offset_of_bits(static_cast<uint32_t>(value)); }
  // Byte offset of a row with the given lanes (e.g. a lane mask).
  int offset_of_row(const Row& row);
  // A lane mask: all ones in the first `lanes` lanes, zero after.
  int offset_of_lane_mask(int lanes);
  // Aligns, binds `label` and writes the rows. Call once, after the last use.
  void emit(Xbyak::CodeGenerator& g, Xbyak::Label& label) const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<Row> rows_;
};

// Selects the store mask of an output block whose channels may end inside it: the first
// `pad_lanes` lanes (0 < pad_lanes < block) when the block is the one holding the channel
// tail, every lane otherwise. The tail block is `index == last` at run time, or always
// when `index` is null. AVX-512 leaves the mask in k1; AVX2 stores the address of a
// lane-mask row of `table` into `avx2_slot`. Clobbers t0, t1 and the flags.
void emit_tail_mask(Xbyak::CodeGenerator& g, Isa isa, ConstantTable& table, const Xbyak::Reg64& table_reg,
                    int pad_lanes, const Xbyak::Reg64* index, int64_t last, const Xbyak::Reg64& t0,
                    const Xbyak::Reg64& t1, const Xbyak::Address& avx2_slot);

// Emits `v = act(v)` for one vector register. With Isa::avx512 it uses EVEX-only forms
// (so ymm16-31 work, and a ymm may be used for a half block); with Isa::avx2, VEX ones.
class ActivationEmitter {
 public:
  ActivationEmitter(Xbyak::CodeGenerator& g, Isa isa, const Activation& act, ConstantTable& table,
                    const Xbyak::Reg64& table_reg, const Xbyak::Opmask& k_tmp = Xbyak::Opmask(2));
  int temps() const { return activation_temps(act_.kind); }
  void operator()(const Xbyak::Xmm& v, const std::vector<Xbyak::Xmm>& temps);

 private:
  Xbyak::Address c(float value);
  Xbyak::Address c_bits(uint32_t bits);
  void round_nearest(const Xbyak::Xmm& dst, const Xbyak::Xmm& src);
  void reciprocal(const Xbyak::Xmm& dst, const Xbyak::Xmm& d, const Xbyak::Xmm& tmp);
  // dst = sign(mask) ? b : a, lane by lane (mask's sign bit).
  void select_by_sign(const Xbyak::Xmm& dst, const Xbyak::Xmm& a, const Xbyak::Xmm& b, const Xbyak::Xmm& mask);
  void exp(const Xbyak::Xmm& v, const Xbyak::Xmm& n, const Xbyak::Xmm& p, const Xbyak::Xmm* small);
  void gelu(const Xbyak::Xmm& v, const std::vector<Xbyak::Xmm>& t);

  Xbyak::CodeGenerator& g_;
  bool evex_;
  Activation act_;
  ConstantTable& table_;
  Xbyak::Reg64 table_reg_;
  Xbyak::Opmask k_tmp_;
};

}  // namespace nnjit::jit
