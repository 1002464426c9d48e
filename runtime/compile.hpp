// Compile: turns each planned step into its run function — packs the weights of JIT
// steps once, fetches their kernels from the family caches, and binds reorders and
// reference ops. Runs at load; nothing is compiled at run time.
#pragma once

#include "runtime/model_impl.hpp"

namespace nnjit::runtime {

// Fills Step::run, kernel, code and code_size of every step of `m`.
void compile_steps(ModelImpl& m, int threads = 1);

}  // namespace nnjit::runtime
