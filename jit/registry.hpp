// The process-wide list of live JIT blobs: what each one is called, where its code lies
// and what it serves. The profiler writes perf maps and disassembly dumps from it.
//
//   for (const JitBlob& b : JitRegistry::instance().list())
//     std::printf("%p %zx %s\n", b.address, b.size, b.name.c_str());   // a perf map line
//   std::optional<JitBlob> b = JitRegistry::instance().find(pc);      // who owns this pc?
//
// Contracts:
//  - JitKernel adds its blob once the code is final (read+execute) and removes it in its
//    destructor, so every listed address is mapped and executable while it is listed.
//  - Thread-safe: every member may be called from any thread at any time. list() returns
//    a snapshot; a blob in it may be gone by the time the caller reads it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace nnjit::jit {

struct JitBlob {
  std::string name;    // the kernel's name (jit/README.md), e.g. f32_pointwise_relu_64x7__avx512
  std::string serves;  // free text: the graph node(s) it runs, e.g. "node 'conv1' (Conv)"
  const void* address = nullptr;
  std::size_t size = 0;  // bytes of code (and its constant table)
};

class JitRegistry {
 public:
  static JitRegistry& instance();

  void add(JitBlob blob);
  // Removes the blob starting at `address`; a no-op when none does.
  void remove(const void* address);
  // Appends "; <more>" to what the blob at `address` serves (a cached kernel shared by a
  // second layer), unless it says so already. Returns false when no blob starts there.
  bool append_serves(const void* address, const std::string& more);

  // All live blobs, ordered by address.
  std::vector<JitBlob> list() const;
  // The blob whose code contains `pc`, if any.
  std::optional<JitBlob> find(const void* pc) const;
  // The first blob with this exact name, if any.
  std::optional<JitBlob> find_by_name(const std::string& name) const;
  std::size_t size() const;

 private:
  JitRegistry() = default;
  mutable std::mutex mutex_;
  std::map<std::uintptr_t, JitBlob> blobs_;  // keyed by start address
};

}  // namespace nnjit::jit
