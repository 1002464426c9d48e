// The tile-by-tile runners of fused steps (see runners.hpp).
#include "runtime/runners.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <variant>

#include "nnjit/error.hpp"

namespace nnjit::runtime {

namespace {

// A layer's shape cut to the input rows one tile of a fused step reads: `rows` rows with
// virtual pads above and below where the window leaves the image, planes at the strides
// of the buffers they live in.
template <class Shape>
Shape row_tile(Shape s, int64_t rows, int64_t pad_top, int64_t pad_bottom, int64_t src_plane, int64_t dst_plane) {
  s.height = rows;
  s.pad_top = pad_top;
  s.pad_bottom = pad_bottom;
  s.src_plane = src_plane;
  s.dst_plane = dst_plane;
  return s;
}

// The plan a family's planner gave a tile; a refusal is nnjit's bug (the whole layer was
// planned), reported as internal.
template <class Plan>
Plan tile_plan(std::variant<Plan, std::string> planned, const char* what) {
  if (auto* why = std::get_if<std::string>(&planned)) throw_internal(std::string(what) + ": " + *why);
  return std::get<Plan>(std::move(planned));
}

}  // namespace

void run_split_in_place(ThreadPool& pool, ThreadPool::Balance* balance, int64_t tiles,
                        const std::function<void(int64_t, int)>& first_buffers,
                        const std::function<void(int64_t, int64_t, bool, int)>& run_tiles,
                        const std::function<void(int64_t, int)>& first_output) {
  // A worker's tiles: [begin, end); its first is deferred unless it is the image's first.
  auto middle = [](int64_t begin) { return begin > 0 ? begin + 1 : begin; };
  const ThreadPool::Split split = pool.split(tiles, balance);  // one split for the three rounds
  pool.parallel_for(split, [&](int64_t begin, int64_t end, int worker) {  // round 1
    if (begin >= end) return;
    if (begin > 0) first_buffers(begin, worker);
    if (middle(begin) < end - 1) run_tiles(middle(begin), end - 1, false, worker);
  }, balance);
  pool.parallel_for(split, [&](int64_t begin, int64_t end, int worker) {  // round 2: last tiles
    if (begin < end && middle(begin) <= end - 1) run_tiles(end - 1, end, middle(begin) < end - 1, worker);
  }, nullptr);
  pool.parallel_for(split, [&](int64_t begin, int64_t end, int worker) {  // round 3: deferred first tiles
    if (begin > 0 && begin < end) first_output(begin, worker);
  }, nullptr);
}

InvertedResidualRunner::InvertedResidualRunner(const graph::Graph& g, const Step& s, const jit::HostInfo& host)
    : b_(*s.block) {
  const jit::PointwisePlan& e = b_.expand;
  const jit::DepthwisePlan& d = b_.depthwise;
  const jit::PointwisePlan& p = b_.project;
  const std::string who = serves(g, s);
  if (b_.has_expand)
    expand_w_ = jit::pack_pointwise_weights(e, data_or_null(g, s.inputs[1]), data_or_null(g, s.inputs[2]));
  dw_w_ = jit::pack_depthwise_weights(d, data_or_null(g, s.inputs[3]), data_or_null(g, s.inputs[4]));
  project_w_ = jit::pack_pointwise_weights(p, data_or_null(g, s.inputs[5]), data_or_null(g, s.inputs[6]));
  H_ = d.shape.height;
  W_ = d.shape.width;
  Ho_ = d.shape.out_height();
  Wo_ = d.shape.out_width();
  B_ = d.block;
  // Without an expand, the depthwise reads the block's input where it lies — or, in
  // place, a copy of the rows it needs (the tile writes over them).
  buffered_ = b_.has_expand || b_.in_place;
  plane_e_ = buffered_ ? b_.expanded_rows * W_ : H_ * W_;
  plane_d_ = b_.dw_buffered() ? b_.tile_rows * Wo_ : Ho_ * Wo_;
  const jit::HostInfo tile_host = jit::restrict_isa(host, d.isa);
  const int64_t s_ = d.shape.stride, dk = d.shape.dilated_kernel();
  int64_t prev_i1 = -1;
  // Depthwise rows in the output (dw_in_output): the whole layer's kernel serves every
  // tile, called with the tile's rows (it reads the input where it lies, and writes at
  // the output's plane).
  if (!b_.dw_buffered())
    rows_depthwise_ = jit::get_depthwise_kernel(d, who);
  // Interior tiles share one geometry: a tile like the last one reuses its kernels
  // without planning them and building their cache keys again.
  std::map<std::array<int64_t, 4>, std::shared_ptr<const jit::DepthwiseKernel>> depthwise_for;
  std::map<int64_t, std::shared_ptr<const jit::PointwiseKernel>> expand_for, project_for;
  for (int64_t r0 = 0; r0 < Ho_; r0 += b_.tile_rows) {
    Tile t;
    t.r0 = r0;
    t.r1 = std::min(Ho_, r0 + b_.tile_rows);
    const int64_t lo = t.r0 * s_ - d.shape.pad_top, hi = (t.r1 - 1) * s_ - d.shape.pad_top + dk;
    t.i0 = std::max<int64_t>(0, lo);
    t.i1 = std::min(H_, hi);
    t.keep = buffered_ && prev_i1 > t.i0 ? prev_i1 - t.i0 : 0;
    prev_i1 = t.i1;
    if (!rows_depthwise_) {
      auto& dw = depthwise_for[{t.i1 - t.i0, t.i0 - lo, hi - t.i1, t.r1 - t.r0}];
      if (!dw) {
        const auto ds = row_tile(d.shape, t.i1 - t.i0, t.i0 - lo, hi - t.i1, plane_e_, plane_d_);
        dw = jit::get_depthwise_kernel(tile_plan(jit::plan_depthwise(ds, tile_host), "inverted-residual tile"), who);
      }
      t.depthwise = dw;
    }
    auto expand = [&](int64_t rows) {
      auto& k = expand_for[rows];
      if (!k) k = expand_kernel(rows, who);
      return k;
    };
    if (b_.has_expand) t.expand_fresh = expand(t.i1 - t.i0);
    if (b_.has_expand && t.keep > 0 && t.i1 - t.i0 > t.keep) t.expand_rolled = expand(t.i1 - t.i0 - t.keep);
    auto& project = project_for[t.r1 - t.r0];
    if (!project) {
      const jit::PointwisePlan pp = jit::pointwise_pixels(p, (t.r1 - t.r0) * Wo_, plane_d_, Ho_ * Wo_);
      if (!b_.dw_buffered() && !jit::pointwise_in_place(pp))
        throw_internal("inverted-residual tile: its project cannot run over its depthwise rows (" + pp.key() + ")");
      project = jit::get_pointwise_kernel(pp, who);
    }
    t.project = project;
    tiles_.push_back(std::move(t));
  }
}

std::string InvertedResidualRunner::name() const {
  return "ir_block[" + (b_.has_expand ? b_.expand.name() + " > " : "") + b_.depthwise.name() + " > " +
         b_.project.name() + "]x" + std::to_string(b_.tile_rows);
}

void InvertedResidualRunner::depthwise_tile(const float* src, float* expanded, float* dw, int64_t k, bool rolled) const {
  const Tile& t = tiles_[static_cast<std::size_t>(k)];
  rolled = rolled && t.keep > 0;
  const int64_t keep = rolled ? t.keep : 0;
  const int64_t eb = b_.has_expand ? b_.expand.out_blocks : b_.depthwise.blocks;
  if (keep > 0) {  // the rows this tile shares with the last move to the buffer's top
    const int64_t from = (t.i0 - tiles_[static_cast<std::size_t>(k - 1)].i0) * W_ * B_;
    for (int64_t c = 0; c < eb; ++c) {
      float* block = expanded + c * plane_e_ * B_;
      std::memmove(block, block + from, static_cast<std::size_t>(keep * W_ * B_) * sizeof(float));
    }
  }
  const float* dw_src = buffered_ ? expanded : src + t.i0 * W_ * B_;
  if (b_.has_expand && t.i1 - t.i0 > keep) {
    const jit::PointwiseKernel& ek = rolled ? *t.expand_rolled : *t.expand_fresh;
    ek({src + (t.i0 + keep) * W_ * B_, expanded + keep * W_ * B_, expand_w_.weights.data(), expand_w_.bias.data(),
        nullptr, 0, ek.plan().tiles()});
  } else if (buffered_ && !b_.has_expand) {
    for (int64_t c = 0; c < eb; ++c)
      std::memcpy(expanded + (c * plane_e_ + keep * W_) * B_, src + (c * H_ + t.i0 + keep) * W_ * B_,
                  static_cast<std::size_t>((t.i1 - t.i0 - keep) * W_ * B_) * sizeof(float));
  }
  if (rows_depthwise_) {  // rows [r0, r1) of the whole layer, the first at dw
    const auto first = reinterpret_cast<std::uintptr_t>(dw) - static_cast<std::uintptr_t>(t.r0 * Wo_ * B_) * sizeof(float);
    const jit::DepthwiseKernel& dk = *rows_depthwise_;
    dk(rows_args(dk.plan(), src, reinterpret_cast<float*>(first), dw_w_, nullptr, t.r0, t.r1));
    return;
  }
  const jit::DepthwiseKernel& dk = *t.depthwise;
  dk(rows_args(dk.plan(), dw_src, dw, dw_w_, nullptr, 0, t.r1 - t.r0));
}

void InvertedResidualRunner::project_tile(const float* dw, float* dst, const float* residual, int64_t k) const {
  const Tile& t = tiles_[static_cast<std::size_t>(k)];
  const jit::PointwiseKernel& pk = *t.project;
  pk({dw, dst + t.r0 * Wo_ * B_, project_w_.weights.data(), project_w_.bias.data(),
      residual ? residual + t.r0 * Wo_ * B_ : nullptr, 0, pk.plan().tiles()});
}

void InvertedResidualRunner::run(const float* src, float* dst, const float* residual, float* expanded, float* dw,
                                 int64_t begin, int64_t end, bool after_previous) const {
  if (!b_.dw_buffered()) {  // the depthwise rows in the output rows of the run's tallest tile, run last
    int64_t last = begin;
    for (int64_t k = begin; k < end; ++k)
      if (rows(k) >= rows(last)) last = k;
    float* rows_of_last = dst + tiles_[static_cast<std::size_t>(last)].r0 * Wo_ * B_;
    for (int64_t k = begin; k < end; ++k)
      if (k != last) {
        depthwise_tile(src, expanded, rows_of_last, k, false);
        project_tile(rows_of_last, dst, residual, k);
      }
    if (begin < end) {
      depthwise_tile(src, expanded, rows_of_last, last, false);
      project_tile(rows_of_last, dst, residual, last);
    }
    return;
  }
  for (int64_t k = begin; k < end; ++k) {
    depthwise_tile(src, expanded, dw, k, k > begin || after_previous);
    project_tile(dw, dst, residual, k);
  }
}

void InvertedResidualRunner::run_in_place(float* data, const float* residual, float* buffers, ThreadPool& pool,
                                          ThreadPool::Balance* balance) const {
  const int64_t pair = expanded_floats() + depthwise_floats();
  float* spare = buffers + pool.threads() * pair;  // the first tiles' pairs
  run_split_in_place(
      pool, balance, tiles(),
      [&](int64_t i, int worker) {
        float* e = spare + worker * pair;
        depthwise_tile(data, e, e + expanded_floats(), i, false);
      },
      [&](int64_t begin, int64_t end, bool after, int worker) {
        float* e = buffers + worker * pair;
        run(data, data, residual, e, e + expanded_floats(), begin, end, after);
      },
      [&](int64_t i, int worker) { project_tile(spare + worker * pair + expanded_floats(), data, residual, i); });
}

std::size_t InvertedResidualRunner::packed_bytes() const {
  std::size_t n = 0;
  for (const auto* w : {&expand_w_, &project_w_}) n += w->weights.size() + w->bias.size();
  return (n + dw_w_.weights.size() + dw_w_.bias.size()) * sizeof(float);
}

std::shared_ptr<const jit::PointwiseKernel> InvertedResidualRunner::expand_kernel(int64_t rows, const std::string& who) {
  return jit::get_pointwise_kernel(jit::pointwise_pixels(b_.expand, rows * W_, H_ * W_, plane_e_), who);
}

RowStreamRunner::RowStreamRunner(const graph::Graph& g, const Step& s, const jit::HostInfo& host)
    : b_(*s.stream) {
  const std::string who = serves(g, s);
  const std::size_t n = b_.stages.size();
  for (std::size_t k = 0; k < n; ++k) {
    window_.push_back(graph::row_window(b_.stages[k]));
    const jit::FloatsIn w = data_or_null(g, s.inputs[1 + 2 * k]);
    const jit::FloatsIn bias = data_or_null(g, s.inputs[2 + 2 * k]);
    if (const auto* pw = std::get_if<jit::PointwisePlan>(&b_.stages[k]))
      pointwise_w_.push_back(std::make_shared<jit::PointwiseWeights>(jit::pack_pointwise_weights(*pw, w, bias)));
    else pointwise_w_.push_back(nullptr);
    if (const auto* d = std::get_if<jit::DensePlan>(&b_.stages[k]))
      dense_w_.push_back(std::make_shared<jit::DenseWeights>(jit::pack_dense_weights(*d, w, bias)));
    else dense_w_.push_back(nullptr);
    if (const auto* gr = std::get_if<jit::GroupedPlan>(&b_.stages[k]))
      grouped_w_.push_back(std::make_shared<jit::GroupedWeights>(jit::pack_grouped_weights(*gr, w, bias)));
    else grouped_w_.push_back(nullptr);
  }
  for (std::size_t k = 0; k + 1 < n; ++k) {
    buffer_offset_.push_back(buffers_floats_);
    buffers_floats_ += b_.buffer_floats(k);
  }
  const auto& first = b_.stages.front();
  const bool nchw = std::holds_alternative<jit::DensePlan>(first) && std::get<jit::DensePlan>(first).shape.src_nchw;
  const int64_t B = std::visit([](const auto& p) { return int64_t{p.block}; }, first);
  src_row_floats_ = (nchw ? 1 : B) * input_width(first);
  src_plane_ = window_[0].in_rows * input_width(first);
  const jit::HostInfo tile_host = jit::restrict_isa(host, std::visit([](const auto& p) { return p.isa; }, first));

  std::vector<int64_t> prev_i1(n - 1, -1);
  const graph::RowWindow& last = window_.back();
  for (int64_t r0 = 0; r0 < last.out_rows; r0 += b_.tile_rows) {
    Tile t;
    t.rows.assign(n, {0, 0});
    t.keep.assign(n - 1, 0);
    t.rows[n - 1] = {r0, std::min(last.out_rows, r0 + b_.tile_rows)};
    for (std::size_t k = n - 1; k-- > 0;) {  // the rows of stage k's output that stage k + 1 reads
      const graph::RowWindow& w = window_[k + 1];
      const auto [a, b] = t.rows[k + 1];
      t.rows[k] = {std::max<int64_t>(0, a * w.stride - w.pad_top),
                   std::min(window_[k].out_rows, (b - 1) * w.stride - w.pad_top + w.extent)};
      t.keep[k] = prev_i1[k] > t.rows[k].first ? prev_i1[k] - t.rows[k].first : 0;
      prev_i1[k] = t.rows[k].second;
    }
    for (std::size_t k = 0; k < n; ++k) {
      t.fresh.push_back(stage_run(k, t, t.rows[k].first, tile_host, who));
      const int64_t keep = k + 1 < n ? t.keep[k] : 0;
      t.rolled.push_back(keep > 0 && t.rows[k].second - t.rows[k].first > keep
                             ? stage_run(k, t, t.rows[k].first + keep, tile_host, who)
                             : StageRun{});
    }
    tiles_.push_back(std::move(t));
  }
}

std::string RowStreamRunner::name() const {
  std::string n = "row_stream[";
  for (std::size_t k = 0; k < b_.stages.size(); ++k)
    n += (k ? " > " : "") + std::visit([](const auto& p) { return p.name(); }, b_.stages[k]);
  return n + "]x" + std::to_string(b_.tile_rows);
}

std::size_t RowStreamRunner::packed_bytes() const {
  std::size_t floats = 0;
  for (const auto& w : pointwise_w_)
    if (w) floats += w->weights.size() + w->bias.size();
  for (const auto& w : dense_w_)
    if (w) floats += w->weights.size() + w->bias.size();
  for (const auto& w : grouped_w_)
    if (w) floats += w->weights.size() + w->bias.size();
  return floats * sizeof(float);
}

void RowStreamRunner::run(const float* src, float* dst, const float* residual, float* buffers, int64_t begin,
                          int64_t end, bool after_previous) const {
  const std::size_t n = b_.stages.size();
  for (int64_t i = begin; i < end; ++i) {
    const Tile& t = tiles_[static_cast<std::size_t>(i)];
    for (std::size_t k = 0; k < n; ++k) {
      const bool is_last = k + 1 == n;
      float* out = is_last ? dst : buffers + buffer_offset_[k];
      const bool rolled = !is_last && (i > begin || after_previous) && t.keep[k] > 0;
      if (rolled) {  // the rows this tile shares with the last move to the buffer's top
        const int64_t row = window_[k].row_floats / blocks(k), plane = b_.buffer_rows[k] * row;
        const int64_t from = (t.rows[k].first - tiles_[static_cast<std::size_t>(i - 1)].rows[k].first) * row;
        for (int64_t c = 0; c < blocks(k); ++c)
          std::memmove(out + c * plane, out + c * plane + from, static_cast<std::size_t>(t.keep[k] * row) * sizeof(float));
      }
      const StageRun& r = rolled ? t.rolled[k] : t.fresh[k];
      if (!r.call) continue;  // every row it needs was kept
      const float* in = k == 0 ? src : buffers + buffer_offset_[k - 1];
      r.call(in + r.src_offset, out + r.dst_offset, is_last && residual ? residual + r.dst_offset : nullptr);
    }
  }
}

void RowStreamRunner::run_stages(const float* src, float* dst, const float* residual, float* buffers, int64_t i,
                                 std::size_t from, std::size_t to) const {
  const std::size_t n = b_.stages.size();
  for (std::size_t k = from; k < to; ++k) {
    const StageRun& r = tiles_[static_cast<std::size_t>(i)].fresh[k];
    const bool is_last = k + 1 == n;
    const float* in = k == 0 ? src : buffers + buffer_offset_[k - 1];
    float* out = is_last ? dst : buffers + buffer_offset_[k];
    r.call(in + r.src_offset, out + r.dst_offset, is_last && residual ? residual + r.dst_offset : nullptr);
  }
}

void RowStreamRunner::run_in_place(float* data, float* buffers, ThreadPool& pool, ThreadPool::Balance* balance) const {
  const std::size_t n = b_.stages.size();
  float* spare = buffers + pool.threads() * buffers_floats_;  // the first tiles' buffers
  run_split_in_place(
      pool, balance, tiles(),
      [&](int64_t i, int worker) { run_stages(data, nullptr, nullptr, spare + worker * buffers_floats_, i, 0, n - 1); },
      [&](int64_t begin, int64_t end, bool after, int worker) {
        run(data, data, data, buffers + worker * buffers_floats_, begin, end, after);
      },
      [&](int64_t i, int worker) { run_stages(nullptr, data, data, spare + worker * buffers_floats_, i, n - 1, n); });
}

int64_t RowStreamRunner::input_width(const graph::RowStage& stage) {
  return std::visit([](const auto& p) { return int64_t{p.shape.width}; }, stage);
}

int64_t RowStreamRunner::blocks(std::size_t k) const {
  return std::visit(
      [](const auto& p) -> int64_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(p)>, jit::PoolPlan>) return p.blocks;
        else return p.out_blocks;
      },
      b_.stages[k]);
}

