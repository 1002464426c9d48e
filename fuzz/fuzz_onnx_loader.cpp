// libFuzzer target: arbitrary bytes as an ONNX model. Every input must load or throw
// nnjit::Error; a crash, leak, hang or sanitizer report is a bug.
//
//   cmake -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DNNJIT_FUZZ=ON && cmake --build build-fuzz -t fuzz_onnx_loader
//   mkdir -p corpus && cp /usr/share/libonnx-testdata/data/node/test_*/model.onnx ... (any small models)
//   build-fuzz/bin/fuzz_onnx_loader -max_total_time=120 corpus
#include <cstddef>
#include <cstdint>

#include "loaders/onnx_loader.hpp"
#include "nnjit/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    // A folder that does not exist: external data named by a mutated model must be
    // refused, never read from wherever the fuzzer runs.
    nnjit::graph::Graph g = nnjit::loaders::load_onnx(data, size, "fuzz.onnx", "/nonexistent-nnjit-fuzz-dir");
  } catch (const nnjit::Error&) {
  }
  return 0;
}
