// The planner's post-passes over its steps: row streams (chains of convs fused row by
// row) and copy-free Concats (candidates the memory planner may take). See plan.hpp.
#include <algorithm>
#include <optional>

#include "graph/plan.hpp"
#include "graph/plan_post.hpp"

namespace nnjit::graph {

RowWindow row_window(const RowStage& stage) {
  if (const auto* pool = std::get_if<jit::PoolPlan>(&stage)) {
    const jit::PoolShape& p = pool->shape;
    return {p.kernel_h, p.stride_h, p.pad_top, p.height, p.out_height, p.out_width, p.out_width * pool->blocks * pool->block};
  }
  if (const auto* pw = std::get_if<jit::PointwisePlan>(&stage)) {
    const jit::PointwiseShape& p = pw->shape;
    return {1, p.stride, 0, p.height, p.out_height(), p.out_width(), p.out_width() * pw->out_blocks * pw->block};
  }
  if (const auto* grouped = std::get_if<jit::GroupedPlan>(&stage)) {
    const jit::GroupedShape& p = grouped->shape;
    return {p.kernel, p.stride, p.pad_top, p.height, p.out_height(), p.out_width(),
            p.out_width() * grouped->out_blocks * grouped->block};
  }
  const auto& dense = std::get<jit::DensePlan>(stage);
  const jit::DenseShape& d = dense.shape;
  return {d.dilated_kernel(), d.stride, d.pad_top, d.height, d.out_height(), d.out_width(),
          d.out_width() * dense.out_blocks * dense.block};
}

// Value `id` of the graph or of the plan's added values (ids graph.values.size() on).
const Value& plan_value(const Graph& g, const ExecutionPlan& plan, int id) {
  const auto v = static_cast<std::size_t>(id);
  return v < g.values.size() ? g.values[v] : plan.added_values[v - g.values.size()];
}

// A new plain float value of `floats` elements, for a step's own buffers; its id.
int add_value(const Graph& g, ExecutionPlan& plan, Value v, int block) {
  const int id = static_cast<int>(g.values.size() + plan.added_values.size());
  plan.added_values.push_back(std::move(v));
  plan.block.push_back(block);
  return id;
}

int add_scratch(const Graph& g, ExecutionPlan& plan, const std::string& name, int64_t floats) {
  Value v;
  v.name = name;
  v.dtype = DType::Float32;
  v.shape = {floats};
  v.shape_known = true;
  return add_value(g, plan, std::move(v), 0);
}

namespace {

// Output rows per tile of a row stream: as for inverted-residual blocks, the buffers of
// one thread fit in half the L2 and take at most an eighth of the last stage's output,
// and each thread gets at least one tile. Each buffer holds the rows its reader's window
// spans over a tile.
RowStreamPlan plan_row_stream(std::vector<RowStage> stages, const jit::HostInfo& host, int threads, bool smallest) {
  RowStreamPlan b;
  b.stages = std::move(stages);
  auto with_tile = [&](int64_t t) {
    RowStreamPlan c = b;
    c.tile_rows = t;
    c.buffer_rows.assign(c.stages.size() - 1, 0);
    int64_t rows = t;  // output rows of stage s + 1 per tile
    for (std::size_t s = c.stages.size() - 1; s-- > 0;) {
      const RowWindow w = row_window(c.stages[s + 1]);
      rows = std::min((rows - 1) * w.stride + w.extent, row_window(c.stages[s]).out_rows);
      c.buffer_rows[s] = rows;
    }
    return c;
  };
  const RowWindow last = row_window(b.stages.back());
  const double out_bytes = static_cast<double>(last.out_rows * last.row_floats) * 4;
  const double budget = std::min(static_cast<double>(host.l2_bytes) / 2, out_bytes / 8);
  const int64_t most = smallest ? 1 : std::max<int64_t>(1, (last.out_rows + threads - 1) / threads);
  // Threads take near-equal runs of whole tiles (ThreadPool::parallel_for): of the
  // heights that fit, the one whose busiest thread has the fewest rows (56 rows in 13-row
  // tiles on two threads are 39 rows against 17; in 14-row tiles, 28 each), then the tallest.
  auto busiest = [&](int64_t t) {
    const int64_t tiles = (last.out_rows + t - 1) / t;
    const int64_t most_tiles = (tiles + threads - 1) / threads;
    return std::min(last.out_rows, most_tiles * t);
  };
  b = with_tile(1);
  for (int64_t t = 2; t <= most; ++t) {
    RowStreamPlan c = with_tile(t);
    if (static_cast<double>(c.buffers_floats()) * 4 > budget) break;
    if (busiest(t) <= busiest(b.tile_rows)) b = std::move(c);
  }
  return b;
}

// A step as a row-stream stage: a pointwise conv of stride 1, a dense or grouped conv, or
// (not first) a max pool; one image. Only the first stage may read the image in plain
// layout; the others read blocked buffers.
std::optional<RowStage> row_stage(const PlannedStep& st, bool first) {
  if (st.kind == StepKind::pool) {
    const auto* pool = std::get_if<jit::PoolPlan>(&st.plan);
    if (first || !pool || pool->shape.kind != jit::PoolKind::max || pool->shape.batch != 1) return std::nullopt;
    return *pool;
  }
  if (st.kind != StepKind::conv) return std::nullopt;
  if (const auto* pw = std::get_if<jit::PointwisePlan>(&st.plan); pw && pw->shape.stride == 1 && pw->shape.batch == 1)
    return *pw;
  if (const auto* d = std::get_if<jit::DensePlan>(&st.plan); d && d->shape.batch == 1 && (first || !d->shape.src_nchw))
    return *d;
  if (const auto* gr = std::get_if<jit::GroupedPlan>(&st.plan); gr && gr->shape.batch == 1) return *gr;
  return std::nullopt;
}

// Per value id (the graph's, then the plan's added ones): how many steps read it.
std::vector<int> step_readers(const Graph& g, const ExecutionPlan& plan) {
  std::vector<int> readers(g.values.size() + plan.added_values.size(), 0);
  for (const PlannedStep& st : plan.steps)
    for (int v : st.inputs)
      if (v >= 0) ++readers[static_cast<std::size_t>(v)];
  return readers;
}

// The first step after step `after` that reads value `v`; plan.steps.size() if none.
std::size_t next_reader(const ExecutionPlan& plan, std::size_t after, int v) {
  std::size_t j = after + 1;
  while (j < plan.steps.size() &&
         std::find(plan.steps[j].inputs.begin(), plan.steps[j].inputs.end(), v) == plan.steps[j].inputs.end())
    ++j;
  return j;
}

}  // namespace

// Chains of up to three steps, each the only reader of the one before's output, become
// one row-stream step where one of the values between them does not fit in half the L2
// (it would go to memory and back). A stage with a residual or a pool ends the chain; the
// fused step runs where its last stage ran (every stage's inputs exist there too).
void fuse_row_streams(const Graph& g, ExecutionPlan& plan, const jit::HostInfo& host, int threads,
                      const PlanLimits& limits, const std::vector<int>& no_join) {
  constexpr std::size_t kMaxStages = 3;
  std::vector<int> readers = step_readers(g, plan);
  for (std::size_t k = 0; k + 1 < plan.steps.size(); ++k) {
    std::vector<std::size_t> chain = {k};
    std::vector<RowStage> stages;
    const PlannedStep& head = plan.steps[k];
    const bool vetoed = !head.nodes.empty() && std::find(limits.no_row_stream.begin(), limits.no_row_stream.end(),
                                                         head.nodes.front()) != limits.no_row_stream.end();
    if (auto first = row_stage(head, true); first && head.inputs.at(3) < 0 && !vetoed) stages.push_back(*first);
    else continue;
    bool big = false;
    while (stages.size() < kMaxStages) {
      const PlannedStep& p = plan.steps[chain.back()];
      const int v = p.outputs.at(0);
      if (readers[static_cast<std::size_t>(v)] != 1) break;
      const std::size_t j = next_reader(plan, chain.back(), v);
      if (j == plan.steps.size() || plan.steps[j].inputs[0] != v) break;
      const PlannedStep& c = plan.steps[j];
      auto stage = row_stage(c, false);
      if (!stage || (c.kind == StepKind::conv && c.inputs.at(3) == v)) break;
      if (!c.nodes.empty() && std::find(no_join.begin(), no_join.end(), c.nodes.front()) != no_join.end()) break;
      const RowWindow between = row_window(stages.back());  // the value c reads
      big = big || static_cast<double>(between.out_rows * between.row_floats) * 4 > static_cast<double>(host.l2_bytes) / 2;
      stages.push_back(*stage);
      chain.push_back(j);
      if (c.kind == StepKind::pool || c.inputs.at(3) >= 0) break;  // a residual or a pool ends it
    }
    if (stages.size() < 2 || !big) continue;
    const PlannedStep& last = plan.steps[chain.back()];
    // A residual that is the chain's own input (an identity shortcut) may take the output
    // in place when every stage keeps the rows (stride 1) and reads its input up to at
    // least its own last row, and the first stage reads no input row above its first
    // that the later stages do not reach below theirs (a tile's first new row of the
    // first stage lies that far below the rows the tile before wrote: 0 for ResNet's
    // 1x1 -> 3x3 -> 1x1; Fused-MBConv's 3x3 -> 1x1 reads the row the tile before wrote
    // over): tiles in order then read every input row before one of them writes over it,
    // and never again. Threads each defer their first tile's writes
    // to the end (its buffers computed first, in a second set of buffers), so none
    // overwrites rows a neighbour still reads (run_split_in_place: tiles at least as tall
    // as the rows the stages reach above and below).
    const bool identity = last.kind == StepKind::conv && last.inputs[3] >= 0 && last.inputs[3] == plan.steps[k].inputs[0];
    int64_t above = 0, below = 0;  // input rows the last stage's rows reach, through every stage
    for (const RowStage& st : stages) {
      const RowWindow w = row_window(st);
      above += w.pad_top;
      below += w.extent - 1 - w.pad_top;
    }
    if (identity && !std::all_of(stages.begin(), stages.end(), [](const RowStage& st) {
          const RowWindow w = row_window(st);
          return w.stride == 1 && w.pad_top <= w.extent - 1;
        }))
      continue;
    const RowWindow first = row_window(stages.front());
    const bool over_input = identity && first.pad_top <= below - (first.extent - 1 - first.pad_top);
    RowStreamPlan stream = plan_row_stream(std::move(stages), host, threads, limits.smallest_tiles);
    if (over_input && threads > 1 && stream.tile_rows < std::max(above, below)) continue;
    stream.over_input_ok = over_input;
    PlannedStep s{StepKind::row_stream, {}, "", {}, last.outputs, {}, std::nullopt, std::nullopt, {}, ""};
    s.inputs.push_back(plan.steps[k].inputs[0]);
    for (std::size_t i : chain) {
      const PlannedStep& st = plan.steps[i];
      s.nodes.insert(s.nodes.end(), st.nodes.begin(), st.nodes.end());
      s.op += (s.op.empty() ? "" : "+") + st.op;
      const bool conv = st.kind == StepKind::conv;
      s.inputs.push_back(conv ? st.inputs[1] : -1);
      s.inputs.push_back(conv ? st.inputs[2] : -1);
    }
    s.inputs.push_back(last.kind == StepKind::conv ? last.inputs[3] : -1);
    s.stream = std::move(stream);
    s.outputs.push_back(add_scratch(g, plan, plan_value(g, plan, last.outputs.at(0)).name + "@rows",
                                    s.stream->buffers_floats() * threads * (over_input && threads > 1 ? 2 : 1)));
    readers.push_back(0);
    plan.steps[chain.back()] = std::move(s);
    for (std::size_t i = chain.size() - 1; i-- > 0;)
      plan.steps.erase(plan.steps.begin() + static_cast<std::ptrdiff_t>(chain[i]));
    --k;  // the step now at k is a new candidate
  }
}

// A downsampling block: X feeds the shortcut ds(X), a 1x1 conv of stride 2, and the main
// branch (... -> conv3), and the block adds the two. Planned as loaded the shortcut often
// runs first (ResNet's export order: conv3 adds its output D) and D lives with X through
// the whole main branch: at ResNet-50's 56x56 -> 28x28 block X + D alone is half the
// model's live-set bound. Read late instead:
//   the main branch up to conv3's input  (the last read of X but the shortcut's)
//   subsample crop X -> Xs               (the pixels ds reads, in place at X's front)
//   conv3 -> M                           (no residual, no activation)
//   ds, stride 1 on Xs, + M, act         (the block's output, in place over M)
// so what outlives X is Xs (a quarter of it) and conv3's input. Where the shortcut adds
// the main branch's output already, the crop goes in before the step writing that
// output. Costs one copy of Xs. Returns the conv3 steps' first nodes: no row stream may
// take them (it would run after the crop and need X).
std::vector<int> read_downsamples_late(const Graph& g, ExecutionPlan& plan, const jit::HostInfo& host,
                                       const PlanLimits& limits) {
  std::vector<int> tails;
  const std::vector<int> readers = step_readers(g, plan);
  auto pointwise = [](const PlannedStep& st) -> const jit::PointwisePlan* {
    const auto* pw = std::get_if<jit::PointwisePlan>(&st.plan);
    return st.kind == StepKind::conv && pw && pw->shape.batch == 1 && pw->shape.src_plane == 0 &&
                   pw->shape.dst_plane == 0 && st.src_shift == 0
               ? pw
               : nullptr;
  };
  auto replan = [&](const jit::PointwiseShape& shape) -> std::optional<jit::PointwisePlan> {
    auto planned = jit::plan_pointwise(shape, host);
    const auto* p = std::get_if<jit::PointwisePlan>(&planned);
    if (!p || p->block != plan.block_size) return std::nullopt;
    return *p;
  };
  auto new_value = [&](int like, const std::string& suffix, Shape shape) {  // blocked, like `like`
    Value v = plan_value(g, plan, like);
    v.name += suffix;
    v.shape = std::move(shape);
    return add_value(g, plan, std::move(v), plan.block_size);
  };
  for (std::size_t k = 0; k < plan.steps.size(); ++k) {
    const jit::PointwisePlan* dp = pointwise(plan.steps[k]);
    if (!dp || dp->shape.stride != 2) continue;
    PlannedStep ds = plan.steps[k];
    const int x = ds.inputs[0];
    // `main`: the step writing the main branch's output (conv3); the crop goes right
    // before it, once every reader of X but the shortcut has run. `conv3`: that step when
    // the shortcut takes its Add over (it runs first as loaded).
    std::size_t main = k;
    const jit::PointwisePlan* cp = nullptr;
    if (ds.inputs[3] < 0) {
      const int d = ds.outputs[0];
      if (readers[static_cast<std::size_t>(d)] != 1 || dp->shape.activation.kind != jit::ActivationKind::none) continue;
      main = next_reader(plan, k, d);
      if (main == plan.steps.size()) continue;
      const PlannedStep& c = plan.steps[main];
      cp = pointwise(c);
      if (!cp || c.inputs[3] != d || c.inputs[0] == d || c.inputs[0] == x ||
          cp->shape.residual != jit::ResidualMode::before_activation || c.op.rfind("Conv", 0) != 0 ||
          g.nodes[static_cast<std::size_t>(c.nodes.front())].op_type != "Conv")
        continue;
    } else {  // the writer of the residual it adds; none (a graph input): ds itself
      for (std::size_t i = 0; i < k; ++i)
        if (std::find(plan.steps[i].outputs.begin(), plan.steps[i].outputs.end(), ds.inputs[3]) != plan.steps[i].outputs.end())
          main = i;
    }
    // X is read by some step before `main` and by none from `main` on but the shortcut.
    // (Should a row stream still read X after the crop, the memory plan sees X read
    // later and does not give the crop X's bytes: slower, never wrong.)
    bool read_before = false, read_after = false;
    for (std::size_t i = 0; i < plan.steps.size(); ++i)
      if (i != k && std::find(plan.steps[i].inputs.begin(), plan.steps[i].inputs.end(), x) != plan.steps[i].inputs.end())
        (i < main ? read_before : read_after) = true;
    if (!read_before || read_after) continue;
    if (std::find(limits.late_downsample.begin(), limits.late_downsample.end(), ds.nodes.front()) ==
        limits.late_downsample.end()) {
      plan.shortcuts.push_back(ds.nodes.front());  // one the engine may name
      continue;
    }

    jit::PointwiseShape shortcut = dp->shape;
    std::optional<PlannedStep> conv3;  // without its Add, which the shortcut takes over
    if (cp) {
      const PlannedStep& c = plan.steps[main];
      jit::PointwiseShape plain = cp->shape;
      plain.residual = jit::ResidualMode::none;
      plain.activation = jit::Activation::none();
      const std::optional<jit::PointwisePlan> mp = replan(plain);
      if (!mp) continue;
      conv3 = c;
      conv3->nodes = {c.nodes.front()};
      conv3->op = "Conv";
      conv3->inputs[3] = -1;
      conv3->plan = *mp;
      ds.nodes.insert(ds.nodes.end(), c.nodes.begin() + 1, c.nodes.end());
      std::sort(ds.nodes.begin(), ds.nodes.end());
      ds.op += c.op.substr(4);
      ds.outputs = c.outputs;
      shortcut.residual = jit::ResidualMode::before_activation;
      shortcut.activation = cp->shape.activation;
    }
    shortcut.stride = 1;
    shortcut.height = dp->shape.out_height();
    shortcut.width = dp->shape.out_width();
    const std::optional<jit::PointwisePlan> sp = replan(shortcut);
    if (!sp) continue;

    const Shape& xs = plan_value(g, plan, x).shape;
    const int xc = new_value(x, "@s2", {xs[0], xs[1], shortcut.height, shortcut.width});
    ds.inputs[0] = xc;
    ds.plan = *sp;
    PlannedStep crop{StepKind::crop, {}, "Subsample", {x}, {xc}, {}, std::nullopt, std::nullopt,
                     {{0, 0}, {0, 0}, {0, 2}}, "the shortcut's pixels, read after the main branch (a smaller arena)"};
    if (conv3) {  // k < main: [.. ds@k .. conv3@main ..] -> [.. crop, conv3, ds ..]
      const int m = new_value(conv3->outputs[0], "@main", plan_value(g, plan, conv3->outputs[0]).shape);
      conv3->outputs = {m};
      ds.inputs[3] = m;
      tails.push_back(conv3->nodes.front());
      plan.steps[main] = std::move(ds);
      plan.steps.insert(plan.steps.begin() + static_cast<std::ptrdiff_t>(main), {std::move(crop), std::move(*conv3)});
      plan.steps.erase(plan.steps.begin() + static_cast<std::ptrdiff_t>(k));
      --k;  // the step now at k is a new candidate
    } else {  // main <= k: [.. writer@main .. ds@k ..] -> [.. crop, writer .. ds ..]
      if (main != k && plan.steps[main].kind == StepKind::conv && !plan.steps[main].nodes.empty())
        tails.push_back(plan.steps[main].nodes.front());
      plan.steps[k] = std::move(ds);
      plan.steps.insert(plan.steps.begin() + static_cast<std::ptrdiff_t>(main), std::move(crop));
      ++k;
    }
  }
  return tails;
}

// DARTS's FactorizedReduce reads x[:, :, 1:, 1:] with a stride-2 1x1 conv: over the whole
// x the same conv gives the same 28x28 output, one row and one column in, and the 385 KiB
// crop (and its copy) goes. A crop whose reader is another crop folds into it first.
void fold_crops(const Graph& g, ExecutionPlan& plan, const jit::HostInfo& host) {
  const std::vector<int> readers = step_readers(g, plan);
  for (std::size_t k = 0; k < plan.steps.size(); ++k) {
    const PlannedStep& crop = plan.steps[k];
    if (crop.kind != StepKind::crop || crop.channels.size() > 2) continue;  // not a subsample
    const int v = crop.outputs.at(0);
    if (readers[static_cast<std::size_t>(v)] != 1) continue;
    const std::size_t j = next_reader(plan, k, v);
    if (j == plan.steps.size() || plan.steps[j].inputs[0] != v) continue;
    PlannedStep& reader = plan.steps[j];
    const Shape& in = plan_value(g, plan, crop.inputs[0]).shape;
    const int64_t top = crop.channels.at(0).second, left = crop.channels.at(1).second;
    if (reader.kind == StepKind::crop) {
      reader.channels[0].second += top;
      reader.channels[1].second += left;
    } else {
      const auto* pw = std::get_if<jit::PointwisePlan>(&reader.plan);
      if (reader.kind != StepKind::conv || pw == nullptr || reader.inputs.at(3) == v || pw->shape.src_plane != 0) continue;
      jit::PointwiseShape whole = pw->shape;
      whole.height = in[2];
      whole.width = in[3];
      const int64_t s = whole.stride;
      if (whole.out_height() != pw->shape.out_height() || whole.out_width() != pw->shape.out_width() ||
          top + (whole.out_height() - 1) * s >= in[2] || left + (whole.out_width() - 1) * s >= in[3])
        continue;
      auto planned = jit::plan_pointwise(whole, host);
      const auto* p = std::get_if<jit::PointwisePlan>(&planned);
      if (p == nullptr || p->block != pw->block) continue;
      reader.plan = *p;
      reader.src_shift = top * in[3] + left;
    }
    reader.inputs[0] = crop.inputs[0];
    reader.nodes.insert(reader.nodes.begin(), crop.nodes.begin(), crop.nodes.end());
    reader.op = crop.op + "+" + reader.op;
    plan.steps.erase(plan.steps.begin() + static_cast<std::ptrdiff_t>(k));
    --k;
  }
}

// A Concat (a gather step) of blocked values whose channels are whole blocks need not
// copy: each input can be computed straight into its blocks of the output (one image;
// offsets a multiple of 64 bytes). Inputs must be values a step computes, used by one
// such Concat. The candidates are recorded; the memory planner keeps those that shrink
// the arena (the output then lives from its first input on) and their gathers do nothing.
void alias_concats(const Graph& g, ExecutionPlan& plan) {
  if (plan.block_size == 0) return;
  const int64_t B = plan.block_size;
  const std::size_t total = g.values.size() + plan.added_values.size();
  auto value = [&](int id) -> const Value& { return plan_value(g, plan, id); };
  std::vector<char> produced(total, 0), taken(total, 0), parent(total, 0);
  for (const PlannedStep& st : plan.steps)
    for (int v : st.outputs)
      if (v >= 0) produced[static_cast<std::size_t>(v)] = 1;
  for (std::size_t k = 0; k < plan.steps.size(); ++k) {
    const PlannedStep& st = plan.steps[k];
    if (st.kind != StepKind::gather || st.op != "Concat") continue;
    const int w = st.outputs.at(0);
    const Shape& ws = value(w).shape;
    if (ws.size() != 4 || ws[0] != 1 || taken[static_cast<std::size_t>(w)]) continue;
    const int64_t plane = ws[2] * ws[3];
    std::vector<ExecutionPlan::Alias> found;
    std::vector<char> seen(st.inputs.size(), 0);
    bool ok = true;
    for (std::size_t c = 0; ok && c < st.channels.size();) {
      const auto [i, ch] = st.channels[c];
      const int v = st.inputs[static_cast<std::size_t>(i)];
      const int64_t n = value(v).shape.at(1);
      ok = ch == 0 && !seen[static_cast<std::size_t>(i)] && n % B == 0 && static_cast<int64_t>(c) % B == 0 &&
           c + static_cast<std::size_t>(n) <= st.channels.size() && plan.block[static_cast<std::size_t>(v)] == B &&
           produced[static_cast<std::size_t>(v)] && !taken[static_cast<std::size_t>(v)] &&
           !parent[static_cast<std::size_t>(v)];
      for (int64_t j = 0; ok && j < n; ++j) ok = st.channels[c + static_cast<std::size_t>(j)] == std::pair<int, int64_t>{i, j};
      const int64_t offset = static_cast<int64_t>(c) / B * plane * B * 4;
      ok = ok && offset % 64 == 0;
      if (ok) found.push_back({v, w, offset});
      seen[static_cast<std::size_t>(i)] = 1;
      c += static_cast<std::size_t>(std::max<int64_t>(n, 1));
    }
    if (!ok) continue;
    for (const ExecutionPlan::Alias& a : found) {
      taken[static_cast<std::size_t>(a.value)] = 1;
      plan.aliases.push_back(a);
    }
    parent[static_cast<std::size_t>(w)] = 1;
  }
}

}  // namespace nnjit::graph
