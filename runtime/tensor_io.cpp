// Tensor files: .npy (numpy's format) and serialized ONNX TensorProto (.pb), told apart
// by content. Everything read is validated against the file's size before allocating,
// so a hostile header cannot ask for terabytes.
#include "runtime/tensor_io.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "loaders/mapped_file.hpp"
#include "loaders/onnx_loader.hpp"

namespace nnjit {

namespace runtime {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::size_t kHeaderAlign = 64;  // numpy pads the header so that data starts aligned

struct NpyType {
  DType dtype;
  std::string_view descr;
};
constexpr NpyType kTypes[] = {
    {DType::Float32, "<f4"}, {DType::Float64, "<f8"}, {DType::Float16, "<f2"}, {DType::Int64, "<i8"},
    {DType::Int32, "<i4"},   {DType::Int16, "<i2"},   {DType::Int8, "|i1"},    {DType::UInt8, "|u1"},
    {DType::UInt16, "<u2"},  {DType::UInt32, "<u4"},  {DType::UInt64, "<u8"},  {DType::Bool, "|b1"},
};

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& name) : s_(s), name_(name) {}

  void parse(std::string& descr, bool& fortran, Shape& shape) {
    bool has_descr = false, has_fortran = false, has_shape = false;
    expect('{');
    for (;;) {
      if (eat('}')) break;
      const std::string key = string_literal("a key");
      expect(':');
      if (key == "descr" && !has_descr) {
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '[') fail_unsupported("structured dtypes are not supported");
        descr = string_literal("'descr'");
        has_descr = true;
      } else if (key == "fortran_order" && !has_fortran) {
        fortran = boolean();
        has_fortran = true;
      } else if (key == "shape" && !has_shape) {
        shape = tuple();
        has_shape = true;
      } else {
        fail("unexpected or repeated key '" + key + "'");
      }
      if (eat('}')) break;
      expect(',');
    }
    skip_ws();
    if (pos_ != s_.size()) fail("text after the header's closing brace");
    if (!has_descr || !has_fortran || !has_shape) fail("the header lacks 'descr', 'fortran_order' or 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw_invalid(name_ + ": not a valid .npy file (header: " + why + ")");
  }
  [[noreturn]] void fail_unsupported(const std::string& why) const { throw_unsupported(name_ + ": " + why); }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "' at byte " + std::to_string(pos_));
  }
  std::string string_literal(const char* what) {
    skip_ws();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) fail(std::string("expected a string for ") + what);
    const char q = s_[pos_++];
    const std::size_t end = s_.find(q, pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    if (out.find('\\') != std::string::npos) fail("escapes in strings are not expected");
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_ws();
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    fail("'fortran_order' is not True or False");
  }
  int64_t integer() {
    skip_ws();
    const std::size_t start = pos_;
    int64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      const int digit = s_[pos_++] - '0';
      if (v > (INT64_MAX - digit) / 10) fail("a dimension overflows int64");
      v = v * 10 + digit;
    }
    if (pos_ == start) fail("expected a non-negative integer in 'shape'");
    return v;
  }
  Shape tuple() {
    Shape shape;
    expect('(');
    if (eat(')')) return shape;
    for (;;) {
      shape.push_back(integer());
      if (eat(')')) break;
      expect(',');
      if (eat(')')) break;
    }
    return shape;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  const std::string& name_;
};

DType descr_dtype(std::string descr, const std::string& name) {
  if (descr.size() >= 2 && descr[0] == '=') descr[0] = '<';  // native order, and x86-64 is little-endian
  if (descr.size() == 3 && descr[0] == '<' && descr[2] == '1') descr[0] = '|';  // one byte has no order
  for (const NpyType& t : kTypes)
    if (descr == t.descr) return t.dtype;
  if (!descr.empty() && descr[0] == '>' && !(descr.size() == 3 && descr[2] == '1'))
    throw_unsupported(name + ": big-endian .npy data ('" + descr + "') is not supported; save it little-endian");
  if (descr.size() == 3 && descr[0] == '>') {
    descr[0] = '|';
    return descr_dtype(descr, name);
  }
  throw_unsupported(name + ": .npy dtype '" + descr + "' is not supported");
}

// Fortran order is C order of the reversed shape; walk the C indices and gather.
void fortran_to_c(const std::uint8_t* src, Tensor& dst) {
  const Shape& shape = dst.shape();
  const std::size_t es = dtype_size(dst.dtype()), rank = shape.size();
  std::vector<int64_t> stride(rank), idx(rank, 0);
  int64_t s = 1;
  for (std::size_t k = 0; k < rank; ++k) {
    stride[k] = s;
    s *= shape[k];
  }
  auto* out = static_cast<std::uint8_t*>(dst.raw());
  int64_t off = 0;
  for (int64_t i = 0; i < dst.numel(); ++i) {
    std::memcpy(out + static_cast<std::size_t>(i) * es, src + static_cast<std::size_t>(off) * es, es);
    for (std::size_t k = rank; k-- > 0;) {  // increment the C index, last dim fastest
      off += stride[k];
      if (++idx[k] < shape[k]) break;
      off -= stride[k] * shape[k];
      idx[k] = 0;
    }
  }
}

}  // namespace

