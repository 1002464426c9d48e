#include "cli_tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <set>

#include "nnjit/error.hpp"

namespace nnjit::cli {
namespace {

double half_to_double(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  if (exp == 31) return mant ? std::numeric_limits<double>::quiet_NaN() : sign * std::numeric_limits<double>::infinity();
  return sign * std::ldexp(mant + 1024, exp - 25);
}

// Round-to-nearest-even float -> IEEE half; only used for seeded inputs in [-1, 1).
uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (a < std::ldexp(1.0f, -24)) return sign;
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  const int exp = std::max(e - 1, -14);
  const float scaled = std::ldexp(a, 10 - exp);  // mantissa with 10 fraction bits
  uint32_t m = static_cast<uint32_t>(std::nearbyint(scaled));
  uint32_t biased = static_cast<uint32_t>(exp + 15);
  if (m >= 2048) {
    m >>= 1;
    ++biased;
  }
  if (m < 1024) biased = 0;  // subnormal
  return static_cast<uint16_t>(sign | (biased << 10) | (m & 0x3ff));
}

uint16_t float_to_bfloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

template <class T>
T at(const Tensor& t, int64_t i) {
  T v;
  std::memcpy(&v, static_cast<const char*>(t.raw()) + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
  return v;
}

bool dims_match(const Shape& want, const Shape& got) {
  if (want.size() != got.size()) return false;
  for (std::size_t i = 0; i < want.size(); ++i)
    if (want[i] >= 0 && want[i] != got[i]) return false;
  return true;
}

std::string names_of(const std::vector<TensorInfo>& infos) {
  std::string s;
  for (const auto& i : infos) s += (s.empty() ? "" : ", ") + i.name;
  return s.empty() ? "none" : s;
}

}  // namespace

std::vector<FileBinding> bind_files(const std::vector<std::string>& specs, const std::vector<TensorInfo>& infos,
                                    const std::string& what) {
  std::vector<FileBinding> out;
  std::vector<std::string> unnamed;
  std::vector<bool> taken(infos.size(), false);
  for (const std::string& spec : specs) {
    bool named = false;
    for (std::size_t eq = spec.find('='); eq != std::string::npos && !named; eq = spec.find('=', eq + 1)) {
      const std::string name = spec.substr(0, eq);
      for (std::size_t k = 0; k < infos.size(); ++k) {
        if (infos[k].name != name) continue;
        if (taken[k]) throw_invalid(what + " '" + name + "' is given twice");
        taken[k] = true;
        out.push_back({k, spec.substr(eq + 1)});
        named = true;
        break;
      }
    }
    if (!named) {
      // The likeliest mistake is a misspelt NAME=FILE; say so rather than "no such file".
      std::error_code ec;
      const auto eq = spec.find('=');
      if (eq != std::string::npos && eq > 0 && !std::filesystem::exists(spec, ec))
        throw_invalid("'" + spec.substr(0, eq) + "' is not an " + what + " of the model (" + what + "s: " +
                      names_of(infos) + "), and there is no file '" + spec + "'");
      unnamed.push_back(spec);
    }
  }
  std::size_t next = 0;
  for (const std::string& path : unnamed) {
    while (next < infos.size() && taken[next]) ++next;
    if (next == infos.size()) {
      throw_invalid("more files than " + what + "s: '" + path + "' has no " + what + " left to bind to (" + what +
                    "s: " + names_of(infos) + ")");
    }
    taken[next] = true;
    out.push_back({next, path});
    ++next;
  }
  return out;
}

Tensor read_input(const TensorInfo& info, const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw_invalid("cannot read '" + path + "' for input '" + info.name + "': no such file");
  }
  Tensor t = read_tensor_file(path);
  if (t.dtype() != info.dtype)
    throw_invalid("input '" + info.name + "': the model expects " + dtype_name(info.dtype) + " " +
                  shape_str(info.shape) + ", '" + path + "' holds " + dtype_name(t.dtype()) + " " +
                  shape_str(t.shape()));
  if (!dims_match(info.shape, t.shape()))
    throw_invalid("input '" + info.name + "': the model expects shape " + shape_str(info.shape) + ", '" + path +
                  "' holds shape " + shape_str(t.shape()));
  return t;
}

