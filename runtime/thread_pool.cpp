// ThreadPool (see thread_pool.hpp): an epoch counter the workers spin on, then futex-wait
// on (std::atomic::wait), a counter the ranges of a job are taken from, and a pending
// count the caller waits on the same way.
#include "runtime/thread_pool.hpp"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <stdexcept>
#include <utility>
#include <string>

namespace nnjit::runtime {

namespace {
// ~50 us of pause instructions before a waiting thread sleeps.
constexpr int kSpins = 2000;

template <class T, class Pred>
void spin_then_wait(const std::atomic<T>& a, T old, Pred done) {
  for (int i = 0; i < kSpins; ++i) {
    if (done()) return;
    _mm_pause();
  }
  while (!done()) a.wait(old, std::memory_order_acquire);
}
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  if (threads < 1 || threads > 1024)
    throw std::invalid_argument("ThreadPool: threads must be 1 to 1024, got " + std::to_string(threads));
  for (int w = 1; w < threads_; ++w) workers_.emplace_back([this] { loop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_release);
  epoch_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::work(int range) {
  const int64_t begin = n_ * range / threads_, end = n_ * (range + 1) / threads_;
  if (begin >= end) return;
  try {
    job_.call(job_.fn, begin, end, range);
  } catch (...) {
    std::lock_guard lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::take_ranges(uint32_t epoch) {
  // A range is taken by advancing next_ while it still names this job: a thread that saw
  // an earlier job (it woke late) takes nothing of a later one.
  uint64_t next = next_.load(std::memory_order_acquire);
  while (static_cast<uint32_t>(next >> 32) == epoch && static_cast<uint32_t>(next) < static_cast<uint32_t>(threads_)) {
    if (!next_.compare_exchange_weak(next, next + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    work(static_cast<int>(static_cast<uint32_t>(next)));
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    next = next_.load(std::memory_order_acquire);
  }
}

void ThreadPool::loop() {
  uint32_t seen = 0;
  for (;;) {
    spin_then_wait(epoch_, seen, [&] { return epoch_.load(std::memory_order_acquire) != seen; });
    seen = epoch_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    take_ranges(seen);
  }
}

void ThreadPool::run(int64_t n, Job job) {
  std::lock_guard lock(call_mutex_);
  job_ = job;
  n_ = n;
  error_ = nullptr;
  pending_.store(threads_ - 1, std::memory_order_relaxed);
  const uint32_t epoch = epoch_.load(std::memory_order_relaxed) + 1;
  next_.store(uint64_t{epoch} << 32 | 1, std::memory_order_relaxed);  // range 0 is ours
  epoch_.store(epoch, std::memory_order_release);
  epoch_.notify_all();
  work(0);
  take_ranges(epoch);
  for (int left; (left = pending_.load(std::memory_order_acquire)) != 0;)
    spin_then_wait(pending_, left, [&] { return pending_.load(std::memory_order_acquire) != left; });
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void keep_off_caller_cpu(std::thread& helper) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  const int here = sched_getcpu();
  if (!helper.joinable() || here < 0 || here >= CPU_SETSIZE || sched_getaffinity(0, sizeof allowed, &allowed) != 0 ||
      !CPU_ISSET(here, &allowed) || CPU_COUNT(&allowed) < 2)
    return;
  CPU_CLR(here, &allowed);
  pthread_setaffinity_np(helper.native_handle(), sizeof allowed, &allowed);
}

void run_anywhere() {
  cpu_set_t allowed;
  if (sched_getaffinity(getpid(), sizeof allowed, &allowed) == 0) sched_setaffinity(0, sizeof allowed, &allowed);
}

}  // namespace nnjit::runtime
