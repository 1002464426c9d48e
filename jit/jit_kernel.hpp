// JitKernel: the base of every generated kernel — an Xbyak code generator with a name,
// System V prologue/epilogue helpers, W^X code memory and registration in JitRegistry.
//
//   class AddOne : public JitKernel {
//    public:
//     AddOne() : JitKernel("f32_add_one__avx2", "test") {
//       prologue();
//       vbroadcastss(ymm0, ptr[rip + one_]); ...
//       epilogue();
//       finalize();                         // now read+execute, and registered
//     }
//     void operator()(const Args& a) const { entry<void(const Args*)>()(&a); }
//   };
//
// Contracts:
//  - Code memory is mapped read+write while the kernel is emitted and read+execute after
//    finalize(); it is never writable and executable at once. Nothing may be emitted
//    after finalize().
//  - A kernel is registered (name, address, size, serves) from finalize() until it is
//    destroyed; the registry never lists freed code.
//  - Generated functions follow the System V AMD64 ABI: prologue() saves rbx, rbp and
//    r12-r15, epilogue() restores them and clears the upper vector state (vzeroupper)
//    so SSE code in the caller runs at full speed.
//  - Construction throws std::exception (Xbyak::Error, std::invalid_argument or
//    std::runtime_error) when the code cannot be generated or protected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include <xbyak/xbyak.h>

namespace nnjit::jit {

// Hands Xbyak whole pages from mmap, mapped read+write; Xbyak flips them to read+execute
// in ready(PROTECT_RE) and back to read+write before freeing. Heap memory from
// posix_memalign would do only if the code never shared its last page with other data.
class CodePageAllocator : public Xbyak::Allocator {
 public:
  uint8_t* alloc(size_t size) override;
  void free(uint8_t* p) override;
  ~CodePageAllocator() override;

 private:
  std::unordered_map<uint8_t*, size_t> mapped_;  // start -> length
};

namespace detail {
// Lets JitKernel construct its allocator before the CodeGenerator base that uses it.
struct CodePageAllocatorHolder {
  CodePageAllocator code_allocator_;
};
}  // namespace detail

class JitKernel : private detail::CodePageAllocatorHolder, protected Xbyak::CodeGenerator {
 public:
  JitKernel(const JitKernel&) = delete;
  JitKernel& operator=(const JitKernel&) = delete;
  ~JitKernel() override;

  const std::string& name() const { return name_; }
  const std::string& serves() const { return serves_; }
  // The entry point; null before finalize().
  const void* code() const { return finalized_ ? getCode() : nullptr; }
  std::size_t code_size() const { return getSize(); }
  bool finalized() const { return finalized_; }

 protected:
  // `name` is required (jit/README.md gives the scheme); `serves` says for whom it runs.
  JitKernel(std::string name, std::string serves);

  // Saves the callee-saved registers and reserves `frame_bytes` of 16-byte aligned stack
  // addressable as ptr[rsp + 0 .. frame_bytes).
  void prologue(std::size_t frame_bytes = 0);
  // Undoes prologue() and returns.
  void epilogue();
  // Resolves labels, makes the code read+execute and registers it.
  void finalize();

  template <class Fn>
  Fn* entry() const {
    return reinterpret_cast<Fn*>(const_cast<void*>(code()));
  }

 private:
  std::string name_;
  std::string serves_;
  std::size_t frame_bytes_ = 0;
  bool finalized_ = false;
};

}  // namespace nnjit::jit
