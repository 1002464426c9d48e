// Broadcasting logic and remainder ops: And, Or, Xor, GreaterOrEqual, LessOrEqual, Mod.
// Same machinery as ops/elementwise_binary.cpp (which holds Equal, Less, Greater).
#include <cmath>

#include "ops/elementwise.hpp"
#include "ops/registry.hpp"

namespace nnjit::ops {

namespace {

using ew::dispatch;

// ---- And, Or, Xor ---------------------------------------------------------------------

enum class Logic { And, Or, Xor };

void infer_logic(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, {DType::Bool});
  c.require_type(1, {DType::Bool});
  c.set_output(0, DType::Bool, ew::broadcast_inputs(c));
}

template <Logic K>
void compute_logic(const ComputeContext& c) {
  ew::map_binary<bool, bool, bool>(c.in(0), c.in(1), c.out(0), [](bool a, bool b) {
    if constexpr (K == Logic::And) return a && b;
    else if constexpr (K == Logic::Or) return a || b;
    else return a != b;
  });
}

// ---- GreaterOrEqual, LessOrEqual (opset 12) -------------------------------------------

void infer_cmp_eq(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, ew::kNumeric);
  c.require_same_type(0, 1);
  c.set_output(0, DType::Bool, ew::broadcast_inputs(c));
}

template <bool kGreater>
void compute_cmp_eq(const ComputeContext& c) {
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ew::map_binary<T, T, bool>(c.in(0), c.in(1), c.out(0), [](T a, T b) { return kGreater ? a >= b : a <= b; });
  });
}

// ---- Mod ------------------------------------------------------------------------------

// fmod = 1: C's remainder, with the dividend's sign (std::fmod, integer %). fmod = 0
// (integers only): Python's, with the divisor's sign. A zero divisor gives 0, as numpy
// does, where C++ would trap; INT_MIN % -1 gives 0 instead of overflowing.
template <class T>
T int_mod(T a, T b, bool fmod) {
  if (b == 0 || b == -1) return 0;
  const T r = a % b;
  if (fmod || r == 0 || (r < 0) == (b < 0)) return r;
  return r + b;
}

bool fmod_attr(const Attributes& attrs) { return attrs.get_int("fmod", 0) != 0; }

void infer_mod(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, ew::kNumeric);
  c.require_same_type(0, 1);
  const int64_t fmod = c.attrs.get_int("fmod", 0);
  if (fmod != 0 && fmod != 1) c.fail("fmod must be 0 or 1, got " + std::to_string(fmod));
  if (c.dtype(0) == DType::Float32 && fmod == 0) c.fail("fmod must be 1 for floating-point inputs");
  c.set_output(0, c.dtype(0), ew::broadcast_inputs(c));
}

void compute_mod(const ComputeContext& c) {
  const bool fmod = fmod_attr(c.attrs);
  dispatch<NNJIT_EW_NUMERIC>(c.in(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    ew::map_binary<T, T, T>(c.in(0), c.in(1), c.out(0), [fmod](T a, T b) {
      if constexpr (std::is_floating_point_v<T>)
        return std::fmod(a, b);
      else
        return int_mod(a, b, fmod);
    });
  });
}

}  // namespace

void register_logic_ops(std::vector<OpSchema>& out) {
  out.push_back({"And", 7, infer_logic, compute_logic<Logic::And>, nullptr});
  out.push_back({"Or", 7, infer_logic, compute_logic<Logic::Or>, nullptr});
  out.push_back({"Xor", 7, infer_logic, compute_logic<Logic::Xor>, nullptr});
  out.push_back({"GreaterOrEqual", 12, infer_cmp_eq, compute_cmp_eq<true>, nullptr});
  out.push_back({"LessOrEqual", 12, infer_cmp_eq, compute_cmp_eq<false>, nullptr});
  out.push_back({"Mod", 10, infer_mod, compute_mod, nullptr});
}

}  // namespace nnjit::ops
