#include "loaders/tensor_proto.hpp"

#include <charconv>
#include <cstring>
#include <filesystem>

#include "nnjit/error.hpp"

namespace nnjit::loaders {

namespace {

// Constants viewed in a mapping keep the alignment that Tensor's own storage promises;
// data at other offsets is copied (ONNX writers align large tensors to 4096 anyway).
constexpr std::size_t kViewAlign = 64;

std::string str(std::int64_t v) { return std::to_string(v); }

int64_t checked_numel(const Shape& shape, const std::string& what) {
  for (int64_t d : shape)
    if (d < 0) throw_invalid(what + ": shape " + shape_str(shape) + " has a negative dimension");
  try {
    return shape_numel(shape);
  } catch (const Error&) {
    throw_invalid(what + ": shape " + shape_str(shape) + " has too many elements");
  }
}

// Bools must hold 0 or 1 before any C++ code reads them as bool.
void normalize_bools(Tensor& t) {
  auto* p = static_cast<std::uint8_t*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] != 0;
}

Tensor copy_bytes(DType dt, const Shape& shape, const void* src) {
  Tensor t(dt, shape);
  if (t.nbytes()) std::memcpy(t.raw(), src, t.nbytes());
  if (dt == DType::Bool) normalize_bools(t);
  return t;
}

template <class Dst, class Field>
Tensor from_field(DType dt, const Shape& shape, int64_t n, const Field& field, const char* field_name,
                  const std::string& what) {
  if (static_cast<int64_t>(field.size()) != n)
    throw_invalid(what + ": shape " + shape_str(shape) + " has " + str(n) + " elements but " + field_name +
                  " holds " + str(field.size()));
  Tensor t(dt, shape);
  Dst* dst = static_cast<Dst*>(t.raw());
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<Dst>(field[static_cast<int>(i)]);
  return t;
}

void check_raw_size(int64_t n, std::size_t es, std::size_t size, const Shape& shape, DType dt, const std::string& what) {
  if (static_cast<uint64_t>(n) > size / es || static_cast<std::size_t>(n) * es != size)
    throw_invalid(what + ": raw_data holds " + str(static_cast<int64_t>(size)) + " bytes but shape " +
                  shape_str(shape) + " of " + dtype_name(dt) + " needs " +
                  (static_cast<uint64_t>(n) > SIZE_MAX / es ? std::string("more") : str(static_cast<int64_t>(n * es))));
}

// Decimal, non-negative, the whole string.
int64_t parse_size(const std::string& s, const char* key, const std::string& what) {
  int64_t v = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0)
    throw_invalid(what + ": external data " + key + " '" + s + "' is not a non-negative integer");
  return v;
}

// Locations are relative and must stay inside the model's folder. The check is lexical:
// symlinks inside the folder may point elsewhere (Hugging Face caches are built that way).
std::string resolve_location(const std::string& location, const std::string& base_dir, const std::string& what) {
  namespace fs = std::filesystem;
  if (location.empty()) throw_invalid(what + ": external data has no location");
  if (location.find('\0') != std::string::npos) throw_invalid(what + ": external data location contains a NUL byte");
  const fs::path rel(location);
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory())
    throw_invalid(what + ": external data location '" + location + "' is absolute; it must be relative to the model");
  const fs::path norm = rel.lexically_normal();
  if (norm.empty() || *norm.begin() == ".." || norm == ".")
    throw_invalid(what + ": external data location '" + location + "' points outside the model's folder");
  return (fs::path(base_dir.empty() ? "." : base_dir) / norm).string();
}

Tensor decode_external(const onnx::TensorProto& p, DType dt, const Shape& shape, int64_t n,
                       const std::string& what, ExternalFiles* external) {
  if (!external) throw_invalid(what + ": external data is not allowed here");
  std::string location;
  int64_t offset = 0, length = -1;
  bool has_location = false;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
      has_location = true;
    } else if (kv.key() == "offset") {
      offset = parse_size(kv.value(), "offset", what);
    } else if (kv.key() == "length") {
      length = parse_size(kv.value(), "length", what);
    }  // "checksum" and unknown keys: ignored, as ONNX's own loader does
  }
  if (!has_location) throw_invalid(what + ": external data has no location");
  const std::string path = resolve_location(location, external->base_dir, what);

  std::shared_ptr<MappedFile>& file = external->open[path];
  if (!file) {
    try {
      file = MappedFile::open(path);
    } catch (const Error& e) {
      external->open.erase(path);
      throw_invalid(what + ": external data file '" + location + "': " + e.what());
    }
  }
  const auto size = static_cast<int64_t>(file->size());
  if (offset > size)
    throw_invalid(what + ": external data offset " + str(offset) + " is beyond the end of '" + location + "' (" +
                  str(size) + " bytes)");
  if (length < 0) length = size - offset;
  if (length > size - offset)
    throw_invalid(what + ": external data offset " + str(offset) + " + length " + str(length) +
                  " is beyond the end of '" + location + "' (" + str(size) + " bytes)");
  const auto es = static_cast<int64_t>(dtype_size(dt));
  if (n > length / es || n * es != length)
    throw_invalid(what + ": external data holds " + str(length) + " bytes but shape " + shape_str(shape) + " of " +
                  dtype_name(dt) + " needs " + (n > INT64_MAX / es ? std::string("more") : str(n * es)));

  std::uint8_t* src = file->data() + offset;
  if (dt == DType::Bool || n == 0 || reinterpret_cast<std::uintptr_t>(src) % kViewAlign != 0)
    return copy_bytes(dt, shape, src);
  return Tensor::view(dt, shape, src, file);
}

}  // namespace

