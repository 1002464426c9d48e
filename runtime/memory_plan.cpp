#include "runtime/memory_plan.hpp"

#include <algorithm>
#include <cstdint>

#include "nnjit/error.hpp"

namespace nnjit::runtime {

namespace {

std::size_t round_up(std::size_t bytes) { return (bytes + kArenaAlign - 1) / kArenaAlign * kArenaAlign; }

// What the arena places: an in-place chain of values (one block), or one step's scratch.
// Not every byte of a block lives as long as the block (its parts): a Concat's output
// whose inputs are computed into it is a staircase, each input's bytes needed from that
// input's first write, not from the first input's; a chain whose heir is smaller than
// its donor (a crop compacting its input) frees the donor's tail at the handover.
struct Part {
  std::size_t rel = 0, size = 0;  // bytes [rel, rel + size) of the block
  int first = 0, last = 0;        // needed from step `first` to step `last`
};
struct Block {
  std::size_t size = 0;
  int first = 0, last = 0;
  std::size_t offset = 0;
  std::vector<Part> parts;  // empty: all of it from `first` to `last`

  std::vector<Part> pieces() const { return parts.empty() ? std::vector<Part>{{0, size, first, last}} : parts; }
};

const char* kind_phrase(ValueKind kind) {
  switch (kind) {
    case ValueKind::Input: return "a graph input";
    case ValueKind::Constant: return "a constant";
    case ValueKind::Output: return "a graph output";
    case ValueKind::InPlace: return "already in place of another value";
    case ValueKind::Allocate: return "an arena value";
    case ValueKind::Alias: return "part of another value (a Concat's input written in place)";
    case ValueKind::Unused: break;
  }
  return "not planned";
}

int count_of(const std::vector<int>& ids, int v) { return static_cast<int>(std::count(ids.begin(), ids.end(), v)); }

// Why step s may not write value `out` over value `in`; empty when it may.
std::string deny_reason(const MemoryPlan& plan, const std::vector<std::size_t>& sizes, const std::vector<int>& heir_of,
                        const StepValues& st, int s, int out, int in, bool read_twice) {
  if (in < 0) return "the step has no value at that input";
  if (out < 0) return "the step has no value at that output";
  const ValuePlan& donor = plan.values[static_cast<std::size_t>(in)];
  const ValuePlan& heir = plan.values[static_cast<std::size_t>(out)];
  if (donor.kind != ValueKind::Allocate && donor.kind != ValueKind::InPlace)
    return std::string("the input is ") + kind_phrase(donor.kind);
  if (donor.first_step < 0) return "no step computes the input";
  if (donor.last_step != s)
    return "the input is read again later (last use: step " + std::to_string(donor.last_step) + ")";
  if (count_of(st.inputs, in) > (read_twice ? 2 : 1)) return "the step reads the input more than once";
  if (count_of(st.outputs, in) > 0) return "the step also writes the input";
  if (heir_of[static_cast<std::size_t>(in)] >= 0)
    return "the input already went to value " + std::to_string(heir_of[static_cast<std::size_t>(in)]);
  if (heir.kind != ValueKind::Allocate) return std::string("the output is ") + kind_phrase(heir.kind);
  if (heir.first_step != s) return "the output is first written by step " + std::to_string(heir.first_step);
  if (count_of(st.outputs, out) > 1) return "the step writes the output more than once";
  if (sizes[static_cast<std::size_t>(out)] > sizes[static_cast<std::size_t>(in)])
    return "the output is larger than the input (" + std::to_string(sizes[static_cast<std::size_t>(out)]) + " > " +
           std::to_string(sizes[static_cast<std::size_t>(in)]) + " bytes)";
  return {};
}

// Largest first, each into the best-fitting gap among the already placed pieces whose
// lifetimes overlap its own; a block of parts at the lowest offset where each of its
// parts fits. Blocks of one size (DARTS's cells have dozens) go in by `ties`: earlier
// first step first, or later last step first; then in the order given.
enum class Ties { first_step, last_step };
std::size_t place(std::vector<Block>& blocks, Ties ties) {
  std::vector<std::size_t> order(blocks.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const Block &x = blocks[a], &y = blocks[b];
    if (x.size != y.size) return x.size > y.size;
    return ties == Ties::first_step ? x.first < y.first : x.last > y.last;
  });
  std::size_t high_water = 0;
  int steps = 0;
  for (const Block& b : blocks) steps = std::max(steps, b.last + 1);
  // Every piece placed so far ([offset, end)), listed at each step it lives: a block
  // meets only the pieces of its own steps (most lifetimes are a few steps).
  std::vector<std::pair<std::size_t, std::size_t>> placed;
  std::vector<std::vector<int>> alive_at(static_cast<std::size_t>(steps));
  std::vector<int> seen;  // per piece: the last busy_during that took it
  int stamp = 0;
  std::vector<std::pair<std::size_t, std::size_t>> busy;  // [offset, end) of overlapping lifetimes, sorted
  auto busy_during = [&](int first, int last) {
    busy.clear();
    ++stamp;
    for (int s = first; s <= last; ++s)
      for (int q : alive_at[static_cast<std::size_t>(s)])
        if (seen[static_cast<std::size_t>(q)] != stamp) {
          seen[static_cast<std::size_t>(q)] = stamp;
          busy.push_back(placed[static_cast<std::size_t>(q)]);
        }
    std::sort(busy.begin(), busy.end());
  };
  for (std::size_t i : order) {
    Block& p = blocks[i];
    if (p.parts.empty()) {
      busy_during(p.first, p.last);
      std::size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
      for (auto [b, e] : busy) {
        if (b > cursor && b - cursor >= p.size && b - cursor < best_gap) {
          best = cursor;
          best_gap = b - cursor;
        }
        cursor = std::max(cursor, e);
      }
      p.offset = best != SIZE_MAX ? best : cursor;
    } else {
      // The lowest offset is 0 or puts some part right after a piece it must not meet.
      std::vector<std::vector<std::pair<std::size_t, std::size_t>>> part_busy;
      std::vector<std::size_t> candidates{0};
      for (const Part& part : p.parts) {
        busy_during(part.first, part.last);
        part_busy.push_back(busy);
        for (const auto& be : busy)
          if (be.second >= part.rel) candidates.push_back(be.second - part.rel);
      }
      std::sort(candidates.begin(), candidates.end());
      auto fits = [&](std::size_t at) {
        for (std::size_t k = 0; k < p.parts.size(); ++k) {
          const std::size_t b = at + p.parts[k].rel, e = b + p.parts[k].size;
          for (const auto& [qb, qe] : part_busy[k])
            if (qb < e && b < qe) return false;
        }
        return true;
      };
      // The largest candidate clears every piece any part could meet, so one fits.
      p.offset = *std::find_if(candidates.begin(), candidates.end() - 1, fits);
    }
    high_water = std::max(high_water, p.offset + p.size);
    for (const Part& part : p.pieces()) {
      const int q = static_cast<int>(placed.size());
      placed.push_back({p.offset + part.rel, p.offset + part.rel + part.size});
      seen.push_back(0);
      for (int s = part.first; s <= part.last; ++s) alive_at[static_cast<std::size_t>(s)].push_back(q);
    }
  }
  return high_water;
}

}  // namespace

