#include "jit/jit_kernel.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <new>
#include <stdexcept>

#include "jit/registry.hpp"

namespace nnjit::jit {

namespace {

// Enough for a small kernel; Xbyak's AutoGrow doubles it as needed.
constexpr std::size_t kInitialCodeBytes = 16 << 10;

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace

uint8_t* CodePageAllocator::alloc(size_t size) {
  const std::size_t page = page_size();
  const std::size_t length = (std::max<std::size_t>(size, 1) + page - 1) / page * page;
  void* p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  auto* bytes = static_cast<uint8_t*>(p);
  mapped_[bytes] = length;
  return bytes;
}

void CodePageAllocator::free(uint8_t* p) {
  if (p == nullptr) return;
  auto it = mapped_.find(p);
  if (it == mapped_.end()) return;
  munmap(p, it->second);
  mapped_.erase(it);
}

CodePageAllocator::~CodePageAllocator() {
  for (auto& [p, length] : mapped_) munmap(p, length);
}

JitKernel::JitKernel(std::string name, std::string serves)
    : Xbyak::CodeGenerator(kInitialCodeBytes, Xbyak::AutoGrow, &code_allocator_),
      name_(std::move(name)),
      serves_(std::move(serves)) {
  if (name_.empty()) throw std::invalid_argument("JitKernel: a kernel needs a name");
}

JitKernel::~JitKernel() {
  if (finalized_) JitRegistry::instance().remove(getCode());
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
  ready(PROTECT_RE);
  finalized_ = true;
  JitRegistry::instance().add(JitBlob{name_, serves_, getCode(), getSize()});
}

}  // namespace nnjit::jit
