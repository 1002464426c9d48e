// Rewrite passes over a finalized graph. Each pass keeps the graph's outputs' values and
// leaves shapes valid; `optimize` runs them in order and drops what became dead.
#pragma once

#include "graph/graph.hpp"

namespace nnjit::graph {

// Identity, and Dropout whose mask nobody reads, forward their input.
int eliminate_identities(Graph& g);
// Conv (constant weights) followed only by an inference BatchNormalization with constant
// parameters: the BN is folded into the Conv's weights and bias.
int fold_batchnorm(Graph& g);

// All passes; returns a one-line account ("identities 3, batchnorm folds 52").
std::string optimize(Graph& g);

}  // namespace nnjit::graph