const char* to_string(ValueKind kind) {
  switch (kind) {
    case ValueKind::Unused: return "unused";
    case ValueKind::Input: return "input";
    case ValueKind::Constant: return "constant";
    case ValueKind::Allocate: return "allocate";
    case ValueKind::InPlace: return "in-place";
    case ValueKind::Output: return "output";
    case ValueKind::Alias: return "alias";
  }
  return "?";
}

MemoryPlan plan_memory(const std::vector<std::size_t>& sizes, const std::vector<ValueKind>& kinds,
                       const std::vector<StepValues>& steps, const std::vector<ValueAlias>& aliases) {
  if (kinds.size() != sizes.size())
    throw_internal("memory plan: " + std::to_string(sizes.size()) + " sizes but " + std::to_string(kinds.size()) +
                   " kinds");
  const int num_values = static_cast<int>(sizes.size());
  const int last = static_cast<int>(steps.size()) - 1;
  MemoryPlan plan;
  plan.values.resize(sizes.size());
  plan.scratch.resize(steps.size());
  for (std::size_t v = 0; v < sizes.size(); ++v) {
    plan.values[v].kind = kinds[v] == ValueKind::InPlace ? ValueKind::Allocate : kinds[v];
    plan.values[v].size = round_up(sizes[v]);
  }

  // Lifetimes: first write to last read; graph outputs are read back after the last step.
  for (int s = 0; s <= last; ++s) {
    const StepValues& st = steps[static_cast<std::size_t>(s)];
    auto check = [&](int v, const char* role) {
      if (v < -1 || v >= num_values)
        throw_internal("memory plan: step " + std::to_string(s) + " " + role + " value " + std::to_string(v) +
                       ", but there are " + std::to_string(num_values));
    };
    for (int v : st.outputs) {
      check(v, "writes");
      if (v < 0) continue;
      ValuePlan& p = plan.values[static_cast<std::size_t>(v)];
      if (p.first_step < 0) p.first_step = s;
      p.last_step = std::max(p.last_step, s);
    }
    for (int v : st.inputs) {
      check(v, "reads");
      if (v >= 0) plan.values[static_cast<std::size_t>(v)].last_step = s;
    }
  }
  auto in_arena = [&](const ValuePlan& p) {
    return (p.kind == ValueKind::Allocate || p.kind == ValueKind::Output) && p.first_step >= 0;
  };
  for (ValuePlan& p : plan.values)
    if (p.kind == ValueKind::Output && in_arena(p)) p.last_step = last;

  // Aliases: a child lives inside its parent, so the parent lives as long as any child.
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> taken(sizes.size());  // per parent: [begin, end)
  for (const ValueAlias& a : aliases) {
    const std::string what = "memory plan: alias of value " + std::to_string(a.value) + " in " + std::to_string(a.parent);
    if (a.value < 0 || a.value >= num_values || a.parent < 0 || a.parent >= num_values || a.value == a.parent)
      throw_internal(what + ": no such values");
    ValuePlan& child = plan.values[static_cast<std::size_t>(a.value)];
    ValuePlan& parent = plan.values[static_cast<std::size_t>(a.parent)];
    if (child.kind != ValueKind::Allocate || child.first_step < 0) throw_internal(what + ": the child is not computed in the arena");
    if (parent.kind != ValueKind::Allocate && parent.kind != ValueKind::Output)
      throw_internal(what + ": the parent is not an arena value");
    if (a.offset % kArenaAlign != 0 || a.offset + sizes[static_cast<std::size_t>(a.value)] > sizes[static_cast<std::size_t>(a.parent)])
      throw_internal(what + ": offset " + std::to_string(a.offset) + " misaligned or past the parent's end");
    const std::size_t end = a.offset + sizes[static_cast<std::size_t>(a.value)];
    for (const auto& [b, e] : taken[static_cast<std::size_t>(a.parent)])
      if (a.offset < e && b < end) throw_internal(what + ": overlaps another child");
    taken[static_cast<std::size_t>(a.parent)].push_back({a.offset, end});
    child.kind = ValueKind::Alias;
    child.parent = a.parent;
    child.offset = a.offset;  // relative until placement
    parent.first_step = parent.first_step < 0 ? child.first_step : std::min(parent.first_step, child.first_step);
    parent.last_step = std::max(parent.last_step, child.last_step);
  }
  for (const ValueAlias& a : aliases)
    if (plan.values[static_cast<std::size_t>(a.parent)].kind == ValueKind::Alias)
      throw_internal("memory plan: value " + std::to_string(a.parent) + " is both a child and a parent");

  // In-place grants, in step order, so a heir can pass its bytes on (a chain).
  std::vector<int> heir_of(sizes.size(), -1);
  for (int s = 0; s <= last; ++s) {
    const StepValues& st = steps[static_cast<std::size_t>(s)];
    for (const InPlaceRequest& r : st.inplace) {
      if (r.output < 0 || r.output >= static_cast<int>(st.outputs.size()) || r.input < 0 ||
          r.input >= static_cast<int>(st.inputs.size()))
        throw_internal("memory plan: step " + std::to_string(s) + " asks for output " + std::to_string(r.output) +
                       " in place of input " + std::to_string(r.input) + ", but it has " +
                       std::to_string(st.outputs.size()) + " outputs and " + std::to_string(st.inputs.size()) +
                       " inputs");
      InPlaceDecision d;
      d.step = s;
      d.output = st.outputs[static_cast<std::size_t>(r.output)];
      d.input = st.inputs[static_cast<std::size_t>(r.input)];
      d.reason = deny_reason(plan, sizes, heir_of, st, s, d.output, d.input, r.read_twice);
      d.granted = d.reason.empty();
      if (d.granted) {
        ValuePlan& heir = plan.values[static_cast<std::size_t>(d.output)];
        heir.kind = ValueKind::InPlace;
        heir.donor = d.input;
        heir_of[static_cast<std::size_t>(d.input)] = d.output;
      }
      plan.inplace.push_back(std::move(d));
    }
  }

  // Blocks: one per chain of values (keyed by its first value), then one per scratch.
  std::vector<Block> blocks;
  std::vector<int> block_of(sizes.size(), -1);
  for (int v = 0; v < num_values; ++v) {
    const ValuePlan& p = plan.values[static_cast<std::size_t>(v)];
    if (p.kind == ValueKind::InPlace || !in_arena(p)) continue;
    Block b{p.size, p.first_step, p.last_step, 0, {}};
    // Along a chain sizes never grow (a heir is at most its donor's size) and lifetimes
    // follow each other: a byte is needed until the last value of the chain that holds it.
    std::vector<std::pair<std::size_t, int>> held_until;  // {size, last step} per value
    for (int u = v; u >= 0; u = heir_of[static_cast<std::size_t>(u)]) {
      const ValuePlan& q = plan.values[static_cast<std::size_t>(u)];
      b.size = std::max(b.size, q.size);
      b.last = std::max(b.last, q.last_step);
      held_until.push_back({q.size, q.last_step});
      block_of[static_cast<std::size_t>(u)] = static_cast<int>(blocks.size());
      plan.naive_bytes += q.size;
    }
    // A parent's children each from their first write; the bytes between them (and past
    // them, up to the chain's largest value) from the block's first step.
    std::vector<Part> from{{0, b.size, b.first, b.last}};
    if (!taken[static_cast<std::size_t>(v)].empty()) {
      std::vector<Part> children;
      for (const ValueAlias& a : aliases)
        if (a.parent == v)
          children.push_back({a.offset, round_up(sizes[static_cast<std::size_t>(a.value)]),
                              plan.values[static_cast<std::size_t>(a.value)].first_step, b.last});
      std::sort(children.begin(), children.end(), [](const Part& x, const Part& y) { return x.rel < y.rel; });
      from.clear();
      std::size_t cursor = 0;
      for (const Part& c : children) {
        if (c.rel > cursor) from.push_back({cursor, c.rel - cursor, b.first, b.last});
        from.push_back(c);
        cursor = std::max(cursor, c.rel + c.size);
      }
      if (cursor < b.size) from.push_back({cursor, b.size - cursor, b.first, b.last});
    }
    // Each of those cut where a smaller heir takes over: the bytes past it end with the
    // donor (the largest value of the chain still holding them).
    for (const Part& f : from)
      for (std::size_t k = 0; k < held_until.size(); ++k) {
        const std::size_t hi = std::min(f.rel + f.size, held_until[k].first);
        const std::size_t lo = std::max(f.rel, k + 1 < held_until.size() ? held_until[k + 1].first : 0);
        if (lo < hi) b.parts.push_back({lo, hi - lo, f.first, held_until[k].second});
      }
    if (b.parts.size() == 1) b.parts.clear();  // all of it alive all along
    blocks.push_back(b);
  }
  const std::size_t first_scratch = blocks.size();
  for (int s = 0; s <= last; ++s)
    if (const std::size_t bytes = steps[static_cast<std::size_t>(s)].scratch_bytes) {
      plan.scratch[static_cast<std::size_t>(s)].size = round_up(bytes);
      blocks.push_back({round_up(bytes), s, s, 0, {}});
      plan.naive_bytes += round_up(bytes);
    }

  // The live-set bound: bytes of blocks alive at each step (a chain counts once, a
  // block of parts part by part).
  std::vector<std::int64_t> delta(steps.size() + 1, 0);
  for (const Block& b : blocks)
    for (const Part& part : b.pieces()) {
      delta[static_cast<std::size_t>(part.first)] += static_cast<std::int64_t>(part.size);
      delta[static_cast<std::size_t>(part.last) + 1] -= static_cast<std::int64_t>(part.size);
    }
  std::int64_t live = 0;
  plan.live.resize(steps.size());
  for (int s = 0; s <= last; ++s) {
    live += delta[static_cast<std::size_t>(s)];
    plan.live[static_cast<std::size_t>(s)] = static_cast<std::size_t>(live);
    if (static_cast<std::size_t>(live) > plan.live_bound) {
      plan.live_bound = static_cast<std::size_t>(live);
      plan.peak_step = s;
    }
  }

  // Ties by first step; where that leaves gaps (an arena over the live bound), ties by
  // last step too, and the smaller arena is kept.
  plan.arena_bytes = place(blocks, Ties::first_step);
  if (plan.arena_bytes > plan.live_bound) {
    std::vector<Block> by_last = blocks;  // (place sets every offset again)
    if (const std::size_t other = place(by_last, Ties::last_step); other < plan.arena_bytes) {
      plan.arena_bytes = other;
      blocks = std::move(by_last);
    }
  }
  for (std::size_t v = 0; v < sizes.size(); ++v)
    if (block_of[v] >= 0) plan.values[v].offset = blocks[static_cast<std::size_t>(block_of[v])].offset;
  for (ValuePlan& p : plan.values)
    if (p.kind == ValueKind::Alias) p.offset += plan.values[static_cast<std::size_t>(p.parent)].offset;
  for (std::size_t b = first_scratch, s = 0; s < plan.scratch.size(); ++s)
    if (plan.scratch[s].size) plan.scratch[s].offset = blocks[b++].offset;

  return plan;
}

}  // namespace nnjit::runtime
