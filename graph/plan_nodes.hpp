// Internal to graph/: what the planner (plan.cpp) knows of single nodes and their
// private neighbours — who reads each value, the activation or residual Add a conv can
// fuse, each conv's (or Gemm's) kernel plan, pooling shapes, channel moves as tables, and
// the tile height of an inverted-residual block.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "graph/plan.hpp"

namespace nnjit::graph {

// Who reads each value, and which values leave the graph.
struct Uses {
  std::vector<std::vector<int>> readers;  // node indices, once per node
  std::vector<char> is_output;

  explicit Uses(const Graph& g) : readers(g.values.size()), is_output(g.values.size(), 0) {
    for (std::size_t i = 0; i < g.nodes.size(); ++i)
      for (int v : g.nodes[i].inputs) {
        if (v < 0) continue;
        auto& r = readers[static_cast<std::size_t>(v)];
        if (r.empty() || r.back() != static_cast<int>(i)) r.push_back(static_cast<int>(i));
      }
    for (int v : g.outputs) is_output[static_cast<std::size_t>(v)] = 1;
  }
  // Read by exactly one node, and not a graph output: it may live inside a fused step.
  bool private_to_one(int v) const {
    return readers[static_cast<std::size_t>(v)].size() == 1 && !is_output[static_cast<std::size_t>(v)];
  }
};

// A float32 value of known rank-4 shape (false for an absent one, v < 0).
bool is_float4d(const Graph& g, int v);

// The activation node `n` computes from its first input, if the kernels fuse it.
std::optional<jit::Activation> activation_of(const Graph& g, const Node& n);

// An activation applied to `v` by the nodes reading it: a single activation node, the
// exported gating forms v * Sigmoid(v) (SiLU) and v * HardSigmoid(v; 1/6, 1/2)
// (HardSwish), or torch's GELU, v * (erf(v / sqrt 2) + 1) * 0.5 in five nodes.
struct FusedActivation {
  jit::Activation act;
  std::vector<int> nodes;  // in graph order
  int out = -1;
};

std::optional<FusedActivation> fused_activation(const Graph& g, const Uses& uses, int v);

// A planned convolution group: the conv node, what is fused after it, the kernel plan.
struct ConvGroup {
  std::vector<int> nodes;
  int src = -1, weights = -1, bias = -1, residual = -1, out = -1;
  KernelPlan plan;
  std::string op;
};

// A Conv node and what follows it, planned as one step; or the reason it stays a
// reference op.
std::variant<ConvGroup, std::string> plan_conv_group(const Graph& g, const Uses& uses, int ni,
                                                     const std::vector<int>& group_of, const jit::HostInfo& host,
                                                     int block);

// Output rows per tile of an inverted-residual block: the two tile buffers of one
// thread fit in half the L2 and take at most an eighth of the block's output (they add
// to the arena's peak where the block's input and output are alive), and each thread
// gets at least one tile.
InvertedResidualPlan plan_inverted_residual(const jit::PointwisePlan* e, const jit::DepthwisePlan& d,
                                            const jit::PointwisePlan& p, const jit::HostInfo& host, int threads,
                                            bool smallest);

// A pooling node as a blocked pool kernel's shape, if one fits it.
std::optional<jit::PoolShape> pool_shape(const Graph& g, const Node& n);

// A constant int64 or int32 tensor's values.
std::optional<std::vector<int64_t>> constant_ints(const Graph& g, int v);

using ChannelTable = std::vector<std::pair<int, int64_t>>;

// Concat over channels (any widths) or a Slice of channels (step 1) as a channel table.
std::optional<ChannelTable> channel_table(const Graph& g, const Node& n);

// ShuffleNet's channel shuffle ending at Reshape node `ri`: Reshape(x [N,C,H,W] ->
// [N,g,C/g,H,W]) -> Transpose(0,2,1,3,4) -> Reshape([N,C,H,W]), the values between
// private. Returns x, the two earlier nodes and the table.
struct Shuffle {
  int x = -1;
  std::vector<int> nodes;  // first reshape, transpose
  ChannelTable table;
};
std::optional<Shuffle> channel_shuffle(const Graph& g, const Uses& uses, int ri);

// Gemm with constant weights (Linear: transB = 1, alpha = beta = 1, bias [N] or [1,N])
// as a pointwise convolution of M 1x1 images: [M,K] rows are K-channel pixels, which
// is the blocked layout of a plane of one pixel. A following activation is fused.
std::variant<ConvGroup, std::string> plan_gemm_group(const Graph& g, const Uses& uses, int ni,
                                                     const std::vector<int>& group_of, const jit::HostInfo& host,
                                                     int block);

// MatMul with constant 2-D weights B [K,N] on A [..., M, K] (every leading axis of A is
// rows), or a Gemm (transA = 0, constant B, C absent or a constant [N] / [1,N]; alpha,
// beta and transB are applied when the weights are packed), as a
// gemm kernel on plain tensors. After a MatMul a constant bias Add ([N], or [1,...,1,N])
// is fused, and after that (or the Gemm) an activation, when the values in between are
// private and `free` says the nodes are not planned elsewhere. The group's plan is a
// jit::GemmPlan; residual is -1.
std::variant<ConvGroup, std::string> plan_matmul_group(const Graph& g, const Uses& uses, int ni,
                                                       const std::function<bool(int)>& free, const jit::HostInfo& host);

}  // namespace nnjit::graph
