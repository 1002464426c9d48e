// The host probe against fake hosts: each test describes a machine through the raw
// answers its sources would give (CPUID registers, sysfs files, cpuinfo, environment)
// and checks the figures and their sources.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "jit/host_info.hpp"
#include "nnjit/error.hpp"
#include "runtime/probe.hpp"

using nnjit::ErrorCode;
using nnjit::jit::HostInfo;
using nnjit::runtime::CpuidRegs;
using nnjit::runtime::CpuinfoFacts;
using nnjit::runtime::ProbeSources;

namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;

// XCR0 values.
constexpr uint64_t kXcr0AvxOnly = 0x7;
constexpr uint64_t kXcr0Avx512 = 0xe7;
constexpr uint64_t kXcr0Amx = 0x600e7;

// Cache types in leaf 4 / 0x8000001D.
constexpr uint32_t kData = 1, kInstruction = 2, kUnified = 3;

struct FakeHost {
  std::map<std::pair<uint32_t, uint32_t>, CpuidRegs> cpuid;
  bool has_cpuid = true;
  uint64_t xcr0 = kXcr0Avx512;
  std::optional<CpuinfoFacts> cpuinfo;
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> env;
  long online = 0;
  int affinity = 0;

  CpuidRegs& reg(uint32_t leaf, uint32_t sub = 0) { return cpuid[{leaf, sub}]; }

  // Leaf 0 and 0x80000000: vendor and the highest leaves.
  void vendor(const char* name, uint32_t max_basic, uint32_t max_ext) {
    CpuidRegs& r = reg(0);
    r.eax = max_basic;
    std::memcpy(&r.ebx, name + 0, 4);
    std::memcpy(&r.edx, name + 4, 4);
    std::memcpy(&r.ecx, name + 8, 4);
    reg(0x80000000u).eax = max_ext;
  }
  // Leaf 1: signature, and FMA + OSXSAVE + AVX as every AVX2 machine has.
  void signature(uint32_t eax, bool avx = true) {
    reg(1).eax = eax;
    reg(1).ecx = avx ? (1u << 12) | (1u << 27) | (1u << 28) : 0;
  }
  void avx2() { reg(7).ebx |= 1u << 5; }
  void avx512() {
    avx2();
    reg(7).ebx |= (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);  // F DQ BW VL
    reg(7).ecx |= 1u << 11;                                           // VNNI
    reg(7).eax = 1;
    reg(7, 1).eax |= 1u << 5;  // BF16
  }
  // One subleaf of leaf 4 / 0x8000001D.
  void cache(uint32_t leaf, uint32_t sub, uint32_t type, uint32_t level, uint64_t size, uint32_t sharing,
             uint32_t ways = 16, uint32_t line = 64) {
    CpuidRegs& r = reg(leaf, sub);
    r.eax = type | (level << 5) | ((sharing - 1) << 14);
    r.ebx = (line - 1) | ((ways - 1) << 22);
    r.ecx = static_cast<uint32_t>(size / (uint64_t{ways} * line) - 1);
  }
  // AMD's legacy leaves; l3 in bytes (512 KiB units).
  void amd_legacy(uint64_t l1d, uint64_t l2, uint64_t l3) {
    reg(0x80000005u).ecx = static_cast<uint32_t>((l1d / KiB) << 24) | 64;
    reg(0x80000006u).ecx = static_cast<uint32_t>((l2 / KiB) << 16) | (0x8u << 12) | 64;
    reg(0x80000006u).edx = static_cast<uint32_t>((l3 / (512 * KiB)) << 18) | (0x9u << 12) | 64;
  }
  void sysfs_cache(int index, int level, const char* type, const char* size, const char* shared) {
    std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    files[dir + "level"] = std::to_string(level) + "\n";
    files[dir + "type"] = std::string(type) + "\n";
    files[dir + "size"] = std::string(size) + "\n";
    files[dir + "coherency_line_size"] = "64\n";
    files[dir + "shared_cpu_list"] = std::string(shared) + "\n";
  }

