// The JIT infrastructure: W^X code memory, the blob registry, the kernel cache, and the
// accuracy of the fused activations (ActivationEmitter) over their whole range.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "jit/jit_kernel.hpp"
#include "jit/kernel_cache.hpp"
#include "jit/layout.hpp"
#include "jit/post_ops.hpp"
#include "jit/registry.hpp"
#include "tests/jit/jit_test_util.hpp"

namespace {

using namespace nnjit::jit;
using nnjit::testing::activation_reference;
using nnjit::testing::cpu_has;

// The permissions ("r-xp", ...) of the mapping holding `p`, from /proc/self/maps.
std::string mapping_permissions(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 && addr >= lo && addr < hi) return perms;
  }
  return "";
}

// dst[i] = act(src[i]) for n vectors: void f(const float* src, float* dst, int64_t n).
// `narrow_high`: AVX-512 code on ymm16-31, as a pointwise kernel's half last block.
class ActivationKernel : public JitKernel {
 public:
  ActivationKernel(const Activation& act, Isa isa, bool narrow_high = false)
      : JitKernel("f32_activation_" + std::string(activation_name(act.kind)) + "__" + to_string(isa), "test"),
        lanes_(narrow_high ? 8 : isa_block(isa)) {
    using namespace Xbyak::util;
    auto vreg = [&](int i) -> Xbyak::Xmm {
      if (narrow_high) return Xbyak::Ymm(16 + i);
      if (isa == Isa::avx512) return Xbyak::Zmm(i);
      return Xbyak::Ymm(i);
    };
    ConstantTable table;
    Xbyak::Label table_label, loop;
    ActivationEmitter emit(*this, isa, act, table, r8, k2);
    prologue();
    lea(r8, ptr[rip + table_label]);
    L(loop);
    vmovups(vreg(0), ptr[rdi]);
    emit(vreg(0), {vreg(1), vreg(2), vreg(3), vreg(4)});
    vmovups(ptr[rsi], vreg(0));
    add(rdi, lanes_ * 4);
    add(rsi, lanes_ * 4);
    dec(rdx);
    jnz(loop);
    epilogue();
    table.emit(*this, table_label);
    finalize();
  }
  std::vector<float> operator()(const std::vector<float>& x) const {
    std::vector<float> y(x.size());
    entry<void(const float*, float*, int64_t)>()(x.data(), y.data(), static_cast<int64_t>(x.size()) / lanes_);
    return y;
  }
  int lanes() const { return lanes_; }

 private:
  int lanes_;
};

// A trivial kernel: int f() { return 42; }
class AnswerKernel : public JitKernel {
 public:
  explicit AnswerKernel(std::string name = "test_answer", std::string serves = "test")
      : JitKernel(std::move(name), std::move(serves)) {
    prologue(32);
    mov(eax, 42);
    epilogue();
    finalize();
  }
  int operator()() const { return entry<int()>()(); }
};

// int f() { return 42; } after `nops` one-byte nops: a kernel of any size.
class PaddedKernel : public JitKernel {
 public:
  explicit PaddedKernel(std::size_t nops) : JitKernel("test_padded", "test") {
    prologue();
    for (std::size_t i = 0; i < nops; ++i) db(0x90);
    mov(eax, 42);
    epilogue();
    finalize();
  }
  int operator()() const { return entry<int()>()(); }
};

struct FakePlan {
  int id;
  std::string key() const { return "fake/" + std::to_string(id); }
};

}  // namespace

