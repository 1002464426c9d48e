// libFuzzer target: arbitrary bytes as a tensor file (.npy, else TensorProto), as
// read_tensor_file would see them.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "loaders/onnx_loader.hpp"
#include "nnjit/error.hpp"
#include "runtime/tensor_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    if (size >= 6 && std::memcmp(data, "\x93NUMPY", 6) == 0)
      nnjit::runtime::parse_npy(data, size, "fuzz.npy");
    else
      nnjit::loaders::parse_tensor_proto(data, size, "fuzz.pb");
  } catch (const nnjit::Error&) {
  }
  return 0;
}
