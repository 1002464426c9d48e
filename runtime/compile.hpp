// Compile: turns each planned step into its run function — packs the weights of JIT
// steps once, fetches their kernels from the family caches, and binds reorders and
// reference ops. Runs at load; nothing is compiled at run time.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "runtime/model_impl.hpp"

namespace nnjit::runtime {

// A compile worker started with the load: it sleeps while the load parses, optimises and
// plans, then compile_steps hands it its share. On a VM a thread started on a CPU that
// has gone idle can wait milliseconds to run; started early, it is there when compile
// wants it (darts_net's cold load 13.0 -> 11.0 ms). Work must not fault memory in
// beside the load's own thread, nor spin: on this VM either slows that thread more than
// it gains (faulting the packing arena in ahead: parse 2 ms longer).
//
//   EarlyWorker early(load_threads > 1);
//   ... parse, optimise, plan ...
//   compile_steps(m, load_threads, &early);
class EarlyWorker {
 public:
  explicit EarlyWorker(bool start);
  ~EarlyWorker();  // ends the thread (a load that failed before compile)
  EarlyWorker(const EarlyWorker&) = delete;
  EarlyWorker& operator=(const EarlyWorker&) = delete;

  // Runs `work` on the thread; false when none was started or it was given work already.
  bool run(std::function<void()> work);
  // Waits for the thread's work to end (or ends the thread when it got none).
  void join();

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::function<void()> work_;
  bool given_ = false, done_ = false;
  std::thread thread_;
};

// Fills Step::run, kernel, code and code_size of every step of `m`, on `threads` threads
// (`early`'s among them when given).
void compile_steps(ModelImpl& m, int threads = 1, EarlyWorker* early = nullptr);

}  // namespace nnjit::runtime
