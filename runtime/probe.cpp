#include "runtime/probe.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <cpuinfo.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define NNJIT_PROBE_X86 1
#endif

#include "nnjit/error.hpp"

namespace nnjit::runtime {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = kKiB * 1024;
constexpr uint64_t kGiB = kMiB * 1024;
constexpr uint64_t kTiB = kGiB * 1024;

// Plausibility bounds (probe.hpp lists the rules). The largest real per-core L3 share
// today is about 12 MiB (stacked-cache EPYC), so 64 MiB per core is comfortably a lie.
constexpr uint64_t kMinL1d = 4 * kKiB;
constexpr uint64_t kMaxL1d = 1 * kMiB;
constexpr uint64_t kMaxL2 = 64 * kMiB;
constexpr uint64_t kMaxL3PerCore = 64 * kMiB;
constexpr uint64_t kMaxOverrideBytes = 1 * kTiB;
constexpr long kMaxOverrideCores = 65536;

// XCR0 state components the OS must save before a register file may be used.
constexpr uint64_t kXcr0Avx = 0x6;         // SSE + AVX (ymm upper halves)
constexpr uint64_t kXcr0Avx512 = 0xe6;     // + opmask, ZMM_Hi256, Hi16_ZMM
constexpr uint64_t kXcr0Amx = 0x60000;     // XTILECFG + XTILEDATA

bool bit(uint32_t v, int n) { return ((v >> n) & 1u) != 0; }

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string trim(std::string s) {
  auto blank = [](unsigned char c) { return std::isspace(c) || c == '\0'; };
  while (!s.empty() && blank(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && blank(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::optional<std::string> read(const ProbeSources& src, const std::string& path) {
  if (!src.read_file) return std::nullopt;
  return src.read_file(path);
}

// Strict unsigned decimal: digits only, no sign, no overflow.
std::optional<uint64_t> parse_u64(const std::string& s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// "48K", "1M", "2G", "1MiB", "64KB", "512", "512B" (binary multiples, any case).
std::optional<uint64_t> parse_size(const std::string& text) {
  std::string s = trim(text);
  std::size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  auto number = parse_u64(s.substr(0, digits));
  if (!number) return std::nullopt;
  std::string suffix = s.substr(digits);
  for (char& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  uint64_t unit = 1;
  if (!suffix.empty() && suffix != "b") {
    switch (suffix[0]) {
      case 'k': unit = kKiB; break;
      case 'm': unit = kMiB; break;
      case 'g': unit = kGiB; break;
      default: return std::nullopt;
    }
    std::string rest = suffix.substr(1);
    if (!rest.empty() && rest != "b" && rest != "ib") return std::nullopt;
  }
  if (*number > std::numeric_limits<uint64_t>::max() / unit) return std::nullopt;
  return *number * unit;
}

// "0-3,8,10-11" -> 7. nullopt when malformed.
std::optional<int> count_cpu_list(const std::string& text) {
  std::string s = trim(text);
  if (s.empty()) return std::nullopt;
  int count = 0;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, ',')) {
    auto dash = part.find('-');
    auto lo = parse_u64(trim(part.substr(0, dash)));
    auto hi = dash == std::string::npos ? lo : parse_u64(trim(part.substr(dash + 1)));
    if (!lo || !hi || *hi < *lo || *hi - *lo > 1u << 20) return std::nullopt;
    count += static_cast<int>(*hi - *lo + 1);
  }
  return count;
}

// ---------------------------------------------------------------- CPUID

// CPUID that answers zeros past the highest supported leaf: real CPUs repeat the last
// leaf's data there, which would otherwise read as features.
class Cpuid {
 public:
  explicit Cpuid(const ProbeSources& src) : src_(src) {
    if (!src_.cpuid) return;
    max_basic_ = src_.cpuid(0, 0).eax;
    max_ext_ = src_.cpuid(0x80000000u, 0).eax;
    if (max_ext_ < 0x80000000u || max_ext_ > 0x8000ffffu) max_ext_ = 0;
  }
  bool available() const { return static_cast<bool>(src_.cpuid) && max_basic_ > 0; }
  CpuidRegs operator()(uint32_t leaf, uint32_t subleaf = 0) const {
    if (!src_.cpuid) return {};
    uint32_t max = leaf >= 0x80000000u ? max_ext_ : max_basic_;
    if (leaf > max) return {};
    return src_.cpuid(leaf, subleaf);
  }

 private:
  const ProbeSources& src_;
  uint32_t max_basic_ = 0;
  uint32_t max_ext_ = 0;
};

bool is_amd_like(const std::string& vendor) { return vendor == "AuthenticAMD" || vendor == "HygonGenuine"; }

void probe_identity_and_isa(const Cpuid& cpuid, const ProbeSources& src, jit::HostInfo& h) {
  if (!cpuid.available()) return;
  CpuidRegs r0 = cpuid(0);
  char vendor[13] = {};
  std::memcpy(vendor + 0, &r0.ebx, 4);
  std::memcpy(vendor + 4, &r0.edx, 4);
  std::memcpy(vendor + 8, &r0.ecx, 4);
  h.vendor = trim(vendor);

  CpuidRegs r1 = cpuid(1);
  uint32_t base_family = (r1.eax >> 8) & 0xf;
  h.family = static_cast<int>(base_family == 0xf ? base_family + ((r1.eax >> 20) & 0xff) : base_family);
  h.model = static_cast<int>((r1.eax >> 4) & 0xf);
  if (base_family == 0x6 || base_family == 0xf) h.model += static_cast<int>(((r1.eax >> 16) & 0xf) << 4);

  std::string brand;
  for (uint32_t leaf = 0x80000002u; leaf <= 0x80000004u; ++leaf) {
    CpuidRegs r = cpuid(leaf);
    for (uint32_t v : {r.eax, r.ebx, r.ecx, r.edx})
      for (int i = 0; i < 4; ++i) brand.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  brand = trim(brand.c_str());
  if (!brand.empty()) h.model_name = brand;
  h.source.cpu = "cpuid";

  bool osxsave = bit(r1.ecx, 27);
  uint64_t xcr0 = osxsave && src.xgetbv0 ? src.xgetbv0() : 0;
  bool os_avx = (xcr0 & kXcr0Avx) == kXcr0Avx;
  bool os_avx512 = (xcr0 & kXcr0Avx512) == kXcr0Avx512;
  bool os_amx = (xcr0 & kXcr0Amx) == kXcr0Amx;

  CpuidRegs r7 = cpuid(7, 0);
  CpuidRegs r7_1 = r7.eax >= 1 ? cpuid(7, 1) : CpuidRegs{};
  bool cpu_avx = bit(r1.ecx, 28);
  bool cpu_avx512f = bit(r7.ebx, 16);

  bool avx = cpu_avx && os_avx;
  h.avx2 = avx && bit(r7.ebx, 5);
  h.fma = avx && bit(r1.ecx, 12);
  h.avx_vnni = avx && bit(r7_1.eax, 4);
  bool avx512 = avx && os_avx512;
  h.avx512f = avx512 && cpu_avx512f;
  h.avx512dq = avx512 && bit(r7.ebx, 17);
  h.avx512bw = avx512 && bit(r7.ebx, 30);
  h.avx512vl = avx512 && bit(r7.ebx, 31);
  h.avx512_vnni = avx512 && bit(r7.ecx, 11);
  h.avx512_bf16 = avx512 && bit(r7_1.eax, 5);
  h.amx_bf16 = os_amx && bit(r7.edx, 22);
  h.amx_tile = os_amx && bit(r7.edx, 24);
  h.amx_int8 = os_amx && bit(r7.edx, 25);
  h.source.isa = "cpuid";

  if (cpu_avx && !os_avx)
    h.notes.push_back("isa: the CPU has AVX but the OS does not save ymm state (XCR0=" + hex(xcr0) +
                      "); AVX, AVX2 and FMA are off");
  else if (cpu_avx512f && !os_avx512)
    h.notes.push_back("isa: the CPU has AVX-512 but the OS does not save zmm state (XCR0=" + hex(xcr0) +
                      "); AVX-512 is off");
  if (bit(r7.edx, 24) && !os_amx)
    h.notes.push_back("isa: the CPU has AMX but the OS does not save tile state (XCR0=" + hex(xcr0) +
                      "); AMX is off");
}

// ---------------------------------------------------------------- cache claims

// What one source says about the caches; zero = it says nothing.
struct CacheClaim {
  std::string source;  // the figure's source: "cpuinfo", "cpuid", "sysfs"
  std::string detail;  // for notes: which leaf or file
  uint64_t l1d = 0, l2 = 0, l3 = 0;
  uint64_t line = 0;
  uint32_t l3_sharing = 0;  // logical CPUs sharing the L3 instance; 0 = unknown
};

// Leaf 4 (Intel) and 0x8000001D (AMD) share one layout: one subleaf per cache.
CacheClaim deterministic_caches(const Cpuid& cpuid, uint32_t leaf) {
  CacheClaim c{"cpuid", "cpuid " + hex(leaf)};
  for (uint32_t i = 0; i < 16; ++i) {
    CpuidRegs r = cpuid(leaf, i);
    uint32_t type = r.eax & 0x1f;  // 1 data, 2 instruction, 3 unified
    if (type == 0) break;
    uint32_t level = (r.eax >> 5) & 0x7;
    uint64_t line = (r.ebx & 0xfff) + 1;
    uint64_t partitions = ((r.ebx >> 12) & 0x3ff) + 1;
    uint64_t ways = ((r.ebx >> 22) & 0x3ff) + 1;
    uint64_t sets = uint64_t{r.ecx} + 1;
    uint64_t size = line * partitions * ways * sets;
    uint32_t sharing = ((r.eax >> 14) & 0xfff) + 1;
    if (type == 2) continue;
    if (level == 1 && type == 1) {
      c.l1d = size;
      c.line = line;
    } else if (level == 2) {
      c.l2 = size;
    } else if (level == 3) {
      c.l3 = size;
      c.l3_sharing = sharing;
    }
  }
  return c;
}

// AMD's older leaves: sizes only, L3 with no sharing information.
CacheClaim amd_legacy_caches(const Cpuid& cpuid) {
  CacheClaim c{"cpuid", "cpuid 0x80000005/6"};
  CpuidRegs r5 = cpuid(0x80000005u);
  c.l1d = uint64_t{r5.ecx >> 24} * kKiB;
  c.line = r5.ecx & 0xff;
  CpuidRegs r6 = cpuid(0x80000006u);
  if (((r6.ecx >> 12) & 0xf) != 0) c.l2 = uint64_t{r6.ecx >> 16} * kKiB;  // associativity 0 = no L2
  if (((r6.edx >> 12) & 0xf) != 0) c.l3 = uint64_t{r6.edx >> 18} * 512 * kKiB;
  if (c.line == 0) c.line = r6.ecx & 0xff;
  return c;
}

CacheClaim sysfs_caches(const ProbeSources& src) {
  CacheClaim c{"sysfs", "sysfs"};
  for (int i = 0; i < 16; ++i) {
    std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    auto level_text = read(src, dir + "level");
    if (!level_text) break;
    auto level = parse_u64(trim(*level_text));
    std::string type = trim(read(src, dir + "type").value_or(""));
    auto size = parse_size(read(src, dir + "size").value_or(""));
    if (!level || !size || type == "Instruction") continue;
    if (*level == 1 && type == "Data") {
      c.l1d = *size;
      c.line = parse_u64(trim(read(src, dir + "coherency_line_size").value_or(""))).value_or(0);
    } else if (*level == 2) {
      c.l2 = *size;
    } else if (*level == 3) {
      c.l3 = *size;
      auto shared = read(src, dir + "shared_cpu_list");
      c.l3_sharing = shared ? static_cast<uint32_t>(count_cpu_list(*shared).value_or(0)) : 0;
    }
  }
  return c;
}

CacheClaim cpuinfo_caches(const CpuinfoFacts& f) {
  CacheClaim c{"cpuinfo", "cpuinfo"};
  c.l1d = f.l1d_bytes;
  c.line = f.l1d_line;
  c.l2 = f.l2_bytes;
  c.l3 = f.l3_bytes;
  c.l3_sharing = f.l3_processors;
  return c;
}

// Walks the claims in order; the first believable non-zero value wins. `check` returns
// why a value is not believed, or "" when it is.
template <class Get, class Check>
const CacheClaim* pick(const std::vector<CacheClaim>& claims, const std::string& figure, Get get, Check check,
                       std::vector<std::string>& notes) {
  const CacheClaim* chosen = nullptr;
  for (const CacheClaim& c : claims) {
    uint64_t v = get(c);
    if (v == 0) continue;
    std::string why = check(c, v);
    if (!why.empty()) {
      notes.push_back(figure + " of " + format_bytes(v) + " from " + c.detail + " not believed: " + why);
    } else if (!chosen) {
      chosen = &c;
    } else if (get(*chosen) != v) {
      notes.push_back(figure + " of " + format_bytes(v) + " from " + c.detail + " disagrees; using " +
                      format_bytes(get(*chosen)) + " from " + chosen->detail);
    }
  }
  return chosen;
}

void probe_caches(const Cpuid& cpuid, const ProbeSources& src, const std::optional<CpuinfoFacts>& info,
                  jit::HostInfo& h) {
  std::vector<CacheClaim> claims;
  if (info) claims.push_back(cpuinfo_caches(*info));
  if (cpuid.available()) {
    if (is_amd_like(h.vendor)) {
      bool topoext = bit(cpuid(0x80000001u).ecx, 22);
      if (topoext) claims.push_back(deterministic_caches(cpuid, 0x8000001du));
      claims.push_back(amd_legacy_caches(cpuid));
    } else {
      claims.push_back(deterministic_caches(cpuid, 4));
    }
  }
  claims.push_back(sysfs_caches(src));

  auto& notes = h.notes;
  const CacheClaim* line = pick(
      claims, "cache line", [](const CacheClaim& c) { return c.line; },
      [](const CacheClaim&, uint64_t v) {
        bool pow2 = (v & (v - 1)) == 0;
        return pow2 && v >= 32 && v <= 256 ? std::string() : std::string("not a power of two in 32..256");
      },
      notes);
  if (line) {
    h.cache_line_bytes = line->line;
    h.source.line = line->source;
  }

  const CacheClaim* l1d = pick(
      claims, "L1d", [](const CacheClaim& c) { return c.l1d; },
      [](const CacheClaim&, uint64_t v) {
        return v >= kMinL1d && v <= kMaxL1d ? std::string() : "outside " + format_bytes(kMinL1d) + ".." +
                                                                  format_bytes(kMaxL1d);
      },
      notes);
  if (l1d) {
    h.l1d_bytes = l1d->l1d;
    h.source.l1d = l1d->source;
  }

  const uint64_t l1d_bytes = h.l1d_bytes;
  const CacheClaim* l2 = pick(
      claims, "L2", [](const CacheClaim& c) { return c.l2; },
      [&](const CacheClaim&, uint64_t v) {
        if (v < l1d_bytes) return "smaller than the L1d of " + format_bytes(l1d_bytes);
        if (v > kMaxL2) return "over " + format_bytes(kMaxL2);
        return std::string();
      },
      notes);
  if (l2) {
    h.l2_bytes = l2->l2;
    h.source.l2 = l2->source;
  }

  // An L3 shared by more CPUs than we have is still ours alone as far as this process
  // can tell; an unknown sharing count means every CPU we have shares it.
  const int logical = std::max(1, h.logical_cores);
  const int threads_per_core = std::max(1, logical / std::max(1, h.physical_cores));
  auto cores_sharing = [&](const CacheClaim& c) {
    int cpus = c.l3_sharing == 0 ? logical : std::clamp(static_cast<int>(std::min<uint32_t>(c.l3_sharing, 1u << 20)), 1, logical);
    return std::max(1, (cpus + threads_per_core - 1) / threads_per_core);
  };
  const uint64_t l2_bytes = h.l2_bytes;
  const CacheClaim* l3 = pick(
      claims, "L3", [](const CacheClaim& c) { return c.l3; },
      [&](const CacheClaim& c, uint64_t v) {
        if (v < l2_bytes) return "smaller than the L2 of " + format_bytes(l2_bytes);
        int n = cores_sharing(c);
        if (v / static_cast<uint64_t>(n) > kMaxL3PerCore)
          return format_bytes(v / static_cast<uint64_t>(n)) + " per core for " + std::to_string(n) +
                 (n == 1 ? " core" : " cores") + ", over " + format_bytes(kMaxL3PerCore);
        return std::string();
      },
      notes);
  if (l3) {
    h.l3_total_bytes = l3->l3;
    h.l3_shared_by = cores_sharing(*l3);
    h.l3_bytes = l3->l3 / static_cast<uint64_t>(h.l3_shared_by);
    h.source.l3 = l3->source;
  }
}

// ---------------------------------------------------------------- cores and limits

void probe_cores(const ProbeSources& src, const std::optional<CpuinfoFacts>& info, jit::HostInfo& h) {
  if (info && info->cores > 0 && info->processors >= info->cores) {
    h.physical_cores = static_cast<int>(info->cores);
    h.logical_cores = static_cast<int>(info->processors);
    h.source.cores = "cpuinfo";
  } else if (auto online = read(src, "/sys/devices/system/cpu/online"); online && count_cpu_list(*online)) {
    int logical = *count_cpu_list(*online);
    auto siblings = read(src, "/sys/devices/system/cpu/cpu0/topology/thread_siblings_list");
    int per_core = siblings ? count_cpu_list(*siblings).value_or(1) : 1;
    h.logical_cores = logical;
    h.physical_cores = std::max(1, logical / std::clamp(per_core, 1, logical));
    h.source.cores = "sysfs";
  } else if (long n = src.online_cpus ? src.online_cpus() : 0; n > 0) {
    // Without topology, SMT siblings count as cores.
    h.logical_cores = h.physical_cores = static_cast<int>(std::min<long>(n, kMaxOverrideCores));
    h.source.cores = "sysconf";
  }

  if (int n = src.affinity_cpus ? src.affinity_cpus() : 0; n > 0) {
    h.affinity_cpus = n;
    h.source.affinity = "affinity";
  }
}

// "max 100000" -> 0 (no limit); "150000 100000" -> 1.5; nullopt when malformed.
std::optional<double> parse_cpu_max(const std::string& text) {
  std::istringstream in(text);
  std::string quota, period;
  if (!(in >> quota >> period)) return std::nullopt;
  auto p = parse_u64(period);
  if (!p || *p == 0) return std::nullopt;
  if (quota == "max") return 0.0;
  auto q = parse_u64(quota);
  if (!q || *q == 0) return std::nullopt;
  return static_cast<double>(*q) / static_cast<double>(*p);
}

// "/a/b" -> {"/a/b", "/a", ""}: the cgroup and its ancestors, as path suffixes.
std::vector<std::string> cgroup_ancestors(std::string path) {
  std::vector<std::string> out;
  while (!path.empty() && path.back() == '/') path.pop_back();
  for (;;) {
    out.push_back(path);
    if (path.empty()) break;
    path = path.substr(0, path.rfind('/'));
  }
  return out;
}

void probe_quota(const ProbeSources& src, jit::HostInfo& h) {
  // The process's own cgroup; a limit anywhere on the way to the root applies.
  std::string v2_path, v1_path;
  if (auto self = read(src, "/proc/self/cgroup")) {
    std::istringstream lines(*self);
    std::string line;
    while (std::getline(lines, line)) {
      auto a = line.find(':');
      auto b = a == std::string::npos ? a : line.find(':', a + 1);
      if (b == std::string::npos) continue;
      std::string controllers = line.substr(a + 1, b - a - 1);
      std::string path = line.substr(b + 1);
      if (line.substr(0, a) == "0" && controllers.empty()) v2_path = path;
      std::istringstream names(controllers);
      std::string name;
      while (std::getline(names, name, ','))
        if (name == "cpu") v1_path = path;
    }
  }

  bool found = false;
  double quota = 0;
  auto take = [&](double q) {
    found = true;
    if (q > 0 && (quota == 0 || q < quota)) quota = q;
  };
  for (const std::string& dir : cgroup_ancestors(v2_path)) {
    std::string file = "/sys/fs/cgroup" + dir + "/cpu.max";
    if (auto text = read(src, file)) {
      if (auto q = parse_cpu_max(*text)) take(*q);
      else h.notes.push_back("cpu quota: " + file + " holds '" + trim(*text) + "', not understood");
    }
  }
  if (!found) {
    for (const char* root : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"}) {
      for (const std::string& dir : cgroup_ancestors(v1_path)) {
        auto q_text = read(src, root + dir + "/cpu.cfs_quota_us");
        auto p_text = read(src, root + dir + "/cpu.cfs_period_us");
        if (!q_text || !p_text) continue;
        std::string qs = trim(*q_text);
        auto p = parse_u64(trim(*p_text));
        auto q = parse_u64(qs);
        if (qs == "-1" && p) take(0);  // -1 = no limit
        else if (q && *q > 0 && p && *p > 0) take(static_cast<double>(*q) / static_cast<double>(*p));
        else h.notes.push_back("cpu quota: " + std::string(root) + dir + " holds '" + qs + "', not understood");
      }
      if (found) break;
    }
  }
  if (!found) return;
  h.cpu_quota = quota;
  h.source.cpu_quota = "cgroup";
  // A quota above the CPU count limits nothing; report what it can actually grant.
  if (quota > h.logical_cores) {
    h.cpu_quota = h.logical_cores;
    h.source.cpu_quota = "cgroup (clamped)";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", quota);
    h.notes.push_back("cpu quota: the cgroup allows " + std::string(buf) + " CPUs, more than the " +
                      std::to_string(h.logical_cores) + " logical cores");
  }
}

// ---------------------------------------------------------------- overrides

constexpr const char* kOverrideKeys[] = {"l1d", "l2", "l3", "cores", "isa"};

void apply_one(jit::HostInfo& h, const std::string& key, const std::string& raw, const std::string& label) {
  const std::string value = trim(raw);
  auto bad = [&](const std::string& expected) {
    throw_invalid("host override " + label + ": '" + raw + "' is not " + expected);
  };
  if (key == "l1d" || key == "l2" || key == "l3") {
    auto bytes = parse_size(value);
    if (!bytes || *bytes == 0 || *bytes > kMaxOverrideBytes)
      bad("a cache size (a positive number of bytes up to 1 TiB, optionally with a K, M or G suffix)");
    if (key == "l1d") {
      h.l1d_bytes = *bytes;
      h.source.l1d = "override";
    } else if (key == "l2") {
      h.l2_bytes = *bytes;
      h.source.l2 = "override";
    } else {
      h.l3_total_bytes = *bytes;
      h.l3_shared_by = std::max(1, h.l3_shared_by);
      h.l3_bytes = std::max<uint64_t>(1, *bytes / static_cast<uint64_t>(h.l3_shared_by));
      h.source.l3 = "override";
    }
  } else if (key == "cores") {
    auto n = parse_u64(value);
    if (!n || *n == 0 || *n > static_cast<uint64_t>(kMaxOverrideCores)) bad("a core count (1..65536)");
    h.physical_cores = h.logical_cores = static_cast<int>(*n);
    h.affinity_cpus = 0;
    h.cpu_quota = 0;
    h.source.cores = h.source.affinity = h.source.cpu_quota = "override";
  } else if (key == "isa") {
    std::string isa = value;
    for (char& c : isa) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (isa != "avx512" && isa != "avx2" && isa != "none") bad("an ISA (avx512, avx2 or none)");
    // Raising the ISA would plan kernels that die with SIGILL.
    if ((isa == "avx512" && !jit::has_avx512(h)) || (isa == "avx2" && !jit::has_avx2(h)))
      throw_unsupported("host override " + label + ": '" + raw + "' asks for more than this host has (" +
                        jit::isa_name(h) + ")");
    if (isa != "avx512") {
      // AMX kernels need AVX-512 around them, so it goes with it.
      h.avx512f = h.avx512bw = h.avx512vl = h.avx512dq = h.avx512_vnni = h.avx512_bf16 = false;
      h.amx_tile = h.amx_int8 = h.amx_bf16 = false;
    }
    if (isa == "none") h.avx2 = h.fma = h.avx_vnni = false;
    h.source.isa = "override";
  } else {
    throw_invalid("host override '" + key + "' is unknown (expected l1d, l2, l3, cores or isa)");
  }
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string isa_flags(const jit::HostInfo& h) {
  std::string out;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  add(h.avx2, "avx2");
  add(h.fma, "fma");
  add(h.avx_vnni, "avx_vnni");
  add(h.avx512f, "avx512f");
  add(h.avx512bw, "avx512bw");
  add(h.avx512vl, "avx512vl");
  add(h.avx512dq, "avx512dq");
  add(h.avx512_vnni, "avx512_vnni");
  add(h.avx512_bf16, "avx512_bf16");
  add(h.amx_tile, "amx_tile");
  add(h.amx_int8, "amx_int8");
  add(h.amx_bf16, "amx_bf16");
  return out.empty() ? "-" : out;
}

}  // namespace

std::string format_bytes(uint64_t bytes) {
  static const struct {
    uint64_t unit;
    const char* name;
  } units[] = {{kTiB, "TiB"}, {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}};
  for (const auto& u : units) {
    if (bytes < u.unit) continue;
    char buf[48];
    if (bytes % u.unit == 0)
      std::snprintf(buf, sizeof buf, "%" PRIu64 " %s", bytes / u.unit, u.name);
    else
      std::snprintf(buf, sizeof buf, "%.1f %s", static_cast<double>(bytes) / static_cast<double>(u.unit), u.name);
    return buf;
  }
  return std::to_string(bytes) + " B";
}

jit::HostInfo apply_overrides(jit::HostInfo host, const std::map<std::string, std::string>& overrides) {
  for (const auto& [key, value] : overrides) apply_one(host, key, value, "'" + key + "'");
  return host;
}

jit::HostInfo probe_host(const ProbeSources& src) {
  jit::HostInfo h;
  Cpuid cpuid(src);
  std::optional<CpuinfoFacts> info = src.cpuinfo ? src.cpuinfo() : std::nullopt;

  probe_identity_and_isa(cpuid, src, h);
  if (h.model_name.empty() && info && !info->name.empty()) {
    h.model_name = info->name;
    if (h.source.cpu == "default") h.source.cpu = "cpuinfo";
  }
  probe_cores(src, info, h);  // before caches: the L3 share divides by cores
  probe_caches(cpuid, src, info, h);
  probe_quota(src, h);

  if (src.getenv) {
    for (const char* key : kOverrideKeys) {
      std::string var = "NNJIT_" + upper(key);
      if (auto value = src.getenv(var)) apply_one(h, key, *value, var);
    }
  }
  return h;
}

std::vector<HostFigure> host_figures(const jit::HostInfo& h) {
  const auto& s = h.source;
  std::string model = h.model_name.empty() ? "unknown" : h.model_name;
  if (h.family != 0) model += " (family " + std::to_string(h.family) + ", model " + std::to_string(h.model) + ")";
  char quota[48] = "none";
  if (h.cpu_quota > 0) std::snprintf(quota, sizeof quota, "%.2f CPUs", h.cpu_quota);
  std::vector<HostFigure> out = {
      {"vendor", h.vendor.empty() ? "unknown" : h.vendor, s.cpu},
      {"model", model, s.cpu},
      {"isa", jit::isa_name(h), s.isa},
      {"isa flags", isa_flags(h), s.isa},
      {"L1d", format_bytes(h.l1d_bytes), s.l1d},
      {"L2", format_bytes(h.l2_bytes), s.l2},
      {"L3", format_bytes(h.l3_total_bytes) + " shared by " + std::to_string(h.l3_shared_by) +
                 (h.l3_shared_by == 1 ? " core" : " cores"),
       s.l3},
      {"L3 per core", format_bytes(h.l3_bytes), s.l3},
      {"cache line", std::to_string(h.cache_line_bytes) + " B", s.line},
      {"physical cores", std::to_string(h.physical_cores), s.cores},
      {"logical cores", std::to_string(h.logical_cores), s.cores},
      {"affinity", h.affinity_cpus > 0 ? std::to_string(h.affinity_cpus) + " CPUs" : "not restricted", s.affinity},
      {"cpu quota", quota, s.cpu_quota},
      {"threads", std::to_string(jit::usable_threads(h)), "derived"},
  };
  for (const std::string& note : h.notes) out.push_back({"note", note, "probe"});
  return out;
}

ProbeSources real_sources() {
  ProbeSources src;
  src.cpuinfo = []() -> std::optional<CpuinfoFacts> {
    if (!cpuinfo_initialize()) return std::nullopt;
    CpuinfoFacts f;
    if (cpuinfo_get_packages_count() > 0) f.name = trim(cpuinfo_get_package(0)->name);
    if (cpuinfo_get_l1d_caches_count() > 0) {
      f.l1d_bytes = cpuinfo_get_l1d_cache(0)->size;
      f.l1d_line = cpuinfo_get_l1d_cache(0)->line_size;
    }
    if (cpuinfo_get_l2_caches_count() > 0) f.l2_bytes = cpuinfo_get_l2_cache(0)->size;
    if (cpuinfo_get_l3_caches_count() > 0) {
      f.l3_bytes = cpuinfo_get_l3_cache(0)->size;
      f.l3_processors = cpuinfo_get_l3_cache(0)->processor_count;
    }
    f.cores = cpuinfo_get_cores_count();
    f.processors = cpuinfo_get_processors_count();
    return f;
  };
#ifdef NNJIT_PROBE_X86
  src.cpuid = [](uint32_t leaf, uint32_t subleaf) {
    CpuidRegs r;
    __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
    return r;
  };
  src.xgetbv0 = []() -> uint64_t {
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t{hi} << 32) | lo;
  };
#endif
  src.read_file = [](const std::string& path) -> std::optional<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::string text(64 * 1024, '\0');  // every file we read is a line or two
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) return std::nullopt;
    text.resize(static_cast<std::size_t>(in.gcount()));
    return text;
  };
  src.getenv = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  src.online_cpus = [] { return sysconf(_SC_NPROCESSORS_ONLN); };
  src.affinity_cpus = [] {
    constexpr int kMaxCpus = 8192;
    cpu_set_t* set = CPU_ALLOC(kMaxCpus);
    if (!set) return 0;
    std::size_t size = CPU_ALLOC_SIZE(kMaxCpus);
    int n = sched_getaffinity(0, size, set) == 0 ? CPU_COUNT_S(size, set) : 0;
    CPU_FREE(set);
    return n;
  };
  return src;
}

}  // namespace nnjit::runtime
