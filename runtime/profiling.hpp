// What `nnjit profile`, perf and disassembly need from the runtime: the host's measured
// peaks (the roofline), a perf map of every generated kernel, and kernel dumps.
//
//   HostPeaks p = measure_host_peaks(host);          // ~100 ms, once
//   write_perf_map();                                // /tmp/perf-<pid>.map, when asked for
//   dump_kernels(model_impl, "dir");                 // <kernel>.bin + .s per kernel
//
// Contracts: the jitdump file is opened once per process and mapped executable (how perf
// finds it); kernels freed later stay in it (perf shows them for the time they ran).
// The perf map lists every live JIT blob (JitRegistry), one line
// "<start hex> <size hex> nnjit:<kernel>:<nodes>", rewritten whole each time (perf reads
// it at report time, so the last version wins). dump_kernels writes, for each blob that
// a step of the model uses, <index>_<kernel>.bin (the code bytes) and .s (objdump's
// disassembly, headed by the kernel's plan and the nodes it serves).
#pragma once

#include <string>

#include "jit/host_info.hpp"
#include "nnjit/engine.hpp"

namespace nnjit {
struct ModelImpl;
}

namespace nnjit::runtime {

HostPeaks measure_host_peaks(const jit::HostInfo& host);
// Writes /tmp/perf-<pid>.map if NNJIT_PERF_MAP=1 (returns whether it did).
bool write_perf_map_if_asked();
// NNJIT_JITDUMP=1: appends every kernel not yet dumped to /tmp/jit-<pid>.dump (perf's
// jitdump; `perf record -k 1` then `perf inject --jit` annotates their instructions).
bool write_jitdump_if_asked();
// Returns the number of kernels written; throws InvalidInput when DIR cannot be written.
int dump_kernels(const ModelImpl& m, const std::string& dir);

}  // namespace nnjit::runtime
