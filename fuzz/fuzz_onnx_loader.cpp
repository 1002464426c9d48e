// libFuzzer target: arbitrary bytes as an ONNX model. Every input must load or throw
// nnjit::Error; a crash, leak, hang or sanitizer report is a bug.
//
//   cmake -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DNNJIT_FUZZ=ON && cmake --build build-fuzz -t fuzz_onnx_loader
//   mkdir -p corpus && cp /usr/share/libonnx-testdata/data/node/test_*/model.onnx ... (any small models)
//   build-fuzz/bin/fuzz_onnx_loader -max_total_time=120 corpus
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "loaders/onnx_loader.hpp"
#include "nnjit/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Odd sizes load as a mapped file does: the bytes kept by an owner, the weights viewed
  // where they lie (at any alignment); even sizes copy them in.
  auto keep = std::make_shared<std::vector<std::uint8_t>>(data, data + size);
  try {
    // A folder that does not exist: external data named by a mutated model must be
    // refused, never read from wherever the fuzzer runs.
    nnjit::graph::Graph g = nnjit::loaders::load_onnx(keep->data(), size, "fuzz.onnx", "/nonexistent-nnjit-fuzz-dir",
                                                      size % 2 ? std::shared_ptr<void>(keep) : nullptr);
    keep.reset();
    std::uint8_t sum = 0;
    for (const auto& v : g.values)
      if (v.constant.defined() && v.constant.nbytes() > 0)
        sum ^= static_cast<const std::uint8_t*>(v.constant.raw())[v.constant.nbytes() - 1];
    (void)sum;
  } catch (const nnjit::Error&) {
  }
  return 0;
}
