// Type conversion and data movement that is elementwise: Cast, Where, Identity, and
// Dropout (which at inference is an identity).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/elementwise.hpp"

namespace nnjit::ops::ew {

namespace {

bool is_supported_type(int64_t t) {
  return std::any_of(kCastTypes.begin(), kCastTypes.end(), [t](DType d) { return static_cast<int64_t>(d) == t; });
}

std::string supported_types_str() {
  std::string s;
  for (DType d : kCastTypes) s += (s.empty() ? "" : ", ") + dtype_name(d);
  return s;
}

// ---- 16-bit floats: IEEE half (float16) and bfloat16, read exactly into float32 and
// rounded from it to nearest, ties to even; NaN stays NaN (quiet), infinities stay.

bool is_16bit_float(DType d) { return d == DType::Float16 || d == DType::BFloat16; }

float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1fu) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf, NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // normal: rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {        // subnormal: mant * 2^-24, exact in float32
    float f = static_cast<float>(mant) * 0x1p-24f;
    std::memcpy(&bits, &f, sizeof bits);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t float_to_half_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (ax < 0x38800000u) {  // below half's smallest normal (2^-14): a subnormal or zero
    // Units of 2^-24, rounded to nearest even by the FPU's own addition.
    float a;
    std::memcpy(&a, &ax, sizeof a);
    const float scaled = a * 0x1p24f;  // exact: a power-of-two scale
    const float r = std::nearbyint(scaled);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
  }
  // Normal: drop 13 mantissa bits, rounding to nearest even (a carry may bump the exponent,
  // as it should).
  const uint32_t rounded = ax + 0xfffu + ((ax >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

float bfloat16_bits_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t float_to_bfloat16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// ---- Cast -----------------------------------------------------------------------------

// Between float types: a plain conversion. Float to integer: truncation toward zero,
// saturating (ONNX leaves out-of-range results undefined). Integer to narrower integer:
// wraps, as numpy does. To bool: non-zero (NaN included) is true.
template <class To, class From>
To convert(From v) {
  if constexpr (std::is_same_v<To, bool>)
    return v != From{0};
  else if constexpr (std::is_floating_point_v<To> || std::is_same_v<From, bool>)
    return static_cast<To>(v);
  else if constexpr (std::is_floating_point_v<From>)
    return saturate_cast<To>(v);
  else
    return static_cast<To>(v);
}

void check_cast(const Attributes& attrs, int opset, std::vector<std::string>& problems) {
  auto it = attrs.all().find("to");
  if (it == attrs.all().end() || it->second.kind != Attribute::Kind::Int) return;  // infer reports it
  if (!is_supported_type(it->second.i))
    problems.push_back("Cast to " + dtype_name(static_cast<DType>(it->second.i)) + " (nnjit casts between " +
                       supported_types_str() + ")");
}

void infer_cast(InferContext& c) {
  c.require_inputs(1, 1);
  if (!c.attrs.has("to")) c.fail("attribute 'to' is required");
  const int64_t to = c.attrs.get_int("to", 0);
  if (!is_supported_type(to))
    c.unsupported("Cast to " + dtype_name(static_cast<DType>(to)) + " is not supported (nnjit casts between " +
                  supported_types_str() + ")");
  c.require_type(0, kCastTypes);
  c.set_output(0, static_cast<DType>(to), c.shape(0));
}

// A cast from or to a 16-bit float goes through float32: the 16-bit value reads into it
// exactly; another type converts to float32 first (as Cast would), then rounds.
void cast_16bit(const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  std::vector<float> f(static_cast<std::size_t>(n));
  if (is_16bit_float(x.dtype())) {
    const auto* src = static_cast<const uint16_t*>(x.raw());
    for (int64_t i = 0; i < n; ++i)
      f[static_cast<std::size_t>(i)] =
          x.dtype() == DType::Float16 ? half_bits_to_float(src[i]) : bfloat16_bits_to_float(src[i]);
  } else {
    dispatch<NNJIT_EW_ALL>(x.dtype(), [&](auto tag) {
      using From = typename decltype(tag)::type;
      const From* src = x.data<From>();
      for (int64_t i = 0; i < n; ++i) f[static_cast<std::size_t>(i)] = convert<float>(src[i]);
    });
  }
  if (is_16bit_float(y.dtype())) {
    auto* dst = static_cast<uint16_t*>(y.raw());
    for (int64_t i = 0; i < n; ++i) {
      const float v = f[static_cast<std::size_t>(i)];
      dst[i] = y.dtype() == DType::Float16 ? float_to_half_bits(v) : float_to_bfloat16_bits(v);
    }
  } else {
    dispatch<NNJIT_EW_ALL>(y.dtype(), [&](auto tag) {
      using To = typename decltype(tag)::type;
      To* dst = y.data<To>();
      for (int64_t i = 0; i < n; ++i) dst[i] = convert<To>(f[static_cast<std::size_t>(i)]);
    });
  }
}

void compute_cast(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  Tensor& y = c.out(0);
  if (is_16bit_float(x.dtype()) || is_16bit_float(y.dtype())) return cast_16bit(x, y);
  dispatch<NNJIT_EW_ALL>(x.dtype(), [&](auto from_tag) {
    using From = typename decltype(from_tag)::type;
    dispatch<NNJIT_EW_ALL>(y.dtype(), [&](auto to_tag) {
      using To = typename decltype(to_tag)::type;
      map_unary<From, To>(x, y, [](From v) { return convert<To>(v); });
    });
  });
}

// ---- Where ----------------------------------------------------------------------------

void infer_where(InferContext& c) {
  c.require_inputs(3, 3);
  c.require_type(0, {DType::Bool});
  c.require_type(1, kAllTypes);
  c.require_same_type(1, 2);
  c.set_output(0, c.dtype(1), broadcast_inputs(c));
}

void compute_where(const ComputeContext& c) {
  const Tensor &cond = c.in(0), &x = c.in(1), &y = c.in(2);
  Tensor& z = c.out(0);
  const Shape& out = z.shape();
  dispatch<NNJIT_EW_ALL>(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool* pc = cond.data<bool>();
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    T* pz = z.data<T>();
    if (cond.shape() == out && x.shape() == out && y.shape() == out) {
      for (int64_t i = 0; i < z.numel(); ++i) pz[i] = pc[i] ? px[i] : py[i];
      return;
    }
    for_each_row(out,
                 {broadcast_strides(cond.shape(), out), broadcast_strides(x.shape(), out),
                  broadcast_strides(y.shape(), out)},
                 [&](int64_t first, const std::vector<int64_t>& base, const std::vector<int64_t>& step, int64_t len) {
                   for (int64_t i = 0; i < len; ++i)
                     pz[first + i] = pc[base[0] + i * step[0]] ? px[base[1] + i * step[1]] : py[base[2] + i * step[2]];
                 });
  });
}

// ---- Identity and Dropout -------------------------------------------------------------

void infer_identity(InferContext& c) {
  c.require_inputs(1, 1);
  c.require_type(0, kAllTypes);
  c.set_output(0, c.dtype(0), c.shape(0));
}

void copy_tensor(const Tensor& x, Tensor& y) {
  if (!x.same_storage(y) && x.nbytes() != 0) std::memcpy(y.raw(), x.raw(), x.nbytes());
}

void compute_identity(const ComputeContext& c) { copy_tensor(c.in(0), c.out(0)); }

// Dropout at inference passes its input through. From opset 12 a `training_mode` input
// may ask for random dropping, which nnjit does not do — except with a ratio of 0, which
// drops nothing (torch exports attention dropout that way, e.g. torchvision's swin_t):
// refused when training_mode is a constant true with another ratio here, and at run time
// (compute) when either is computed.
bool drops_nothing(const Tensor* ratio) {
  return ratio && ratio->dtype() == DType::Float32 && ratio->numel() == 1 && ratio->data<float>()[0] == 0.f;
}

void infer_dropout(InferContext& c) {
  c.require_inputs(1, c.opset >= 12 ? 3 : 1);
  c.require_type(0, {DType::Float32});
  if (c.has_input(1) && shape_numel(c.shape(1)) != 1) c.fail("ratio must be a scalar, got shape " + shape_str(c.shape(1)));
  if (c.has_input(2)) {
    c.require_type(2, {DType::Bool});
    if (shape_numel(c.shape(2)) != 1) c.fail("training_mode must be a scalar, got shape " + shape_str(c.shape(2)));
    const InputInfo& tm = c.input(2);
    const InputInfo* ratio = c.has_input(1) ? &c.input(1) : nullptr;
    if (tm.value && tm.value->data<bool>()[0] && (!ratio || (ratio->value && !drops_nothing(ratio->value))))
      c.unsupported("training_mode = true with a ratio other than 0 (random dropping) is not supported");
  }
  c.set_output(0, c.dtype(0), c.shape(0));
  // The mask had the data's type until opset 10 made it bool.
  c.set_output(1, c.opset >= 10 ? DType::Bool : c.dtype(0), c.shape(0));
}

void compute_dropout(const ComputeContext& c) {
  if (c.has(2) && c.in(2).data<bool>()[0] && !drops_nothing(c.has(1) ? &c.in(1) : nullptr))
    throw_unsupported("Dropout: training_mode = true with a ratio other than 0 (random dropping) is not supported");
  copy_tensor(c.in(0), c.out(0));
  if (c.outputs.size() > 1 && c.outputs[1]) {
    Tensor& mask = c.out(1);
    if (mask.dtype() == DType::Bool)
      std::fill_n(mask.data<bool>(), mask.numel(), true);
    else
      std::fill_n(mask.data<float>(), mask.numel(), 1.f);
  }
}

}  // namespace

void register_misc_ops(std::vector<OpSchema>& out) {
  out.push_back({"Cast", 6, infer_cast, compute_cast, check_cast});
  out.push_back({"Where", 9, infer_where, compute_where, nullptr});
  out.push_back({"Identity", 1, infer_identity, compute_identity, nullptr});
  out.push_back({"Dropout", 7, infer_dropout, compute_dropout, nullptr});
}

}  // namespace nnjit::ops::ew
