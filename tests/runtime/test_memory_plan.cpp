#include <doctest/doctest.h>

#include <random>

#include "runtime/memory_plan.hpp"

using namespace nnjit::runtime;

TEST_SUITE("runtime") {
  TEST_CASE("memory plan: a chain reuses memory two values apart") {
    // v0 (input) -> s0 -> v1 -> s1 -> v2 -> s2 -> v3 (output)
    // Sizes: v1 = 128, v2 = 64, v3 = 128. v1 and v2 overlap at s1, v2 and v3 at s2;
    // v1 and v3 do not, so v3 reuses v1's bytes.
    std::vector<std::size_t> sizes = {128, 128, 64, 128};
    std::vector<ValueKind> kinds = {ValueKind::Input, ValueKind::Allocate, ValueKind::Allocate, ValueKind::Output};
    std::vector<StepValues> steps = {{{0}, {1}}, {{1}, {2}}, {{2}, {3}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    // Placement order (largest first, then earliest): v1 at 0, v3 at 0, v2 at 128.
    CHECK(p.values[1].offset == 0);
    CHECK(p.values[3].offset == 0);
    CHECK(p.values[2].offset == 128);
    CHECK(p.arena_bytes == 192);
    CHECK(p.naive_bytes == 320);
    CHECK(p.values[0].kind == ValueKind::Input);
    CHECK(p.values[3].last_step == 2);
    CHECK(p.live_bound == 192);
  }

  TEST_CASE("memory plan: sizes round up to the arena alignment") {
    std::vector<std::size_t> sizes = {4, 1, 100};
    std::vector<ValueKind> kinds = {ValueKind::Input, ValueKind::Allocate, ValueKind::Output};
    std::vector<StepValues> steps = {{{0}, {1}}, {{1}, {2}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    CHECK(p.values[1].size == kArenaAlign);
    CHECK(p.values[2].size == 2 * kArenaAlign);
    CHECK(p.arena_bytes == 3 * kArenaAlign);
  }

  TEST_CASE("memory plan: random DAGs never overlap live values") {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 200; ++trial) {
      const int n = 2 + static_cast<int>(rng() % 30);
      std::vector<std::size_t> sizes(static_cast<std::size_t>(n + 1));
      std::vector<ValueKind> kinds(sizes.size(), ValueKind::Allocate);
      kinds[0] = ValueKind::Input;
      kinds[static_cast<std::size_t>(n)] = ValueKind::Output;
      for (auto& s : sizes) s = 1 + rng() % 5000;
      std::vector<StepValues> steps;
      for (int v = 1; v <= n; ++v) {  // step v-1 makes value v from 1..3 earlier values
        StepValues st;
        st.outputs = {v};
        const int fan = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < fan; ++k) st.inputs.push_back(static_cast<int>(rng() % static_cast<unsigned>(v)));
        steps.push_back(st);
      }
      MemoryPlan p = plan_memory(sizes, kinds, steps);
      for (int a = 1; a <= n; ++a)
        for (int b = a + 1; b <= n; ++b) {
          const ValuePlan &x = p.values[static_cast<std::size_t>(a)], &y = p.values[static_cast<std::size_t>(b)];
          const bool live_overlap = x.first_step <= y.last_step && y.first_step <= x.last_step;
          const bool mem_overlap = x.offset < y.offset + y.size && y.offset < x.offset + x.size;
          INFO("trial " << trial << " values " << a << " and " << b);
          CHECK_FALSE((live_overlap && mem_overlap));
        }
      CHECK(p.arena_bytes <= p.naive_bytes);
      CHECK(p.arena_bytes >= p.live_bound);
    }
  }
}
