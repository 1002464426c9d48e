// Tensor files: .npy round trips for every dtype, numpy's header variants, corrupt
// files, and TensorProto (.pb) files told apart by content.
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include "../loaders/onnx_test_util.hpp"
#include "runtime/tensor_io.hpp"

namespace nnjit::testing {
namespace {

// Random bytes (NaN patterns included: the comparison is bytewise).
Tensor filled(DType dt, const Shape& shape, uint32_t seed) {
  Tensor t(dt, shape);
  std::mt19937 rng(seed);
  auto* p = static_cast<std::uint8_t*>(t.raw());
  for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<std::uint8_t>(rng());
  if (dt == DType::Bool)
    for (std::size_t i = 0; i < t.nbytes(); ++i) p[i] &= 1;
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
}

// A .npy file with the given header dict text, version and data bytes.
std::string npy(const std::string& dict, const std::string& data, int major = 1) {
  std::string header = dict;
  const std::size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  for (int b = 0; b < (major == 1 ? 2 : 4); ++b) out += static_cast<char>((header.size() >> (8 * b)) & 0xff);
  return out + header + data;
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST_SUITE("runtime") {

TEST_CASE("tensor io: .npy round trip for every dtype") {
  TempDir dir;
  const DType types[] = {DType::Float32, DType::Float64, DType::Float16, DType::Int64, DType::Int32,
                         DType::Int16,   DType::Int8,    DType::UInt8,   DType::UInt16, DType::UInt32,
                         DType::UInt64,  DType::Bool};
  const Shape shapes[] = {{2, 3}, {}, {7}, {0, 4}, {1, 3, 5, 2}};
  uint32_t seed = 1;
  for (DType dt : types)
    for (const Shape& shape : shapes) {
      CAPTURE(dtype_name(dt));
      CAPTURE(shape_str(shape));
      const Tensor t = filled(dt, shape, seed++);
      const std::string path = dir.file("t.npy");
      write_npy(path, t);
      CHECK(same_bytes(read_tensor_file(path), t));
      // numpy aligns the data to 64 bytes; so do we.
      const std::string bytes = runtime::encode_npy(t);
      CHECK((bytes.size() - t.nbytes()) % 64 == 0);
    }
  check_error([&] { write_npy(dir.file("bf.npy"), Tensor(DType::BFloat16, {2})); }, ErrorCode::Unsupported, {"bfloat16"});
  check_error([&] { write_npy(dir.file("no/such/dir.npy"), Tensor(DType::Float32, {2})); }, ErrorCode::InvalidInput,
              {"no/such/dir.npy"});
}

TEST_CASE("tensor io: numpy header variants") {
  const std::vector<float> v{1, 2, 3, 4, 5, 6};
  const Tensor expect = Tensor::from(v, {2, 3});
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const std::string v1 = npy(dict, bytes_of(v));
  CHECK(same_bytes(runtime::parse_npy(v1.data(), v1.size(), "v1.npy"), expect));
  for (int major : {2, 3}) {
    const std::string f = npy(dict, bytes_of(v), major);
    CHECK(same_bytes(runtime::parse_npy(f.data(), f.size(), "v.npy"), expect));
  }
  // Other spellings numpy (or hand-written files) use.
  const std::string alt = npy("{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"=f4\"}", bytes_of(v));
  CHECK(same_bytes(runtime::parse_npy(alt.data(), alt.size(), "alt.npy"), expect));
  // Fortran order: column-major data is transposed to row-major.
  const std::vector<float> colmajor{1, 4, 2, 5, 3, 6};
  const std::string f = npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", bytes_of(colmajor));
  CHECK(same_bytes(runtime::parse_npy(f.data(), f.size(), "f.npy"), expect));
  std::vector<int8_t> f3(24), c3(24);  // [2,3,4]: element (i,j,k) at i + 2j + 6k in Fortran order
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) {
        f3[static_cast<std::size_t>(i + 2 * j + 6 * k)] = static_cast<int8_t>(i * 12 + j * 4 + k);
        c3[static_cast<std::size_t>(i * 12 + j * 4 + k)] = static_cast<int8_t>(i * 12 + j * 4 + k);
      }
  const std::string f3b = npy("{'descr': '|i1', 'fortran_order': True, 'shape': (2, 3, 4), }", bytes_of(f3));
  CHECK(same_bytes(runtime::parse_npy(f3b.data(), f3b.size(), "f3.npy"), Tensor::from(c3, {2, 3, 4})));
  // Bools other than 0/1 become 1.
  const std::string b = npy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", std::string("\0\1\7", 3));
  const Tensor bt = runtime::parse_npy(b.data(), b.size(), "b.npy");
  CHECK(std::memcmp(bt.raw(), "\0\1\1", 3) == 0);
}

TEST_CASE("tensor io: corrupt and unsupported .npy files") {
  const std::string data(24, '\0');
  const auto bad = [](const std::string& file, ErrorCode code, const std::vector<std::string>& parts) {
    check_error([&] { runtime::parse_npy(file.data(), file.size(), "bad.npy"); }, code, parts);
  };
  const std::string ok = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data);
  bad("\x93NUMPX" + ok.substr(6), ErrorCode::InvalidInput, {"bad.npy", "magic"});
  bad(ok.substr(0, 9), ErrorCode::InvalidInput, {"bad.npy"});
  bad(ok.substr(0, ok.size() - 1), ErrorCode::InvalidInput, {"bad.npy", "24", "23"});  // truncated data
  bad(ok + "x", ErrorCode::InvalidInput, {"bad.npy", "25"});                           // trailing bytes
  std::string v9 = ok;
  v9[6] = 9;
  bad(v9, ErrorCode::InvalidInput, {"bad.npy", "version 9"});
  std::string long_header = ok;
  long_header[8] = '\xff';
  long_header[9] = '\xff';
  bad(long_header, ErrorCode::InvalidInput, {"bad.npy", "longer than the file"});
  bad(npy("{'descr': '<f4', 'shape': (2, 3), }", data), ErrorCode::InvalidInput, {"bad.npy", "fortran_order"});
  bad(npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", data), ErrorCode::InvalidInput, {"bad.npy"});
  bad(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", data), ErrorCode::InvalidInput, {"bad.npy"});
  bad(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}", data), ErrorCode::InvalidInput,
      {"bad.npy", "'extra'"});
  bad(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) junk", data), ErrorCode::InvalidInput, {"bad.npy"});
  bad(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } junk", data), ErrorCode::InvalidInput,
      {"bad.npy", "after"});
  bad(npy("{'descr': '<f4, 'fortran_order': False", data), ErrorCode::InvalidInput, {"bad.npy"});
  bad(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", data),
      ErrorCode::InvalidInput, {"bad.npy", "overflows"});
  // Absurd shapes are refused against the file size, before allocating.
  bad(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000, 1000), }", data),
      ErrorCode::InvalidInput, {"bad.npy", "needs"});
  bad(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", data),
      ErrorCode::InvalidInput, {"bad.npy", "too many"});
  bad(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", data), ErrorCode::Unsupported,
      {"bad.npy", "big-endian"});
  bad(npy("{'descr': '<U5', 'fortran_order': False, 'shape': (2, 3), }", data), ErrorCode::Unsupported,
      {"bad.npy", "<U5"});
  bad(npy("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", data), ErrorCode::Unsupported, {"<c8"});
  bad(npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", data), ErrorCode::Unsupported,
      {"structured"});
  // A one-byte type has no byte order to get wrong.
  const std::string be1 = npy("{'descr': '>i1', 'fortran_order': False, 'shape': (24,), }", data);
  CHECK(runtime::parse_npy(be1.data(), be1.size(), "be1.npy").dtype() == DType::Int8);
}

