// nnjit's own thread pool (not OpenMP): one per Engine and thread count, shared by the
// models and sessions of that Engine.
//
//   ThreadPool pool(2);                                  // the caller + 1 worker thread
//   pool.parallel_for(rows, [&](int64_t begin, int64_t end, int worker) {
//     kernel(rows_begin = begin, rows_end = end);        // range 0 is the caller's
//   });
//   ThreadPool::Balance balance;                         // one per call site (a step)
//   pool.parallel_for(rows, fn, &balance);               // ranges sized to end together
//
// Contracts:
//  - parallel_for splits [0, n) into threads() contiguous ranges, in order, and calls
//    fn(begin, end, w) once for each non-empty range w; range 0 runs on the calling
//    thread, and the call returns when every range is done. Ranges 1..T-1 go to whichever
//    thread takes them first: the workers, or the caller once range 0 is done — a worker
//    its host has not run yet (a busy VM) does not hold the step up. With threads() == 1
//    it calls fn(0, n, 0) inline.
//  - Without a Balance, or while its call site has not been measured, or with
//    n < threads(), range w is [n*w/T, n*(w+1)/T); with n >= threads() no range is empty.
//    With a Balance the ranges are sized so that they end together, from how fast each
//    ran in this call site's recent jobs: on a VM the other vCPU may run slower for
//    seconds while its host is busy, and with equal ranges every step then waits for
//    the slower one. A Balance belongs to one call site (a model's step: its ranges' work
//    differs from other steps'); the pool reads and updates it under its lock, so the
//    sessions running that step may share it.
//  - A caller needing one split for several jobs (fused blocks in place run three rounds
//    over the same ranges, and index their buffers by w) takes split(n, balance) once and
//    passes it to each; the jobs that do like work in every range pass the Balance to
//    learn from.
//  - Calls are serialised: two threads calling parallel_for on one pool take turns
//    (sessions sharing a pool share its workers). fn must not call parallel_for.
//  - The first exception fn throws is rethrown on the caller after every range ended.
//  - Workers spin for about 50 microseconds after each job (a model run issues a job per
//    step), then sleep on a futex until the next one; an idle pool costs no CPU.
//  - While a Section is open (Session::run holds one unless Options::spin_during_run is
//    false), a thread waiting for the next job or for the workers' ranges spins for up to
//    5 ms before it sleeps, unless the thread it waits for runs on its CPU: on a VM a
//    sleeping thread's vCPU may take milliseconds to run it again, and a worker that woke
//    too late for one job (the caller took its range) slept again before the next, so a
//    run after an idle gap went at one thread's pace (mobilenet_v2 at 2 threads, a run
//    every 20 ms: 7.1 ms, 1 thread 7.0).
//    A job that finds a worker asleep keeps it off the caller's CPU until it runs again:
//    woken, Linux may put it there (the other vCPU, halted, need not look idle), where it
//    waits for the caller. Neither with more threads than the process has CPUs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace nnjit::runtime {

class ThreadPool {
 public:
  // cpu_limit: CPUs the process may keep busy beside its affinity mask (a cgroup quota,
  // jit::quota_cpus); 0 = none. With more threads than CPUs, Sections change nothing.
  explicit ThreadPool(int threads, int cpu_limit = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }
  // Whether threads() <= the process's CPUs and cpu_limit (else Sections change
  // nothing), and how many workers are asleep (or about to be) now: for tests.
  bool fits_cpus() const { return fits_cpus_; }
  int asleep() const { return sleepers_.load(std::memory_order_relaxed); }

  // Where the ranges of a job over n units begin: range w is [bounds[w], bounds[w + 1]).
  using Split = std::vector<int64_t>;

  // What one call site learned of how fast its ranges run (see the contracts above).
  // The pool calls it under its lock; it is pure arithmetic, so tests call it directly.
  class Balance {
   public:
    // Fills bounds (threads + 1 entries, bounds.back() = n): the equal split until
    // learn() has seen a job, then the one whose ranges should end together.
    void split(int64_t n, Split& bounds) const;
    // One job: its bounds, when each range ended (ns after the job began) and which
    // ranges the caller ran (they say nothing of a worker). Each range's speed (units per
    // ns over range 0's) moves a fifth of the way to what the job saw, within 1/8 to 8.
    void learn(const Split& bounds, const std::vector<int64_t>& done_ns, const std::vector<char>& by_caller);

