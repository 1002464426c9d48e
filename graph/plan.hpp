// The planner: which kernel runs each node, which nodes are fused into one step, and in
// which layout every activation lives. A pure function of (Graph, HostInfo, Options).
//
//   ExecutionPlan plan = plan_graph(graph, host, options);
//   for (const PlannedStep& s : plan.steps) ...   // in run order
//
// What it decides:
//  - Conv nodes (2-D, float, constant weights) run a JIT family chosen by their geometry:
//    pointwise (1x1, no padding, stride 1/2), depthwise (groups = channels), grouped
//    (other groups), dense (k x k). A following activation (Relu, Clip, LeakyRelu,
//    Sigmoid, HardSigmoid, HardSwish, and the exported forms of SiLU x*Sigmoid(x),
//    HardSwish x*HardSigmoid(x) and GELU x*(erf(x/sqrt 2)+1)*0.5) and a residual Add are fused into the conv's step, when
//    the values in between have no other reader and are not graph outputs.
//  - Pooling (max, average, global, ReduceMean over H and W), standalone activations,
//    Add/Mul (with a following activation fused) and the squeeze-excitation scale
//    x * s[N,C,1,1] run the pool / eltwise families on blocked tensors, when their input
//    already exists in blocked layout (no reorder just to use them).
//  - MatMul with constant 2-D weights (Linear layers on [..., K] activations: ConvNeXt's
//    MLPs, attention projections) and Gemm nodes the pointwise path does not take run the
//    gemm family on plain tensors, a following bias Add and activation fused.
//  - Squeeze-excitation (GlobalAveragePool -> 1x1 conv + act -> 1x1 conv + Sigmoid or
//    HardSigmoid -> Mul) is one se_block step.
//  - Channel data movement between blocked tensors — Concat over channels, Slice of
//    channels, and the channel shuffle Reshape [N,g,C/g,H,W] -> Transpose(0,2,1,3,4) ->
//    Reshape [N,C,H,W] — is one gather step (an index remap), not a reorder and a copy.
//  - Layouts: a JIT step reads and writes channel-blocked tensors (nChw16c on AVX-512,
//    nChw8c on AVX2); a reference op reads and writes plain ONNX layout. Where the two
//    meet, a reorder step converts; each value is converted at most once per direction.
//    A blocked value is a new value appended after the graph's (its "twin"), so a value
//    id names one layout for its whole life; graph inputs and outputs stay plain.
//  - Every step that does not run a JIT kernel says why (`reason`).
// Contracts: plan_graph reads the graph only; the runtime appends `added_values` to its
// graph before it allocates slots. Steps are in an order where every input is written
// by an earlier step (or is a graph input or constant).
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "graph/graph.hpp"
#include "jit/dense/dense.hpp"
#include "jit/depthwise/depthwise.hpp"
#include "jit/eltwise/eltwise.hpp"
#include "jit/gemm/gemm.hpp"
#include "jit/grouped/grouped.hpp"
#include "jit/host_info.hpp"
#include "jit/pointwise/pointwise.hpp"
#include "jit/pool/pool.hpp"
#include "nnjit/options.hpp"

