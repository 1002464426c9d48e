#include "jit/jit_kernel.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <new>
#include <stdexcept>

#include "jit/registry.hpp"

namespace nnjit::jit {

namespace {

// Enough for a small kernel; Xbyak's AutoGrow doubles it as needed.
constexpr std::size_t kInitialCodeBytes = 16 << 10;
constexpr std::size_t kChunkBytes = std::size_t{1} << 20;
constexpr std::size_t kUnit = 64;  // kernels start on a cache line

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t round_up(std::size_t v, std::size_t to) { return (v + to - 1) / to * to; }

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("code arena: " + what + ": " + std::strerror(errno)); }

}  // namespace

struct CodeArena::Chunk {
  std::uint8_t* base = nullptr;  // read+execute
  std::size_t bytes = 0;
  std::size_t file_offset = 0;
  std::map<std::size_t, std::size_t> free;  // offset -> length, coalesced
};

CodeArena& CodeArena::instance() {
  static CodeArena* arena = new CodeArena();  // never destroyed: static objects may hold kernels
  return *arena;
}

CodeArena::CodeArena() {
#ifdef MFD_EXEC
  fd_ = static_cast<int>(::memfd_create("nnjit-code", MFD_CLOEXEC | MFD_EXEC));
  if (fd_ < 0)
#endif
    fd_ = static_cast<int>(::memfd_create("nnjit-code", MFD_CLOEXEC));
  if (fd_ < 0) return;
  // Probe once that the memfd may be mapped executable (vm.memfd_noexec, sandboxes).
  if (::ftruncate(fd_, static_cast<off_t>(page_size())) == 0) {
    void* p = ::mmap(nullptr, page_size(), PROT_READ | PROT_EXEC, MAP_SHARED, fd_, 0);
    if (p != MAP_FAILED) {
      ::munmap(p, page_size());
      return;
    }
  }
  ::close(fd_);
  fd_ = -1;
}

std::pair<CodeArena::Chunk*, std::size_t> CodeArena::take(std::size_t bytes) {
  auto take_from = [bytes](Chunk& c, std::map<std::size_t, std::size_t>::iterator range) {
    const std::size_t offset = range->first, left = range->second - bytes;
    c.free.erase(range);
    if (left > 0) c.free[offset + bytes] = left;
    return std::pair{&c, offset};
  };
  for (auto& c : chunks_)
    for (auto range = c->free.begin(); range != c->free.end(); ++range)
      if (range->second >= bytes) return take_from(*c, range);
  auto c = std::make_unique<Chunk>();
  c->bytes = round_up(std::max(bytes, kChunkBytes), page_size());
  c->file_offset = file_bytes_;
  if (::ftruncate(fd_, static_cast<off_t>(file_bytes_ + c->bytes)) != 0) fail("cannot grow the memfd");
  void* p = ::mmap(nullptr, c->bytes, PROT_READ | PROT_EXEC, MAP_SHARED, fd_, static_cast<off_t>(c->file_offset));
  if (p == MAP_FAILED) fail("cannot map code");
  file_bytes_ += c->bytes;
  c->base = static_cast<std::uint8_t*>(p);
  c->free[0] = c->bytes;
  chunks_.push_back(std::move(c));
  return take_from(*chunks_.back(), chunks_.back()->free.begin());
}

