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
Tensor decode_tensor(const onnx::TensorProto& proto, const std::string& what, ExternalFiles* external);

// The DType for a TensorProto.DataType number; throws Unsupported for strings, complex
// numbers and numbers nnjit does not know, InvalidInput for UNDEFINED (0) or negatives.
DType tensor_dtype(std::int64_t data_type, const std::string& what);

}  // namespace nnjit::loaders
