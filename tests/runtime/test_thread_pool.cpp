// ThreadPool: every index exactly once in contiguous ordered ranges (whichever thread
// takes a range), range 0 on the caller, exceptions reach the caller, many calls in a row,
// and callers from several threads take turns; a call site's Balance sizes the ranges by
// how fast its threads ran them, and one split serves several jobs. Within a Section a
// worker waits for the next job awake; a worker found asleep is kept off the caller's CPU
// until it runs, then may run anywhere again. The load's early
// compile worker runs the work it is given once, on its own thread; a helper can be kept
// off its caller's CPU.
#include <doctest/doctest.h>

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/compile.hpp"
#include "runtime/thread_pool.hpp"

using nnjit::runtime::ThreadPool;

TEST_SUITE("runtime") {
  TEST_CASE("thread pool: each index once, in the documented contiguous split") {
    for (int threads : {1, 2, 3, 4})
      for (int64_t n : {0, 1, 2, 3, 7, 1000}) {
        ThreadPool pool(threads);
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        std::vector<std::pair<int64_t, int64_t>> ranges(static_cast<std::size_t>(threads), {-1, -1});
        pool.parallel_for(n, [&](int64_t begin, int64_t end, int worker) {
          REQUIRE(worker >= 0);
          REQUIRE(worker < threads);
          ranges[static_cast<std::size_t>(worker)] = {begin, end};
          for (int64_t i = begin; i < end; ++i) hits[static_cast<std::size_t>(i)]++;
        });
        for (int64_t i = 0; i < n; ++i) CHECK_MESSAGE(hits[static_cast<std::size_t>(i)] == 1, "index " << i);
        for (int w = 0; w < threads; ++w) {
          const int64_t begin = n * w / threads, end = n * (w + 1) / threads;
          if (begin < end) CHECK(ranges[static_cast<std::size_t>(w)] == std::pair<int64_t, int64_t>{begin, end});
          else CHECK(ranges[static_cast<std::size_t>(w)].first == -1);  // empty ranges are not called
        }
      }
  }

  TEST_CASE("thread pool: the first exception reaches the caller, and the pool still works") {
    ThreadPool pool(3);
    CHECK_THROWS_AS(pool.parallel_for(9, [](int64_t, int64_t, int worker) {
      if (worker == 2) throw std::runtime_error("worker 2 failed");
    }), std::runtime_error);
    std::atomic<int64_t> sum{0};
    pool.parallel_for(100, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) sum += i;
    });
    CHECK(sum == 4950);
  }

  TEST_CASE("thread pool: 10000 calls in a row, and two calling threads taking turns") {
    ThreadPool pool(2);
    std::atomic<int64_t> count{0};
    for (int k = 0; k < 10000; ++k) pool.parallel_for(4, [&](int64_t b, int64_t e, int) { count += e - b; });
    CHECK(count == 40000);
    count = 0;
    std::vector<std::thread> callers;
    for (int t = 0; t < 2; ++t)
      callers.emplace_back([&] {
        for (int k = 0; k < 2000; ++k) pool.parallel_for(8, [&](int64_t b, int64_t e, int) { count += e - b; });
      });
    for (std::thread& t : callers) t.join();
    CHECK(count == 2 * 2000 * 8);
  }

  TEST_CASE("thread pool: range 0 runs on the caller; a range no worker has taken yet, too") {
    ThreadPool pool(2);
    const std::thread::id caller = std::this_thread::get_id();
    int caller_ran_range_1 = 0;
    for (int k = 0; k < 30; ++k) {
      // Long enough for the worker to stop spinning and sleep: it needs waking, the
      // caller's range 0 is done at once, and the caller takes range 1 if it is still there.
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::thread::id ran[2];
      pool.parallel_for(2, [&](int64_t, int64_t, int range) { ran[range] = std::this_thread::get_id(); });
      CHECK(ran[0] == caller);
      caller_ran_range_1 += ran[1] == caller;
    }
    CHECK(caller_ran_range_1 > 0);
  }

  TEST_CASE("thread pool: quick jobs of every size, each range once with its own bounds") {
    // Workers waking late for one job must take nothing of the next (the ranges differ).
    ThreadPool pool(3);
    int wrong = 0;
    for (int k = 0; k < 20000; ++k) {
      const int64_t n = 1 + k % 9;
      std::atomic<int> hits[9] = {};
      std::atomic<int> bad{0};
      pool.parallel_for(n, [&](int64_t begin, int64_t end, int range) {
        if (begin != n * range / 3 || end != n * (range + 1) / 3) ++bad;
        for (int64_t i = begin; i < end; ++i) hits[i]++;
      });
      for (int64_t i = 0; i < n; ++i) wrong += hits[i] != 1;
      wrong += bad.load();
    }
    CHECK(wrong == 0);
  }

  TEST_CASE("balance: the equal split until measured, then ranges sized to end together") {
    using Split = ThreadPool::Split;
    ThreadPool::Balance b;
    Split bounds(3);
    b.split(60, bounds);
    CHECK(bounds == Split{0, 30, 60});
    b.split(7, bounds);
    CHECK(bounds == Split{0, 3, 7});
    // The worker's range of 30 units ended at 300 ns, the caller's at 100: three times
    // slower. Learned a fifth of the way each job, the split converges on 45 / 15.
    for (int k = 0; k < 40; ++k) b.learn({0, 30, 60}, {100, 300}, {1, 0});
    b.split(60, bounds);
    CHECK(bounds == Split{0, 45, 60});
    b.split(2, bounds);
    CHECK(bounds == Split{0, 1, 2});  // no range empty
    b.split(1, bounds);
    CHECK(bounds == Split{0, 0, 1});  // fewer units than threads: as the equal split
    // A range the caller ran says nothing of the worker; a range that took no time is skipped.
    ThreadPool::Balance same = b;
    for (int k = 0; k < 40; ++k) same.learn({0, 30, 60}, {100, 150}, {1, 1});
    same.learn({0, 30, 60}, {100, 0}, {1, 0});
    same.split(60, bounds);
    CHECK(bounds == Split{0, 45, 60});
    // It follows the threads: the worker as fast as the caller again (its 15 units in 33
    // ns, the caller's 45 in 100), back to the equal split.
    for (int k = 0; k < 40; ++k) b.learn({0, 45, 60}, {100, 33}, {1, 0});
    b.split(60, bounds);
    CHECK(bounds == Split{0, 30, 60});
    // Speeds stay within 1/8 to 8 times range 0's: a worker that seemed 1000 times slower.
    ThreadPool::Balance slow;
    for (int k = 0; k < 100; ++k) slow.learn({0, 30, 60}, {100, 100000}, {1, 0});
    slow.split(90, bounds);
    CHECK(bounds == Split{0, 80, 90});
    // Three ranges: range 2 half as fast as ranges 0 and 1 -> 2 : 2 : 1.
    ThreadPool::Balance three;
    Split b3(4);
    for (int k = 0; k < 60; ++k) three.learn({0, 20, 40, 60}, {100, 100, 200}, {1, 0, 0});
    three.split(50, b3);
    CHECK(b3 == Split{0, 20, 40, 50});
    // An odd unit goes where it ends sooner: 7 units at speeds 1 and 0.9 are 4 / 3.
    ThreadPool::Balance near;
    for (int k = 0; k < 60; ++k) near.learn({0, 30, 60}, {100, 111}, {1, 0});
    near.split(7, bounds);
    CHECK(bounds == Split{0, 4, 7});
  }

  TEST_CASE("thread pool: with a Balance the split changes between jobs, each index still once") {
    // The worker's units cost four times the caller's, so the Balance moves the split
    // when the worker runs (a busy host may leave everything to the caller: still correct).
    ThreadPool pool(2);
    ThreadPool::Balance balance;
    CHECK(pool.split(60, &balance) == ThreadPool::Split{0, 30, 60});  // not measured yet
    const std::thread::id caller = std::this_thread::get_id();
    int wrong = 0;
    for (int k = 0; k < 300; ++k) {
      std::atomic<int> hits[60] = {};
      std::pair<int64_t, int64_t> ranges[2] = {{-1, -1}, {-1, -1}};
      pool.parallel_for(60, [&](int64_t begin, int64_t end, int range) {
        ranges[range] = {begin, end};
        const int64_t per = std::this_thread::get_id() == caller ? 500 : 2000;
        for (int64_t i = begin; i < end; ++i) {
          hits[i]++;
          for (int64_t j = 0; j < per; ++j) asm volatile("");
        }
      }, &balance);
      for (auto& h : hits) wrong += h != 1;
      wrong += ranges[0].first != 0 || ranges[0].second != ranges[1].first || ranges[1].second != 60 ||
               ranges[0].second <= 0 || ranges[0].second >= 60;
    }
    CHECK(wrong == 0);
    // A split taken once serves several jobs: exactly its ranges run.
    const ThreadPool::Split split = pool.split(60, &balance);
    REQUIRE(split.size() == 3);
    for (int round = 0; round < 3; ++round) {
      std::pair<int64_t, int64_t> ran[2] = {{-1, -1}, {-1, -1}};
      pool.parallel_for(split, [&](int64_t begin, int64_t end, int range) { ran[range] = {begin, end}; }, nullptr);
      CHECK(ran[0] == std::pair<int64_t, int64_t>{0, split[1]});
      CHECK(ran[1] == std::pair<int64_t, int64_t>{split[1], 60});
    }
    CHECK(pool.split(60, nullptr) == ThreadPool::Split{0, 30, 60});  // no Balance: equal
    ThreadPool three(3);
    CHECK_THROWS_AS(three.parallel_for(split, [](int64_t, int64_t, int) {}, nullptr), std::invalid_argument);
  }

  // Polls cond() for up to 2 s.
  template <class Cond>
  bool within_2s(Cond cond) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!cond())
      if (std::chrono::steady_clock::now() > until) return false;
      else std::this_thread::sleep_for(std::chrono::microseconds(100));
    return true;
  }

  void busy_for(std::chrono::microseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
  }

  TEST_CASE("thread pool: within a Section a worker waits for the next job awake; closed, it sleeps") {
    ThreadPool pool(2);
    if (!pool.fits_cpus()) {
      MESSAGE("skipped: one CPU");
      return;
    }
    const std::thread::id caller = std::this_thread::get_id();
    const auto noop = [](int64_t, int64_t, int) {};
    pool.parallel_for(2, noop);
    CHECK(within_2s([&] { return pool.asleep() == 1; }));  // ~50 us after its job
    // 2 ms after a job the worker ran, still spinning. A worker that finds itself on the
    // caller's CPU sleeps (it would keep the caller waiting): tries until one is not.
    bool awake = false;
    for (int k = 0; k < 10 && !awake; ++k) {
      ThreadPool::Section section(&pool);
      ThreadPool::Section nested(&pool);
      bool worker_ran = false;
      for (int j = 0; j < 200 && !worker_ran; ++j)
        pool.parallel_for(2, [&](int64_t, int64_t, int range) {
          if (range == 1) worker_ran = std::this_thread::get_id() != caller;
        });
      busy_for(std::chrono::microseconds(2000));
      awake = worker_ran && pool.asleep() == 0;
    }
    CHECK(awake);
    CHECK(within_2s([&] { return pool.asleep() == 1; }));  // every Section closed
    ThreadPool::Section none(nullptr);                     // one thread: nothing to do
  }

  TEST_CASE("thread pool: a worker found asleep runs off the caller's CPU, then may run anywhere") {
    ThreadPool pool(2);
    if (!pool.fits_cpus()) {
      MESSAGE("skipped: one CPU");
      return;
    }
    cpu_set_t process;
    REQUIRE(sched_getaffinity(0, sizeof process, &process) == 0);
    int apart = 0;
    for (int k = 0; k < 5; ++k) {
      REQUIRE(within_2s([&] { return pool.asleep() == 1; }));
      std::atomic<bool> ran{false};
      int caller_cpu = -1, worker_cpu = -1;
      cpu_set_t worker_mask;
      CPU_ZERO(&worker_mask);
      pool.parallel_for(2, [&](int64_t, int64_t, int range) {
        if (range == 0) {
          caller_cpu = sched_getcpu();
          within_2s([&] { return ran.load(); });  // the worker takes range 1
        } else {
          worker_cpu = sched_getcpu();
          sched_getaffinity(0, sizeof worker_mask, &worker_mask);
          ran = true;
        }
      });
      CHECK(CPU_EQUAL(&worker_mask, &process));  // kept off only until it ran
      apart += worker_cpu != caller_cpu;
    }
    CHECK(apart >= 4);  // the caller may move while it sleeps in its range
  }

  TEST_CASE("thread pool: with more threads than CPUs, Sections change nothing; jobs still run") {
    cpu_set_t process;
    REQUIRE(sched_getaffinity(0, sizeof process, &process) == 0);
    ThreadPool pool(CPU_COUNT(&process) + 1);
    CHECK_FALSE(pool.fits_cpus());
    ThreadPool::Section section(&pool);
    std::atomic<int64_t> count{0};
    for (int k = 0; k < 100; ++k) pool.parallel_for(50, [&](int64_t b, int64_t e, int) { count += e - b; });
    CHECK(count == 5000);
  }

  TEST_CASE("thread pool: a CPU limit (a cgroup quota) below the threads keeps Sections off") {
    CHECK_FALSE(ThreadPool(2, 1).fits_cpus());
    cpu_set_t process;
    REQUIRE(sched_getaffinity(0, sizeof process, &process) == 0);
    const int cpus = CPU_COUNT(&process);
    if (cpus >= 2) {
      CHECK(ThreadPool(2, 2).fits_cpus());
      CHECK(ThreadPool(2, 0).fits_cpus());  // 0 = no limit
    }
  }

  TEST_CASE("thread pool: bad thread counts are refused") {
    CHECK_THROWS_AS(ThreadPool(0), std::invalid_argument);
    CHECK_THROWS_AS(ThreadPool(100000), std::invalid_argument);
  }

  TEST_CASE("early worker: runs the one work it is given on its own thread; ends without any") {
    std::thread::id ran_on;
    {
      nnjit::runtime::EarlyWorker early(true);
      CHECK(early.run([&] { ran_on = std::this_thread::get_id(); }));
      CHECK_FALSE(early.run([] { FAIL("second work ran"); }));
      early.join();
      CHECK(ran_on != std::thread::id{});
      CHECK(ran_on != std::this_thread::get_id());
      CHECK_FALSE(early.run([] { FAIL("work after join ran"); }));
    }
    { nnjit::runtime::EarlyWorker idle(true); }  // a load that failed before compile: no work, no hang
    nnjit::runtime::EarlyWorker none(false);
    CHECK_FALSE(none.run([] { FAIL("ran without a thread"); }));
    none.join();
  }

  TEST_CASE("keep_off_caller_cpu: a helper may run on every CPU of the process but the caller's, until run_anywhere()") {
    cpu_set_t process;
    REQUIRE(sched_getaffinity(0, sizeof process, &process) == 0);
    std::atomic<bool> go{false};
    cpu_set_t later;  // the helper's, once it called run_anywhere()
    CPU_ZERO(&later);
    std::thread helper([&] {
      while (!go) std::this_thread::yield();
      nnjit::runtime::run_anywhere();
      sched_getaffinity(0, sizeof later, &later);
    });
    nnjit::runtime::keep_off_caller_cpu(helper);
    cpu_set_t mask;
    REQUIRE(pthread_getaffinity_np(helper.native_handle(), sizeof mask, &mask) == 0);
    go = true;
    helper.join();
    CHECK(CPU_EQUAL(&later, &process));  // every CPU again
    cpu_set_t within;
    CPU_AND(&within, &mask, &process);
    CHECK(CPU_EQUAL(&within, &mask));  // within the process's CPUs
    // One CPU fewer (the caller's then); with one CPU, that one.
    CHECK(CPU_COUNT(&mask) == std::max(1, CPU_COUNT(&process) - 1));
    std::thread ended([] {});
    ended.join();
    nnjit::runtime::keep_off_caller_cpu(ended);  // not joinable: nothing to do
  }
}
