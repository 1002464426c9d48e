#include "graph/passes.hpp"

#include <cmath>

namespace nnjit::graph {

namespace {

std::vector<int> consumer_counts(const Graph& g) {
  std::vector<int> c(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int v : n.inputs)
      if (v >= 0) ++c[static_cast<std::size_t>(v)];
  for (int v : g.outputs) ++c[static_cast<std::size_t>(v)];
  return c;
}

bool is_forwarding(const Graph& g, const Node& n, const std::vector<int>& consumers) {
  if (n.op_type == "Identity") return true;
  if (n.op_type != "Dropout") return false;
  if (n.outputs.size() > 1 && n.outputs[1] >= 0 && consumers[static_cast<std::size_t>(n.outputs[1])] > 0) return false;
  // Dropout-12+ with training_mode given: only a constant false forwards.
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Value& t = g.values[static_cast<std::size_t>(n.inputs[2])];
    return t.constant.defined() && t.constant.numel() == 1 && !*static_cast<const bool*>(t.constant.raw());
  }
  return true;
}

}  // namespace

int eliminate_identities(Graph& g) {
  int count = 0;
  std::vector<int> consumers = consumer_counts(g);
  std::vector<Node> nodes = std::move(g.nodes);
  g.nodes.clear();
  for (Node& n : nodes) {
    if (n.inputs.empty() || n.inputs[0] < 0 || !is_forwarding(g, n, consumers)) {
      g.nodes.push_back(std::move(n));
      continue;
    }
    // Uses of the output, in nodes already kept and those still to come, read the input.
    const int from = n.outputs[0], to = n.inputs[0];
    for (Node& k : g.nodes)
      for (int& v : k.inputs)
        if (v == from) v = to;
    for (Node& k : nodes)
      for (int& v : k.inputs)
        if (v == from) v = to;
    for (int& v : g.outputs)
      if (v == from) v = to;
    ++count;
  }
  remove_dead(g);
  return count;
}

int fold_batchnorm(Graph& g) {
  int count = 0;
  std::vector<int> consumers = consumer_counts(g);
  std::vector<int> producer(g.values.size(), -1);
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].outputs)
      if (v >= 0) producer[static_cast<std::size_t>(v)] = static_cast<int>(i);

  for (Node& bn : g.nodes) {
    if (bn.op_type != "BatchNormalization" || bn.inputs.size() < 5 || bn.inputs[0] < 0) continue;
    if (bn.outputs.size() > 1 || bn.attrs.get_int("training_mode", 0) != 0) continue;
    const int y = bn.inputs[0];
    if (consumers[static_cast<std::size_t>(y)] != 1 || producer[static_cast<std::size_t>(y)] < 0) continue;
    Node& conv = g.nodes[static_cast<std::size_t>(producer[static_cast<std::size_t>(y)])];
    if (conv.op_type != "Conv" || conv.inputs.size() < 2 || !g.is_constant(conv.inputs[1])) continue;
    bool params_constant = true;
    for (int k = 1; k < 5; ++k) params_constant = params_constant && g.is_constant(bn.inputs[static_cast<std::size_t>(k)]);
    if (!params_constant) continue;
    const Tensor& w = g.values[static_cast<std::size_t>(conv.inputs[1])].constant;
    if (w.dtype() != DType::Float32 || w.rank() < 3) continue;
    const bool has_bias = conv.inputs.size() > 2 && conv.inputs[2] >= 0;
    if (has_bias && !g.is_constant(conv.inputs[2])) continue;

    const int64_t oc = w.dim(0), per_oc = w.numel() / std::max<int64_t>(oc, 1);
    auto param = [&](int k) -> const float* {
      const Tensor& t = g.values[static_cast<std::size_t>(bn.inputs[static_cast<std::size_t>(k)])].constant;
      return t.dtype() == DType::Float32 && t.numel() == oc ? t.data<float>() : nullptr;
    };
    const float *scale = param(1), *shift = param(2), *mean = param(3), *var = param(4);
    if (!scale || !shift || !mean || !var) continue;
    const float eps = bn.attrs.get_float("epsilon", 1e-5f);

    Tensor nw = w.clone(), nb(DType::Float32, {oc});
    const float* ob = has_bias ? g.values[static_cast<std::size_t>(conv.inputs[2])].constant.data<float>() : nullptr;
    for (int64_t o = 0; o < oc; ++o) {
      const float s = scale[o] / std::sqrt(var[o] + eps);
      float* wo = nw.data<float>() + o * per_oc;
      for (int64_t i = 0; i < per_oc; ++i) wo[i] *= s;
      nb.data<float>()[o] = ((ob ? ob[o] : 0.f) - mean[o]) * s + shift[o];
    }
    Value wv{conv.name + ".folded_weight", DType::Float32, nw.shape(), {}, true, nw, -1};
    Value bv{conv.name + ".folded_bias", DType::Float32, {oc}, {}, true, nb, -1};
    conv.inputs.resize(3);
    conv.inputs[1] = g.add_value(std::move(wv));
    conv.inputs[2] = g.add_value(std::move(bv));
    // The conv now produces the BN's output; the BN becomes dead.
    conv.outputs[0] = bn.outputs[0];
    bn.outputs.clear();
    bn.inputs.clear();
    ++count;
  }
  if (count) {
    std::vector<Node> kept;
    for (Node& n : g.nodes)
      if (!n.outputs.empty()) kept.push_back(std::move(n));
    g.nodes = std::move(kept);
    remove_dead(g);
  }
  return count;
}

std::string optimize(Graph& g) {
  const int ids = eliminate_identities(g);
  const int bns = fold_batchnorm(g);
  return "identities removed " + std::to_string(ids) + ", batchnorms folded " + std::to_string(bns);
}

}  // namespace nnjit::graph