namespace nnjit::graph {

enum class StepKind {
  reference,   // the op's reference compute, plain layout
  to_blocked,  // reorder plain -> blocked
  to_plain,    // reorder blocked -> plain
  conv,        // a JIT convolution family, fused activation / residual
  pool,        // a JIT pooling kernel on blocked tensors: {src}, {dst}
  eltwise,     // a JIT elementwise kernel on blocked tensors: {a, b or -1}, {dst}
  se_block,    // squeeze-excitation: global average pool -> 1x1 conv + act -> 1x1 conv +
               // gate -> x * gate, one step (see SqueezeExcitePlan)
  crop,        // Slice of H and W on a blocked tensor: whole pixels copied; `channels`
               // holds {top, left} and, for every step-th row and column, {step}
  gather,      // channels copied from blocked inputs by a table (`channels`): Concat of
               // any widths, Slice of channels, ShuffleNet's Reshape-Transpose-Reshape
  ir_block,    // inverted residual: pointwise expand -> depthwise -> pointwise project
               // [+ add], tile by tile over output rows (see InvertedResidualPlan)
  row_stream,  // a chain of convs (and a max pool) streaming rows through small buffers
               // (see RowStreamPlan)
  gemm,        // MatMul / Gemm with constant 2-D weights on plain row-major tensors (every
               // leading axis of A is rows), fused bias Add and activation:
               // {a, weights, bias or -1}, {dst}
};
const char* step_kind_name(StepKind kind);

using KernelPlan = std::variant<std::monostate, jit::PointwisePlan, jit::DepthwisePlan, jit::DensePlan,
                                jit::GroupedPlan, jit::PoolPlan, jit::EltwisePlan, jit::GemmPlan>;

// The kernel's name (jit/README.md), or "" for monostate.
std::string kernel_plan_name(const KernelPlan& plan);
// The plan's key (every field the emitter reads), or "" for monostate.
std::string kernel_plan_key(const KernelPlan& plan);
// Floating-point operations of one run of the planned kernel (0 for monostate).
double kernel_plan_flops(const KernelPlan& plan);

// An inverted-residual block run as one step (or its depthwise -> project part when no
// expand precedes it): for each tile of `tile_rows` output rows,
// expand the input rows the tile needs into a small buffer, run the depthwise over it
// into a second buffer, and project that into the block's output. The expanded and
// depthwise tensors never exist whole. Consecutive tiles of one thread reuse the
// expanded rows they share (no recomputation but at a thread's first tile).
// The plans are the whole-layer plans (their tiles and packing); the runtime derives
// each tile's kernels from them.
struct InvertedResidualPlan {
  bool has_expand = true;  // false: the block starts at its depthwise (MobileNetV2's first)
  jit::PointwisePlan expand;
  jit::DepthwisePlan depthwise;
  jit::PointwisePlan project;
  int64_t tile_rows = 0;       // depthwise output rows per tile
  int64_t expanded_rows = 0;   // rows of the expanded buffer (a tile's input rows, at most)
  // The output may take the input's bytes (MCUNet's in-place depthwise): stride 1, the
  // output no larger than the input, and the input read by this block alone. Each tile
  // reads the input rows it needs (expanded, or copied when there is no expand) into the
  // expanded buffer before it writes its output rows, which no later tile reads; with
  // threads, each worker's first tile is written last (InvertedResidualRunner), so tiles
  // of at least the depthwise's top and bottom pads. The planner says whether it may
  // (in_place_ok); the engine turns it on where that shrinks the arena (its buffers:
  // buffers_floats()).
  bool in_place_ok = false;
  bool in_place = false;
  // Without an expand, and with the project's output blocks those of the depthwise, the
  // depthwise rows need no buffer (but in place, which copies input rows to one): they
  // go to the output rows of one tile of each worker's run — its tallest, which runs
  // last: its depthwise into its own output rows, its project over them
  // (jit::pointwise_in_place). No other tile reads or writes those rows.
  bool dw_in_output = false;
  bool dw_buffered() const { return !dw_in_output || in_place; }
  // Floats of the two tile buffers of one thread.
  int64_t expanded_floats() const {
    if (has_expand) return expanded_rows * expand.shape.width * expand.out_blocks * expand.block;
    return in_place ? expanded_rows * depthwise.shape.width * depthwise.blocks * depthwise.block : 0;
  }
  int64_t depthwise_floats() const {
    return dw_buffered() ? tile_rows * depthwise.shape.out_width() * depthwise.blocks * depthwise.block : 0;
  }
  // Floats of the step's buffers value for `threads` workers: a pair each (two, in place
  // on threads: the second for a worker's first tile).
  int64_t buffers_floats(int threads) const {
    return (expanded_floats() + depthwise_floats()) * threads * (in_place && threads > 1 ? 2 : 1);
  }
};

// Squeeze-excitation as one step: the pooled vector, the two small convolutions and the
// scale run back to back on per-step buffers (the [N,C,1,1] values never reach the arena
// as tensors of their own).
struct SqueezeExcitePlan {
  jit::PoolPlan pool;
  jit::PointwisePlan reduce, expand;  // on N 1x1 images
  jit::EltwisePlan scale;
  int64_t pooled_floats() const { return pool.shape.batch * pool.blocks * pool.block; }
  int64_t reduced_floats() const { return reduce.shape.batch * reduce.out_blocks * reduce.block; }
};

// A chain of two or three convolution-like steps, each reading only what the one before
// wrote (pointwise stride 1, dense or grouped k x k, and a max pool at the end), run together tile
// by tile over the last step's output rows: each tile computes the rows it needs of every
// intermediate value into a per-thread buffer (keeping the rows it shares with the last
// tile) and runs the last step over them. The intermediate values never exist whole —
// MCUNetV2's row-based inference, for the layers whose activations are largest (stems,
// the first bottlenecks of a ResNet). The plans are the whole layers' (their packing);
// the runtime derives each tile's kernels from them.
using RowStage = std::variant<jit::PointwisePlan, jit::DensePlan, jit::GroupedPlan, jit::PoolPlan>;

// The rows of its input one stage reads for its output rows: window extent (dilated),
// stride and top pad; its input's rows, its output's size, and one output row in floats
// (every block).
struct RowWindow {
  int64_t extent = 1, stride = 1, pad_top = 0, in_rows = 0, out_rows = 0, out_width = 0, row_floats = 0;
};
RowWindow row_window(const RowStage& stage);

struct RowStreamPlan {
  std::vector<RowStage> stages;
  // An identity shortcut's output may take the stream's input bytes
  // (RowStreamRunner::run_in_place): false when the first stage reads input rows a tile
  // before wrote over (see fuse_row_streams).
  bool over_input_ok = false;
  int64_t tile_rows = 1;             // last stage's output rows per tile
  std::vector<int64_t> buffer_rows;  // per stage but the last: rows of its output a buffer holds
  // Floats of stage s's buffer, and of every buffer of one thread.
  int64_t buffer_floats(std::size_t s) const { return buffer_rows[s] * row_window(stages[s]).row_floats; }
  int64_t buffers_floats() const {
    int64_t n = 0;
    for (std::size_t s = 0; s < buffer_rows.size(); ++s) n += buffer_floats(s);
    return n;
  }
};

struct PlannedStep {
  StepKind kind = StepKind::reference;
  std::vector<int> nodes;  // graph nodes the step runs (empty for reorders)
  std::string op;          // op type, or the fused pattern "Conv+Add+Relu"
  // reference: the node's inputs/outputs. reorders: {src}, {dst}.
  // conv: {src, weights, bias or -1, residual or -1}, {dst}.
  std::vector<int> inputs, outputs;
  // ir_block: {src, expand weights, bias, depthwise weights, bias, project weights, bias,
  // residual or -1}, {dst, buffers}: `buffers` is a value holding every thread's tile buffers.
  KernelPlan plan;
  std::optional<InvertedResidualPlan> block;  // ir_block only
  // se_block only: inputs {x, reduce weights, bias, expand weights, bias},
  // outputs {dst, buffers}.
  std::optional<SqueezeExcitePlan> se;
  // gather only: per output channel, {input index, channel of that input}.
  std::vector<std::pair<int, int64_t>> channels;
  std::string reason;  // why this is not a JIT step, or what was not fused
  // row_stream only: inputs {src, then weights and bias of each stage (-1 for a pool),
  // then the last stage's residual or -1}, outputs {dst, buffers}.
  std::optional<RowStreamPlan> stream;
  // conv with a pointwise plan only: pixels of src skipped before the first it reads (a
  // crop folded into the conv, see fold_crops); the plan is then of the uncropped src.
  int64_t src_shift = 0;
};

struct ExecutionPlan {
  std::vector<PlannedStep> steps;
  std::vector<Value> added_values;  // blocked twins, ids graph.values.size() onwards
  std::vector<int> block;           // per value id (graph's then added): 0 = plain, else channels per block
  int block_size = 0;               // of every blocked value; 0 when nothing runs blocked
  std::string isa;                  // "avx512", "avx2" or "reference"
  // Concats that may take no copy: value `value` may be computed straight into value
  // `parent` (the gather step's output), `offset_bytes` in. See alias_concats.
  struct Alias {
    int value = -1, parent = -1;
    int64_t offset_bytes = 0;
  };
  std::vector<Alias> aliases;
  bool composed_gathers = false;  // some gather reads the sources of another (PlanLimits)
  // Downsampling shortcuts that PlanLimits::late_downsample could name (their conv's
  // node), not named in this plan (see read_downsamples_late).
  std::vector<int> shortcuts;
};

// What the memory limit asks of the plan.
struct PlanLimits {
  bool smallest_tiles = false;  // fused blocks take one output row per tile
  // A gather of gathered values reads their sources (one copy for Concat -> shuffle ->
  // Slice) — at the price of keeping those sources alive longer.
  bool compose_gathers = true;
  // Row-stream chains not to form, named by the first node of their first stage (the
  // engine vetoes those that grow the arena).
  std::vector<int> no_row_stream;
  // Downsampling shortcuts to read late, named by their conv's node (see
  // read_downsamples_late; the engine names those that shrink the arena).
  std::vector<int> late_downsample;
};

ExecutionPlan plan_graph(const Graph& g, const jit::HostInfo& host, const Options& options,
                         const PlanLimits& limits = {});

}  // namespace nnjit::graph
