#include "jit/pack_arena.hpp"

#include <sys/mman.h>

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
std::size_t round_to_page(std::size_t bytes) { return (bytes + PackArena::kPage - 1) / PackArena::kPage * PackArena::kPage; }
}  // namespace

PackArena::PackArena(std::size_t reserve_bytes) : region_(std::make_shared<Region>()) {
  const std::size_t bytes = round_to_page(reserve_bytes);
  if (bytes == 0) return;
  // Address space only: no page is backed (or counted against overcommit) until touched.
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return;
  region_->base = static_cast<char*>(p);
  region_->mapped = bytes;
  limit_ = bytes;
}

std::pair<void*, std::shared_ptr<void>> PackArena::carve(std::size_t bytes) {
  const std::size_t len = round_to_page(bytes);
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
  if (region_->base != nullptr && used < region_->mapped) {
    ::munmap(region_->base + used, region_->mapped - used);
    region_->mapped = used;
  }
  limit_ = used;
}

std::size_t PackArena::reserved_bytes() const { return region_->mapped; }

PackArena* PackArena::current() { return t_current; }
PackArena::Use::Use(PackArena& arena) : previous_(t_current) { t_current = &arena; }
PackArena::Use::~Use() { t_current = previous_; }

}  // namespace nnjit::jit
