#include "jit/post_ops.hpp"

#include <bit>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <climits>
#include <stdexcept>

namespace nnjit::jit {

namespace {

struct ActivationInfo {
  ActivationKind kind;
  const char* name;
  int temps;
};

constexpr ActivationInfo kActivations[] = {
#define NNJIT_ACTIVATION(id, temps) {ActivationKind::id, #id, temps},
#include "jit/activations.inc"
#undef NNJIT_ACTIVATION
};

const ActivationInfo& info(ActivationKind kind) {
  for (const auto& a : kActivations)
    if (a.kind == kind) return a;
  throw std::invalid_argument("unknown activation kind");
}

std::string hex_float(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%a", static_cast<double>(v));
  return buf;
}

// exp(x) = 2^n * e^r with n = round(x * log2 e) and r = x - n ln 2, ln 2 split in two so
// n * kLn2Hi is exact (Cephes expf). The clamp keeps 2^n a normal float.
constexpr float kExpHi = 88.0f;
constexpr float kExpLo = -87.33654475f;  // ln(2^-126)
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
// e^r = 1 + r + r^2 * P(r) on |r| <= ln2 / 2, P of degree 3 (highest coefficient first):
// minimax for relative error, at most 1.6e-7 in float arithmetic (fitted by Lawson's
// iteration on 20001 points). Two FMAs fewer than Cephes' degree-5 P, whose extra
// digits the float result cannot hold anyway.
constexpr float kExpP[] = {8.312505669891834e-3f, 4.189009591937065e-2f, 1.6667114198207855e-1f,
                           4.99992311000824e-1f};
// erfc(z) = t * exp(-z^2 + Q(t)), t = 1 / (1 + z/2), z >= 0; Numerical Recipes' erfcc,
// fractional error below 1.2e-7 for every z.
constexpr float kErfcQ[] = {0.17087277f,  -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                            -0.18628806f, 0.09678418f,  0.37409196f, 1.00002368f,  -1.26551223f};
constexpr uint32_t kSignBit = 0x80000000u;
constexpr uint32_t kAbsMask = 0x7fffffffu;

}  // namespace

const std::vector<ActivationKind>& all_activation_kinds() {
  static const std::vector<ActivationKind> kinds = [] {
    std::vector<ActivationKind> v;
    for (const auto& a : kActivations) v.push_back(a.kind);
    return v;
  }();
  return kinds;
}

const char* activation_name(ActivationKind kind) { return info(kind).name; }
int activation_temps(ActivationKind kind) { return info(kind).temps; }

Activation Activation::of(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::clip: return relu6();
    case ActivationKind::leaky_relu: return leaky_relu();
    case ActivationKind::hard_sigmoid: return hard_sigmoid();
    default: return {kind};
  }
}

std::string Activation::name() const { return kind == ActivationKind::none ? "" : activation_name(kind); }

std::string Activation::key() const {
  std::string k = activation_name(kind);
  switch (kind) {
    case ActivationKind::clip:
    case ActivationKind::hard_sigmoid: return k + "(" + hex_float(alpha) + "," + hex_float(beta) + ")";
    case ActivationKind::leaky_relu: return k + "(" + hex_float(alpha) + ")";
    default: return k;
  }
}

std::optional<std::string> Activation::invalid_reason() const {
  // Clip may be open on either side (ONNX Clip with only a min is ReLU-like).
  const bool ok = kind == ActivationKind::clip ? !std::isnan(alpha) && !std::isnan(beta)
                                               : std::isfinite(alpha) && std::isfinite(beta);
  if (!ok) return std::string(activation_name(kind)) + ": parameters must be " + (kind == ActivationKind::clip ? "numbers" : "finite");
  if (kind == ActivationKind::clip && alpha > beta)
    return "clip: min " + std::to_string(alpha) + " is above max " + std::to_string(beta);
  return std::nullopt;
}