Tensor parse_npy(const void* data, std::size_t size, const std::string& name) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  const auto fail = [&](const std::string& why) { throw_invalid(name + ": not a valid .npy file (" + why + ")"); };
  if (size < kMagicLen + 2 || std::memcmp(p, kMagic, kMagicLen) != 0) fail("no \\x93NUMPY magic");
  const int major = p[6];
  std::size_t header_len = 0, prefix = 0;
  if (major == 1) {
    prefix = 10;
    if (size < prefix) fail("truncated header");
    header_len = p[8] | std::size_t{p[9]} << 8;
  } else if (major == 2 || major == 3) {
    prefix = 12;
    if (size < prefix) fail("truncated header");
    header_len = p[8] | std::size_t{p[9]} << 8 | std::size_t{p[10]} << 16 | std::size_t{p[11]} << 24;
  } else {
    fail("format version " + std::to_string(major) + "." + std::to_string(p[7]) + " is not 1.0, 2.0 or 3.0");
  }
  if (header_len > size - prefix) fail("the header is longer than the file");

  std::string descr;
  bool fortran = false;
  Shape shape;
  HeaderParser(std::string_view(reinterpret_cast<const char*>(p + prefix), header_len), name).parse(descr, fortran, shape);
  const DType dt = descr_dtype(descr, name);
  int64_t n = 0;
  try {
    n = shape_numel(shape);
  } catch (const Error&) {
    fail("shape " + shape_str(shape) + " has too many elements");
  }
  const std::size_t es = dtype_size(dt), have = size - prefix - header_len;
  if (static_cast<uint64_t>(n) > have / es || static_cast<std::size_t>(n) * es != have)
    fail("shape " + shape_str(shape) + " of " + dtype_name(dt) + " needs " +
         (static_cast<uint64_t>(n) > SIZE_MAX / es ? std::string("more than the file's") : std::to_string(n * es)) +
         " bytes of data, the file holds " + std::to_string(have));

  Tensor t(dt, shape);
  const std::uint8_t* src = p + prefix + header_len;
  if (fortran && shape.size() > 1)
    fortran_to_c(src, t);
  else if (t.nbytes())
    std::memcpy(t.raw(), src, t.nbytes());
  if (dt == DType::Bool) {
    auto* b = static_cast<std::uint8_t*>(t.raw());
    for (int64_t i = 0; i < n; ++i) b[i] = b[i] != 0;
  }
  return t;
}

std::string encode_npy(const Tensor& t) {
  if (!t.defined()) throw_invalid("cannot write an undefined tensor to .npy");
  std::string_view descr;
  for (const NpyType& nt : kTypes)
    if (nt.dtype == t.dtype()) descr = nt.descr;
  if (descr.empty()) throw_unsupported(dtype_name(t.dtype()) + " tensors have no .npy type");

  std::string shape = "(";
  for (std::size_t i = 0; i < t.shape().size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape()[i]);
  shape += t.shape().size() == 1 ? ",)" : ")";
  std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " + shape + ", }";

  // Version 1.0 stores the header length in 16 bits; huge ranks need 2.0.
  const bool v1 = header.size() + 1 + kHeaderAlign <= 0xffff;
  const std::size_t prefix = v1 ? 10 : 12;
  header.append((kHeaderAlign - (prefix + header.size() + 1) % kHeaderAlign) % kHeaderAlign, ' ');
  header += '\n';

  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(v1 ? 1 : 2);
  out += '\0';
  const std::size_t len = header.size();
  for (std::size_t b = 0; b < (v1 ? 2u : 4u); ++b) out += static_cast<char>((len >> (8 * b)) & 0xff);
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

}  // namespace runtime

Tensor read_tensor_file(const std::string& path) {
  auto file = loaders::MappedFile::open(path);  // "cannot open '<path>': ..."
  if (file->size() >= runtime::kMagicLen && std::memcmp(file->data(), runtime::kMagic, runtime::kMagicLen) == 0)
    return runtime::parse_npy(file->data(), file->size(), path);
  return loaders::parse_tensor_proto(file->data(), file->size(), path);
}

void write_npy(const std::string& path, const Tensor& t) {
  const std::string bytes = runtime::encode_npy(t);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw_invalid("cannot write '" + path + "': " + std::strerror(errno));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) throw_internal("writing '" + path + "' failed: " + std::strerror(errno));
}

}  // namespace nnjit
