#include "jit/pack_arena.hpp"

#include <sys/mman.h>

#include <algorithm>

namespace nnjit::jit {

struct PackArena::Region {
  char* base = nullptr;
  std::size_t mapped = 0;
  ~Region() {
    if (base != nullptr && mapped > 0) ::munmap(base, mapped);
  }
};

namespace {
thread_local PackArena* t_current = nullptr;
std::size_t round_up(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }
}  // namespace

PackArena::PackArena(std::size_t reserve_bytes) : region_(std::make_shared<Region>()) {
  const std::size_t bytes = round_up(reserve_bytes, kPage);
  if (bytes == 0) return;
  // Address space only: no page is backed (or counted against overcommit) until touched.
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return;
  region_->base = static_cast<char*>(p);
  region_->mapped = bytes;
  limit_ = bytes - kAlign;  // a vector read past the last range stays mapped
}

std::pair<void*, std::shared_ptr<void>> PackArena::carve(std::size_t bytes) {
  const std::size_t len = round_up(bytes, kAlign);
  if (len == 0 || len > limit_) return {nullptr, nullptr};
  std::size_t at = next_.load();
  do {
    if (at + len > limit_) return {nullptr, nullptr};
  } while (!next_.compare_exchange_weak(at, at + len));
  void* p = region_->base + at;
  return {p, std::shared_ptr<void>(region_, p)};
}

void PackArena::trim() {
  const std::size_t used = next_.load();
  const std::size_t kept = round_up(used + kAlign, kPage);
  if (region_->base != nullptr && kept < region_->mapped) {
    ::munmap(region_->base + kept, region_->mapped - kept);
    region_->mapped = kept;
  }
  limit_ = used;
}

std::size_t PackArena::reserved_bytes() const { return region_->mapped; }

PackArena* PackArena::current() { return t_current; }
PackArena::Use::Use(PackArena& arena) : previous_(t_current) { t_current = &arena; }
PackArena::Use::~Use() { t_current = previous_; }

}  // namespace nnjit::jit
