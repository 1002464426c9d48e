// ThreadPool (see thread_pool.hpp): an epoch counter the workers spin on, then futex-wait
// on (std::atomic::wait), a counter the ranges of a job are taken from, and a pending
// count the caller waits on the same way (how long they spin: the Sections open, and where
// the thread they wait for runs). Each range notes when it ended; after a job with a
// Balance, the caller moves each range's speed there (units per second from the job's
// start, so a worker starting late counts as slower) towards what it saw.
#include "runtime/thread_pool.hpp"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace nnjit::runtime {

namespace {
// ~50 us of pause instructions before a waiting thread sleeps.
constexpr int kSpins = 2000;
// While a Section is open, a waiting thread spins for up to 5 ms before it sleeps.
constexpr auto kSectionSpin = std::chrono::milliseconds(5);
// A job moves its call site's speeds a fifth of the way to what it saw: they follow the
// last few runs of a step, and one run a thread was descheduled in moves them little.
constexpr double kLearnRate = 0.2;
// A range's speed stays within 1/8 to 8 times range 0's.
constexpr double kMaxLogSpeed = 2.0794415416798357;  // log(8)
// A call site without a Balance: the equal split.
const ThreadPool::Balance kEqual;

// Pause-spins until done(): kSpins times, then on while hold() (checked every 64 spins),
// for up to kSectionSpin in all. Says whether done() came.
template <class Pred, class Hold>
bool spin(Pred done, Hold hold) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point start{};
  for (int i = 0;; ++i) {
    if (done()) return true;
    if (i >= kSpins && i % 64 == 0) {
      if (!hold()) return false;
      const Clock::time_point now = Clock::now();
      if (start == Clock::time_point{}) start = now;
      else if (now - start > kSectionSpin) return false;
    }
    _mm_pause();
  }
}
}  // namespace

