// The fused steps that run tile by tile, for compile.cpp: an inverted-residual block
// (graph::InvertedResidualPlan) and a row stream of convs and a pool
// (graph::RowStreamPlan). A runner packs its weights and makes (or finds) every tile's
// kernels when constructed, at load; run() then does one worker's run of tiles with that
// worker's buffers, and allocates nothing.
//
//   auto r = std::make_shared<const RowStreamRunner>(graph, step, host);
//   r->run(src, dst, residual, buffers, 0, r->tiles());   // buffers: r->buffers_floats()
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jit/layout.hpp"
#include "runtime/model_impl.hpp"
#include "runtime/thread_pool.hpp"

namespace nnjit::runtime {

// A constant's floats for a packer, valid until its step is compiled (nullptr for an
// absent input); see compile.cpp.
jit::FloatsIn data_or_null(const graph::Graph& g, int v);
// The graph nodes a step serves, as kernels are registered for the profiler.
std::string serves(const graph::Graph& g, const Step& s);

// The arguments of one call of a k x k family's kernel: an image, every channel block or
// tile, and rows [r0, r1).
inline jit::DepthwiseArgs rows_args(const jit::DepthwisePlan& p, const float* src, float* dst, const jit::DepthwiseWeights& w,
                             const float* res, int64_t r0, int64_t r1) {
  return {src, dst, w.weights.data(), w.bias.data(), res, 0, p.blocks, r0, r1};
}
inline jit::DenseArgs rows_args(const jit::DensePlan& p, const float* src, float* dst, const jit::DenseWeights& w,
                         const float* res, int64_t r0, int64_t r1) {
  return {src, dst, w.weights.data(), w.bias.data(), res, 0, p.tiles(), r0, r1};
}
inline jit::GroupedArgs rows_args(const jit::GroupedPlan& p, const float* src, float* dst, const jit::GroupedWeights& w,
                           const float* res, int64_t r0, int64_t r1) {
  return {src, dst, w.weights.data(), w.bias.data(), res, 0, p.out_blocks, r0, r1};
}

// A step writing over its own input, its tiles split between the pool's workers in
// three rounds so that no input row is overwritten before every tile reading it has
// read it (an inverted-residual block or a row stream in place). A worker's first tile
// (but the image's first) is deferred: round 1 computes its buffers (first_buffers,
// reading only), then runs the worker's tiles but its last; round 2 runs every
// worker's last tile; round 3 writes the deferred first tiles (first_output). A tile
// must be at least as tall as the rows its windows reach above and below it. The three
// rounds share one split, sized by `balance` (round 1 teaches it; may be null).
void run_split_in_place(ThreadPool& pool, ThreadPool::Balance* balance, int64_t tiles,
                        const std::function<void(int64_t, int)>& first_buffers,
                        const std::function<void(int64_t, int64_t, bool, int)>& run_tiles,
                        const std::function<void(int64_t, int)>& first_output);

// An inverted-residual block, tile by tile (graph::InvertedResidualPlan). Each tile's
// kernels are derived from the whole layers' plans, so one packing of each weight serves
// every tile; tiles of equal geometry share their kernels through the family caches.
class InvertedResidualRunner {
 public:
  InvertedResidualRunner(const graph::Graph& g, const Step& s, const jit::HostInfo& host);

  int64_t tiles() const { return static_cast<int64_t>(tiles_.size()); }
  const void* code() const { return first_depthwise() ? first_depthwise()->code() : nullptr; }
  std::size_t code_size() const { return first_depthwise() ? first_depthwise()->code_size() : 0; }
  std::string name() const;

  // Tiles [begin, end) in order, with one worker's buffers (`after_previous`: they hold
  // tile begin - 1's rows). With the plan's in_place, dst may be src (on one thread;
  // run_in_place splits between threads). Without dw_buffered(), dw is not used: the
  // depthwise rows go to dst's rows of the run's tallest tile, run last.
  void run(const float* src, float* dst, const float* residual, float* expanded, float* dw, int64_t begin,
           int64_t end, bool after_previous = false) const;
  // The whole step with dst == src (graph::InvertedResidualPlan::in_place) on the pool
  // (run_split_in_place; the deferred first tiles' pairs follow every worker's pair).
  void run_in_place(float* data, const float* residual, float* buffers, ThreadPool& pool,
                    ThreadPool::Balance* balance) const;

  int64_t expanded_floats() const { return b_.expanded_floats(); }
  std::size_t packed_bytes() const;
  int64_t depthwise_floats() const { return b_.depthwise_floats(); }

