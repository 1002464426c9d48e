// HostInfo: the machine that kernels are planned for — ISA, caches, cores — with the
// source of every figure. runtime/probe fills it in; planners and kernels only read it.
//
//   // A fake host for a planner test: AVX2 only, a 256 KiB L2, one core.
//   nnjit::jit::HostInfo host{.avx2 = true, .fma = true, .l2_bytes = 256 << 10,
//                             .physical_cores = 1, .logical_cores = 1};
//   if (nnjit::jit::has_avx512(host)) { ... }
//
// Contracts:
//  - An ISA flag is true only when the CPU has the feature *and* the OS saves the
//    registers it uses (XCR0), so a kernel may use every instruction a flag names.
//    AMX additionally needs arch_prctl(ARCH_REQ_XCOMP_PERM) before the first tile use.
//  - Cache sizes are bytes, never zero. l1d_bytes and l2_bytes are the size of the one
//    instance a core uses (both are private per core on every current x86 big core).
//    L3 is shared, so it is given two ways: l3_total_bytes is the instance a core sees
//    (what lscpu calls one instance), l3_bytes is that instance divided by the cores
//    sharing it (l3_shared_by) — the share one thread can count on when every core runs.
//  - A default-constructed HostInfo is the probe's conservative fallback: no SIMD,
//    32 KiB L1d, 256 KiB L2, an 8 MiB L3 shared by 8 cores, one core.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace nnjit::jit {

// Where each figure came from: "cpuinfo", "cpuid", "sysfs", "sysconf", "affinity",
// "cgroup", "override", "default"; "(clamped)" is appended where a value was cut down.
struct HostSources {
  std::string isa = "default";
  std::string cpu = "default";  // vendor, model name, family and model
  std::string l1d = "default";
  std::string l2 = "default";
  std::string l3 = "default";   // l3_bytes, l3_total_bytes and l3_shared_by together
  std::string line = "default";
  std::string cores = "default";  // physical_cores and logical_cores together
  std::string affinity = "default";
  std::string cpu_quota = "default";
};

// Fallback figures. Every x86 core of the last fifteen years has at least these, so a
// plan made with them is slower than it could be but never thrashes.
inline constexpr std::size_t kDefaultL1dBytes = std::size_t{32} << 10;
inline constexpr std::size_t kDefaultL2Bytes = std::size_t{256} << 10;
inline constexpr std::size_t kDefaultL3TotalBytes = std::size_t{8} << 20;
inline constexpr int kDefaultL3SharedBy = 8;
inline constexpr std::size_t kDefaultL3Bytes = kDefaultL3TotalBytes / kDefaultL3SharedBy;
inline constexpr std::size_t kDefaultLineBytes = 64;

struct HostInfo {
  // ISA (see the contract above).
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;  // the VEX (ymm) form, as on Alder Lake
  bool amx_tile = false;
  bool amx_int8 = false;
  bool amx_bf16 = false;

  std::string vendor;      // "GenuineIntel", "AuthenticAMD", ...
  std::string model_name;  // the brand string, e.g. "AMD EPYC 9B14"
  int family = 0;          // display family and model (extended fields folded in)
  int model = 0;

  std::size_t l1d_bytes = kDefaultL1dBytes;
  std::size_t l2_bytes = kDefaultL2Bytes;
  std::size_t l3_bytes = kDefaultL3Bytes;  // per-core share
  std::size_t l3_total_bytes = kDefaultL3TotalBytes;
  int l3_shared_by = kDefaultL3SharedBy;  // cores sharing one L3 instance (at least 1)
  std::size_t cache_line_bytes = kDefaultLineBytes;

  int physical_cores = 1;
  int logical_cores = 1;
  int affinity_cpus = 0;  // CPUs this process may run on; 0 = not restricted or unknown
  double cpu_quota = 0;   // cgroup CPU limit in CPUs (1.5 = 150 ms per 100 ms); 0 = none

  HostSources source;
  // Values a source claimed that the probe did not believe, and sources that disagree
  // with the one chosen; shown by `nnjit probe`.
  std::vector<std::string> notes;
};

// AVX-512 as our kernels use it: F, BW, VL and DQ together (Skylake-SP and later).
inline bool has_avx512(const HostInfo& h) { return h.avx512f && h.avx512bw && h.avx512vl && h.avx512dq; }
inline bool has_avx2(const HostInfo& h) { return h.avx2 && h.fma; }

// The widest kernel ISA the host runs: "avx512", "avx2" or "none".
inline std::string isa_name(const HostInfo& h) {
  if (has_avx512(h)) return "avx512";
  if (has_avx2(h)) return "avx2";
  return "none";
}

// The CPUs the cgroup quota lets threads keep busy; 0 = no quota. A fractional quota
// rounds down (1.5 CPUs -> 1) because a second thread would be throttled for part of
// every period and stall the first at each barrier.
inline int quota_cpus(const HostInfo& h) {
  return h.cpu_quota > 0 ? std::max(1, static_cast<int>(std::floor(h.cpu_quota))) : 0;
}

// Threads worth running: physical cores, cut by the affinity mask and the cgroup quota.
inline int usable_threads(const HostInfo& h) {
  int n = std::max(1, h.physical_cores);
  if (h.affinity_cpus > 0) n = std::min(n, h.affinity_cpus);
  if (const int q = quota_cpus(h); q > 0) n = std::min(n, q);
  return n;
}

}  // namespace nnjit::jit
