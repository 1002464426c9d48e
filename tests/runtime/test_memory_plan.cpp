#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "nnjit/error.hpp"
#include "runtime/memory_plan.hpp"
#include "runtime/memory_report.hpp"

using namespace nnjit::runtime;

namespace {

constexpr ValueKind In = ValueKind::Input, Al = ValueKind::Allocate, Out = ValueKind::Output;

bool in_arena(const ValuePlan& p) {
  return (p.kind == ValueKind::Allocate || p.kind == ValueKind::InPlace || p.kind == ValueKind::Output) &&
         p.first_step >= 0;
}

bool lives_overlap(const ValuePlan& x, const ValuePlan& y) {
  return x.first_step <= y.last_step && y.first_step <= x.last_step;
}

bool bytes_overlap(std::size_t a, std::size_t a_size, std::size_t b, std::size_t b_size) {
  return a < b + b_size && b < a + a_size;
}

}  // namespace

TEST_SUITE("runtime") {
  TEST_CASE("memory plan: a chain reuses memory two values apart") {
    // v0 (input) -> s0 -> v1 -> s1 -> v2 -> s2 -> v3 (output)
    // Sizes: v1 = 128, v2 = 64, v3 = 128. v1 and v2 overlap at s1, v2 and v3 at s2;
    // v1 and v3 do not, so v3 reuses v1's bytes.
    std::vector<std::size_t> sizes = {128, 128, 64, 128};
    std::vector<ValueKind> kinds = {In, Al, Al, Out};
    std::vector<StepValues> steps = {{{0}, {1}}, {{1}, {2}}, {{2}, {3}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    // Placement order (largest first, then earliest): v1 at 0, v3 at 0, v2 at 128.
    CHECK(p.values[1].offset == 0);
    CHECK(p.values[3].offset == 0);
    CHECK(p.values[2].offset == 128);
    CHECK(p.arena_bytes == 192);
    CHECK(p.naive_bytes == 320);
    CHECK(p.values[0].kind == ValueKind::Input);
    CHECK(p.values[1].kind == ValueKind::Allocate);
    CHECK(p.values[3].kind == ValueKind::Output);
    CHECK(p.values[3].last_step == 2);
    CHECK(p.live_bound == 192);
    CHECK(p.inplace.empty());
    REQUIRE(p.scratch.size() == 3);
    CHECK(p.scratch[0].size == 0);
  }

  TEST_CASE("memory plan: sizes round up to the arena alignment") {
    std::vector<std::size_t> sizes = {4, 1, 100};
    std::vector<ValueKind> kinds = {In, Al, Out};
    std::vector<StepValues> steps = {{{0}, {1}}, {{1}, {2}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    CHECK(p.values[1].size == kArenaAlign);
    CHECK(p.values[2].size == 2 * kArenaAlign);
    CHECK(p.arena_bytes == 3 * kArenaAlign);
  }

  TEST_CASE("memory plan: relu after conv runs in place, conv's tile buffer is scratch") {
    // v0 (input) -> conv (s0, scratch 100) -> v1 -> relu (s1, in place) -> v2 -> pool (s2) -> v3 (output)
    // Blocks: A = {v1, v2} 256 bytes alive s0..s2; scratch(s0) 128 at s0; v3 128 at s2.
    // Placement (largest first, then earliest): A at 0; scratch(s0) at 256 (A is alive at s0);
    // v3 at 256 (A is alive at s2, the scratch is not).
    std::vector<std::size_t> sizes = {256, 256, 256, 128};
    std::vector<ValueKind> kinds = {In, Al, Al, Out};
    std::vector<StepValues> steps = {{.inputs = {0}, .outputs = {1}, .scratch_bytes = 100},
                                     {.inputs = {1}, .outputs = {2}, .inplace = {{.output = 0, .input = 0}}},
                                     {.inputs = {2}, .outputs = {3}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    CHECK(p.values[1].kind == ValueKind::Allocate);
    CHECK(p.values[2].kind == ValueKind::InPlace);
    CHECK(p.values[2].donor == 1);
    CHECK(p.values[1].offset == 0);
    CHECK(p.values[2].offset == 0);
    CHECK(p.values[3].offset == 256);
    CHECK(p.values[3].kind == ValueKind::Output);
    CHECK(p.scratch[0].size == 128);
    CHECK(p.scratch[0].offset == 256);
    CHECK(p.scratch[1].size == 0);
    CHECK(p.arena_bytes == 384);
    CHECK(p.naive_bytes == 256 + 256 + 128 + 128);
    CHECK(p.live_bound == 384);  // s0: A + scratch; s2: A + v3
    CHECK(p.peak_step == 0);
    REQUIRE(p.inplace.size() == 1);
    CHECK(p.inplace[0].granted);
    CHECK(p.inplace[0].step == 1);
    CHECK(p.inplace[0].output == 2);
    CHECK(p.inplace[0].input == 1);
    CHECK(p.inplace[0].reason.empty());
  }

  TEST_CASE("memory plan: a residual add writes over the skip connection") {
    // v0 (input) -> conv (s0) -> v1 -> conv (s1) -> v2; add(v2, v1) (s2, output in place of
    // input 1 = v1) -> v3 -> pool (s3) -> v4 (output)
    // Blocks: A = {v1, v3} 512 bytes s0..s3; v2 256 s1..s2; v4 256 s3.
    // Placement: A at 0; v2 at 512; v4 at 512 (v2 is dead by s3).
    // Without the grant v3 would need its own 512 bytes: the arena would be 1280.
    std::vector<std::size_t> sizes = {512, 512, 256, 512, 256};
    std::vector<ValueKind> kinds = {In, Al, Al, Al, Out};
    std::vector<StepValues> steps = {{{0}, {1}},
                                     {{1}, {2}},
                                     {.inputs = {2, 1}, .outputs = {3}, .inplace = {{.output = 0, .input = 1}}},
                                     {{3}, {4}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    CHECK(p.values[3].kind == ValueKind::InPlace);
    CHECK(p.values[3].donor == 1);
    CHECK(p.values[1].offset == 0);
    CHECK(p.values[3].offset == 0);
    CHECK(p.values[2].offset == 512);
    CHECK(p.values[4].offset == 512);
    CHECK(p.arena_bytes == 768);
    CHECK(p.live_bound == 768);
    CHECK(p.peak_step == 1);

    steps[2].inplace.clear();
    MemoryPlan q = plan_memory(sizes, kinds, steps);
    // v1 at 0; v3 at 512 (v1 alive at s2); v2 at 1024; v4 at 0 (only v3 alive at s3).
    CHECK(q.values[3].kind == ValueKind::Allocate);
    CHECK(q.values[3].offset == 512);
    CHECK(q.values[2].offset == 1024);
    CHECK(q.values[4].offset == 0);
    CHECK(q.arena_bytes == 1280);
  }

  TEST_CASE("memory plan: an in-place chain shares one block over the union of lifetimes") {
    // v0 (input) -> conv (s0) -> v1 -> relu (s1) -> v2 -> clip (s2) -> v3 -> flatten-ish op
    // (s3, smaller output) -> v4 -> fc (s4) -> v5 (output). v6 is a side branch off v0 at s0.5:
    // s1 also writes v6 (128 bytes) from v0, read last by s4.
    // Block A = {v1, v2, v3, v4} 384 bytes s0..s3, its first 320 (v4) to s4; v6 128 s1..s4;
    // v5 128 at s4. Ties by first step: A at 0, v6 at 384, v5 at 512 (A's freed tail
    // [320, 384) too small): 640. Ties by last step (v5 before v6): v5 at 320, over A's
    // freed tail, v6 at 448: 576, the live bound, and the smaller is kept.
    std::vector<std::size_t> sizes = {384, 384, 384, 384, 300, 128, 128};
    std::vector<ValueKind> kinds = {In, Al, Al, Al, Al, Out, Al};
    const std::vector<InPlaceRequest> first = {{.output = 0, .input = 0}};
    std::vector<StepValues> steps = {{{0}, {1}},
                                     {.inputs = {1, 0}, .outputs = {2, 6}, .inplace = first},
                                     {.inputs = {2}, .outputs = {3}, .inplace = first},
                                     {.inputs = {3}, .outputs = {4}, .inplace = first},
                                     {{4, 6}, {5}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    CHECK(p.values[1].kind == ValueKind::Allocate);
    for (int v : {2, 3, 4}) {
      INFO("value " << v);
      CHECK(p.values[static_cast<std::size_t>(v)].kind == ValueKind::InPlace);
      CHECK(p.values[static_cast<std::size_t>(v)].donor == v - 1);
      CHECK(p.values[static_cast<std::size_t>(v)].offset == 0);
    }
    CHECK(p.values[4].size == 320);  // smaller than its donor: allowed
    CHECK(p.values[6].offset == 448);
    CHECK(p.values[5].offset == 320);
    CHECK(p.arena_bytes == 576);
    CHECK(p.live_bound == 576);
    CHECK(p.peak_step == 4);
    CHECK(p.naive_bytes == 384 * 3 + 320 + 128 + 128);
  }

  TEST_CASE("memory plan: in place is denied, with a reason, when unsafe") {
    struct Case {
      const char* what;
      std::vector<std::size_t> sizes;
      std::vector<ValueKind> kinds;
      std::vector<StepValues> steps;
      const char* reason;
    };
    const std::vector<InPlaceRequest> first = {{.output = 0, .input = 0}};
    const Case cases[] = {
        // v0 -> conv -> v1 -> relu (in place) -> v2; add(v1, v2) -> v3: v1 is read after relu.
        {"donor used later",
         {128, 128, 128, 128},
         {In, Al, Al, Out},
         {{{0}, {1}}, {.inputs = {1}, .outputs = {2}, .inplace = first}, {{1, 2}, {3}}},
         "the input is read again later (last use: step 2)"},
        // relu over the graph input itself: the caller's tensor is not ours to overwrite.
        {"donor is a graph input", {128, 128}, {In, Out}, {{.inputs = {0}, .outputs = {1}, .inplace = first}},
         "the input is a graph input"},
        // v1 is a graph output: it must survive the run.
        {"donor is a graph output",
         {128, 128, 128},
         {In, Out, Out},
         {{{0}, {1}}, {.inputs = {1}, .outputs = {2}, .inplace = first}},
         "the input is a graph output"},
        {"donor is a constant",
         {128, 128, 128},
         {In, ValueKind::Constant, Out},
         {{.inputs = {1, 0}, .outputs = {2}, .inplace = first}},
         "the input is a constant"},
        // the heir is a graph output: it would keep the donor's block alive to the end; denied.
        {"heir is a graph output",
         {128, 128, 128},
         {In, Al, Out},
         {{{0}, {1}}, {.inputs = {1}, .outputs = {2}, .inplace = first}},
         "the output is a graph output"},
        // add(v1, v1) in place of input 0: input 1 reads the bytes being overwritten.
        {"donor aliased by another input",
         {128, 128, 128, 128},
         {In, Al, Al, Out},
         {{{0}, {1}}, {.inputs = {1, 1}, .outputs = {2}, .inplace = first}, {{2}, {3}}},
         "the step reads the input more than once"},
        {"heir larger than donor",
         {128, 128, 256, 128},
         {In, Al, Al, Out},
         {{{0}, {1}}, {.inputs = {1}, .outputs = {2}, .inplace = first}, {{2}, {3}}},
         "the output is larger than the input (256 > 128 bytes)"},
    };
    for (const Case& c : cases) {
      INFO(c.what);
      MemoryPlan p = plan_memory(c.sizes, c.kinds, c.steps);
      REQUIRE(p.inplace.size() == 1);
      CHECK_FALSE(p.inplace[0].granted);
      CHECK(p.inplace[0].reason == c.reason);
      for (const ValuePlan& v : p.values) {
        CHECK(v.kind != ValueKind::InPlace);
        CHECK(v.donor == -1);
      }
      // Denied: the planner placed every pair of overlapping lifetimes apart.
      for (std::size_t a = 0; a < p.values.size(); ++a)
        for (std::size_t b = a + 1; b < p.values.size(); ++b) {
          const ValuePlan &x = p.values[a], &y = p.values[b];
          if (in_arena(x) && in_arena(y) && lives_overlap(x, y))
            CHECK_FALSE(bytes_overlap(x.offset, x.size, y.offset, y.size));
        }
    }
  }

  TEST_CASE("memory plan: one donor goes to one output") {
    // split-like step s1 asks for both outputs over v1: the first request wins.
    std::vector<std::size_t> sizes = {128, 128, 128, 128, 128};
    std::vector<ValueKind> kinds = {In, Al, Al, Al, Out};
    std::vector<StepValues> steps = {
        {{0}, {1}},
        {.inputs = {1}, .outputs = {2, 3}, .inplace = {{.output = 0, .input = 0}, {.output = 1, .input = 0}}},
        {{2, 3}, {4}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    REQUIRE(p.inplace.size() == 2);
    CHECK(p.inplace[0].granted);
    CHECK_FALSE(p.inplace[1].granted);
    CHECK(p.inplace[1].reason == "the input already went to value 2");
    CHECK(p.values[2].offset == p.values[1].offset);
    CHECK(p.values[3].kind == ValueKind::Allocate);
    CHECK(p.values[3].offset != p.values[2].offset);
  }

  TEST_CASE("memory plan: a malformed description throws") {
    std::vector<std::size_t> sizes = {128, 128};
    CHECK_THROWS_AS(plan_memory(sizes, {In}, {}), nnjit::Error);
    CHECK_THROWS_AS(plan_memory(sizes, {In, Out}, {{{0}, {2}}}), nnjit::Error);
    CHECK_THROWS_AS(plan_memory(sizes, {In, Out}, {{{-2}, {1}}}), nnjit::Error);
    const StepValues bad_output{.inputs = {0}, .outputs = {1}, .inplace = {{.output = 1, .input = 0}}};
    const StepValues bad_input{.inputs = {0}, .outputs = {1}, .inplace = {{.output = 0, .input = -1}}};
    CHECK_THROWS_AS(plan_memory(sizes, {In, Out}, {bad_output}), nnjit::Error);
    CHECK_THROWS_AS(plan_memory(sizes, {In, Out}, {bad_input}), nnjit::Error);
    // An absent optional input (-1) is not an error, but cannot donate.
    const StepValues absent{.inputs = {-1, 0}, .outputs = {1}, .inplace = {{.output = 0, .input = 0}}};
    MemoryPlan p = plan_memory(sizes, {In, Out}, {absent});
    REQUIRE(p.inplace.size() == 1);
    CHECK(p.inplace[0].reason == "the step has no value at that input");
  }

  TEST_CASE("memory plan: Concat inputs live inside the Concat's output") {
    // v0 (input) -> s0 -> v1 (256) ; v0 -> s1 -> v2 (128) ; s2 reads v1 -> v4 (64) ;
    // v3 = concat(v1, v2) (384) is read by s3 -> v5 (output). No step writes v3: v1 sits
    // at its offset 0, v2 at 256. v3 lives from s0 (its first child) to s3.
    std::vector<std::size_t> sizes = {64, 256, 128, 384, 64, 64};
    std::vector<ValueKind> kinds = {In, Al, Al, Al, Al, Out};
    std::vector<StepValues> steps = {{{0}, {1}}, {{0}, {2}}, {{1}, {4}}, {{3, 4}, {5}}};
    const std::vector<ValueAlias> aliases = {{.value = 1, .parent = 3, .offset = 0}, {.value = 2, .parent = 3, .offset = 256}};
    MemoryPlan p = plan_memory(sizes, kinds, steps, aliases);
    CHECK(p.values[1].kind == ValueKind::Alias);
    CHECK(p.values[2].kind == ValueKind::Alias);
    CHECK(p.values[1].parent == 3);
    CHECK(p.values[1].offset == p.values[3].offset);
    CHECK(p.values[2].offset == p.values[3].offset + 256);
    CHECK(p.values[3].first_step == 0);
    CHECK(p.values[3].last_step == 3);
    // v4 is alive with v3 (at s2 and s3): apart in memory. The arena: v3 + v4 (+ v5 after).
    CHECK(!bytes_overlap(p.values[3].offset, 384, p.values[4].offset, 64));
    CHECK(p.arena_bytes == 384 + 64 + 64);
    // A child gives its bytes to no one: its parent still needs them.
    std::vector<StepValues> donate = {{{0}, {1}}, {{0}, {2}}, {{1}, {4}, {{.output = 0, .input = 0}}}, {{3, 4}, {5}}};
    MemoryPlan q = plan_memory(sizes, kinds, donate, aliases);
    REQUIRE(q.inplace.size() == 1);
    CHECK_FALSE(q.inplace[0].granted);
    CHECK(q.inplace[0].reason.find("part of another value") != std::string::npos);
  }

  TEST_CASE("memory plan: a heir smaller than its donor frees the donor's tail at the handover") {
    // A ResNet downsample read late: s0 v0 -> X (512) ; s1 X -> C (128, the main branch) ;
    // s2 crop X -> Xs (128, in place: X's even pixels compacted to its front) ; s3 C -> M
    // (256) ; s4 Xs + M -> O (256, in place over M) ; s5 O -> v6 (output).
    // Block {X, Xs}: [0, 128) s0..s4, [128, 512) s0..s2. M's block (s3..s5) goes into the
    // freed tail at 128; C (s1..s3) meets both parts, at 512; v6 at 0 after Xs.
    // Live: s1 640 (X + C), s3 512 (Xs + C + M): arena 640. Were X's 512 bytes held to s4,
    // s3 would need 896.
    std::vector<std::size_t> sizes = {64, 512, 128, 128, 256, 256, 64};
    std::vector<ValueKind> kinds = {In, Al, Al, Al, Al, Al, Out};
    const std::vector<InPlaceRequest> first = {{.output = 0, .input = 0}};
    std::vector<StepValues> steps = {{{0}, {1}},
                                     {{1}, {2}},
                                     {.inputs = {1}, .outputs = {3}, .inplace = first},
                                     {{2}, {4}},
                                     {.inputs = {4, 3}, .outputs = {5}, .inplace = first},
                                     {{5}, {6}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    CHECK(p.values[3].kind == ValueKind::InPlace);
    CHECK(p.values[3].offset == 0);
    CHECK(p.values[4].offset == 128);
    CHECK(p.values[5].offset == 128);
    CHECK(p.values[2].offset == 512);
    CHECK(p.values[6].offset == 0);
    CHECK(p.arena_bytes == 640);
    CHECK(p.live_bound == 640);
    CHECK(p.peak_step == 1);
  }

  TEST_CASE("memory plan: a step reading its donor twice takes it in place only when it says so") {
    // s0: v0 -> v1 ; s1: reads v1 twice (a row stream whose shortcut is its own input) -> v2.
    std::vector<std::size_t> sizes = {64, 256, 256};
    std::vector<ValueKind> kinds = {In, Al, Out};
    kinds[2] = Al;
    std::vector<StepValues> steps = {{{0}, {1}}, {.inputs = {1, 1}, .outputs = {2}, .inplace = {{0, 1}}}};
    MemoryPlan denied = plan_memory(sizes, kinds, steps);
    CHECK_FALSE(denied.inplace.at(0).granted);
    CHECK(denied.inplace.at(0).reason == "the step reads the input more than once");
    CHECK(denied.arena_bytes == 512);
    steps[1].inplace[0].read_twice = true;
    MemoryPlan granted = plan_memory(sizes, kinds, steps);
    CHECK(granted.inplace.at(0).granted);
    CHECK(granted.values[2].kind == ValueKind::InPlace);
    CHECK(granted.arena_bytes == 256);
    // Three times is still too many.
    steps[1].inputs = {1, 1, 1};
    CHECK_FALSE(plan_memory(sizes, kinds, steps).inplace.at(0).granted);
  }

  TEST_CASE("memory plan: a Concat's output is needed slice by slice, from each input's first write") {
    // v3 = concat(v1 @0, v2 @128), 256 bytes. s0: v0 -> v1 ; s1: v0 -> v4 (128) ;
    // s2: v4 -> v5 (64) ; s3: v5 -> v2 ; s4: v3 -> v6 (output). v2's slice is needed from
    // s3 only, so v4 (s1..s2) can use it; v5 (s2..s3) meets v2 at s3 and cannot.
    // Placed: v3 at 0 (its slices [0,128) from s0, [128,256) from s3), v4 at 128, v5 at
    // 256, v6 at 256: arena 320, the live bound at s2 (v1 + v4 + v5).
    std::vector<std::size_t> sizes = {64, 128, 128, 256, 128, 64, 64};
    std::vector<ValueKind> kinds = {In, Al, Al, Al, Al, Al, Out};
    std::vector<StepValues> steps = {{{0}, {1}}, {{0}, {4}}, {{4}, {5}}, {{5}, {2}}, {{3}, {6}}};
    const std::vector<ValueAlias> aliases = {{.value = 1, .parent = 3, .offset = 0}, {.value = 2, .parent = 3, .offset = 128}};
    MemoryPlan p = plan_memory(sizes, kinds, steps, aliases);
    CHECK(p.values[3].offset == 0);
    CHECK(p.values[2].offset == 128);
    CHECK(p.values[4].offset == 128);  // in v2's slice before v2 is written
    CHECK(p.values[5].offset == 256);
    CHECK(p.values[6].offset == 256);
    CHECK(p.arena_bytes == 320);
    CHECK(p.live_bound == 320);
    CHECK(p.peak_step == 2);
    // Without the alias v3 is written whole by a step of its own (s4 reads v1, v2 then).
    std::vector<StepValues> copy = {{{0}, {1}}, {{0}, {4}}, {{4}, {5}}, {{5}, {2}}, {{1, 2}, {3}}, {{3}, {6}}};
    CHECK(plan_memory(sizes, kinds, copy).arena_bytes == 128 + 128 + 256);
  }

  TEST_CASE("memory plan: malformed aliases throw") {
    std::vector<std::size_t> sizes = {64, 256, 128, 384};
    std::vector<ValueKind> kinds = {In, Al, Al, Al};
    std::vector<StepValues> steps = {{{0}, {1}}, {{0}, {2}}, {{1, 2}, {3}}};
    auto plan = [&](std::vector<ValueAlias> a) { return plan_memory(sizes, kinds, steps, a); };
    CHECK_THROWS_AS(plan({{.value = 1, .parent = 7, .offset = 0}}), nnjit::Error);                 // no such value
    CHECK_THROWS_AS(plan({{.value = 0, .parent = 3, .offset = 0}}), nnjit::Error);                 // a graph input
    CHECK_THROWS_AS(plan({{.value = 1, .parent = 3, .offset = 192}}), nnjit::Error);               // past the end
    CHECK_THROWS_AS(plan({{.value = 1, .parent = 3, .offset = 8}}), nnjit::Error);                 // misaligned
    CHECK_THROWS_AS(plan({{.value = 1, .parent = 3, .offset = 0}, {.value = 2, .parent = 3, .offset = 128}}),
                    nnjit::Error);  // overlapping children
    CHECK_THROWS_AS(plan({{.value = 1, .parent = 2, .offset = 0}, {.value = 2, .parent = 3, .offset = 0}}),
                    nnjit::Error);  // a child that is a parent
  }

  TEST_CASE("memory plan: random DAGs never overlap live values") {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 200; ++trial) {
      const int n = 2 + static_cast<int>(rng() % 30);
      std::vector<std::size_t> sizes(static_cast<std::size_t>(n + 1));
      std::vector<ValueKind> kinds(sizes.size(), Al);
      kinds[0] = In;
      kinds[static_cast<std::size_t>(n)] = Out;
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
          INFO("trial " << trial << " values " << a << " and " << b);
          CHECK_FALSE((lives_overlap(x, y) && bytes_overlap(x.offset, x.size, y.offset, y.size)));
        }
      CHECK(p.arena_bytes <= p.naive_bytes);
      CHECK(p.arena_bytes >= p.live_bound);
    }
  }

  TEST_CASE("memory plan: random DAGs with Concat outputs placed slice by slice never overlap live bytes") {
    std::mt19937 rng(13);
    for (int trial = 0; trial < 300; ++trial) {
      // Step k-1 makes value k (1..n) from 1..3 earlier values; a few groups of 2..3 of
      // them become the children of a parent (a Concat's output, written by no step),
      // which a later step reads.
      const int n = 4 + static_cast<int>(rng() % 30);
      std::vector<std::size_t> sizes(static_cast<std::size_t>(n + 1));
      std::vector<ValueKind> kinds(sizes.size(), Al);
      kinds[0] = In;
      for (auto& sz : sizes) sz = (1 + rng() % 40) * kArenaAlign;
      std::vector<StepValues> steps;
      for (int v = 1; v <= n; ++v) {
        StepValues st;
        st.outputs = {v};
        const int fan = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < fan; ++k) st.inputs.push_back(static_cast<int>(rng() % static_cast<unsigned>(v)));
        steps.push_back(st);
      }
      std::vector<ValueAlias> aliases;
      std::vector<int> parent_of(sizes.size(), -1);
      for (int group = 0; group < 3; ++group) {
        std::vector<int> children;
        for (int tries = 0; tries < 10 && children.size() < 2 + rng() % 2; ++tries) {
          const int c = 1 + static_cast<int>(rng() % static_cast<unsigned>(n));
          if (parent_of[static_cast<std::size_t>(c)] < 0 && std::find(children.begin(), children.end(), c) == children.end())
            children.push_back(c);
        }
        if (children.size() < 2) continue;
        const int parent = static_cast<int>(sizes.size());
        std::size_t at = 0;
        int last_child = 0;
        for (int c : children) {
          aliases.push_back({.value = c, .parent = parent, .offset = at});
          at += sizes[static_cast<std::size_t>(c)];
          parent_of[static_cast<std::size_t>(c)] = parent;
          last_child = std::max(last_child, c);
        }
        sizes.push_back(at);
        kinds.push_back(Al);
        parent_of.push_back(-1);
        // A step after the last child reads the parent and writes a fresh value.
        steps.push_back({{parent}, {static_cast<int>(sizes.size())}});
        sizes.push_back((1 + rng() % 10) * kArenaAlign);
        kinds.push_back(Al);
        parent_of.push_back(-1);
        (void)last_child;
      }
      kinds.back() = Out;
      MemoryPlan p = plan_memory(sizes, kinds, steps, aliases);
      INFO("trial " << trial);
      // Each value's bytes are needed from its first write to its last read, a child's to
      // its parent's last read too. Parents are checked through their children.
      auto span = [&](std::size_t v) {
        const ValuePlan& x = p.values[v];
        int last = x.last_step;
        if (parent_of[v] >= 0) last = std::max(last, p.values[static_cast<std::size_t>(parent_of[v])].last_step);
        return std::pair{x.first_step, last};
      };
      std::vector<char> is_parent(sizes.size(), 0);
      for (const ValueAlias& a : aliases) is_parent[static_cast<std::size_t>(a.parent)] = 1;
      for (std::size_t a = 1; a < sizes.size(); ++a)
        for (std::size_t b = a + 1; b < sizes.size(); ++b) {
          if (is_parent[a] || is_parent[b] || p.values[a].first_step < 0 || p.values[b].first_step < 0) continue;
          const auto [fa, la] = span(a);
          const auto [fb, lb] = span(b);
          INFO("values " << a << " and " << b);
          CHECK_FALSE((fa <= lb && fb <= la && bytes_overlap(p.values[a].offset, p.values[a].size, p.values[b].offset, p.values[b].size)));
        }
      CHECK(p.arena_bytes >= p.live_bound);
      for (const ValueAlias& a : aliases)
        CHECK(p.values[static_cast<std::size_t>(a.value)].offset == p.values[static_cast<std::size_t>(a.parent)].offset + a.offset);
    }
  }

  TEST_CASE("memory plan: random DAGs with in-place requests and scratch stay sound") {
    std::mt19937 rng(11);
    int granted = 0, denied = 0;
    for (int trial = 0; trial < 300; ++trial) {
      // Values 0..1 are graph inputs; step k writes 1 or 2 new values from 1..3 earlier ones;
      // about a tenth of the computed values are graph outputs.
      const int num_steps = 1 + static_cast<int>(rng() % 30);
      std::vector<std::size_t> sizes = {1 + rng() % 5000, 1 + rng() % 5000};
      std::vector<ValueKind> kinds = {In, In};
      std::vector<StepValues> steps;
      for (int s = 0; s < num_steps; ++s) {
        StepValues st;
        const int fan = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < fan; ++k) st.inputs.push_back(static_cast<int>(rng() % sizes.size()));
        const int outs = 1 + static_cast<int>(rng() % 4 == 0);
        for (int k = 0; k < outs; ++k) {
          st.outputs.push_back(static_cast<int>(sizes.size()));
          // Often the same size as an input, as elementwise ops are; sometimes smaller or larger.
          const std::size_t like = sizes[static_cast<std::size_t>(st.inputs[0])];
          const unsigned pick = rng() % 4;
          sizes.push_back(pick < 2 ? like : pick == 2 ? 1 + like / 2 : like + 1 + rng() % 300);
          kinds.push_back(rng() % 10 == 0 ? Out : Al);
        }
        auto request = [&] {
          const int o = static_cast<int>(rng() % st.outputs.size());
          st.inplace.push_back({o, static_cast<int>(rng() % st.inputs.size())});
        };
        if (rng() % 2) request();
        if (rng() % 8 == 0) request();  // an occasional second request, maybe for the same donor
        if (rng() % 3 == 0) st.scratch_bytes = 1 + rng() % 3000;
        steps.push_back(st);
      }
      kinds.back() = Out;
      MemoryPlan p = plan_memory(sizes, kinds, steps);
      INFO("trial " << trial);
      const std::size_t nv = sizes.size();

      // Every grant meets the rules, independently re-checked here.
      std::vector<int> taken(nv, 0);
      for (const InPlaceDecision& d : p.inplace) {
        (d.granted ? granted : denied)++;
        if (!d.granted) {
          CHECK_FALSE(d.reason.empty());
          continue;
        }
        INFO("step " << d.step << ": value " << d.output << " over " << d.input);
        const ValuePlan& heir = p.values[static_cast<std::size_t>(d.output)];
        const ValuePlan& donor = p.values[static_cast<std::size_t>(d.input)];
        CHECK((kinds[static_cast<std::size_t>(d.input)] == Al));
        CHECK((kinds[static_cast<std::size_t>(d.output)] == Al));
        CHECK(donor.last_step == d.step);
        CHECK(heir.first_step == d.step);
        CHECK(sizes[static_cast<std::size_t>(d.output)] <= sizes[static_cast<std::size_t>(d.input)]);
        const std::vector<int>& ins = steps[static_cast<std::size_t>(d.step)].inputs;
        CHECK(std::count(ins.begin(), ins.end(), d.input) == 1);
        CHECK(heir.kind == ValueKind::InPlace);
        CHECK(heir.donor == d.input);
        CHECK(heir.offset == donor.offset);
        CHECK(++taken[static_cast<std::size_t>(d.input)] == 1);
      }
      for (std::size_t v = 0; v < nv; ++v) {
        const ValuePlan& x = p.values[v];
        CHECK((x.kind == ValueKind::InPlace) == (x.donor >= 0));
        if (!in_arena(x)) continue;
        CHECK(x.offset % kArenaAlign == 0);
        CHECK(x.offset + x.size <= p.arena_bytes);
      }

      // No two values alive at one step share bytes, except a heir and its donor at the handover.
      for (std::size_t a = 0; a < nv; ++a)
        for (std::size_t b = a + 1; b < nv; ++b) {
          const ValuePlan &x = p.values[a], &y = p.values[b];
          if (!in_arena(x) || !in_arena(y) || !lives_overlap(x, y)) continue;
          if (!bytes_overlap(x.offset, x.size, y.offset, y.size)) continue;
          const bool handover = (y.donor == static_cast<int>(a) && y.first_step == x.last_step) ||
                                (x.donor == static_cast<int>(b) && x.first_step == y.last_step);
          INFO("values " << a << " [" << x.first_step << ", " << x.last_step << "] @" << x.offset << " and " << b
                         << " [" << y.first_step << ", " << y.last_step << "] @" << y.offset);
          CHECK(handover);
        }
      // A step's scratch shares bytes with nothing alive during the step.
      for (std::size_t s = 0; s < steps.size(); ++s) {
        const ScratchPlan& sc = p.scratch[s];
        CHECK(sc.size == (steps[s].scratch_bytes + kArenaAlign - 1) / kArenaAlign * kArenaAlign);
        if (!sc.size) continue;
        CHECK(sc.offset % kArenaAlign == 0);
        CHECK(sc.offset + sc.size <= p.arena_bytes);
        for (std::size_t v = 0; v < nv; ++v) {
          const ValuePlan& x = p.values[v];
          const int si = static_cast<int>(s);
          if (!in_arena(x) || si < x.first_step || si > x.last_step) continue;
          INFO("step " << s << " scratch @" << sc.offset << " and value " << v << " @" << x.offset);
          CHECK_FALSE(bytes_overlap(sc.offset, sc.size, x.offset, x.size));
        }
      }

      // The bound counts at least what is alive (a heir at its handover counted in its donor).
      for (std::size_t s = 0; s < steps.size(); ++s) {
        std::size_t live = p.scratch[s].size;
        for (const ValuePlan& x : p.values)
          if (in_arena(x) && x.first_step <= static_cast<int>(s) && static_cast<int>(s) <= x.last_step &&
              !(x.kind == ValueKind::InPlace && x.first_step == static_cast<int>(s)))
            live += x.size;
        CHECK(live <= p.live_bound);
      }
      CHECK(p.arena_bytes <= p.naive_bytes);
      CHECK(p.arena_bytes >= p.live_bound);
    }
    CHECK(granted > 100);  // the test exercises grants, not only denials
    CHECK(denied > 100);
  }

  TEST_CASE("memory report: figures, the peak's live values and both renderings") {
    // The conv -> relu (in place) -> pool graph from above, with names.
    std::vector<std::size_t> sizes = {256, 256, 256, 128};
    std::vector<ValueKind> kinds = {In, Al, Al, Out};
    std::vector<StepValues> steps = {{.inputs = {0}, .outputs = {1}, .scratch_bytes = 100},
                                     {.inputs = {1}, .outputs = {2}, .inplace = {{.output = 0, .input = 0}}},
                                     {.inputs = {2}, .outputs = {3}, .inplace = {{.output = 0, .input = 0}}}};
    MemoryPlan p = plan_memory(sizes, kinds, steps);
    MemoryReport r = make_memory_report(p, {"image", "conv\"1", "relu1"});
    r.weights_bytes_stored = 4096;
    r.weights_bytes_packed = 5120;
    CHECK(r.arena_bytes == 384);
    CHECK(r.naive_bytes == 768);
    CHECK(r.live_bound_bytes == 384);
    CHECK(r.input_bytes == 256);
    CHECK(r.scratch_bytes == 128);
    CHECK(r.scratch_steps == 1);
    CHECK(r.inplace_granted == 1);
    CHECK(r.inplace_denied == 1);
    REQUIRE(r.denials.size() == 1);
    CHECK(r.denials[0].step == 2);
    CHECK(r.denials[0].output == "#3");  // unnamed
    CHECK(r.denials[0].input == "relu1");
    CHECK(r.denials[0].reason == "the output is a graph output");
    CHECK(r.peak_step == 0);
    // At s0: conv"1 (256 @0) and the scratch (128 @256), largest first.
    REQUIRE(r.peak_values.size() == 2);
    CHECK(r.peak_values[0].name == "conv\"1");
    CHECK(r.peak_values[0].bytes == 256);
    CHECK(r.peak_values[1].name == "scratch of step 0");
    CHECK(r.peak_values[1].offset == 256);

    const std::string text = r.to_text();
    INFO(text);
    CHECK(text.find("arena: 384 B") != std::string::npos);
    CHECK(text.find("in place: 1 granted, 1 denied") != std::string::npos);
    CHECK(text.find("weights: 4.00 KiB stored, 5.00 KiB packed") != std::string::npos);
    CHECK(text.find("peak: step 0, 2 alive") != std::string::npos);
    CHECK(text.find("in place denied: step 2, #3 over relu1: the output is a graph output") != std::string::npos);
    CHECK(text.back() == '\n');

    const std::string json = r.to_json();
    INFO(json);
    CHECK(json.front() == '{');
    CHECK(json.back() == '}');
    CHECK(json.find("\"arena_bytes\": 384,") != std::string::npos);
    CHECK(json.find("\"live_bound_bytes\": 384,") != std::string::npos);
    CHECK(json.find("\"weights_bytes_packed\": 5120,") != std::string::npos);
    CHECK(json.find("{\"name\": \"conv\\\"1\", \"bytes\": 256, \"offset\": 0, \"kind\": \"allocate\"}") !=
          std::string::npos);
    CHECK(json.find("\"kind\": \"scratch\"") != std::string::npos);

    // At a handover step the heir is listed as sharing its donor's bytes.
    // x (input) -> s0 -> a (128); x -> conv (s1) -> c (512); relu(c, a) (s2, in place of c,
    // scratch 64) -> r; r -> s3 -> y (output). Alive: s0 128, s1 640, s2 704, s3 576.
    std::vector<StepValues> handover = {
        {{0}, {1}},
        {{0}, {2}},
        {.inputs = {2, 1}, .outputs = {3}, .inplace = {{.output = 0, .input = 0}}, .scratch_bytes = 64},
        {{3}, {4}}};
    MemoryPlan hp = plan_memory({64, 128, 512, 512, 64}, {In, Al, Al, Al, Out}, handover);
    MemoryReport h = make_memory_report(hp, {"x", "a", "c", "r", "y"});
    CHECK(h.peak_step == 2);
    CHECK(h.live_bound_bytes == 704);
    REQUIRE(h.peak_values.size() == 4);
    CHECK(h.peak_values[0].name == "c");
    CHECK(h.peak_values[0].in_place_of.empty());
    CHECK(h.peak_values[1].name == "r");
    CHECK(h.peak_values[1].kind == ValueKind::InPlace);
    CHECK(h.peak_values[1].in_place_of == "c");
    CHECK(h.peak_values[1].offset == h.peak_values[0].offset);
    CHECK(h.peak_values[2].name == "a");
    CHECK(h.peak_values[3].name == "scratch of step 2");
    const std::string htext = h.to_text();
    INFO(htext);
    CHECK(htext.find("in-place (shares c's bytes)") != std::string::npos);
    CHECK(h.to_json().find("\"in_place_of\": \"c\"") != std::string::npos);
  }
}