TEST_SUITE("jit") {

TEST_CASE("JitKernel: callable, never writable and executable at once, registered while alive") {
  const std::size_t before = JitRegistry::instance().size();
  const void* code = nullptr;
  {
    AnswerKernel k("test_answer_wx", "node 'x'");
    CHECK(k() == 42);
    code = k.code();
    REQUIRE(code != nullptr);
    const std::string perms = mapping_permissions(code);
    CHECK(perms.substr(0, 3) == "r-x");  // readable, executable, not writable
    auto blob = JitRegistry::instance().find(static_cast<const char*>(code) + 1);
    REQUIRE(blob.has_value());
    CHECK(blob->name == "test_answer_wx");
    CHECK(blob->serves == "node 'x'");
    CHECK(blob->size == k.code_size());
    CHECK(JitRegistry::instance().find_by_name("test_answer_wx").has_value());
    CHECK(JitRegistry::instance().append_serves(code, "node 'y'"));
    CHECK(JitRegistry::instance().find(code)->serves == "node 'x'; node 'y'");
  }
  CHECK(JitRegistry::instance().size() == before);
  CHECK_FALSE(JitRegistry::instance().find(code).has_value());
  CHECK_THROWS_AS(AnswerKernel(""), std::invalid_argument);
}

TEST_CASE("CodeArena: kernels of every size, many alive at once, freed ranges reused") {
  // More than a chunk of small kernels, one kernel bigger than a chunk, and kernels
  // placed again where others were freed: each runs, and none overlaps another.
  std::vector<std::unique_ptr<PaddedKernel>> kernels;
  for (int i = 0; i < 3000; ++i) kernels.push_back(std::make_unique<PaddedKernel>(static_cast<std::size_t>(i % 700)));
  kernels.push_back(std::make_unique<PaddedKernel>(std::size_t{3} << 19));  // 1.5 MiB
  auto check_all = [&] {
    std::vector<std::pair<const char*, std::size_t>> spans;
    for (const auto& k : kernels) {
      REQUIRE((*k)() == 42);
      CHECK(mapping_permissions(k->code()).substr(0, 3) == "r-x");
      spans.emplace_back(static_cast<const char*>(k->code()), k->code_size());
    }
    std::sort(spans.begin(), spans.end());
    for (std::size_t i = 1; i < spans.size(); ++i) REQUIRE(spans[i - 1].first + spans[i - 1].second <= spans[i].first);
  };
  check_all();
  // Free every other small kernel: the gaps left take the next small kernels, and the
  // arena maps no more memory for them.
  for (std::size_t i = 0; i + 1 < kernels.size(); i += 2) kernels[i].reset();
  std::erase(kernels, nullptr);
  const std::size_t mapped = CodeArena::instance().mapped_bytes();
  for (int i = 0; i < 1000; ++i) kernels.push_back(std::make_unique<PaddedKernel>(static_cast<std::size_t>(i % 50)));
  CHECK(CodeArena::instance().mapped_bytes() == mapped);
  check_all();
}

TEST_CASE("JitRegistry: many threads adding and removing") {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < 50; ++i) {
        AnswerKernel k("test_thread_" + std::to_string(t));
        CHECK(k() == 42);
        (void)JitRegistry::instance().list();
      }
    });
  for (auto& th : threads) th.join();
  CHECK_FALSE(JitRegistry::instance().find_by_name("test_thread_0").has_value());
}

TEST_CASE("KernelCache: equal keys share one kernel while it is held") {
  KernelCache<AnswerKernel> cache;
  int made = 0;
  auto make = [&] {
    ++made;
    return std::make_shared<const AnswerKernel>();
  };
  auto a = cache.get(FakePlan{1}, make);
  auto b = cache.get(FakePlan{1}, make);
  auto c = cache.get(FakePlan{2}, make);
  CHECK(a.get() == b.get());
  CHECK(a.get() != c.get());
  CHECK(made == 2);
  CHECK(cache.hits() == 1);
  CHECK(cache.live() == 2);
  a.reset();
  b.reset();
  CHECK(cache.live() == 1);
  auto d = cache.get(FakePlan{1}, make);  // compiled again once nobody held it
  CHECK(made == 3);
  CHECK((*d)() == 42);
}

TEST_CASE("KernelCache: concurrent gets of one key compile once") {
  KernelCache<AnswerKernel> cache;
  std::atomic<int> made{0};
  std::vector<std::shared_ptr<const AnswerKernel>> got(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      got[t] = cache.get(FakePlan{7}, [&] {
        ++made;
        return std::make_shared<const AnswerKernel>();
      });
    });
  for (auto& th : threads) th.join();
  CHECK(made == 1);
  for (auto& k : got) CHECK(k.get() == got[0].get());
}

