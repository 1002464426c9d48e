// TensorProto -> Tensor, shared by initializers, tensor attributes and the CLI's .pb
// input files. Internal to loaders/ (and its tests): it exposes the protobuf types.
//
//   ExternalFiles files{"/models/llama"};   // external data relative to this folder
//   Tensor w = decode_tensor(proto, "initializer 'w'", &files);
//
// Every encoding is accepted: raw_data, the typed *_data fields, and external data,
// which is memory-mapped (one mapping per file, shared) and viewed rather than copied.
// Errors name `what`; unsupported element types throw Unsupported so that the loader can
// collect them into Graph::unsupported.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "loaders/mapped_file.hpp"
#include "nnjit/tensor.hpp"
#include "onnx.pb.h"

namespace nnjit::loaders {

struct ExternalFiles {
  std::string base_dir;  // locations resolve against this ("" = the current directory)
  std::map<std::string, std::shared_ptr<MappedFile>> open;  // by resolved path
};

// `external` == nullptr refuses external data (InvalidInput).
// With check_only, a raw_data tensor is validated and returned as a data-less view of
// the right type and shape (for callers that take the bytes themselves).
Tensor decode_tensor(const onnx::TensorProto& proto, const std::string& what, ExternalFiles* external,
                     bool check_only = false);
enum class TakeRaw { no, yes };
// The same; with TakeRaw::yes a large raw_data string is moved out of `proto` into the
// tensor (which views it) instead of being copied. x86-64 is little-endian like raw_data.
Tensor decode_tensor(onnx::TensorProto& proto, const std::string& what, ExternalFiles* external, TakeRaw take);

// A raw_data that loaders/wire.hpp lifted out of the proto before parsing, now in memory
// that `owner` keeps alive (aligned to 64 bytes, readable 64 bytes past its end).
struct LiftedRaw {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  std::shared_ptr<void> owner;
};
// The same for a proto whose raw_data was lifted: the tensor views `raw`.
Tensor decode_tensor(const onnx::TensorProto& proto, const std::string& what, ExternalFiles* external,
                     const LiftedRaw& raw);

// The DType for a TensorProto.DataType number; throws Unsupported for strings, complex
// numbers and numbers nnjit does not know, InvalidInput for UNDEFINED (0) or negatives.
DType tensor_dtype(std::int64_t data_type, const std::string& what);

}  // namespace nnjit::loaders