RowStreamRunner::StageRun RowStreamRunner::stage_run(std::size_t k, const Tile& t, int64_t first,
                                                     const jit::HostInfo& host, const std::string& who) {
  const std::size_t n = b_.stages.size();
  const graph::RowWindow& w = window_[k];
  const bool is_last = k + 1 == n;
  const int64_t last_row = t.rows[k].second;
  // Input rows: a window [lo, hi) clipped to what exists; rows of the source start at
  // in_first (the image's row 0, or the first row the source buffer holds).
  const int64_t lo = first * w.stride - w.pad_top, hi = (last_row - 1) * w.stride - w.pad_top + w.extent;
  const int64_t j0 = std::max<int64_t>(0, lo), j1 = std::min(w.in_rows, hi);
  const int64_t in_first = k == 0 ? 0 : t.rows[k - 1].first;
  const int64_t in_row_floats = k == 0 ? src_row_floats_ : window_[k - 1].row_floats / blocks(k - 1);
  const int64_t in_plane = k == 0 ? src_plane_ : b_.buffer_rows[k - 1] * window_[k - 1].out_width;
  const int64_t out_first = is_last ? 0 : t.rows[k].first;
  const int64_t out_plane = is_last ? w.out_rows * w.out_width : b_.buffer_rows[k] * w.out_width;
  StageRun r;
  r.src_offset = (j0 - in_first) * in_row_floats;
  r.dst_offset = (first - out_first) * (w.row_floats / blocks(k));
  const int64_t rows = last_row - first;
  const std::array<int64_t, 5> key{static_cast<int64_t>(k), j1 - j0, j0 - lo, hi - j1, rows};
  std::shared_ptr<const void>& kernel = kernels_[key];
  if (const auto* pw = std::get_if<jit::PointwisePlan>(&b_.stages[k])) {
    if (!kernel) kernel = jit::get_pointwise_kernel(jit::pointwise_pixels(*pw, rows * w.out_width, in_plane, out_plane), who);
    auto kp = std::static_pointer_cast<const jit::PointwiseKernel>(kernel);
    note_code(*kp);
    const jit::PointwiseWeights* wt = pointwise_w_[k].get();
    r.call = [kp, wt](const float* in, float* out, const float* res) {
      (*kp)({in, out, wt->weights.data(), wt->bias.data(), res, 0, kp->plan().tiles()});
    };
  } else if (const auto* d = std::get_if<jit::DensePlan>(&b_.stages[k])) {
    if (!kernel) {
      const auto tile = tile_plan(jit::plan_dense(row_tile(d->shape, j1 - j0, j0 - lo, hi - j1, in_plane, out_plane), host),
                                  "row stream tile");
      if (!(tile.main == d->main && tile.tail == d->tail && tile.main_tiles == d->main_tiles))
        throw_internal("row stream tile: its channel tiles differ from the layer's packing");
      kernel = jit::get_dense_kernel(tile, who);
    }
    auto kp = std::static_pointer_cast<const jit::DenseKernel>(kernel);
    note_code(*kp);
    const jit::DenseWeights* wt = dense_w_[k].get();
    r.call = [kp, wt, rows](const float* in, float* out, const float* res) {
      (*kp)(rows_args(kp->plan(), in, out, *wt, res, 0, rows));
    };
  } else if (const auto* gr = std::get_if<jit::GroupedPlan>(&b_.stages[k])) {
    if (!kernel) {
      const auto tile = tile_plan(
          jit::plan_grouped(row_tile(gr->shape, j1 - j0, j0 - lo, hi - j1, in_plane, out_plane), host), "row stream tile");
      if (!(tile.window_blocks == gr->window_blocks && tile.rotate == gr->rotate && tile.lane_step == gr->lane_step))
        throw_internal("row stream tile: its weight layout differs from the layer's packing");
      kernel = jit::get_grouped_kernel(tile, who);
    }
    auto kp = std::static_pointer_cast<const jit::GroupedKernel>(kernel);
    note_code(*kp);
    const jit::GroupedWeights* wt = grouped_w_[k].get();
    r.call = [kp, wt, rows](const float* in, float* out, const float* res) {
      (*kp)(rows_args(kp->plan(), in, out, *wt, res, 0, rows));
    };
  } else {
    const auto& pool = std::get<jit::PoolPlan>(b_.stages[k]);
    if (!kernel) {
      jit::PoolShape ps = row_tile(pool.shape, j1 - j0, j0 - lo, hi - j1, in_plane, out_plane);
      ps.out_height = rows;  // a pool's output size is given, not derived
      kernel = jit::get_pool_kernel(tile_plan(jit::plan_pool(ps, host), "row stream tile"), who);
    }
    auto kp = std::static_pointer_cast<const jit::PoolKernel>(kernel);
    note_code(*kp);
    r.call = [kp](const float* in, float* out, const float*) { (*kp)({in, out, 0, kp->plan().blocks}); };
  }
  return r;
}

}  // namespace nnjit::runtime
