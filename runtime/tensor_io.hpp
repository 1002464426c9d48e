// .npy encoding and decoding behind nnjit::read_tensor_file / write_npy, exposed for
// tests and the fuzzer so they need no files.
//
//   Tensor t = runtime::parse_npy(bytes, size, "input.npy");   // throws InvalidInput
//
// Reads versions 1.0, 2.0 and 3.0; descr <f2 <f4 <f8, <i2 <i4 <i8, |i1 |u1 <u2 <u4 <u8,
// |b1 ('=' counts as '<'); Fortran order is transposed to C order. Big-endian data is
// Unsupported. The data must be exactly as long as the header's shape says.
#pragma once

#include <cstddef>
#include <string>

#include "nnjit/tensor.hpp"

namespace nnjit::runtime {

Tensor parse_npy(const void* data, std::size_t size, const std::string& name);
// The whole .npy file (header and data) for t.
std::string encode_npy(const Tensor& t);

}  // namespace nnjit::runtime