TEST_CASE("KernelCache: different keys compile at the same time; many keys, each once") {
  KernelCache<AnswerKernel> cache;
  // Two makers that each wait for the other to have started: only possible if the
  // cache does not hold one lock across both compilations.
  std::atomic<int> started{0}, saw_other{0};
  auto slow = [&] {
    ++started;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (started.load() < 2 && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
    if (started.load() == 2) ++saw_other;
    return std::make_shared<const AnswerKernel>();
  };
  std::shared_ptr<const AnswerKernel> x, y;
  std::thread tx([&] { x = cache.get(FakePlan{100}, slow); });
  std::thread ty([&] { y = cache.get(FakePlan{101}, slow); });
  tx.join();
  ty.join();
  CHECK(saw_other == 2);  // each compilation ran while the other had started
  CHECK(x.get() != y.get());
  // Many keys from many threads, some dropped as they go (the sweep runs meanwhile).
  std::atomic<int> made{0};
  std::vector<std::thread> threads;
  std::vector<std::vector<std::shared_ptr<const AnswerKernel>>> kept(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto k = cache.get(FakePlan{i % 100}, [&] {
          ++made;
          return std::make_shared<const AnswerKernel>();
        });
        if (i % 3 == 0) kept[static_cast<std::size_t>(t)].push_back(k);
      }
    });
  for (auto& th : threads) th.join();
  CHECK(made >= 100);  // keys nobody kept may compile again
  CHECK(cache.hits() + cache.compiles() == 4 * 200 + 2);
}

TEST_CASE("PackArena: zeroed cache-line-aligned ranges, never shared, outliving the arena; full means fall back") {
  std::vector<AlignedBuffer<float>> kept;
  {
    PackArena arena(std::size_t{1} << 20);  // 256 pages
    REQUIRE(arena.reserved_bytes() == std::size_t{1} << 20);
    // Without a Use on this thread, packed() allocates on its own.
    AlignedBuffer<float> alone = AlignedBuffer<float>::packed(64 << 10);
    CHECK(arena.carved_bytes() == 0);
    PackArena::Use use(arena);
    CHECK(PackArena::current() == &arena);
    // Below kArenaBytes the heap serves; above, the arena, a cache line at a time.
    AlignedBuffer<float> small = AlignedBuffer<float>::packed(100);
    CHECK(arena.carved_bytes() == 0);
    for (int64_t floats : {int64_t{300}, int64_t{4096}, int64_t{5001}, int64_t{70000}}) {
      const std::size_t before = arena.carved_bytes();
      kept.push_back(AlignedBuffer<float>::packed(floats));
      const AlignedBuffer<float>& b = kept.back();
      CHECK(arena.carved_bytes() - before == (static_cast<std::size_t>(floats) * 4 + 63) / 64 * 64);
      CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
      CHECK(b.size() == static_cast<std::size_t>(floats));
      CHECK(std::all_of(b.data(), b.data() + b.size(), [](float v) { return v == 0.f; }));
    }
    // The reservation spent: the next buffer is allocated on its own, and still zero.
    const std::size_t carved = arena.carved_bytes();
    kept.push_back(AlignedBuffer<float>::packed(300000));
    CHECK(arena.carved_bytes() == carved);
    CHECK(std::all_of(kept.back().data(), kept.back().data() + kept.back().size(), [](float v) { return v == 0.f; }));
    // trim gives back the pages never carved; nothing more is carved after it.
    arena.trim();
    CHECK(arena.reserved_bytes() == (carved + 64 + 4095) / 4096 * 4096);
    kept.push_back(AlignedBuffer<float>::packed(4096));
    CHECK(arena.carved_bytes() == carved);
  }
  CHECK(PackArena::current() == nullptr);
  // The ranges outlive the arena (each holds a share of the mapping) and do not overlap.
  std::vector<std::pair<float*, float*>> spans;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    std::fill(kept[i].data(), kept[i].data() + kept[i].size(), static_cast<float>(i + 1));
    spans.emplace_back(kept[i].data(), kept[i].data() + kept[i].size());
  }
  for (std::size_t i = 0; i < kept.size(); ++i)
    CHECK(std::all_of(kept[i].data(), kept[i].data() + kept[i].size(), [&](float v) { return v == static_cast<float>(i + 1); }));
  std::sort(spans.begin(), spans.end());
  for (std::size_t i = 1; i < spans.size(); ++i) CHECK(spans[i - 1].second <= spans[i].first);
  // Moved buffers keep their share.
  AlignedBuffer<float> moved = std::move(kept.front());
  kept.clear();
  CHECK(moved[0] == 1.f);
}