const char* residual_mode_name(ResidualMode mode) {
  switch (mode) {
    case ResidualMode::none: return "none";
    case ResidualMode::before_activation: return "before_activation";
    case ResidualMode::after_activation: return "after_activation";
  }
  return "?";
}

int ConstantTable::offset_of_row(const Row& row) {
  for (std::size_t i = 0; i < rows_.size(); ++i)
    if (rows_[i] == row) return static_cast<int>(i) * kRowBytes;
  rows_.push_back(row);
  return static_cast<int>(rows_.size() - 1) * kRowBytes;
}

int ConstantTable::offset_of_bits(uint32_t bits) {
  Row row;
  row.fill(bits);
  return offset_of_row(row);
}

int ConstantTable::offset_of(float value) { return offset_of_bits(std::bit_cast<uint32_t>(value)); }

int ConstantTable::offset_of_lane_mask(int lanes) {
  Row row{};
  for (int i = 0; i < lanes && i < kLanes; ++i) row[static_cast<std::size_t>(i)] = 0xffffffffu;
  return offset_of_row(row);
}

void ConstantTable::emit(Xbyak::CodeGenerator& g, Xbyak::Label& label) const {
  g.align(kRowBytes);
  g.L(label);
  for (const Row& row : rows_)
    for (uint32_t bits : row) g.dd(bits);
}

ActivationEmitter::ActivationEmitter(Xbyak::CodeGenerator& g, Isa isa, const Activation& act, ConstantTable& table,
                                     const Xbyak::Reg64& table_reg, const Xbyak::Opmask& k_tmp)
    : g_(g), evex_(isa == Isa::avx512), act_(act), table_(table), table_reg_(table_reg), k_tmp_(k_tmp) {}

Xbyak::Address ActivationEmitter::c(float value) { return g_.ptr[table_reg_ + table_.offset_of(value)]; }
Xbyak::Address ActivationEmitter::c_bits(uint32_t bits) { return g_.ptr[table_reg_ + table_.offset_of_bits(bits)]; }

void ActivationEmitter::round_nearest(const Xbyak::Xmm& dst, const Xbyak::Xmm& src) {
  if (evex_)
    g_.vrndscaleps(dst, src, 0);  // imm 0: round to nearest even
  else
    g_.vroundps(dst, src, 0);
}

// dst = 1 / d to ~1 ulp: the hardware estimate (14 bits on AVX-512, 12 on AVX2) and one
// Newton step, r += r (1 - d r). A third the cost of vdivps, which dominated the
// epilogue of sigmoid and SiLU layers with few input channels. `tmp` is clobbered;
// dst must differ from d and tmp.
void ActivationEmitter::reciprocal(const Xbyak::Xmm& dst, const Xbyak::Xmm& d, const Xbyak::Xmm& tmp) {
  if (evex_)
    g_.vrcp14ps(dst, d);
  else
    g_.vrcpps(dst, d);
  g_.vmovups(tmp, c(1.f));
  g_.vfnmadd231ps(tmp, d, dst);  // tmp = 1 - d r
  g_.vfmadd231ps(dst, dst, tmp);  // r += r tmp
}

void ActivationEmitter::select_by_sign(const Xbyak::Xmm& dst, const Xbyak::Xmm& a, const Xbyak::Xmm& b,
                                       const Xbyak::Xmm& mask) {
  if (evex_) {
    g_.vpmovd2m(k_tmp_, mask);
    if (dst.getIdx() != a.getIdx()) g_.vmovaps(dst, a);
    g_.vmovaps(dst | k_tmp_, b);
  } else {
    g_.vblendvps(dst, a, b, mask);
  }
}