ThreadPool::ThreadPool(int threads, int cpu_limit) : threads_(threads) {
  if (threads < 1 || threads > 1024)
    throw std::invalid_argument("ThreadPool: threads must be 1 to 1024, got " + std::to_string(threads));
  const auto t = static_cast<std::size_t>(threads);
  bounds_.resize(t + 1);
  done_ns_.resize(t);
  by_caller_.resize(t);
  cpu_set_t cpus;
  fits_cpus_ = sched_getaffinity(getpid(), sizeof cpus, &cpus) == 0 && threads <= CPU_COUNT(&cpus) &&
               (cpu_limit <= 0 || threads <= cpu_limit);
  kept_off_ = std::make_unique<std::atomic<bool>[]>(t);
  range_cpu_ = std::make_unique<std::atomic<int>[]>(t);
  for (std::size_t w = 1; w < t; ++w) workers_.emplace_back([this, w] { loop(w); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_release);
  epoch_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Balance::split(int64_t n, Split& bounds) const {
  const std::size_t T = bounds.size() - 1;
  const auto threads = static_cast<int64_t>(T);
  bounds[0] = 0;
  bounds[T] = n;
  if (speed_.size() != T || n < threads) {
    for (std::size_t w = 1; w < T; ++w) bounds[w] = n * static_cast<int64_t>(w) / threads;
    return;
  }
  double total = 0;
  for (double v : speed_) total += v;
  // Boundary w at the whole unit beside its ideal place that lets ranges w - 1 and w (up
  // to the next ideal place) end sooner; a tie keeps the lower one, as the equal split.
  double before = 0;  // speeds of ranges 0..w-1
  for (std::size_t w = 1; w < T; ++w) {
    before += speed_[w - 1];
    const double at = static_cast<double>(n) * before / total;
    const double next = w + 1 < T ? static_cast<double>(n) * (before + speed_[w]) / total : static_cast<double>(n);
    auto ends = [&](int64_t b) {
      return std::max(static_cast<double>(b - bounds[w - 1]) / speed_[w - 1],
                      (next - static_cast<double>(b)) / speed_[w]);
    };
    int64_t b = static_cast<int64_t>(at);
    if (ends(b + 1) < ends(b)) ++b;
    bounds[w] = std::clamp(b, bounds[w - 1] + 1, n - (threads - static_cast<int64_t>(w)));  // none empty
  }
}

void ThreadPool::Balance::learn(const Split& bounds, const std::vector<int64_t>& done_ns,
                                const std::vector<char>& by_caller) {
  const std::size_t T = done_ns.size();
  const int64_t n0 = bounds[1] - bounds[0];
  if (n0 <= 0 || done_ns[0] <= 0) return;
  if (log_speed_.size() != T) {
    log_speed_.assign(T, 0.0);
    speed_.assign(T, 1.0);
  }
  const double speed0 = static_cast<double>(n0) / static_cast<double>(done_ns[0]);
  for (std::size_t w = 1; w < T; ++w) {
    const int64_t n = bounds[w + 1] - bounds[w];
    if (n <= 0 || by_caller[w] || done_ns[w] <= 0) continue;
    const double seen = std::log(static_cast<double>(n) / static_cast<double>(done_ns[w]) / speed0);
    log_speed_[w] += kLearnRate * (std::clamp(seen, -kMaxLogSpeed, kMaxLogSpeed) - log_speed_[w]);
    speed_[w] = std::exp(log_speed_[w]);
  }
}

ThreadPool::Split ThreadPool::split(int64_t n, const Balance* balance) {
  Split bounds(static_cast<std::size_t>(threads_) + 1);
  std::lock_guard lock(call_mutex_);
  (balance ? *balance : kEqual).split(std::max<int64_t>(n, 0), bounds);
  return bounds;
}

void ThreadPool::work(int range, bool caller) {
  const auto w = static_cast<std::size_t>(range);
  const int64_t begin = bounds_[w], end = bounds_[w + 1];
  by_caller_[w] = caller;
  if (!caller) range_cpu_[w].store(sched_getcpu(), std::memory_order_relaxed);
  if (begin < end) {
    try {
      job_.call(job_.fn, begin, end, range);
    } catch (...) {
      std::lock_guard lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
  done_ns_[w] = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
}

void ThreadPool::take_ranges(uint32_t epoch, bool caller) {
  // A range is taken by advancing next_ while it still names this job: a thread that saw
  // an earlier job (it woke late) takes nothing of a later one.
  uint64_t next = next_.load(std::memory_order_acquire);
  while (static_cast<uint32_t>(next >> 32) == epoch && static_cast<uint32_t>(next) < static_cast<uint32_t>(threads_)) {
    if (!next_.compare_exchange_weak(next, next + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    work(static_cast<int>(static_cast<uint32_t>(next)), caller);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    next = next_.load(std::memory_order_acquire);
  }
}

void ThreadPool::loop(std::size_t w) {
  uint32_t seen = 0;
  const auto job_came = [&] { return epoch_.load(std::memory_order_seq_cst) != seen; };
  // Within a Section, unless on the caller's CPU (where spinning would keep it waiting).
  const auto stay_up = [&] {
    return sections_.load(std::memory_order_relaxed) > 0 && sched_getcpu() != caller_cpu_.load(std::memory_order_relaxed);
  };
  for (;;) {
    if (!spin(job_came, stay_up)) {
      sleepers_.fetch_add(1, std::memory_order_seq_cst);  // before the last look (run() reads it after publishing)
      while (!job_came()) epoch_.wait(seen, std::memory_order_seq_cst);
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }
    if (kept_off_[w].load(std::memory_order_relaxed) && kept_off_[w].exchange(false)) run_anywhere();
    seen = epoch_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    take_ranges(seen, false);
  }
}

void ThreadPool::run(int64_t n, const Split* split, Job job, Balance* learn) {
  std::lock_guard lock(call_mutex_);
  job_ = job;
  if (split) {
    if (split->size() != bounds_.size()) throw std::invalid_argument("ThreadPool: a split from another pool");
    bounds_ = *split;
  } else {
    (learn ? *learn : kEqual).split(n, bounds_);
  }
  error_ = nullptr;
  pending_.store(threads_ - 1, std::memory_order_relaxed);
  for (int w = 1; w < threads_; ++w) range_cpu_[w].store(-1, std::memory_order_relaxed);
  const uint32_t epoch = epoch_.load(std::memory_order_relaxed) + 1;
  next_.store(uint64_t{epoch} << 32 | 1, std::memory_order_relaxed);  // range 0 is ours
  start_ = Clock::now();
  caller_cpu_.store(sched_getcpu(), std::memory_order_relaxed);
  epoch_.store(epoch, std::memory_order_seq_cst);
  if (fits_cpus_ && sleepers_.load(std::memory_order_seq_cst) > 0) {
    // Woken, a sleeping worker may be put on this CPU, where it would wait for the caller.
    for (std::size_t w = 1; w < static_cast<std::size_t>(threads_); ++w) {
      kept_off_[w].store(true, std::memory_order_relaxed);
      keep_off_caller_cpu(workers_[w - 1]);
    }
  }
  epoch_.notify_all();
  work(0, true);
  take_ranges(epoch, true);
  // Within a Section, spin on unless a worker's range runs on this CPU (it waits for us).
  const auto stay_up = [&] {
    if (sections_.load(std::memory_order_relaxed) == 0) return false;
    const int here = sched_getcpu();
    for (int w = 1; w < threads_; ++w)
      if (range_cpu_[w].load(std::memory_order_relaxed) == here) return false;
    return true;
  };
  for (int left; (left = pending_.load(std::memory_order_acquire)) != 0;) {
    const auto changed = [&] { return pending_.load(std::memory_order_acquire) != left; };
    if (!spin(changed, stay_up)) pending_.wait(left, std::memory_order_acquire);
  }
  if (learn) learn->learn(bounds_, done_ns_, by_caller_);
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
