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
//  - The kernel is emitted into plain heap memory (never executable); finalize() copies
//    it into the code arena, whose memory is mapped read+execute and never writable (it
//    is written through its file, a memfd). Nothing may be emitted after finalize().
//    Generated code must be position-independent (rip-relative data, relative jumps):
//    it runs at another address than it was emitted at.
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
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <xbyak/xbyak.h>

namespace nnjit::jit {

// Where Xbyak emits: heap memory, never made executable (finalize() copies the code out
// and frees it). Cache-line aligned, as the code arena places kernels, so that align()
// pads the same there; not page-aligned, as Xbyak's default asks.
class EmitAllocator : public Xbyak::Allocator {
 public:
  uint8_t* alloc(size_t size) override;
  void free(uint8_t* p) override;
  bool useProtect() const override { return false; }
};

// Read+execute memory for finished kernels, shared by all of them. Code is written through
// a memfd with pwrite and runs from a read+execute mapping of it: no page is ever mapped
// writable and executable, and placing a kernel costs one syscall — no mprotect, whose
// TLB shootdowns cost every other thread of the process (and a VM exit each on a VM).
// Kernels take 64-byte units first-fit in 1 MiB chunks; freed ranges are reused. Where a
// memfd cannot be mapped executable (a sandbox), each kernel gets its own private
// mapping, written read+write and then flipped to read+execute.
class CodeArena {
 public:
  static CodeArena& instance();
  // A read+execute copy of `size` bytes of code. Throws std::runtime_error.
  const std::uint8_t* place(const std::uint8_t* code, std::size_t size);
  void release(const std::uint8_t* at, std::size_t size);
  // Bytes of code memory mapped (the chunks; kernels of the fallback not counted).
  std::size_t mapped_bytes();

  CodeArena(const CodeArena&) = delete;
  CodeArena& operator=(const CodeArena&) = delete;

 private:
  CodeArena();
  ~CodeArena() = delete;  // lives as long as the process
  struct Chunk;
  // A free range of `bytes` taken (a new chunk mapped if none has one): its chunk and offset.
  std::pair<Chunk*, std::size_t> take(std::size_t bytes);
  std::mutex mutex_;
  int fd_ = -1;                 // -1: the per-kernel fallback
  std::size_t file_bytes_ = 0;  // the memfd's size, every chunk end to end
  std::vector<std::unique_ptr<Chunk>> chunks_;
};

namespace detail {
// Lets JitKernel construct its allocator before the CodeGenerator base that uses it.
struct EmitAllocatorHolder {
  EmitAllocator emit_allocator_;
};
}  // namespace detail

class JitKernel : private detail::EmitAllocatorHolder, protected Xbyak::CodeGenerator {
 public:
  JitKernel(const JitKernel&) = delete;
  JitKernel& operator=(const JitKernel&) = delete;
  ~JitKernel() override;

  const std::string& name() const { return name_; }
  const std::string& serves() const { return serves_; }
  // The entry point; null before finalize().
  const void* code() const { return code_; }
  std::size_t code_size() const { return code_size_; }
  bool finalized() const { return finalized_; }

 protected:
  // `name` is required (jit/README.md gives the scheme); `serves` says for whom it runs.
  JitKernel(std::string name, std::string serves);

  // Saves the callee-saved registers and reserves `frame_bytes` of 16-byte aligned stack
  // addressable as ptr[rsp + 0 .. frame_bytes).
  void prologue(std::size_t frame_bytes = 0);
  // Undoes prologue() and returns.
  void epilogue();
  // Resolves labels, places the code in the code arena and registers it.
  void finalize();

  template <class Fn>
  Fn* entry() const {
    return reinterpret_cast<Fn*>(const_cast<void*>(code()));
  }

 private:
  std::string name_;
  std::string serves_;
  std::size_t frame_bytes_ = 0;
  const std::uint8_t* code_ = nullptr;  // in the code arena, from finalize()
  std::size_t code_size_ = 0;
  bool finalized_ = false;
};

}  // namespace nnjit::jit