// v = exp(v + small); n and p are clobbered, p may be `small`. `small` (optional) is an
// addend much smaller than v that joins the reduced argument r, so v + small need not
// be rounded to one float (GELU's exact -x^2/2 + Q(t)).
void ActivationEmitter::exp(const Xbyak::Xmm& v, const Xbyak::Xmm& n, const Xbyak::Xmm& p, const Xbyak::Xmm* small) {
  g_.vminps(v, v, c(kExpHi));
  g_.vmaxps(v, v, c(kExpLo));
  if (small != nullptr) {
    g_.vaddps(n, v, *small);
    g_.vmulps(n, n, c(kLog2e));
  } else {
    g_.vmulps(n, v, c(kLog2e));
  }
  round_nearest(n, n);  // n = round(x log2 e)
  const bool scalef = evex_;  // AVX-512 scales by 2^n in one instruction
  if (small != nullptr && !scalef) {  // keep 2^n a normal float; r absorbs the rest
    g_.vmaxps(n, n, c(-126.f));
    g_.vminps(n, n, c(127.f));
  }
  g_.vfnmadd231ps(v, n, c(kLn2Hi));  // v = r = x - n ln2 (n kLn2Hi is exact)
  g_.vfnmadd231ps(v, n, c(kLn2Lo));
  if (small != nullptr) g_.vaddps(v, v, *small);
  g_.vmovups(p, c(kExpP[0]));
  for (std::size_t i = 1; i < std::size(kExpP); ++i) g_.vfmadd213ps(p, v, c(kExpP[i]));  // p = P(r)
  g_.vfmadd213ps(p, v, c(1.f));                                   // 1 + r P(r)
  g_.vfmadd213ps(p, v, c(1.f));                                   // 1 + r + r^2 P(r) = e^r
  if (scalef) {
    g_.vscalefps(v, p, n);  // e^r 2^n, denormal results included
    return;
  }
  g_.vcvtps2dq(n, n);
  g_.vpaddd(n, n, c_bits(127));
  g_.vpslld(n, n, 23);  // n = 2^n as float bits
  g_.vmulps(v, p, n);
}

// v = v * Phi(v), Phi(x) = 1 - erfc(x/sqrt2)/2 for x >= 0 and erfc(-x/sqrt2)/2 below.
// Taking erfc of |x| on both sides keeps the result accurate relative to itself where
// Phi(x) is tiny (1 + erf(x) would cancel). erfc(z) = t exp(-x^2/2 + Q(t)), and -x^2/2
// is carried exactly as a float pair (x*x and its FMA residual): rounding it to one
// float would cost ~1e-5 relative once x^2/2 passes 60.
void ActivationEmitter::gelu(const Xbyak::Xmm& v, const std::vector<Xbyak::Xmm>& t) {
  const auto &a = t[0], &b = t[1], &tt = t[2], &d = t[3];
  g_.vandps(a, v, c_bits(kAbsMask));
  g_.vmulps(a, a, c(0.70710678118654752f));  // a = z = |x| / sqrt 2
  g_.vmovups(b, c(0.5f));
  g_.vfmadd213ps(b, a, c(1.f));              // b = 1 + z/2
  reciprocal(tt, b, d);                      // tt = t = 1 / (1 + z/2)
  g_.vmovups(b, c(kErfcQ[0]));
  for (int i = 1; i < 10; ++i) g_.vfmadd213ps(b, tt, c(kErfcQ[i]));  // b = Q(t)
  g_.vmulps(a, v, v);                        // a = x*x, rounded
  g_.vmovaps(d, a);
  g_.vfmsub231ps(d, v, v);                   // d = x*x - a, exactly
  g_.vfnmadd231ps(b, d, c(0.5f));            // b = Q(t) - d/2
  g_.vmulps(a, a, c(-0.5f));                 // a = -a/2, exact
  exp(a, d, b, &b);                          // a = exp(-x^2/2 + Q(t))
  g_.vmulps(a, a, tt);
  g_.vmulps(a, a, c(0.5f));                  // a = erfc(z) / 2 = Phi(-|x|)
  g_.vmovups(tt, c(1.f));
  g_.vsubps(tt, tt, a);                      // tt = Phi(|x|)
  select_by_sign(tt, tt, a, v);              // tt = Phi(x)
  g_.vmulps(v, v, tt);
}