  ProbeSources sources() const {
    ProbeSources s;
    if (has_cpuid) {
      s.cpuid = [this](uint32_t leaf, uint32_t sub) {
        auto it = cpuid.find({leaf, sub});
        return it == cpuid.end() ? CpuidRegs{} : it->second;
      };
      s.xgetbv0 = [this] { return xcr0; };
    }
    s.cpuinfo = [this] { return cpuinfo; };
    s.read_file = [this](const std::string& path) -> std::optional<std::string> {
      auto it = files.find(path);
      if (it == files.end()) return std::nullopt;
      return it->second;
    };
    s.getenv = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    s.online_cpus = [this] { return online; };
    s.affinity_cpus = [this] { return affinity; };
    return s;
  }
  HostInfo probe() const { return nnjit::runtime::probe_host(sources()); }
};

bool has_note(const HostInfo& h, const std::string& text) {
  return std::any_of(h.notes.begin(), h.notes.end(),
                     [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

std::string all_notes(const HostInfo& h) {
  std::string out;
  for (const auto& n : h.notes) out += n + "\n";
  return out;
}

// A Sapphire Rapids-like server: 56 cores, 2 threads each, caches in leaf 4 only.
FakeHost intel_host() {
  FakeHost f;
  f.vendor("GenuineIntel", 0x20, 0x80000008u);
  f.signature(0x000806f8);  // family 6, model 0x8F
  f.avx512();
  f.reg(7).edx |= (1u << 22) | (1u << 24) | (1u << 25);  // AMX BF16, TILE, INT8
  f.xcr0 = kXcr0Amx;
  f.cache(4, 0, kData, 1, 48 * KiB, 2, 12);
  f.cache(4, 1, kInstruction, 1, 32 * KiB, 2, 8);
  f.cache(4, 2, kUnified, 2, 2 * MiB, 2, 16);
  f.cache(4, 3, kUnified, 3, 105 * MiB, 128, 15);  // more sharers than logical CPUs: CPUID counts IDs
  f.files["/sys/devices/system/cpu/online"] = "0-111\n";
  f.files["/sys/devices/system/cpu/cpu0/topology/thread_siblings_list"] = "0,56\n";
  return f;
}

// A Zen 4-like host with topology extensions: 8 cores, 16 threads, one 32 MiB CCX L3.
FakeHost amd_host() {
  FakeHost f;
  f.vendor("AuthenticAMD", 0x10, 0x80000021u);
  f.signature(0x00a10f11);  // family 25, model 17
  f.avx512();
  f.reg(0x80000001u).ecx |= 1u << 22;  // TOPOEXT
  f.cache(0x8000001du, 0, kData, 1, 32 * KiB, 2, 8);
  f.cache(0x8000001du, 1, kInstruction, 1, 32 * KiB, 2, 8);
  f.cache(0x8000001du, 2, kUnified, 2, 1 * MiB, 2, 8);
  f.cache(0x8000001du, 3, kUnified, 3, 32 * MiB, 16, 16);
  f.amd_legacy(32 * KiB, 1 * MiB, 256 * MiB);  // the legacy leaf counts the whole socket
  f.cpuinfo = CpuinfoFacts{.name = "AMD EPYC 9B14", .cores = 8, .processors = 16};
  return f;
}

// The machine this project was first built on: a 2-vCPU Zen 5 VM whose cpuinfo finds no
// caches and whose CPUID claims the host's socket-sized L3.
FakeHost lying_vm(bool with_sysfs) {
  FakeHost f;
  f.vendor("AuthenticAMD", 0x10, 0x80000021u);
  f.signature(0x00b00f21);  // family 26, model 2
  f.avx512();
  f.reg(0x80000001u).ecx |= 1u << 22;  // TOPOEXT advertised, 0x8000001D answers zeros
  f.amd_legacy(48 * KiB, 1 * MiB, 500 * MiB);
  f.cpuinfo = CpuinfoFacts{.name = "AMD EPYC", .cores = 2, .processors = 2};
  if (with_sysfs) {
    f.sysfs_cache(0, 1, "Data", "48K", "0");
    f.sysfs_cache(1, 1, "Instruction", "32K", "0");
    f.sysfs_cache(2, 2, "Unified", "1024K", "0");
    f.sysfs_cache(3, 3, "Unified", "32768K", "0-1");
  }
  return f;
}

}  // namespace

TEST_SUITE("probe") {
  TEST_CASE("a hand-made fake host is plain aggregate initialisation") {
    HostInfo host{.avx2 = true, .fma = true, .l2_bytes = 256 << 10, .physical_cores = 1, .logical_cores = 1};
    CHECK(nnjit::jit::isa_name(host) == "avx2");
    CHECK_FALSE(nnjit::jit::has_avx512(host));
    CHECK(host.l1d_bytes == 32 * KiB);
    CHECK(nnjit::jit::usable_threads(host) == 1);

    HostInfo wide{.avx2 = true, .fma = true, .avx512f = true, .avx512bw = true, .avx512vl = true,
                  .avx512dq = true, .physical_cores = 8, .logical_cores = 16, .cpu_quota = 2.5};
    CHECK(nnjit::jit::isa_name(wide) == "avx512");
    CHECK(nnjit::jit::usable_threads(wide) == 2);
    CHECK(nnjit::jit::isa_name(HostInfo{}) == "none");
  }

  TEST_CASE("Intel host: caches from leaf 4, cores from sysfs, AMX enabled") {
    HostInfo h = intel_host().probe();
    INFO(all_notes(h));
    CHECK(h.vendor == "GenuineIntel");
    CHECK(h.family == 6);
    CHECK(h.model == 0x8f);
    CHECK(nnjit::jit::isa_name(h) == "avx512");
    CHECK(h.avx512_vnni);
    CHECK(h.avx512_bf16);
    CHECK(h.amx_tile);
    CHECK(h.amx_int8);
    CHECK(h.amx_bf16);
    CHECK(h.source.isa == "cpuid");

    CHECK(h.l1d_bytes == 48 * KiB);
    CHECK(h.l2_bytes == 2 * MiB);
    CHECK(h.l3_total_bytes == 105 * MiB);
    CHECK(h.cache_line_bytes == 64);
    CHECK(h.source.l1d == "cpuid");
    CHECK(h.source.l2 == "cpuid");
    CHECK(h.source.l3 == "cpuid");
    CHECK(h.source.line == "cpuid");

    CHECK(h.logical_cores == 112);
    CHECK(h.physical_cores == 56);
    CHECK(h.source.cores == "sysfs");
    // 128 sharers clamp to our 112 logical CPUs = 56 cores.
    CHECK(h.l3_shared_by == 56);
    CHECK(h.l3_bytes == 105 * MiB / 56);
    CHECK(h.cpu_quota == 0);
    CHECK(h.source.cpu_quota == "default");
  }

  TEST_CASE("AMD host: caches from 0x8000001D, the socket-wide legacy L3 is only noted") {
    HostInfo h = amd_host().probe();
    INFO(all_notes(h));
    CHECK(h.family == 25);
    CHECK(h.model == 17);
    CHECK(h.model_name == "AMD EPYC 9B14");  // no brand string in CPUID: cpuinfo's name
    CHECK(h.l1d_bytes == 32 * KiB);
    CHECK(h.l2_bytes == 1 * MiB);
    CHECK(h.l3_total_bytes == 32 * MiB);
    CHECK(h.l3_shared_by == 8);
    CHECK(h.l3_bytes == 4 * MiB);
    CHECK(h.source.l1d == "cpuid");
    CHECK(h.source.l3 == "cpuid");
    CHECK(h.physical_cores == 8);
    CHECK(h.logical_cores == 16);
    CHECK(h.source.cores == "cpuinfo");
    CHECK(has_note(h, "L3 of 256 MiB from cpuid 0x80000005/6 disagrees"));
  }

  TEST_CASE("lying VM with sysfs: legacy CPUID for L1d and L2, sysfs for L3") {
    HostInfo h = lying_vm(true).probe();
    INFO(all_notes(h));
    CHECK(h.family == 26);
    CHECK(nnjit::jit::isa_name(h) == "avx512");
    CHECK(h.l1d_bytes == 48 * KiB);
    CHECK(h.source.l1d == "cpuid");
    CHECK(h.l2_bytes == 1 * MiB);
    CHECK(h.source.l2 == "cpuid");
    CHECK(h.l3_total_bytes == 32 * MiB);
    CHECK(h.l3_shared_by == 2);
    CHECK(h.l3_bytes == 16 * MiB);
    CHECK(h.source.l3 == "sysfs");
    CHECK(has_note(h, "L3 of 500 MiB from cpuid 0x80000005/6 not believed"));
  }

  TEST_CASE("lying VM without sysfs: the L3 falls back to the default") {
    for (bool topoext : {true, false}) {  // 0x8000001D answering zeros, or not advertised
      CAPTURE(topoext);
      FakeHost f = lying_vm(false);
      if (!topoext) f.reg(0x80000001u).ecx &= ~(1u << 22);
      HostInfo h = f.probe();
      INFO(all_notes(h));
      CHECK(h.l1d_bytes == 48 * KiB);
      CHECK(h.l2_bytes == 1 * MiB);
      CHECK(h.l3_total_bytes == nnjit::jit::kDefaultL3TotalBytes);
      CHECK(h.l3_bytes == nnjit::jit::kDefaultL3Bytes);
      CHECK(h.source.l3 == "default");
      CHECK(h.l3_bytes <= 64 * MiB);
      CHECK(has_note(h, "500 MiB"));
    }
  }

  TEST_CASE("lying VM whose legacy leaves are empty too: everything from sysfs") {
    FakeHost f = lying_vm(true);
    f.reg(0x80000005u) = {};
    f.reg(0x80000006u) = {};
    HostInfo h = f.probe();
    CHECK(h.l1d_bytes == 48 * KiB);
    CHECK(h.l2_bytes == 1 * MiB);
    CHECK(h.l3_total_bytes == 32 * MiB);
    CHECK(h.source.l1d == "sysfs");
    CHECK(h.source.l2 == "sysfs");
    CHECK(h.source.l3 == "sysfs");
    CHECK(h.source.line == "sysfs");
  }

  TEST_CASE("implausible claims are skipped for the next source") {
    FakeHost f = lying_vm(true);
    // cpuinfo: a 48-byte line and a 16 KiB L2 below the 48 KiB L1d.
    f.cpuinfo = CpuinfoFacts{.l1d_bytes = 48 * KiB, .l1d_line = 48, .l2_bytes = 16 * KiB, .cores = 2, .processors = 2};
    HostInfo h = f.probe();
    INFO(all_notes(h));
    CHECK(h.l1d_bytes == 48 * KiB);
    CHECK(h.source.l1d == "cpuinfo");
    CHECK(h.cache_line_bytes == 64);
    CHECK(h.source.line == "cpuid");
    CHECK(h.l2_bytes == 1 * MiB);
    CHECK(h.source.l2 == "cpuid");
    CHECK(has_note(h, "smaller than the L1d"));
    CHECK(has_note(h, "power of two"));
  }

  TEST_CASE("no sources at all: the conservative defaults") {
    FakeHost f;
    f.has_cpuid = false;
    HostInfo h = f.probe();
    CHECK(nnjit::jit::isa_name(h) == "none");
    CHECK(h.l1d_bytes == nnjit::jit::kDefaultL1dBytes);
    CHECK(h.l2_bytes == nnjit::jit::kDefaultL2Bytes);
    CHECK(h.l3_total_bytes == nnjit::jit::kDefaultL3TotalBytes);
    CHECK(h.physical_cores == 1);
    CHECK(h.source.isa == "default");
    CHECK(h.source.l2 == "default");
    CHECK(h.source.cores == "default");

    f.online = 6;
    h = f.probe();
    CHECK(h.logical_cores == 6);
    CHECK(h.physical_cores == 6);
    CHECK(h.source.cores == "sysconf");
  }

  TEST_CASE("AVX2-only host") {
    FakeHost f = intel_host();
    f.reg(7) = {};
    f.reg(7, 1) = {};
    f.avx2();
    f.xcr0 = kXcr0AvxOnly;
    HostInfo h = f.probe();
    CHECK(nnjit::jit::isa_name(h) == "avx2");
    CHECK(h.avx2);
    CHECK(h.fma);
    CHECK_FALSE(h.avx512f);
    CHECK_FALSE(h.amx_tile);
    CHECK(h.notes.empty());
  }

  TEST_CASE("an OS that does not save zmm state turns AVX-512 off") {
    FakeHost f = amd_host();
    f.xcr0 = kXcr0AvxOnly;
    HostInfo h = f.probe();
    CHECK(nnjit::jit::isa_name(h) == "avx2");
    CHECK_FALSE(h.avx512f);
    CHECK_FALSE(h.avx512_vnni);
    CHECK_FALSE(h.avx512_bf16);
    CHECK(has_note(h, "zmm"));

    // No OSXSAVE at all: XGETBV is never executed and nothing vector is usable.
    f.reg(1).ecx &= ~(1u << 27);
    f.xcr0 = 0xdead;  // would enable everything if it were read
    h = f.probe();
    CHECK(nnjit::jit::isa_name(h) == "none");
    CHECK_FALSE(h.avx2);
    CHECK(has_note(h, "ymm"));
  }

  TEST_CASE("AMX needs the tile state in XCR0") {
    FakeHost f = intel_host();
    f.xcr0 = kXcr0Avx512;
    HostInfo h = f.probe();
    CHECK(nnjit::jit::isa_name(h) == "avx512");
    CHECK_FALSE(h.amx_tile);
    CHECK_FALSE(h.amx_int8);
    CHECK(has_note(h, "tile state"));
  }

  TEST_CASE("cgroup v2 quota of 1.5 CPUs") {
    FakeHost f = amd_host();
    f.files["/sys/fs/cgroup/cpu.max"] = "150000 100000\n";
    HostInfo h = f.probe();
    CHECK(h.cpu_quota == doctest::Approx(1.5));
    CHECK(h.source.cpu_quota == "cgroup");
    CHECK(nnjit::jit::usable_threads(h) == 1);

    f.files["/sys/fs/cgroup/cpu.max"] = "max 100000\n";
    h = f.probe();
    CHECK(h.cpu_quota == 0);
    CHECK(h.source.cpu_quota == "cgroup");
    CHECK(nnjit::jit::usable_threads(h) == 8);
  }

  TEST_CASE("cgroup v2: the tightest limit on the path to the root") {
    FakeHost f = amd_host();
    f.files["/proc/self/cgroup"] = "0::/system.slice/app.service\n";
    f.files["/sys/fs/cgroup/system.slice/app.service/cpu.max"] = "max 100000\n";
    f.files["/sys/fs/cgroup/system.slice/cpu.max"] = "300000 100000\n";
    f.files["/sys/fs/cgroup/cpu.max"] = "garbage\n";
    HostInfo h = f.probe();
    CHECK(h.cpu_quota == doctest::Approx(3.0));
    CHECK(h.source.cpu_quota == "cgroup");
    CHECK(has_note(h, "not understood"));
  }

  TEST_CASE("cgroup v1 quota") {
    FakeHost f = amd_host();
    f.files["/proc/self/cgroup"] = "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n0::/\n";
    f.files["/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us"] = "50000\n";
    f.files["/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us"] = "100000\n";
    HostInfo h = f.probe();
    CHECK(h.cpu_quota == doctest::Approx(0.5));
    CHECK(h.source.cpu_quota == "cgroup");
    CHECK(nnjit::jit::usable_threads(h) == 1);

    FakeHost g = amd_host();
    g.files["/sys/fs/cgroup/cpu/cpu.cfs_quota_us"] = "-1\n";
    g.files["/sys/fs/cgroup/cpu/cpu.cfs_period_us"] = "100000\n";
    h = g.probe();
    CHECK(h.cpu_quota == 0);
    CHECK(h.source.cpu_quota == "cgroup");
  }

  TEST_CASE("a quota above the CPU count is clamped") {
    FakeHost f = lying_vm(true);
    f.files["/sys/fs/cgroup/cpu.max"] = "800000 100000\n";
    HostInfo h = f.probe();
    CHECK(h.cpu_quota == doctest::Approx(2.0));
    CHECK(h.source.cpu_quota == "cgroup (clamped)");
  }

  TEST_CASE("affinity limits the threads") {
    FakeHost f = amd_host();
    f.affinity = 3;
    HostInfo h = f.probe();
    CHECK(h.affinity_cpus == 3);
    CHECK(h.source.affinity == "affinity");
    CHECK(nnjit::jit::usable_threads(h) == 3);
  }

  TEST_CASE("environment overrides") {
    FakeHost f = amd_host();
    f.files["/sys/fs/cgroup/cpu.max"] = "150000 100000\n";
    f.env = {{"NNJIT_L1D", "48KiB"}, {"NNJIT_L2", "512k"}, {"NNJIT_L3", "16M"}, {"NNJIT_CORES", "4"},
             {"NNJIT_ISA", "avx2"}};
    HostInfo h = f.probe();
    CHECK(h.l1d_bytes == 48 * KiB);
    CHECK(h.l2_bytes == 512 * KiB);
    CHECK(h.l3_total_bytes == 16 * MiB);
    CHECK(h.l3_bytes == 2 * MiB);  // still shared by the 8 cores of the CCX
    CHECK(h.physical_cores == 4);
    CHECK(h.cpu_quota == 0);
    CHECK(nnjit::jit::usable_threads(h) == 4);
    CHECK(nnjit::jit::isa_name(h) == "avx2");
    CHECK_FALSE(h.avx512_vnni);
    for (const std::string* s : {&h.source.l1d, &h.source.l2, &h.source.l3, &h.source.cores, &h.source.isa,
                                 &h.source.cpu_quota})
      CHECK(*s == "override");
    CHECK(h.source.line == "cpuid");

    f.env = {{"NNJIT_L2", "2G"}, {"NNJIT_ISA", "none"}};
    h = f.probe();
    CHECK(h.l2_bytes == 2048 * MiB);
    CHECK(nnjit::jit::isa_name(h) == "none");
    CHECK_FALSE(h.avx2);
  }

  TEST_CASE("malformed environment override names the variable") {
    FakeHost f = amd_host();
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"NNJIT_L2", "12Q"},   {"NNJIT_L1D", ""},      {"NNJIT_L3", "0"},
        {"NNJIT_L3", "-5M"},   {"NNJIT_CORES", "two"}, {"NNJIT_ISA", "sse4"}};
    for (const auto& [var, value] : cases) {
      CAPTURE(var);
      f.env = {{var, value}};
      try {
        f.probe();
        FAIL("no error for " << var << "=" << value);
      } catch (const nnjit::Error& e) {
        CHECK(e.code() == ErrorCode::InvalidInput);
        CHECK(std::string(e.what()).find(var) != std::string::npos);
      }
    }
  }

  TEST_CASE("apply_overrides: same keys, errors name the key") {
    HostInfo host{.avx2 = true, .fma = true, .physical_cores = 2, .logical_cores = 4};
    HostInfo h = nnjit::runtime::apply_overrides(host, {{"l2", "1M"}, {"cores", "3"}});
    CHECK(h.l2_bytes == 1 * MiB);
    CHECK(h.physical_cores == 3);
    CHECK(h.source.l2 == "override");
    CHECK(h.source.l1d == "default");

    auto code_of = [&](const std::string& key, const std::string& value) {
      try {
        nnjit::runtime::apply_overrides(host, {{key, value}});
      } catch (const nnjit::Error& e) {
        CHECK(std::string(e.what()).find(key) != std::string::npos);
        return e.code();
      }
      return ErrorCode::Internal;  // "no error"
    };
    CHECK(code_of("l1d", "abc") == ErrorCode::InvalidInput);
    CHECK(code_of("l2", "99999999999999999999") == ErrorCode::InvalidInput);
    CHECK(code_of("l3", "4T") == ErrorCode::InvalidInput);
    CHECK(code_of("cores", "0") == ErrorCode::InvalidInput);
    CHECK(code_of("cores", "1.5") == ErrorCode::InvalidInput);
    CHECK(code_of("isa", "avx1024") == ErrorCode::InvalidInput);
    CHECK(code_of("threads", "2") == ErrorCode::InvalidInput);
    // Valid, but this host cannot run it.
    CHECK(code_of("isa", "avx512") == ErrorCode::Unsupported);
  }

  TEST_CASE("host_figures lists every figure with a source") {
    HostInfo h = lying_vm(false).probe();
    auto figures = nnjit::runtime::host_figures(h);
    auto find = [&](const std::string& name) {
      auto it = std::find_if(figures.begin(), figures.end(), [&](const auto& f) { return f.name == name; });
      REQUIRE(it != figures.end());
      return *it;
    };
    CHECK(find("L1d").value == "48 KiB");
    CHECK(find("L1d").source == "cpuid");
    CHECK(find("L3").source == "default");
    CHECK(find("isa").value == "avx512");
    CHECK(find("model").value == "AMD EPYC (family 26, model 2)");
    CHECK(find("cpu quota").value == "none");
    CHECK(find("note").value.find("500 MiB") != std::string::npos);
    for (const auto& f : figures) {
      CAPTURE(f.name);
      CHECK_FALSE(f.value.empty());
      CHECK_FALSE(f.source.empty());
    }
  }

  TEST_CASE("format_bytes") {
    using nnjit::runtime::format_bytes;
    CHECK(format_bytes(512) == "512 B");
    CHECK(format_bytes(48 * KiB) == "48 KiB");
    CHECK(format_bytes(1 * MiB) == "1 MiB");
    CHECK(format_bytes(3 * MiB / 2) == "1.5 MiB");
  }

  TEST_CASE("the real host: figures are plausible whatever the machine") {
    HostInfo h = nnjit::runtime::probe_host(nnjit::runtime::real_sources());
    INFO(all_notes(h));
    CHECK(h.l1d_bytes >= 4 * KiB);
    CHECK(h.l2_bytes >= h.l1d_bytes);
    CHECK(h.l3_total_bytes >= h.l2_bytes);
    CHECK(h.l3_bytes > 0);
    CHECK(h.l3_bytes <= 64 * MiB);
    CHECK(h.l3_bytes <= h.l3_total_bytes);
    CHECK(h.l3_shared_by >= 1);
    CHECK(h.cache_line_bytes >= 32);
    CHECK(h.cache_line_bytes <= 256);
    CHECK((h.cache_line_bytes & (h.cache_line_bytes - 1)) == 0);
    CHECK(h.physical_cores >= 1);
    CHECK(h.logical_cores >= h.physical_cores);
    CHECK(h.cpu_quota >= 0);
    CHECK(nnjit::jit::usable_threads(h) >= 1);
    if (nnjit::jit::has_avx512(h)) CHECK(h.avx2);
    for (const auto& f : nnjit::runtime::host_figures(h)) CHECK_FALSE(f.source.empty());
  }
}
