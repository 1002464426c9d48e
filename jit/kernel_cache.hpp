// KernelCache: one compiled kernel per distinct plan, so identical layers share code.
//
//   static KernelCache<PointwiseKernel> cache;
//   std::shared_ptr<const PointwiseKernel> k =
//       cache.get(plan, [&] { return std::make_shared<PointwiseKernel>(plan, "node 'conv3'"); });
//
// Contracts:
//  - The key is plan.key(): a string that spells out every field the emitter reads, so
//    two plans with equal keys generate identical code. Every family's plan provides it.
//  - The cache holds kernels weakly: a kernel lives while some model holds it and is
//    compiled again if asked for after the last holder let go (a hot-swapped model does
//    not pin the code of the model it replaced).
//  - Thread-safe. Compilation runs under the cache's lock, so a kernel is never compiled
//    twice for one key; compiling takes well under a millisecond per kernel.
//  - `make` may throw; the exception reaches the caller and nothing is cached.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace nnjit::jit {

template <class Kernel>
class KernelCache {
 public:
  template <class Plan, class Make>
  std::shared_ptr<const Kernel> get(const Plan& plan, Make&& make) {
    const std::string key = plan.key();
    std::lock_guard lock(mutex_);
    auto it = kernels_.find(key);
    if (it != kernels_.end()) {
      if (std::shared_ptr<const Kernel> kernel = it->second.lock()) {
        ++hits_;
        return kernel;
      }
    }
    std::shared_ptr<const Kernel> kernel = make();
    kernels_[key] = kernel;
    ++compiles_;
    if (kernels_.size() > 2 * live_at_last_sweep_ + 64) sweep();
    return kernel;
  }

  // Kernels currently alive through this cache.
  std::size_t live() const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [key, weak] : kernels_) n += weak.expired() ? 0 : 1;
    return n;
  }
  std::size_t hits() const {
    std::lock_guard lock(mutex_);
    return hits_;
  }
  std::size_t compiles() const {
    std::lock_guard lock(mutex_);
    return compiles_;
  }

 private:
  // Drops entries whose kernels are gone, so a long-lived server's cache does not grow
  // with every model version it ever loaded.
  void sweep() {
    for (auto it = kernels_.begin(); it != kernels_.end();) it = it->second.expired() ? kernels_.erase(it) : ++it;
    live_at_last_sweep_ = kernels_.size();
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::weak_ptr<const Kernel>> kernels_;
  std::size_t live_at_last_sweep_ = 0;
  std::size_t hits_ = 0;
  std::size_t compiles_ = 0;
};

}  // namespace nnjit::jit