 private:
  struct Tile {
    int64_t r0 = 0, r1 = 0;  // output rows
    int64_t i0 = 0, i1 = 0;  // input (expanded) rows they read
    int64_t keep = 0;        // rows shared with the previous tile
    std::shared_ptr<const jit::PointwiseKernel> expand_fresh, expand_rolled, project;
    std::shared_ptr<const jit::DepthwiseKernel> depthwise;  // unless rows_depthwise_
  };
  std::shared_ptr<const jit::PointwiseKernel> expand_kernel(int64_t rows, const std::string& who);
  const jit::DepthwiseKernel* first_depthwise() const {
    return rows_depthwise_ ? rows_depthwise_.get() : tiles_.empty() ? nullptr : tiles_[0].depthwise.get();
  }
  // Tile k's depthwise rows into dw, its input rows (expanded or copied) into expanded
  // first; `rolled` keeps the rows it shares with tile k - 1, run just before.
  void depthwise_tile(const float* src, float* expanded, float* dw, int64_t k, bool rolled) const;
  void project_tile(const float* dw, float* dst, const float* residual, int64_t k) const;
  int64_t rows(int64_t k) const { return tiles_[static_cast<std::size_t>(k)].r1 - tiles_[static_cast<std::size_t>(k)].r0; }

  graph::InvertedResidualPlan b_;
  jit::PointwiseWeights expand_w_, project_w_;
  jit::DepthwiseWeights dw_w_;
  int64_t H_ = 0, W_ = 0, Ho_ = 0, Wo_ = 0, B_ = 0, plane_e_ = 0, plane_d_ = 0;
  bool buffered_ = false;  // the depthwise reads a buffer (expanded or copied rows), not src
  std::shared_ptr<const jit::DepthwiseKernel> rows_depthwise_;  // every tile's, without dw_buffered()
  std::vector<Tile> tiles_;
};

// A chain of convs (and a max pool) streamed row by row (graph::RowStreamPlan). Each
// stage's tile kernels are derived from its whole layer's plan (same packing) and shared
// by tiles of one geometry.
class RowStreamRunner {
 public:
  RowStreamRunner(const graph::Graph& g, const Step& s, const jit::HostInfo& host);

  int64_t tiles() const { return static_cast<int64_t>(tiles_.size()); }
  const void* code() const { return code_; }
  std::size_t code_size() const { return code_size_; }
  std::string name() const;
  int64_t buffers_floats() const { return buffers_floats_; }
  std::size_t packed_bytes() const;

  // Tiles [begin, end) in order, with one worker's buffers (`after_previous`: they hold
  // tile begin - 1's rows).
  void run(const float* src, float* dst, const float* residual, float* buffers, int64_t begin, int64_t end,
           bool after_previous = false) const;
  // The whole step with dst == residual == src (an identity shortcut taking the output
  // in place) on the pool (run_split_in_place; the deferred first tiles' buffers follow
  // every worker's).
  void run_in_place(float* data, float* buffers, ThreadPool& pool, ThreadPool::Balance* balance) const;

 private:
  // One stage's work in one tile: its kernel on the rows from `first` to the tile's end,
  // reading at src_offset floats into its source and writing at dst_offset into its
  // destination (a buffer, or the step's output for the last stage).
  struct StageRun {
    std::function<void(const float*, float*, const float*)> call;
    int64_t src_offset = 0, dst_offset = 0;
  };
  struct Tile {
    std::vector<std::pair<int64_t, int64_t>> rows;  // per stage: its output rows this tile needs
    std::vector<int64_t> keep;                      // per buffer: rows shared with the last tile
    std::vector<StageRun> fresh, rolled;            // per stage: from the first row, after the kept ones
  };

  static int64_t input_width(const graph::RowStage& stage);
  int64_t blocks(std::size_t k) const;

  // The first kernel made stands for the step in the profiler (as for fused blocks).
  void note_code(const jit::JitKernel& k) {
    if (code_) return;
    code_ = k.code();
    code_size_ = k.code_size();
  }

  StageRun stage_run(std::size_t k, const Tile& t, int64_t first, const jit::HostInfo& host, const std::string& who);
  // Stages [from, to) of tile i from their first rows (a fresh tile).
  void run_stages(const float* src, float* dst, const float* residual, float* buffers, int64_t i, std::size_t from,
                  std::size_t to) const;

  graph::RowStreamPlan b_;
  std::vector<graph::RowWindow> window_;
  std::vector<std::shared_ptr<jit::PointwiseWeights>> pointwise_w_;
  std::vector<std::shared_ptr<jit::DenseWeights>> dense_w_;
  std::vector<std::shared_ptr<jit::GroupedWeights>> grouped_w_;
  std::vector<int64_t> buffer_offset_;  // per stage but the last: where its buffer starts
  int64_t buffers_floats_ = 0, src_row_floats_ = 0, src_plane_ = 0;
  std::map<std::array<int64_t, 5>, std::shared_ptr<const void>> kernels_;  // by stage and geometry
  const void* code_ = nullptr;
  std::size_t code_size_ = 0;
  std::vector<Tile> tiles_;
};

}  // namespace nnjit::runtime