void ActivationEmitter::operator()(const Xbyak::Xmm& v, const std::vector<Xbyak::Xmm>& t) {
  if (static_cast<int>(t.size()) < temps())
    throw std::logic_error(std::string("ActivationEmitter: ") + activation_name(act_.kind) + " needs " +
                           std::to_string(temps()) + " temporaries");
  switch (act_.kind) {
    case ActivationKind::none: break;
    case ActivationKind::relu: g_.vmaxps(v, v, c(0.f)); break;
    case ActivationKind::clip:
      g_.vmaxps(v, v, c(act_.alpha));
      g_.vminps(v, v, c(act_.beta));
      break;
    case ActivationKind::leaky_relu:
      g_.vmulps(t[0], v, c(act_.alpha));
      select_by_sign(v, v, t[0], v);
      break;
    case ActivationKind::sigmoid:
      g_.vxorps(t[1], v, c_bits(kSignBit));
      exp(t[1], t[0], v, nullptr);
      g_.vaddps(t[1], t[1], c(1.f));
      reciprocal(v, t[1], t[0]);  // 1 / (1 + e^-x)
      break;
    case ActivationKind::silu:
      g_.vxorps(t[2], v, c_bits(kSignBit));
      exp(t[2], t[0], t[1], nullptr);
      g_.vaddps(t[2], t[2], c(1.f));
      reciprocal(t[1], t[2], t[0]);
      g_.vmulps(v, v, t[1]);  // x / (1 + e^-x)
      break;
    case ActivationKind::hard_sigmoid:
      g_.vmovups(t[0], c(act_.alpha));
      g_.vfmadd213ps(v, t[0], c(act_.beta));
      g_.vmaxps(v, v, c(0.f));
      g_.vminps(v, v, c(1.f));
      break;
    case ActivationKind::hard_swish:
      // x * clamp(x + 3, 0, 6) / 6: x + 3 is exact near -3, where x/6 + 1/2 would cancel.
      g_.vaddps(t[0], v, c(3.f));
      g_.vmaxps(t[0], t[0], c(0.f));
      g_.vminps(t[0], t[0], c(6.f));
      g_.vmulps(t[0], t[0], c(1.f / 6.f));
      g_.vmulps(v, v, t[0]);
      break;
    case ActivationKind::gelu: gelu(v, t); break;
  }
}

void emit_tail_mask(Xbyak::CodeGenerator& g, Isa isa, ConstantTable& table, const Xbyak::Reg64& table_reg,
                    int pad_lanes, const Xbyak::Reg64* index, int64_t last, const Xbyak::Reg64& t0,
                    const Xbyak::Reg64& t1, const Xbyak::Address& avx2_slot) {
  if (last < 0 || last > INT32_MAX) throw std::invalid_argument("emit_tail_mask: block index out of imm32 range");
  if (isa == Isa::avx512) {
    g.mov(t0.cvt32(), (1u << pad_lanes) - 1);
    if (index) {
      g.mov(t1.cvt32(), 0xffff);
      g.cmp(*index, static_cast<uint32_t>(last));
      g.cmovne(t0.cvt32(), t1.cvt32());
    }
    g.kmovw(Xbyak::Opmask(1), t0.cvt32());
  } else {
    g.lea(t0, g.ptr[table_reg + table.offset_of_lane_mask(pad_lanes)]);
    if (index) {
      g.lea(t1, g.ptr[table_reg + table.offset_of_lane_mask(ConstantTable::kLanes)]);
      g.cmp(*index, static_cast<uint32_t>(last));
      g.cmovne(t0, t1);
    }
    g.mov(avx2_slot, t0);
  }
}

}  // namespace nnjit::jit