TEST_CASE("PackArena: threads carving at once get disjoint ranges") {
  PackArena arena(std::size_t{8} << 20);
  std::vector<std::vector<AlignedBuffer<float>>> per_thread(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      PackArena::Use use(arena);
      for (int i = 0; i < 100; ++i) {
        per_thread[static_cast<std::size_t>(t)].push_back(AlignedBuffer<float>::packed(4096 + 1024 * (i % 5)));
        AlignedBuffer<float>& b = per_thread[static_cast<std::size_t>(t)].back();
        std::fill(b.data(), b.data() + b.size(), static_cast<float>(t * 1000 + i));
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 100; ++i) {
      const AlignedBuffer<float>& b = per_thread[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)];
      REQUIRE(std::all_of(b.data(), b.data() + b.size(), [&](float v) { return v == static_cast<float>(t * 1000 + i); }));
    }
}

TEST_CASE("layout: NCHW <-> blocked round trip, zero padding lanes") {
  const int64_t N = 2, C = 19, plane = 5;
  std::vector<float> plain(N * C * plane);
  for (std::size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<float>(i) + 0.5f;
  for (int block : {8, 16}) {
    AlignedBuffer<float> b(blocked_size(N, C, plane, block));
    std::fill(b.data(), b.data() + b.size(), 7.f);
    nchw_to_blocked(plain.data(), b.data(), N, C, plane, block);
    const int64_t blocks = div_up(C, block);
    // element (n=1, c=17, p=3)
    CHECK(b[((1 * blocks + 17 / block) * plane + 3) * block + 17 % block] == plain[(1 * C + 17) * plane + 3]);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = C; c < blocks * block; ++c)
        for (int64_t p = 0; p < plane; ++p) CHECK(b[((n * blocks + c / block) * plane + p) * block + c % block] == 0.f);
    std::vector<float> back(plain.size());
    blocked_to_nchw(b.data(), back.data(), N, C, plane, block);
    CHECK(back == plain);
  }
}

TEST_CASE("activations: accuracy over the whole range") {
  // x from -30 to 30 in steps of 1/1024 (every binade the activations bend in), and
  // the edges of exp's range.
  std::vector<float> x;
  for (int i = -30 * 1024; i <= 30 * 1024; ++i) x.push_back(static_cast<float>(i) / 1024.f);
  for (float v : {-100.f, -88.5f, -87.f, 87.f, 88.5f, 100.f, 1e-30f, -1e-30f, 0.f, -0.f}) x.push_back(v);
  while (x.size() % 16 != 0) x.push_back(0.5f);

  for (int variant = 0; variant < 3; ++variant) {
    const Isa isa = variant == 2 ? Isa::avx2 : Isa::avx512;
    const bool narrow_high = variant == 1;
    if (!cpu_has(isa)) continue;
    for (ActivationKind kind : all_activation_kinds()) {
      const Activation act = Activation::of(kind);
      const std::vector<float> y = ActivationKernel(act, isa, narrow_high)(x);
      // Relative error; the clamp-like activations (whose float definition rounds near
      // their kinks) and results below the normal range (~1e-38) count absolutely.
      const bool absolute = kind == ActivationKind::hard_sigmoid || kind == ActivationKind::clip;
      double worst = 0;
      std::size_t worst_i = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double ref = activation_reference(act, x[i]);
        const double err = std::fabs(y[i] - ref) / (absolute ? 1.0 : std::max(std::fabs(ref), 1e-30));
        if (err > worst) worst = err, worst_i = i;
      }
      // A few ulp everywhere (exp ~1 ulp, then a division); the issue asks 1e-5 of GELU.
      const double allowed = 1e-6;
      std::ostringstream what;
      what << to_string(isa) << (narrow_high ? " ymm16+" : "") << " " << act.key() << ": worst error " << worst << " at x=" << x[worst_i] << " (got "
           << y[worst_i] << ", want " << activation_reference(act, x[worst_i]) << ")";
      CHECK_MESSAGE(worst <= allowed, what.str());
    }
  }
}

}  // TEST_SUITE
