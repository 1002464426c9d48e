// Options for Engine::load. An aggregate, so designated initializers work:
//   engine.load("m.onnx", {.threads = 2, .dims = {{"batch", 4}}});
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace nnjit {

struct Options {
  // Worker threads one run may use (1 = the calling thread only).
  int threads = 1;
  // During a run, threads waiting for each other spin for up to 5 ms before they sleep (a
  // sleeping vCPU can take milliseconds to run again). false: they sleep after ~50 us, for
  // hosts whose CPUs other busy work shares (as ONNX Runtime's allow_spinning = 0).
  bool spin_during_run = true;
  // Threads that pack weights and generate kernels at load, for the load alone
  // (0 = every usable core; 1 = the calling thread only).
  int load_threads = 0;
  // Values for symbolic (named) input dimensions, by name.
  std::map<std::string, int64_t> dims;
  // Value for any symbolic dimension not named in `dims` (the batch, usually).
  int64_t default_dim = 1;
  // Instruction set the kernels may use: "auto", "avx512", "avx2", or "reference"
  // (plain C++ reference ops only; the oracle).
  std::string isa = "auto";
  // Run the graph optimisation passes (folding, fusion). Off = the graph as written.
  bool optimize = true;
  // Host figures to use instead of what the probe found; keys l1d, l2, l3 (bytes, K/M/G
  // suffix allowed), cores, isa (avx512|avx2|none) — the NNJIT_* variables' syntax.
  std::map<std::string, std::string> host;
  // Upper bound for a session's activation arena; 0 = none.
  std::size_t max_arena_bytes = 0;
};

}  // namespace nnjit