DType tensor_dtype(std::int64_t data_type, const std::string& what) {
  if (data_type <= 0) throw_invalid(what + ": no element type (data_type " + str(data_type) + ")");
  const auto dt = static_cast<DType>(data_type);
  switch (dt) {
    case DType::String:
    case DType::Complex64:
    case DType::Complex128:
      throw_unsupported(what + ": element type " + dtype_name(dt) + " is not supported");
    default:
      break;
  }
  if (data_type > static_cast<int>(DType::BFloat16) || dtype_size(dt) == 0)
    throw_unsupported(what + ": element type " + str(data_type) + " is not supported");
  return dt;
}

Tensor decode_tensor(onnx::TensorProto& p, const std::string& what, ExternalFiles* external, TakeRaw take) {
  // A large raw_data is taken over rather than copied: the tensor views the string that
  // protobuf filled in, and owns it (bool needs normalising, so it is always copied).
  constexpr std::size_t kTakeOver = 4096;
  if (take == TakeRaw::yes && p.data_location() != onnx::TensorProto::EXTERNAL && !p.has_segment() &&
      p.has_raw_data() && p.raw_data().size() >= kTakeOver && p.data_type() != onnx::TensorProto::BOOL) {
    const Tensor checked = decode_tensor(static_cast<const onnx::TensorProto&>(p), what, nullptr, true);
    std::shared_ptr<std::string> raw(p.release_raw_data());
    return Tensor::view(checked.dtype(), checked.shape(), raw->data(), raw);
  }
  return decode_tensor(static_cast<const onnx::TensorProto&>(p), what, external);
}

Tensor decode_tensor(const onnx::TensorProto& p, const std::string& what, ExternalFiles* external,
                     const LiftedRaw& raw) {
  if (p.has_segment()) throw_unsupported(what + ": segmented tensors are not supported");
  // External data wins over raw_data, as when raw_data is in the proto.
  if (p.data_location() == onnx::TensorProto::EXTERNAL || p.has_raw_data()) return decode_tensor(p, what, external);
  const DType dt = tensor_dtype(p.data_type(), what);
  const Shape shape(p.dims().begin(), p.dims().end());
  const int64_t n = checked_numel(shape, what);
  check_raw_size(n, dtype_size(dt), raw.size, shape, dt, what);
  if (dt == DType::Bool || n == 0) return copy_bytes(dt, shape, raw.data);
  return Tensor::view_unaligned(dt, shape, raw.data, raw.owner);
}

Tensor decode_tensor(const onnx::TensorProto& p, const std::string& what, ExternalFiles* external, bool check_only) {
  if (p.has_segment()) throw_unsupported(what + ": segmented tensors are not supported");
  const DType dt = tensor_dtype(p.data_type(), what);
  const Shape shape(p.dims().begin(), p.dims().end());
  const int64_t n = checked_numel(shape, what);
  const std::size_t es = dtype_size(dt);

  if (p.data_location() == onnx::TensorProto::EXTERNAL) return decode_external(p, dt, shape, n, what, external);

  if (p.has_raw_data()) {
    const std::string& raw = p.raw_data();
    check_raw_size(n, es, raw.size(), shape, dt, what);
    if (check_only) return Tensor::view(dt, shape, nullptr, nullptr);
    return copy_bytes(dt, shape, raw.data());  // x86-64 is little-endian, like raw_data
  }

  switch (dt) {
    case DType::Float32:
      return from_field<float>(dt, shape, n, p.float_data(), "float_data", what);
    case DType::Float64:
      return from_field<double>(dt, shape, n, p.double_data(), "double_data", what);
    case DType::Int64:
      return from_field<int64_t>(dt, shape, n, p.int64_data(), "int64_data", what);
    case DType::Int32:
      return from_field<int32_t>(dt, shape, n, p.int32_data(), "int32_data", what);
    case DType::Int16:
      return from_field<int16_t>(dt, shape, n, p.int32_data(), "int32_data", what);
    case DType::Int8:
      return from_field<int8_t>(dt, shape, n, p.int32_data(), "int32_data", what);
    // 16-bit floats travel in int32_data as their bit patterns.
    case DType::UInt16:
    case DType::Float16:
    case DType::BFloat16:
      return from_field<uint16_t>(dt, shape, n, p.int32_data(), "int32_data", what);
    case DType::UInt8:
      return from_field<uint8_t>(dt, shape, n, p.int32_data(), "int32_data", what);
    case DType::Bool: {
      // Any non-zero int32 is true; narrowing first would turn 256 into false.
      Tensor t = from_field<int32_t>(DType::Int32, shape, n, p.int32_data(), "int32_data", what);
      Tensor b(DType::Bool, shape);
      auto* dst = static_cast<std::uint8_t*>(b.raw());
      for (int64_t i = 0; i < n; ++i) dst[i] = t.data<int32_t>()[i] != 0;
      return b;
    }
    case DType::UInt32:
      return from_field<uint32_t>(dt, shape, n, p.uint64_data(), "uint64_data", what);
    case DType::UInt64:
      return from_field<uint64_t>(dt, shape, n, p.uint64_data(), "uint64_data", what);
    default:
      throw_unsupported(what + ": element type " + dtype_name(dt) + " is not supported");
  }
}

}  // namespace nnjit::loaders
