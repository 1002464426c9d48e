// nnjit's own thread pool (not OpenMP): one per Engine and thread count, shared by the
// models and sessions of that Engine.
//
//   ThreadPool pool(2);                                  // the caller + 1 worker thread
//   pool.parallel_for(rows, [&](int64_t begin, int64_t end, int worker) {
//     kernel(rows_begin = begin, rows_end = end);        // range 0 is the caller's
//   });
//
// Contracts:
//  - parallel_for splits [0, n) into threads() contiguous near-equal ranges, in order:
//    range w is [n*w/T, n*(w+1)/T) and is called as fn(begin, end, w) once (empty ranges
//    are not called); range 0 runs on the calling thread, and the call returns when
//    every range is done. The same n and T always give the same split (fused blocks
//    rely on a range's tiles being consecutive, and index their buffers by w). Ranges
//    1..T-1 go to whichever thread takes them first: the workers, or the caller once
//    range 0 is done — a worker its host has not run yet (a busy VM) does not hold the
//    step up. With threads() == 1 it calls fn(0, n, 0) inline.
//  - Calls are serialised: two threads calling parallel_for on one pool take turns
//    (sessions sharing a pool share its workers). fn must not call parallel_for.
//  - The first exception fn throws is rethrown on the caller after every range ended.
//  - Workers spin for about 50 microseconds after each job (a model run issues a job per
//    step), then sleep on a futex until the next one; an idle pool costs no CPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace nnjit::runtime {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  template <class Fn>
  void parallel_for(int64_t n, Fn&& fn) {
    if (n <= 0) return;
    if (threads_ == 1) {
      fn(int64_t{0}, n, 0);
      return;
    }
    using F = std::remove_reference_t<Fn>;
    run(n, {const_cast<void*>(static_cast<const void*>(&fn)), [](void* f, int64_t b, int64_t e, int w) {
              (*static_cast<F*>(f))(b, e, w);
            }});
  }

 private:
  struct Job {
    void* fn = nullptr;
    void (*call)(void*, int64_t, int64_t, int) = nullptr;
  };
  void run(int64_t n, Job job);
  void work(int range);  // one range of the current job
  // Runs ranges of job `epoch` until none is left to take.
  void take_ranges(uint32_t epoch);
  void loop();

  int threads_ = 1;
  std::mutex call_mutex_;  // one job at a time
  Job job_;
  int64_t n_ = 0;
  std::atomic<uint32_t> epoch_{0};    // bumped per job; workers wait for it to change
  std::atomic<uint64_t> next_{0};     // the current job's epoch << 32 | the next range to take
  std::atomic<int> pending_{0};       // ranges 1..T-1 of the current job not done yet
  std::atomic<bool> stop_{false};
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
