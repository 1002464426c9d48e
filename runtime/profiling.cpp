// Peaks, perf map and kernel dumps (see profiling.hpp).
#include "runtime/profiling.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <vector>

#include "jit/isa.hpp"
#include "jit/layout.hpp"
#include "jit/peak.hpp"
#include "jit/registry.hpp"
#include "nnjit/error.hpp"
#include "runtime/model_impl.hpp"

namespace nnjit::runtime {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

HostPeaks measure_host_peaks(const jit::HostInfo& host) {
  HostPeaks p;
  if (jit::host_has(host, jit::Isa::avx2)) {
    const bool wide = jit::host_has(host, jit::Isa::avx512);
    jit::PeakFmaKernel k(wide ? jit::Isa::avx512 : jit::Isa::avx2, wide ? 24 : 12);
    k.run(1 << 12);  // warm up the clocks
    double best = 0;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = Clock::now();
      k.run(1 << 16);
      best = std::max(best, k.flops_per_iteration() * (1 << 16) / seconds_since(t0) / 1e9);
    }
    p.fma_gflops = best;
  }
  const int64_t n = (int64_t{64} << 20) / 4;
  jit::AlignedBuffer<float> buf(n);  // zero-filled, so touched
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = Clock::now();
    float sums[8] = {};
    for (int64_t i = 0; i < n; i += 8)
      for (int l = 0; l < 8; ++l) sums[l] += buf[static_cast<std::size_t>(i + l)];
    const double s = seconds_since(t0);
    volatile float sink = sums[0] + sums[7];
    (void)sink;
    best = std::max(best, static_cast<double>(n) * 4 / s / 1e9);
  }
  p.memory_gb_per_s = best;
  return p;
}

bool write_perf_map_if_asked() {
  const char* env = std::getenv("NNJIT_PERF_MAP");
  if (env == nullptr || std::string(env) != "1") return false;
  const std::string path = "/tmp/perf-" + std::to_string(::getpid()) + ".map";
  std::ofstream f(path, std::ios::trunc);
  for (const jit::JitBlob& b : jit::JitRegistry::instance().list()) {
    char head[64];
    std::snprintf(head, sizeof head, "%lx %zx ", static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(b.address)),
                  b.size);
    std::string serves = b.serves;
    for (char& c : serves)
      if (c == '\n') c = ' ';
    f << head << "nnjit:" << b.name << ":" << serves << "\n";
  }
  return static_cast<bool>(f);
}

namespace {

// perf's jitdump format (tools/perf/Documentation/jitdump-specification.txt): a header,
// then one JIT_CODE_LOAD record per kernel carrying its name and code bytes.
struct JitdumpHeader {
  uint32_t magic = 0x4A695444;  // "JiTD"
  uint32_t version = 1;
  uint32_t total_size = sizeof(JitdumpHeader);
  uint32_t elf_mach = 62;  // EM_X86_64
  uint32_t pad1 = 0;
  uint32_t pid = 0;
  uint64_t timestamp = 0;
  uint64_t flags = 0;
};
static_assert(sizeof(JitdumpHeader) == 40);
struct JitdumpCodeLoad {
  uint32_t id = 0;  // JIT_CODE_LOAD
  uint32_t total_size = 0;
  uint64_t timestamp = 0;
  uint32_t pid = 0, tid = 0;
  uint64_t vma = 0, code_addr = 0, code_size = 0, code_index = 0;
};
static_assert(sizeof(JitdumpCodeLoad) == 56);

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

bool write_jitdump_if_asked() {
  const char* env = std::getenv("NNJIT_JITDUMP");
  if (env == nullptr || std::string(env) != "1") return false;
  static std::mutex mutex;
  static FILE* file = nullptr;
  static std::set<const void*> written;
  static uint64_t index = 0;
  std::lock_guard lock(mutex);
  if (file == nullptr) {
    const std::string path = "/tmp/jit-" + std::to_string(::getpid()) + ".dump";
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0) return false;
    // perf finds the file through this executable mapping of it (perf inject --jit).
    void* marker = ::mmap(nullptr, static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)), PROT_READ | PROT_EXEC,
                          MAP_PRIVATE, fd, 0);
    (void)marker;
    file = ::fdopen(fd, "wb");
    if (file == nullptr) return false;
    JitdumpHeader h;
    h.pid = static_cast<uint32_t>(::getpid());
    h.timestamp = monotonic_ns();
    std::fwrite(&h, sizeof h, 1, file);
  }
  for (const jit::JitBlob& b : jit::JitRegistry::instance().list()) {
    if (!written.insert(b.address).second) continue;
    const std::string name = "nnjit:" + b.name + ":" + b.serves.substr(0, 200);
    JitdumpCodeLoad r;
    r.total_size = static_cast<uint32_t>(sizeof r + name.size() + 1 + b.size);
    r.timestamp = monotonic_ns();
    r.pid = static_cast<uint32_t>(::getpid());
    r.tid = static_cast<uint32_t>(::gettid());
    r.vma = r.code_addr = reinterpret_cast<uint64_t>(b.address);
    r.code_size = b.size;
    r.code_index = index++;
    std::fwrite(&r, sizeof r, 1, file);
    std::fwrite(name.c_str(), name.size() + 1, 1, file);
    std::fwrite(b.address, b.size, 1, file);
  }
  std::fflush(file);
  return true;
}

int dump_kernels(const ModelImpl& m, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw_invalid("--dump-kernels: cannot create '" + dir + "': " + ec.message());
  // Every blob whose code a step of this model runs: the registry's blobs that serve one
  // of its nodes (fused blocks use several kernels per step).
  std::set<std::string> nodes;
  for (const StepInfo& s : m.step_infos())
    for (const std::string& n : s.nodes) nodes.insert("'" + n + "'");
  int count = 0;
  for (const jit::JitBlob& b : jit::JitRegistry::instance().list()) {
    bool ours = false;
    for (const std::string& n : nodes) ours = ours || b.serves.find(n) != std::string::npos;
    if (!ours) continue;
    const std::string base = dir + "/" + std::to_string(count) + "_" + b.name;
    {
      std::ofstream bin(base + ".bin", std::ios::binary);
      bin.write(static_cast<const char*>(b.address), static_cast<std::streamsize>(b.size));
      if (!bin) throw_invalid("--dump-kernels: cannot write '" + base + ".bin'");
    }
    std::ofstream s(base + ".s");
    s << "# kernel: " << b.name << "\n# serves: " << b.serves << "\n# bytes: " << b.size << "\n";
    for (const StepInfo& st : m.step_infos())
      if (st.code == b.address && !st.plan.empty()) s << "# plan: " << st.plan << "\n";
    s.close();
    const std::string cmd = "objdump -D -b binary -m i386:x86-64 '" + base + ".bin' >> '" + base + ".s' 2>&1";
    if (std::system(cmd.c_str()) != 0) throw_internal("--dump-kernels: objdump failed (binutils installed?)");
    ++count;
  }
  return count;
}

}  // namespace nnjit::runtime