const std::uint8_t* CodeArena::place(const std::uint8_t* code, std::size_t size) {
  const std::size_t bytes = round_up(std::max<std::size_t>(size, 1), kUnit);
  if (fd_ < 0) {  // the fallback: a private mapping per kernel, flipped once written
    const std::size_t length = round_up(bytes, page_size());
    void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail("cannot map code");
    std::memcpy(p, code, size);
    if (::mprotect(p, length, PROT_READ | PROT_EXEC) != 0) {
      ::munmap(p, length);
      fail("cannot make code executable");
    }
    return static_cast<std::uint8_t*>(p);
  }
  std::lock_guard lock(mutex_);
  const auto [chunk, offset] = take(bytes);
  Chunk& c = *chunk;
  for (std::size_t done = 0; done < size;) {
    const ssize_t n = ::pwrite(fd_, code + done, size - done, static_cast<off_t>(c.file_offset + offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      c.free[offset] = bytes;  // (not coalesced: harmless)
      fail("cannot write code");
    }
    done += static_cast<std::size_t>(n);
  }
  return c.base + offset;
}

std::size_t CodeArena::mapped_bytes() {
  std::lock_guard lock(mutex_);
  return file_bytes_;
}

void CodeArena::release(const std::uint8_t* at, std::size_t size) {
  if (at == nullptr) return;
  const std::size_t bytes = round_up(std::max<std::size_t>(size, 1), kUnit);
  if (fd_ < 0) {
    ::munmap(const_cast<std::uint8_t*>(at), round_up(bytes, page_size()));
    return;
  }
  std::lock_guard lock(mutex_);
  for (auto& c : chunks_) {
    const auto addr = reinterpret_cast<std::uintptr_t>(at), base = reinterpret_cast<std::uintptr_t>(c->base);
    if (addr < base || addr - base >= c->bytes) continue;
    std::size_t offset = addr - base, length = bytes;
    auto next = c->free.lower_bound(offset);
    if (next != c->free.end() && next->first == offset + length) {  // merge with the range after
      length += next->second;
      next = c->free.erase(next);
    }
    if (next != c->free.begin()) {  // and with the one before
      auto prev = std::prev(next);
      if (prev->first + prev->second == offset) {
        offset = prev->first;
        length += prev->second;
        c->free.erase(prev);
      }
    }
    c->free[offset] = length;
    return;
  }
}

uint8_t* EmitAllocator::alloc(size_t size) {
  return static_cast<uint8_t*>(std::aligned_alloc(kUnit, round_up(std::max<std::size_t>(size, 1), kUnit)));
}

void EmitAllocator::free(uint8_t* p) { std::free(p); }

JitKernel::JitKernel(std::string name, std::string serves)
    : Xbyak::CodeGenerator(kInitialCodeBytes, Xbyak::AutoGrow, &emit_allocator_),
      name_(std::move(name)),
      serves_(std::move(serves)) {
  if (name_.empty()) throw std::invalid_argument("JitKernel: a kernel needs a name");
}

JitKernel::~JitKernel() {
  if (!finalized_) return;
  JitRegistry::instance().remove(code_);
  CodeArena::instance().release(code_, code_size_);
}

// rbx, rbp, r12-r15: the registers System V makes the callee preserve.
static const Xbyak::Reg64 kCalleeSaved[] = {Xbyak::util::rbx, Xbyak::util::rbp, Xbyak::util::r12,
                                            Xbyak::util::r13, Xbyak::util::r14, Xbyak::util::r15};

void JitKernel::prologue(std::size_t frame_bytes) {
  for (const auto& r : kCalleeSaved) push(r);
  // The call pushed 8 bytes and we pushed 48, so rsp is 8 mod 16 here; add 8 to align.
  frame_bytes_ = (frame_bytes + 15) / 16 * 16 + 8;
  sub(rsp, static_cast<uint32_t>(frame_bytes_));
}

void JitKernel::epilogue() {
  add(rsp, static_cast<uint32_t>(frame_bytes_));
  for (int i = 5; i >= 0; --i) pop(kCalleeSaved[i]);
  vzeroupper();
  ret();
}

void JitKernel::finalize() {
  if (finalized_) throw std::logic_error("JitKernel '" + name_ + "': finalize() called twice");
  ready();  // resolves labels; the emit buffer is not protected (EmitAllocator)
  code_size_ = getSize();
  code_ = CodeArena::instance().place(getCode(), code_size_);
  finalized_ = true;
  // The emit buffer is done with: the next kernel this thread emits reuses its memory
  // (warm pages) instead of every kernel holding its own for as long as it lives.
  // (Xbyak's CodeArray: top_ and maxSize_ are protected; its destructor frees top_.)
  emit_allocator_.free(top_);
  top_ = nullptr;
  maxSize_ = 0;
  JitRegistry::instance().add(JitBlob{name_, serves_, code_, code_size_});
}

}  // namespace nnjit::jit
