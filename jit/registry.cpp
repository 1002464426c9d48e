#include "jit/registry.hpp"

namespace nnjit::jit {

JitRegistry& JitRegistry::instance() {
  // Leaked on purpose: kernels held by static objects may be destroyed after any
  // function-local static, and their destructors still call remove().
  static JitRegistry* registry = new JitRegistry;
  return *registry;
}

void JitRegistry::add(JitBlob blob) {
  std::lock_guard lock(mutex_);
  const auto key = reinterpret_cast<std::uintptr_t>(blob.address);
  blobs_[key] = std::move(blob);
}

void JitRegistry::remove(const void* address) {
  std::lock_guard lock(mutex_);
  blobs_.erase(reinterpret_cast<std::uintptr_t>(address));
}

bool JitRegistry::append_serves(const void* address, const std::string& more) {
  std::lock_guard lock(mutex_);
  auto it = blobs_.find(reinterpret_cast<std::uintptr_t>(address));
  if (it == blobs_.end()) return false;
  std::string& serves = it->second.serves;
  // A layer asking again (the tiles of a fused block share kernels) adds nothing.
  if (serves.find(more) == std::string::npos) serves += serves.empty() ? more : "; " + more;
  return true;
}

std::vector<JitBlob> JitRegistry::list() const {
  std::lock_guard lock(mutex_);
  std::vector<JitBlob> out;
  out.reserve(blobs_.size());
  for (const auto& [addr, blob] : blobs_) out.push_back(blob);
  return out;
}

std::optional<JitBlob> JitRegistry::find(const void* pc) const {
  std::lock_guard lock(mutex_);
  const auto p = reinterpret_cast<std::uintptr_t>(pc);
  auto it = blobs_.upper_bound(p);
  if (it == blobs_.begin()) return std::nullopt;
  --it;
  if (p - it->first < it->second.size) return it->second;
  return std::nullopt;
}

std::optional<JitBlob> JitRegistry::find_by_name(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (const auto& [addr, blob] : blobs_)
    if (blob.name == name) return blob;
  return std::nullopt;
}

std::size_t JitRegistry::size() const {
  std::lock_guard lock(mutex_);
  return blobs_.size();
}

}  // namespace nnjit::jit
