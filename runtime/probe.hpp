// The host probe: fills a jit::HostInfo from what the machine says about itself, and
// says where every figure came from.
//
//   jit::HostInfo host = probe_host(real_sources());   // reads NNJIT_* overrides too
//   for (const HostFigure& f : host_figures(host)) std::cout << f.name << " " << f.value
//                                                            << " (" << f.source << ")\n";
//
// Virtual machines routinely lie about their host (no caches at all, or an L3 the size
// of the whole socket), so no single source is trusted. For each cache figure the
// sources are tried in this order and the first believable value wins:
//   1. cpuinfo (libcpuinfo)
//   2. CPUID: leaf 4 (Intel and others) or 0x8000001D (AMD, Hygon), then the legacy
//      AMD leaves 0x80000005 / 0x80000006
//   3. sysfs: /sys/devices/system/cpu/cpu0/cache/index*/
//   4. the defaults in jit/host_info.hpp
// Not believed: a zero size; an L1d outside 4 KiB..1 MiB; an L2 smaller than the chosen
// L1d or over 64 MiB; an L3 instance smaller than the chosen L2 or over 64 MiB per core;
// a line size that is not a power of two in 32..256. Each rejected claim, and each later
// source that disagrees with the chosen one, is written to HostInfo::notes.
// ISA flags come from CPUID and are cleared when XCR0 shows the OS does not save the
// ymm / zmm / tile state. Cores: cpuinfo, then sysfs, then sysconf. The CPU quota comes
// from the process's cgroup (v2 cpu.max, else v1 cfs_quota_us / cfs_period_us), the
// tightest limit on the path to the root.
//
// Overrides (environment, applied last, source "override"):
//   NNJIT_L1D, NNJIT_L2, NNJIT_L3   bytes, optional K/M/G suffix (binary); NNJIT_L3 is
//                                    the instance size, the per-core share follows
//   NNJIT_CORES                      a positive count; also lifts the affinity and quota
//                                    limits, so the plan uses exactly that many threads
//   NNJIT_ISA                        avx512 | avx2 | none; may only lower the ISA
// A malformed value throws nnjit::Error (InvalidInput) naming the variable; asking for an
// ISA the host lacks throws Unsupported.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "jit/host_info.hpp"
#include "nnjit/engine.hpp"

namespace nnjit::runtime {

struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// What libcpuinfo reported; a zero means it reported nothing for that figure.
struct CpuinfoFacts {
  std::string name;  // package name
  uint32_t l1d_bytes = 0, l1d_line = 0;
  uint32_t l2_bytes = 0;
  uint32_t l3_bytes = 0;
  uint32_t l3_processors = 0;  // logical processors sharing L3 instance 0
  uint32_t cores = 0;          // physical
  uint32_t processors = 0;     // logical
};

// Everything the probe reads, injectable so tests can describe any host. An empty
// function means the source is unavailable.
struct ProbeSources {
  std::function<std::optional<CpuinfoFacts>()> cpuinfo;
  std::function<CpuidRegs(uint32_t leaf, uint32_t subleaf)> cpuid;
  std::function<uint64_t()> xgetbv0;  // XCR0; called only when CPUID says OSXSAVE
  std::function<std::optional<std::string>(const std::string& path)> read_file;
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  std::function<long()> online_cpus;    // sysconf(_SC_NPROCESSORS_ONLN)
  std::function<int()> affinity_cpus;   // CPUs in sched_getaffinity's mask
};

ProbeSources real_sources();

jit::HostInfo probe_host(const ProbeSources& src);

// Programmatic overrides with keys l1d, l2, l3, cores, isa (values as for the NNJIT_*
// variables). Unknown keys and malformed values throw InvalidInput naming the key.
jit::HostInfo apply_overrides(jit::HostInfo host, const std::map<std::string, std::string>& overrides);

// Every figure with its source, in a stable order, then the notes (source "probe").
std::vector<HostFigure> host_figures(const jit::HostInfo& host);

// "48 KiB", "1 MiB", "1.5 GiB", "512 B".
std::string format_bytes(uint64_t bytes);

}  // namespace nnjit::runtime
