#include "ops/util.hpp"

#include <algorithm>

namespace nnjit::ops {

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const std::size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (std::size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      throw_invalid("shapes " + shape_str(a) + " and " + shape_str(b) + " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  std::vector<int64_t> own = strides_of(in);
  const std::size_t lead = out.size() - in.size();
  for (std::size_t i = 0; i < in.size(); ++i) st[lead + i] = in[i] == 1 ? 0 : own[i];
  return st;
}

int64_t int_at(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::Int64: return t.data<int64_t>()[i];
    case DType::Int32: return t.data<int32_t>()[i];
    default: throw_invalid("expected an int32/int64 tensor, got " + dtype_name(t.dtype()));
  }
}

std::vector<int64_t> to_ints(const Tensor& t) {
  std::vector<int64_t> v(static_cast<std::size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<std::size_t>(i)] = int_at(t, i);
  return v;
}

double number_at(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::Float32: return t.data<float>()[i];
    case DType::Float64: return t.data<double>()[i];
    case DType::Int64: return static_cast<double>(t.data<int64_t>()[i]);
    case DType::Int32: return t.data<int32_t>()[i];
    case DType::Int8: return t.data<int8_t>()[i];
    case DType::UInt8: return t.data<uint8_t>()[i];
    case DType::Bool: return t.data<bool>()[i];
    default: throw_invalid("expected a numeric tensor, got " + dtype_name(t.dtype()));
  }
}

}  // namespace nnjit::ops