   private:
    std::vector<double> log_speed_;  // per range: log of its speed over range 0's
    std::vector<double> speed_;      // and that speed
  };

  Split split(int64_t n, const Balance* balance);

  // Open for the span of a model run (its jobs come one per step); nests, and sessions
  // sharing the pool may each hold one. A null pool makes it do nothing.
  class Section {
   public:
    explicit Section(ThreadPool* pool) : pool_(pool && pool->fits_cpus_ ? pool : nullptr) {
      if (pool_) pool_->sections_.fetch_add(1, std::memory_order_relaxed);
    }
    ~Section() {
      if (pool_) pool_->sections_.fetch_sub(1, std::memory_order_relaxed);
    }
    Section(const Section&) = delete;
    Section& operator=(const Section&) = delete;

   private:
    ThreadPool* pool_;
  };

  template <class Fn>
  void parallel_for(int64_t n, Fn&& fn, Balance* balance = nullptr) {
    if (n <= 0) return;
    if (threads_ == 1) {
      fn(int64_t{0}, n, 0);
      return;
    }
    run(n, nullptr, job(fn), balance);
  }
  // One job over a split taken from split(); its ranges' times teach `learn` (if given).
  template <class Fn>
  void parallel_for(const Split& split, Fn&& fn, Balance* learn) {
    const int64_t n = split.empty() ? 0 : split.back();
    if (n <= 0) return;
    if (threads_ == 1) {
      fn(int64_t{0}, n, 0);
      return;
    }
    run(n, &split, job(fn), learn);
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct Job {
    void* fn = nullptr;
    void (*call)(void*, int64_t, int64_t, int) = nullptr;
  };
  template <class Fn>
  static Job job(Fn& fn) {
    using F = std::remove_reference_t<Fn>;
    return {const_cast<void*>(static_cast<const void*>(&fn)),
            [](void* f, int64_t b, int64_t e, int w) { (*static_cast<F*>(f))(b, e, w); }};
  }
  void run(int64_t n, const Split* split, Job job, Balance* learn);
  void work(int range, bool caller);  // one range of the current job
  // Runs ranges of job `epoch` until none is left to take.
  void take_ranges(uint32_t epoch, bool caller);
  void loop(std::size_t w);  // worker w (1..T-1)

  int threads_ = 1;
  std::mutex call_mutex_;  // one job at a time
  Job job_;
  Split bounds_;                       // the current job's
  Clock::time_point start_;            // when it was published
  std::vector<int64_t> done_ns_;       // per range: when it ended, after start_
  std::vector<char> by_caller_;        // per range: whether the caller ran it
  std::atomic<uint32_t> epoch_{0};    // bumped per job; workers wait for it to change
  std::atomic<uint64_t> next_{0};     // the current job's epoch << 32 | the next range to take
  std::atomic<int> pending_{0};       // ranges 1..T-1 of the current job not done yet
  std::atomic<bool> stop_{false};
  std::atomic<int> sections_{0};     // Sections open
  bool fits_cpus_ = false;           // threads <= the process's CPUs and cpu_limit
  std::atomic<int> caller_cpu_{-1};  // where the last job's caller ran
  std::atomic<int> sleepers_{0};     // workers asleep (or about to be)
  std::unique_ptr<std::atomic<bool>[]> kept_off_;  // per worker: run() kept it off its CPU
  std::unique_ptr<std::atomic<int>[]> range_cpu_;  // per range: the CPU a worker runs it on
  std::mutex error_mutex_;
  std::exception_ptr error_;
  std::vector<std::thread> workers_;
};

// Keeps `helper` off the CPU the calling thread runs on, among the CPUs the process may
// use (nothing changes with one of them, or where the kernel will not say). Woken by
// the caller, a helper may otherwise land on the caller's own CPU — on a VM, the other
// vCPU does not look idle while its host runs something else — and preempt the caller
// for a whole slice: here the load thread's share of compile then started 2.5-4.7 ms
// late (20 loads in 20 beside a low-priority busy process, 1-4 in 8 on a quiet host).
// A helper that runs for long calls run_anywhere() once it runs: pinned, it could not
// leave when the caller is later moved onto its CPU.
void keep_off_caller_cpu(std::thread& helper);
// Lets the calling thread run on every CPU the process's main thread may use.
void run_anywhere();

}  // namespace nnjit::runtime
