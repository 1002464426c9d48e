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
//  - Thread-safe. Each key has its own lock, held while its kernel compiles: a kernel is
//    never compiled twice for one key, and different keys compile in parallel (a load
//    compiles on several threads).
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
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard lock(mutex_);
      std::shared_ptr<Entry>& slot = entries_[key];
      if (!slot) slot = std::make_shared<Entry>();
      entry = slot;
    }
    std::shared_ptr<const Kernel> kernel;
    bool compiled = false;
    {
      std::lock_guard lock(entry->mutex);
      kernel = entry->kernel.lock();
      if (!kernel) {
        kernel = make();
        entry->kernel = kernel;
        compiled = true;
      }
    }
    std::lock_guard lock(mutex_);  // never taken while holding an entry's lock
    ++(compiled ? compiles_ : hits_);
    if (compiled && entries_.size() > 2 * live_at_last_sweep_ + 64) sweep();
    return kernel;
  }

  // Kernels currently alive through this cache.
  std::size_t live() const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [key, entry] : entries_) {
      std::lock_guard entry_lock(entry->mutex);
      n += entry->kernel.expired() ? 0 : 1;
    }
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
  struct Entry {
    std::mutex mutex;  // held while the kernel compiles
    std::weak_ptr<const Kernel> kernel;
  };

  // Drops entries whose kernels are gone and which no caller holds, so a long-lived
  // server's cache does not grow with every model version it ever loaded. Runs under
  // mutex_; an entry another thread holds (use_count > 1) stays.
  void sweep() {
    for (auto it = entries_.begin(); it != entries_.end();) {
      const bool idle = it->second.use_count() == 1 && it->second->kernel.expired();
      it = idle ? entries_.erase(it) : ++it;
    }
    live_at_last_sweep_ = entries_.size();
  }

  mutable std::mutex mutex_;  // guards entries_ and the counters
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;
  std::size_t live_at_last_sweep_ = 0;
  std::size_t hits_ = 0;
  std::size_t compiles_ = 0;
};

}  // namespace nnjit::jit
