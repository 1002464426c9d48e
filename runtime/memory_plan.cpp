#include "runtime/memory_plan.hpp"

#include <algorithm>
#include <numeric>

namespace nnjit::runtime {

MemoryPlan plan_memory(const std::vector<std::size_t>& sizes, const std::vector<ValueKind>& kinds,
                       const std::vector<StepValues>& steps) {
  MemoryPlan plan;
  plan.values.resize(sizes.size());
  const int last = static_cast<int>(steps.size()) - 1;
  for (std::size_t v = 0; v < sizes.size(); ++v) {
    plan.values[v].kind = kinds[v];
    plan.values[v].size = (sizes[v] + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
  }
  for (int s = 0; s <= last; ++s) {
    for (int v : steps[static_cast<std::size_t>(s)].outputs) {
      if (v < 0) continue;
      ValuePlan& p = plan.values[static_cast<std::size_t>(v)];
      if (p.first_step < 0) p.first_step = s;
      p.last_step = std::max(p.last_step, s);
    }
    for (int v : steps[static_cast<std::size_t>(s)].inputs)
      if (v >= 0) plan.values[static_cast<std::size_t>(v)].last_step = s;
  }
  std::vector<int> placed_order;
  for (std::size_t v = 0; v < sizes.size(); ++v) {
    ValuePlan& p = plan.values[v];
    const bool in_arena = p.kind == ValueKind::Allocate || p.kind == ValueKind::Output;
    if (!in_arena || p.first_step < 0) continue;
    if (p.kind == ValueKind::Output) p.last_step = last;  // read back after the last step
    placed_order.push_back(static_cast<int>(v));
    plan.naive_bytes += p.size;
  }
  // Largest first; ties by earlier first use, for a stable, readable order.
  std::stable_sort(placed_order.begin(), placed_order.end(), [&](int a, int b) {
    const ValuePlan &pa = plan.values[static_cast<std::size_t>(a)], &pb = plan.values[static_cast<std::size_t>(b)];
    return pa.size != pb.size ? pa.size > pb.size : pa.first_step < pb.first_step;
  });
  std::vector<int> done;
  for (int v : placed_order) {
    ValuePlan& p = plan.values[static_cast<std::size_t>(v)];
    std::vector<std::pair<std::size_t, std::size_t>> busy;  // [offset, end) of overlapping lifetimes
    for (int o : done) {
      const ValuePlan& q = plan.values[static_cast<std::size_t>(o)];
      if (q.first_step <= p.last_step && p.first_step <= q.last_step) busy.emplace_back(q.offset, q.offset + q.size);
    }
    std::sort(busy.begin(), busy.end());
    std::size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (auto [b, e] : busy) {
      if (b > cursor && b - cursor >= p.size && b - cursor < best_gap) {
        best = cursor;
        best_gap = b - cursor;
      }
      cursor = std::max(cursor, e);
    }
    p.offset = best != SIZE_MAX ? best : cursor;
    plan.arena_bytes = std::max(plan.arena_bytes, p.offset + p.size);
    done.push_back(v);
  }
  for (int s = 0; s <= last; ++s) {
    std::size_t live = 0;
    for (int v : placed_order) {
      const ValuePlan& p = plan.values[static_cast<std::size_t>(v)];
      if (p.first_step <= s && s <= p.last_step) live += p.size;
    }
    if (live > plan.live_bound) {
      plan.live_bound = live;
      plan.peak_step = s;
    }
  }
  return plan;
}

}  // namespace nnjit::runtime
