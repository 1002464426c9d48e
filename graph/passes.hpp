// Rewrite passes over a finalized graph. Each pass keeps the graph's outputs' values and
// leaves shapes valid; `optimize` runs them in order and drops what became dead.
#pragma once

#include "graph/graph.hpp"

namespace nnjit::graph {

// Identity, Dropout whose mask nobody reads, and a Relu of a Relu's output (Relu is
// idempotent; kept when its output is a graph output) forward their input.
int eliminate_identities(Graph& g);
// Conv (constant weights) followed only by an inference BatchNormalization with constant
// parameters: the BN is folded into the Conv's weights and bias. Also through a channel
// Concat whose every input is such a Conv read only by it (DARTS' FactorizedReduce):
// each Conv takes its slice of the BN.
int fold_batchnorm(Graph& g);
// Structural re-parameterisation (RepVGG, MobileOne): parallel branches that read the
// same input x and are summed by a tree of Add nodes become one Conv with bias.
//
//   y = Add(Add(Conv3x3(x, W3, b3), Conv1x1(x, W1, b1)), BatchNormalization(x, ...))
//     => y = Conv3x3(x, W, b)   with W = W3 + pad(W1) + diag(bn scale), b = b3 + b1 + bn shift
//
// A branch is a Conv of x (constant float weights and bias, dilations 1, odd kernel
// padded by kernel/2 on each side), an inference BatchNormalization of x with constant
// parameters, or x itself. All Convs share strides and group; the merged kernel is the
// largest, smaller ones sit at its centre. x and BN branches need strides 1 and as many
// output channels as x has: each adds a diagonal centre tap (per group,
// W[o][o % (C/group)][centre] += scale) and its shift to the bias. Needs at least one
// Conv branch; every Add of the tree has equal input and output shapes, and every value
// inside the tree (branch outputs, inner sums) has exactly one reader and is not a graph
// output. The tree's last Add keeps its output value; the merged Conv now produces it.
// Returns the number of blocks merged. Run after fold_batchnorm (a Conv then BN branch
// is one Conv by then).
int reparameterize(Graph& g);

// LayerNorm as torch exports it before opset 17 — ReduceMean over the trailing axes,
// Sub, Pow 2, ReduceMean, Add epsilon, Sqrt, Div, Mul by a constant scale, Add a
// constant bias, every value between private — becomes one LayerNormalization node
// (axis = -k, epsilon) producing the last Add's value: one pass over each row instead of
// nine reference ops. Returns the number fused.
int fuse_layernorm(Graph& g);

// An inference BatchNormalization of a 4-D float tensor with constant parameters that no
// Conv took (fold_batchnorm), as DenseNet's BN -> ReLU -> Conv on concatenated features
// has: a depthwise 1x1 Conv (group = C, weight scale / sqrt(var + eps), bias shift - mean
// * that), which the planner runs on blocked tensors with the ReLU fused, where the BN
// was a reference op between two reorders. Run after fold_batchnorm and reparameterize.
int batchnorm_to_conv(Graph& g);

// All passes; returns a one-line account
// ("identities removed 3, batchnorms folded 52, blocks reparameterised 17, layernorms
// fused 0, batchnorms as depthwise 1x1 0").
std::string optimize(Graph& g);

}  // namespace nnjit::graph