TEST_CASE("tensor io: random mutations of a .npy file never crash") {
  const std::string ok = runtime::encode_npy(Tensor::from(std::vector<int32_t>{1, 2, 3, 4, 5, 6}, {3, 2}));
  std::mt19937 rng(7);
  int parsed = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string f = ok;
    if (i < static_cast<int>(ok.size())) {
      f.resize(static_cast<std::size_t>(i));  // every truncation first
    } else {
      for (int e = 0; e < 3; ++e) f[rng() % f.size()] = static_cast<char>(rng() % 2 ? rng() : "0123456789(),' "[rng() % 15]);
    }
    try {
      runtime::parse_npy(f.data(), f.size(), "m.npy");
      ++parsed;
    } catch (const Error&) {
      ++refused;
    }
  }
  CHECK(refused > 0);
  CHECK(parsed > 0);
}

TEST_CASE("tensor io: TensorProto files, chosen by content") {
  TempDir dir;
  onnx::TensorProto p;
  p.set_name("input");
  p.set_data_type(onnx::TensorProto::INT64);
  p.add_dims(3);
  for (int64_t v : {5, -6, 7}) p.add_int64_data(v);
  dir.write("input_0.pb", p.SerializeAsString());
  const Tensor t = read_tensor_file(dir.file("input_0.pb"));
  CHECK(same_bytes(t, Tensor::from(std::vector<int64_t>{5, -6, 7}, {3})));
  // The extension does not matter; the content does.
  write_npy(dir.file("really_npy.pb"), t);
  CHECK(same_bytes(read_tensor_file(dir.file("really_npy.pb")), t));

  dir.write("text.npy", "hello, world\n");
  check_error([&] { read_tensor_file(dir.file("text.npy")); }, ErrorCode::InvalidInput, {"text.npy"});
  dir.write("empty.pb", "");
  check_error([&] { read_tensor_file(dir.file("empty.pb")); }, ErrorCode::InvalidInput, {"empty.pb", "empty"});
  check_error([&] { read_tensor_file(dir.file("missing.npy")); }, ErrorCode::InvalidInput, {"missing.npy"});
  dir.write("trunc.npy", runtime::encode_npy(t).substr(0, 70));
  check_error([&] { read_tensor_file(dir.file("trunc.npy")); }, ErrorCode::InvalidInput, {"trunc.npy"});
}

}  // TEST_SUITE
}  // namespace
}  // namespace nnjit::testing