Tensor seeded_input(const TensorInfo& info, uint32_t seed) {
  Shape shape = info.shape;
  for (auto& d : shape)
    if (d < 0) d = 1;
  Tensor t(info.dtype, shape);
  std::mt19937 rng(seed);
  // A fixed formula (not std::uniform_real_distribution, whose algorithm varies by
  // standard library) so that others can reproduce the data, e.g. with numpy's MT19937.
  auto draw = [&rng] { return static_cast<float>((rng() >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0); };
  const int64_t n = t.numel();
  switch (info.dtype) {
    case DType::Float32: {
      float* p = static_cast<float*>(t.raw());
      for (int64_t i = 0; i < n; ++i) p[i] = draw();
      break;
    }
    case DType::Float64: {
      double* p = static_cast<double*>(t.raw());
      for (int64_t i = 0; i < n; ++i) p[i] = draw();
      break;
    }
    case DType::Float16: {
      uint16_t* p = static_cast<uint16_t*>(t.raw());
      for (int64_t i = 0; i < n; ++i) p[i] = float_to_half(draw());
      break;
    }
    case DType::BFloat16: {
      uint16_t* p = static_cast<uint16_t*>(t.raw());
      for (int64_t i = 0; i < n; ++i) p[i] = float_to_bfloat16(draw());
      break;
    }
    default:
      break;  // the constructor zero-fills
  }
  return t;
}

double element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::Float32: return at<float>(t, i);
    case DType::Float64: return at<double>(t, i);
    case DType::Float16: return half_to_double(at<uint16_t>(t, i));
    case DType::BFloat16: {
      uint32_t bits = static_cast<uint32_t>(at<uint16_t>(t, i)) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case DType::Int8: return at<int8_t>(t, i);
    case DType::UInt8: return at<uint8_t>(t, i);
    case DType::Int16: return at<int16_t>(t, i);
    case DType::UInt16: return at<uint16_t>(t, i);
    case DType::Int32: return at<int32_t>(t, i);
    case DType::UInt32: return at<uint32_t>(t, i);
    case DType::Int64: return static_cast<double>(at<int64_t>(t, i));
    case DType::UInt64: return static_cast<double>(at<uint64_t>(t, i));
    case DType::Bool: return at<uint8_t>(t, i) ? 1.0 : 0.0;
    default: throw_unsupported("cannot read elements of type " + dtype_name(t.dtype()));
  }
}

Stats stats(const Tensor& t) {
  Stats s;
  double sum = 0;
  s.min = std::numeric_limits<double>::infinity();
  s.max = -s.min;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = element(t, i);
    if (std::isnan(v)) {
      ++s.nan_count;
      continue;
    }
    s.min = std::min(s.min, v);
    s.max = std::max(s.max, v);
    if (std::isfinite(v)) {
      sum += v;
      ++s.finite_count;
    }
  }
  s.mean = s.finite_count ? sum / static_cast<double>(s.finite_count) : 0;
  if (s.nan_count == t.numel()) s.min = s.max = 0;
  return s;
}

std::string sanitize_name(const std::string& name) {
  std::string s = name;
  for (char& c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || c == '-';
    if (!ok) c = '_';
  }
  // "." and ".." would name directories, not files.
  if (s.empty() || s == "." || s == "..") s = std::string(s.size() + 1, '_');
  return s;
}

Comparison compare(const Tensor& out, const Tensor& ref, double tolerance) {
  Comparison c;
  if (out.shape() != ref.shape()) {
    c.problem = "shape " + shape_str(out.shape()) + " differs from the reference's " + shape_str(ref.shape());
    c.max_abs_err = c.rel_err = std::numeric_limits<double>::infinity();
    return c;
  }
  for (int64_t i = 0; i < out.numel(); ++i) {
    const double a = element(out, i), b = element(ref, i);
    if (std::isfinite(b)) c.max_ref = std::max(c.max_ref, std::fabs(b));
    double err;
    if (std::isnan(a) || std::isnan(b))
      err = (std::isnan(a) && std::isnan(b)) ? 0 : std::numeric_limits<double>::infinity();
    else if (std::isinf(a) || std::isinf(b))
      err = a == b ? 0 : std::numeric_limits<double>::infinity();
    else
      err = std::fabs(a - b);
    c.max_abs_err = std::max(c.max_abs_err, err);
  }
  c.rel_err = c.max_ref > 0 ? c.max_abs_err / c.max_ref : c.max_abs_err;
  c.match = c.rel_err <= tolerance;
  return c;
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string fmt_bytes(std::size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[96];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%zu bytes", bytes);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s (%zu bytes)", v, units[u], bytes);
  return buf;
}

}  // namespace nnjit::cli
