#include "graph/passes.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "ops/conv.hpp"
#include "ops/util.hpp"

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
  // Relu is idempotent: a Relu of a Relu's output forwards it (DARTS' cells re-apply the
  // ReLU the stem applied). Not for a graph output, whose name is the output's.
  auto plain_relu = [](const Node& k) { return k.op_type == "Relu" && (k.domain.empty() || k.domain == "ai.onnx"); };
  if (plain_relu(n) && n.outputs.size() == 1 &&
      std::find(g.outputs.begin(), g.outputs.end(), n.outputs[0]) == g.outputs.end()) {
    const int producer = g.values[static_cast<std::size_t>(n.inputs[0])].producer;
    return producer >= 0 && plain_relu(g.nodes[static_cast<std::size_t>(producer)]);
  }
  if (n.op_type != "Dropout") return false;
  if (n.outputs.size() > 1 && n.outputs[1] >= 0 && consumers[static_cast<std::size_t>(n.outputs[1])] > 0) return false;
  // Dropout-12+ with training_mode given: a constant false forwards, or a constant
  // ratio of 0 (which drops nothing in training too).
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Value& t = g.values[static_cast<std::size_t>(n.inputs[2])];
    if (t.constant.defined() && t.constant.numel() == 1 && !*static_cast<const bool*>(t.constant.raw())) return true;
    if (n.inputs.size() < 2 || n.inputs[1] < 0) return false;  // the default ratio, 0.5
    const Tensor& r = g.values[static_cast<std::size_t>(n.inputs[1])].constant;
    return r.defined() && r.dtype() == DType::Float32 && r.numel() == 1 && r.data<float>()[0] == 0.f;
  }
  return true;
}

// An inference BatchNormalization is y = x * m + (shift - mean * m) per channel, with
// this m: fold_batchnorm, reparameterize and batchnorm_to_conv all use it.
float bn_multiplier(float scale, float var, float eps) { return scale / std::sqrt(var + eps); }

}  // namespace

int eliminate_identities(Graph& g) {
  int count = 0;
  std::vector<int> consumers = consumer_counts(g);
  std::vector<char> forwards(g.nodes.size(), 0);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    forwards[i] = !n.inputs.empty() && n.inputs[0] >= 0 && is_forwarding(g, n, consumers);
  }
  std::vector<Node> nodes = std::move(g.nodes);
  g.nodes.clear();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    Node& n = nodes[i];
    if (!forwards[i]) {
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
    bool params_constant = true;
    for (int k = 1; k < 5; ++k) params_constant = params_constant && g.is_constant(bn.inputs[static_cast<std::size_t>(k)]);
    if (!params_constant) continue;
    Node& prod = g.nodes[static_cast<std::size_t>(producer[static_cast<std::size_t>(y)])];
    // The convs the BN folds into, with the BN channel each one's first output maps to: the
    // producer itself, or every input of a channel Concat (DARTS' FactorizedReduce).
    std::vector<std::pair<Node*, int64_t>> convs;
    auto foldable = [&](int v) -> Node* {
      if (v < 0 || consumers[static_cast<std::size_t>(v)] != 1 || producer[static_cast<std::size_t>(v)] < 0) return nullptr;
      Node& c = g.nodes[static_cast<std::size_t>(producer[static_cast<std::size_t>(v)])];
      if (c.op_type != "Conv" || c.inputs.size() < 2 || !g.is_constant(c.inputs[1])) return nullptr;
      const Tensor& w = g.values[static_cast<std::size_t>(c.inputs[1])].constant;
      if (w.dtype() != DType::Float32 || w.rank() < 3) return nullptr;
      if (c.inputs.size() > 2 && c.inputs[2] >= 0 && !g.is_constant(c.inputs[2])) return nullptr;
      return &c;
    };
    if (prod.op_type == "Conv") {
      if (Node* c = foldable(y)) convs.push_back({c, 0});
    } else if (prod.op_type == "Concat" && (prod.attrs.get_int("axis", 1) == 1 || prod.attrs.get_int("axis", 1) == -3) &&
               g.values[static_cast<std::size_t>(y)].shape_known && g.values[static_cast<std::size_t>(y)].shape.size() >= 3) {
      int64_t offset = 0;
      for (int v : prod.inputs) {
        Node* c = foldable(v);
        if (!c) {
          convs.clear();
          break;
        }
        convs.push_back({c, offset});
        offset += g.values[static_cast<std::size_t>(c->inputs[1])].constant.dim(0);
      }
    }
    if (convs.empty()) continue;
    const int64_t channels = g.values[static_cast<std::size_t>(bn.inputs[1])].constant.numel();
    auto param = [&](int k) -> const float* {
      const Tensor& t = g.values[static_cast<std::size_t>(bn.inputs[static_cast<std::size_t>(k)])].constant;
      return t.dtype() == DType::Float32 && t.numel() == channels ? t.data<float>() : nullptr;
    };
    const float *scale = param(1), *shift = param(2), *mean = param(3), *var = param(4);
    int64_t total = 0;
    for (const auto& [c, off] : convs) total += g.values[static_cast<std::size_t>(c->inputs[1])].constant.dim(0);
    if (!scale || !shift || !mean || !var || total != channels) continue;
    const float eps = bn.attrs.get_float("epsilon", 1e-5f);

    for (const auto& [conv, first] : convs) {
      const Tensor& w = g.values[static_cast<std::size_t>(conv->inputs[1])].constant;
      const bool has_bias = conv->inputs.size() > 2 && conv->inputs[2] >= 0;
      const int64_t oc = w.dim(0), per_oc = w.numel() / std::max<int64_t>(oc, 1);
      Tensor nw = w.clone(), nb(DType::Float32, {oc});
      const float* ob = has_bias ? g.values[static_cast<std::size_t>(conv->inputs[2])].constant.data<float>() : nullptr;
      for (int64_t o = 0; o < oc; ++o) {
        const int64_t k = first + o;
        const float s = bn_multiplier(scale[k], var[k], eps);
        float* wo = nw.data<float>() + o * per_oc;
        for (int64_t i = 0; i < per_oc; ++i) wo[i] *= s;
        nb.data<float>()[o] = ((ob ? ob[o] : 0.f) - mean[k]) * s + shift[k];
      }
      Value wv{conv->name + ".folded_weight", DType::Float32, nw.shape(), {}, true, nw, -1};
      Value bv{conv->name + ".folded_bias", DType::Float32, {oc}, {}, true, nb, -1};
      conv->inputs.resize(3);
      conv->inputs[1] = g.add_value(std::move(wv));
      conv->inputs[2] = g.add_value(std::move(bv));
    }
    // The conv (or the Concat) now produces the BN's output; the BN becomes dead.
    prod.outputs[0] = bn.outputs[0];
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

namespace {

// Add trees larger than this are not searched for branches (keeps the pass linear on long
// chains of Adds).
constexpr std::size_t kMaxBlockAdds = 16;

bool default_domain(const Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

bool known_float(const Value& v) { return v.shape_known && v.dtype == DType::Float32; }

const Tensor* float_constant(const Graph& g, int v) {
  if (!g.is_constant(v)) return nullptr;
  const Tensor& t = g.values[static_cast<std::size_t>(v)].constant;
  return t.dtype() == DType::Float32 ? &t : nullptr;
}

// A two-input Add of float tensors with equal shapes (no broadcasting).
bool is_plain_add(const Graph& g, const Node& n) {
  if (n.op_type != "Add" || !default_domain(n) || n.inputs.size() != 2 || n.outputs.size() != 1 || n.outputs[0] < 0)
    return false;
  const Value& out = g.values[static_cast<std::size_t>(n.outputs[0])];
  if (!known_float(out)) return false;
  for (int v : n.inputs) {
    if (v < 0) return false;
    const Value& in = g.values[static_cast<std::size_t>(v)];
    if (!known_float(in) || in.shape != out.shape) return false;
  }
  return true;
}

// The parallel branches of one block and the nodes that go with them.
struct Block {
  int x = -1;                  // the input every branch reads
  std::vector<int> adds;       // the Add tree, root first
  std::vector<int> convs;      // Conv branches (node indices)
  std::vector<int> norms;      // BatchNormalization(x) branches
  int identities = 0;          // times x itself is summed
  std::vector<ops::ConvParams> params;  // per Conv branch
};

struct Gathering {
  const Graph& g;
  const std::vector<int>& producer;
  const std::vector<int>& consumers;
  const std::vector<char>& gone;

  int live_producer(int v) const {
    const int p = producer[static_cast<std::size_t>(v)];
    return p >= 0 && !gone[static_cast<std::size_t>(p)] ? p : -1;
  }
  bool single_reader(int v) const { return consumers[static_cast<std::size_t>(v)] == 1; }

  // The Add tree under `root` and its leaves; false when it is too large.
  bool tree(int root, std::vector<int>& adds, std::vector<int>& leaves) const {
    adds = {root};
    std::vector<int> pending(g.nodes[static_cast<std::size_t>(root)].inputs.rbegin(),
                             g.nodes[static_cast<std::size_t>(root)].inputs.rend());
    while (!pending.empty()) {
      const int v = pending.back();
      pending.pop_back();
      const int p = live_producer(v);
      if (p >= 0 && single_reader(v) && is_plain_add(g, g.nodes[static_cast<std::size_t>(p)])) {
        if (adds.size() == kMaxBlockAdds) return false;
        adds.push_back(p);
        const std::vector<int>& ins = g.nodes[static_cast<std::size_t>(p)].inputs;
        pending.insert(pending.end(), ins.rbegin(), ins.rend());
      } else {
        leaves.push_back(v);
      }
    }
    return true;
  }

  bool conv_branch(const Node& n, const Value& x, ops::ConvParams& p) const {
    if (n.inputs.size() < 2 || n.inputs.size() > 3 || n.outputs.size() != 1) return false;
    const Tensor* w = float_constant(g, n.inputs[1]);
    if (!w || w->rank() != static_cast<int>(x.shape.size())) return false;
    const bool has_bias = n.inputs.size() == 3 && n.inputs[2] >= 0;
    if (has_bias && !float_constant(g, n.inputs[2])) return false;
    const Shape bias_shape = has_bias ? g.values[static_cast<std::size_t>(n.inputs[2])].shape : Shape{};
    try {
      p = ops::resolve_conv(n.attrs, x.shape, w->shape(), has_bias ? &bias_shape : nullptr, n.name);
    } catch (const Error&) {
      return false;  // finalize has accepted it; be safe rather than sorry
    }
    for (int a = 0; a < p.spatial_rank(); ++a) {
      const auto i = static_cast<std::size_t>(a);
      if (p.dilation[i] != 1 || p.kernel[i] % 2 == 0 || p.pad_begin[i] != p.kernel[i] / 2 ||
          p.pad_end[i] != p.kernel[i] / 2)
        return false;
    }
    return true;
  }

  bool norm_branch(const Node& n, int64_t channels) const {
    if (n.inputs.size() < 5 || n.attrs.get_int("training_mode", 0) != 0 || n.attrs.get_int("spatial", 1) != 1)
      return false;
    for (std::size_t o = 1; o < n.outputs.size(); ++o)
      if (n.outputs[o] >= 0 && consumers[static_cast<std::size_t>(n.outputs[o])] > 0) return false;
    for (std::size_t k = 1; k < 5; ++k) {
      const Tensor* t = float_constant(g, n.inputs[k]);
      if (!t || t->numel() != channels) return false;
    }
    return true;
  }

  // The block whose sum `root` computes, if it is one.
  bool block(int root, Block& b) const {
    std::vector<int> leaves;
    if (!tree(root, b.adds, leaves)) return false;
    // x: what the first Conv leaf reads.
    for (int v : leaves) {
      const int p = live_producer(v);
      if (p >= 0 && g.nodes[static_cast<std::size_t>(p)].op_type == "Conv" &&
          !g.nodes[static_cast<std::size_t>(p)].inputs.empty()) {
        b.x = g.nodes[static_cast<std::size_t>(p)].inputs[0];
        break;
      }
    }
    if (b.x < 0) return false;
    const Value& x = g.values[static_cast<std::size_t>(b.x)];
    if (!known_float(x) || x.shape.size() < 3) return false;
    for (int v : leaves) {
      if (v == b.x) {
        ++b.identities;
        continue;
      }
      const int p = live_producer(v);
      if (p < 0 || !single_reader(v)) return false;
      const Node& n = g.nodes[static_cast<std::size_t>(p)];
      if (!default_domain(n) || n.inputs.empty() || n.inputs[0] != b.x || n.outputs.empty() || n.outputs[0] != v)
        return false;
      if (n.op_type == "Conv") {
        b.params.emplace_back();
        if (!conv_branch(n, x, b.params.back())) return false;
        b.convs.push_back(p);
      } else if (n.op_type == "BatchNormalization") {
        if (!norm_branch(n, x.shape[1])) return false;
        b.norms.push_back(p);
      } else {
        return false;
      }
    }
    // The Convs agree on everything but the kernel size.
    const ops::ConvParams& first = b.params.front();
    for (const ops::ConvParams& p : b.params)
      if (p.stride != first.stride || p.groups != first.groups || p.out_channels != first.out_channels ||
          p.dst_shape() != first.dst_shape())
        return false;
    if (b.identities > 0 || !b.norms.empty()) {
      // x and BN(x) are Convs only for stride 1 and as many outputs as inputs.
      for (int64_t s : first.stride)
        if (s != 1) return false;
      if (first.out_channels != first.in_channels || first.dst_shape() != x.shape) return false;
    }
    return true;
  }
};

// Writes `b` as one Conv (its largest-kernel Conv node, with new weights, bias and pads)
// that produces the root's output; the other nodes of the block are marked gone.
void merge(Graph& g, const Block& b, std::vector<char>& gone) {
  const ops::ConvParams& first = b.params.front();
  const int rank = first.spatial_rank();
  std::vector<int64_t> kernel(static_cast<std::size_t>(rank), 1);
  for (const ops::ConvParams& p : b.params)
    for (std::size_t a = 0; a < kernel.size(); ++a) kernel[a] = std::max(kernel[a], p.kernel[a]);
  std::size_t chosen = 0;
  for (std::size_t i = 0; i < b.params.size(); ++i)
    if (b.params[i].kernel == kernel) {
      chosen = i;
      break;
    }

  const int64_t oc = first.out_channels, icg = first.in_channels_per_group();
  const int64_t kplane = ops::SpatialParams::product(kernel);
  Shape wshape{oc, icg};
  wshape.insert(wshape.end(), kernel.begin(), kernel.end());

  // What the sums read, captured by value: the merged weights are computed when first read
  // (Tensor::deferred) — by the packer, on a compile worker — not here, one after another.
  struct Branch {
    Tensor w, b;                // weights, bias (undefined: none)
    std::vector<int64_t> to;    // where each of its taps lands in the merged kernel
  };
  struct Norm {
    Tensor scale, shift, mean, var;
    float eps;
  };
  struct Sources {
    std::vector<Branch> convs;
    std::vector<Norm> norms;
    int identities = 0;
  };
  auto src = std::make_shared<Sources>();
  src->identities = b.identities;
  auto constant = [&](int v) { return g.values[static_cast<std::size_t>(v)].constant; };
  for (std::size_t i = 0; i < b.convs.size(); ++i) {
    const Node& n = g.nodes[static_cast<std::size_t>(b.convs[i])];
    const ops::ConvParams& p = b.params[i];
    // Where each tap of this kernel lands in the merged one (centres aligned).
    const int64_t taps = p.kernel_plane();
    std::vector<int64_t> to(static_cast<std::size_t>(taps));
    for (int64_t t = 0; t < taps; ++t) {
      int64_t rest = t, at = 0, scale = 1;
      for (int a = rank; a-- > 0;) {
        const auto ax = static_cast<std::size_t>(a);
        const int64_t pos = rest % p.kernel[ax] + (kernel[ax] - p.kernel[ax]) / 2;
        rest /= p.kernel[ax];
        at += pos * scale;
        scale *= kernel[ax];
      }
      to[static_cast<std::size_t>(t)] = at;
    }
    const bool has_bias = n.inputs.size() == 3 && n.inputs[2] >= 0;
    src->convs.push_back({constant(n.inputs[1]), has_bias ? constant(n.inputs[2]) : Tensor(), std::move(to)});
  }
  for (int ni : b.norms) {
    const Node& n = g.nodes[static_cast<std::size_t>(ni)];
    src->norms.push_back({constant(n.inputs[1]), constant(n.inputs[2]), constant(n.inputs[3]), constant(n.inputs[4]),
                          n.attrs.get_float("epsilon", 1e-5f)});
  }
  // x and BN(x): out channel o reads in channel o, index o % icg within its group.
  int64_t centre = 0;
  for (int64_t k : kernel) centre = centre * k + k / 2;
  auto norm_scale = [](const Norm& nm, int64_t o) {
    return bn_multiplier(read_floats(nm.scale)[o], read_floats(nm.var)[o], nm.eps);
  };
  Tensor w = Tensor::deferred(DType::Float32, wshape, [src, oc, icg, kplane, centre, norm_scale](void* dst) {
    auto* wd = static_cast<float*>(dst);
    for (const Branch& br : src->convs) {
      const jit::FloatsIn from = read_floats(br.w);
      const auto taps = static_cast<int64_t>(br.to.size());
      if (taps == kplane) {  // the merged kernel's size: element by element
        for (int64_t i = 0; i < oc * icg * kplane; ++i) wd[i] += from[i];
      } else {
        for (int64_t f = 0; f < oc * icg; ++f)
          for (int64_t t = 0; t < taps; ++t) wd[f * kplane + br.to[static_cast<std::size_t>(t)]] += from[f * taps + t];
      }
    }
    for (int64_t o = 0; o < oc; ++o) {
      float& diagonal = wd[(o * icg + o % icg) * kplane + centre];
      diagonal += static_cast<float>(src->identities);
      for (const Norm& nm : src->norms) diagonal += norm_scale(nm, o);
    }
  });
  Tensor bias = Tensor::deferred(DType::Float32, {oc}, [src, oc, norm_scale](void* dst) {
    auto* bd = static_cast<float*>(dst);
    for (const Branch& br : src->convs) {
      if (!br.b.defined()) continue;
      const jit::FloatsIn from = read_floats(br.b);
      for (int64_t o = 0; o < oc; ++o) bd[o] += from[o];
    }
    for (const Norm& nm : src->norms) {
      const jit::FloatsIn shift = read_floats(nm.shift), mean = read_floats(nm.mean);
      for (int64_t o = 0; o < oc; ++o) bd[o] += shift[o] - mean[o] * norm_scale(nm, o);
    }
  });

  const int root_out = g.nodes[static_cast<std::size_t>(b.adds.front())].outputs[0];
  const int conv_index = b.convs[chosen];
  const std::string name = g.nodes[static_cast<std::size_t>(conv_index)].name;
  Value wv{name + ".reparam_weight", DType::Float32, w.shape(), {}, true, w, -1};
  Value bv{name + ".reparam_bias", DType::Float32, {oc}, {}, true, bias, -1};
  const int wi = g.add_value(std::move(wv)), bi = g.add_value(std::move(bv));

  Node& conv = g.nodes[static_cast<std::size_t>(conv_index)];
  conv.inputs = {b.x, wi, bi};
  conv.outputs = {root_out};
  ops::Attribute ints;
  ints.kind = ops::Attribute::Kind::Ints;
  for (int half = 0; half < 2; ++half)  // begins, then ends
    for (int64_t k : kernel) ints.ints.push_back(k / 2);
  conv.attrs.set("pads", ints);
  if (conv.attrs.has("kernel_shape")) {
    ints.ints = kernel;
    conv.attrs.set("kernel_shape", ints);
  }
  if (conv.attrs.has("auto_pad")) {
    ops::Attribute notset;
    notset.kind = ops::Attribute::Kind::String;
    notset.s = "NOTSET";
    conv.attrs.set("auto_pad", notset);
  }

  auto drop = [&](int i) {
    if (i == conv_index) return;
    gone[static_cast<std::size_t>(i)] = 1;
    g.nodes[static_cast<std::size_t>(i)].inputs.clear();
    g.nodes[static_cast<std::size_t>(i)].outputs.clear();
  };
  for (int i : b.adds) drop(i);
  for (int i : b.convs) drop(i);
  for (int i : b.norms) drop(i);
}

}  // namespace

int reparameterize(Graph& g) {
  int count = 0;
  std::vector<int> consumers = consumer_counts(g);
  std::vector<int> producer(g.values.size(), -1);
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].outputs)
      if (v >= 0) producer[static_cast<std::size_t>(v)] = static_cast<int>(i);
  std::vector<char> gone(g.nodes.size(), 0);
  const Gathering gather{g, producer, consumers, gone};

  // From the last node back, so a block's outermost Add is met before its inner ones; an
  // inner Add whose tree failed as a whole may still be a (smaller) block on its own.
  for (std::size_t i = g.nodes.size(); i-- > 0;) {
    if (gone[i] || !is_plain_add(g, g.nodes[i])) continue;
    Block b;
    if (!gather.block(static_cast<int>(i), b)) continue;
    const int branches_reading_x = static_cast<int>(b.convs.size() + b.norms.size()) + b.identities;
    merge(g, b, gone);
    consumers[static_cast<std::size_t>(b.x)] -= branches_reading_x - 1;
    ++count;
  }
  if (count) {
    std::vector<Node> kept;
    for (std::size_t i = 0; i < g.nodes.size(); ++i)
      if (!gone[i]) kept.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(kept);
    remove_dead(g);
  }
  return count;
}

int batchnorm_to_conv(Graph& g) {
  int count = 0;
  for (Node& bn : g.nodes) {
    if (bn.op_type != "BatchNormalization" || !default_domain(bn) || bn.inputs.size() != 5 || bn.inputs[0] < 0 ||
        bn.outputs.size() != 1 || bn.attrs.get_int("training_mode", 0) != 0)
      continue;
    const Value& x = g.values[static_cast<std::size_t>(bn.inputs[0])];
    if (!known_float(x) || x.shape.size() != 4) continue;
    const int64_t channels = x.shape[1];
    const float* p[4] = {};
    for (int k = 0; k < 4; ++k) {
      const Tensor* t = float_constant(g, bn.inputs[static_cast<std::size_t>(k + 1)]);
      p[k] = t && t->numel() == channels ? t->data<float>() : nullptr;
    }
    if (!p[0] || !p[1] || !p[2] || !p[3]) continue;
    const float eps = bn.attrs.get_float("epsilon", 1e-5f);
    Tensor w(DType::Float32, {channels, 1, 1, 1}), b(DType::Float32, {channels});
    for (int64_t c = 0; c < channels; ++c) {  // as fold_batchnorm computes a folded conv's
      const float s = bn_multiplier(p[0][c], p[3][c], eps);
      w.data<float>()[c] = s;
      b.data<float>()[c] = (0.f - p[2][c]) * s + p[1][c];
    }
    Node conv;
    conv.name = bn.name;
    conv.op_type = "Conv";
    conv.inputs = {bn.inputs[0], g.add_value({bn.name + ".scale_as_weight", DType::Float32, w.shape(), {}, true, w, -1}),
                   g.add_value({bn.name + ".shift_as_bias", DType::Float32, {channels}, {}, true, b, -1})};
    conv.outputs = bn.outputs;
    ops::Attribute group, kernel;
    group.kind = ops::Attribute::Kind::Int;
    group.i = channels;
    kernel.kind = ops::Attribute::Kind::Ints;
    kernel.ints = {1, 1};
    conv.attrs.set("group", group);
    conv.attrs.set("kernel_shape", kernel);
    bn = std::move(conv);
    ++count;
  }
  if (count) remove_dead(g);
  return count;
}

int fuse_layernorm(Graph& g) {
  const std::vector<int> consumers = consumer_counts(g);
  std::vector<std::vector<int>> readers(g.values.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].inputs)
      if (v >= 0) readers[static_cast<std::size_t>(v)].push_back(static_cast<int>(i));
  auto node = [&](int i) -> Node& { return g.nodes[static_cast<std::size_t>(i)]; };
  auto value = [&](int v) -> const Value& { return g.values[static_cast<std::size_t>(v)]; };
  // The single reader of v (read once, not a graph output) if it is `op`, else -1.
  auto only = [&](int v, const char* op) {
    if (v < 0 || consumers[static_cast<std::size_t>(v)] != 1 || readers[static_cast<std::size_t>(v)].size() != 1) return -1;
    const int r = readers[static_cast<std::size_t>(v)][0];
    return node(r).op_type == op && node(r).outputs.size() == 1 ? r : -1;
  };
  // The operand of binary node n that is not v, or -1.
  auto other = [&](const Node& n, int v) {
    if (n.inputs.size() != 2 || (n.inputs[0] == v) == (n.inputs[1] == v)) return -1;
    return n.inputs[n.inputs[0] == v ? 1 : 0];
  };
  auto scalar = [&](int v) { return scalar_constant(g, v); };
  // ReduceMean over the trailing `k` axes of a rank-r value with keepdims: k, else 0.
  auto trailing_mean = [&](const Node& n, int r) -> int {
    if (n.op_type != "ReduceMean" || n.attrs.get_int("keepdims", 1) != 1) return 0;
    std::vector<int64_t> axes = n.attrs.get_ints("axes");
    for (int64_t& a : axes) a = a < 0 ? a + r : a;
    std::sort(axes.begin(), axes.end());
    for (std::size_t j = 0; j < axes.size(); ++j)
      if (axes[j] != r - static_cast<int64_t>(axes.size() - j)) return 0;
    return static_cast<int>(axes.size());
  };
  int count = 0;
  std::vector<char> dead(g.nodes.size(), 0);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& rm1 = g.nodes[i];
    if (dead[i] || rm1.inputs.empty() || rm1.inputs[0] < 0 || rm1.outputs.size() != 1) continue;
    const int x = rm1.inputs[0];
    if (value(x).dtype != DType::Float32 || !value(x).shape_known) continue;
    const int r = static_cast<int>(value(x).shape.size()), k = trailing_mean(rm1, r);
    if (k == 0) continue;
    const int sub = only(rm1.outputs[0], "Sub");
    if (sub < 0 || node(sub).inputs.size() != 2 || node(sub).inputs[0] != x || node(sub).inputs[1] != rm1.outputs[0])
      continue;
    const int d = node(sub).outputs[0];  // x - mean: read by the Pow and the Div
    const auto& dr = readers[static_cast<std::size_t>(d)];
    if (consumers[static_cast<std::size_t>(d)] != 2 || dr.size() != 2) continue;
    const int pw = node(dr[0]).op_type == "Pow" ? dr[0] : dr[1], dv = pw == dr[0] ? dr[1] : dr[0];
    if (node(pw).op_type != "Pow" || node(pw).inputs.size() != 2 || node(pw).inputs[0] != d ||
        scalar(node(pw).inputs[1]) != 2.f)
      continue;
    const int rm2 = only(node(pw).outputs[0], "ReduceMean");
    if (rm2 < 0 || trailing_mean(node(rm2), r) != k) continue;
    const int add_eps = only(node(rm2).outputs[0], "Add");
    const auto eps = add_eps < 0 ? std::nullopt : scalar(other(node(add_eps), node(rm2).outputs[0]));
    if (!eps || !(*eps >= 0.f)) continue;
    const int sq = only(node(add_eps).outputs[0], "Sqrt");
    if (sq < 0 || only(node(sq).outputs[0], "Div") != dv || node(dv).op_type != "Div" ||
        node(dv).inputs.size() != 2 || node(dv).inputs[0] != d || node(dv).inputs[1] != node(sq).outputs[0])
      continue;
    // The affine part: Mul by a constant scale, then Add of a constant bias (either order).
    const int mul = only(node(dv).outputs[0], "Mul");
    const int scale = mul < 0 ? -1 : other(node(mul), node(dv).outputs[0]);
    const int add = mul < 0 ? -1 : only(node(mul).outputs[0], "Add");
    const int bias = add < 0 ? -1 : other(node(add), node(mul).outputs[0]);
    if (!g.is_constant(scale) || !g.is_constant(bias) || value(scale).dtype != DType::Float32 ||
        value(bias).dtype != DType::Float32)
      continue;
    // Scale and bias broadcast over the normalised dims alone (LayerNormalization's rule).
    const Shape normalized(value(x).shape.end() - k, value(x).shape.end());
    if (!ops::broadcasts_to(value(scale).shape, normalized) || !ops::broadcasts_to(value(bias).shape, normalized) ||
        value(node(add).outputs[0]).shape != value(x).shape)
      continue;
    Node ln;
    ln.name = node(add).name;
    ln.op_type = "LayerNormalization";
    ln.inputs = {x, scale, bias};
    ln.outputs = {node(add).outputs[0]};
    ops::Attribute axis, epsilon;
    axis.kind = ops::Attribute::Kind::Int;
    axis.i = -k;
    epsilon.kind = ops::Attribute::Kind::Float;
    epsilon.f = *eps;
    ln.attrs.set("axis", axis);
    ln.attrs.set("epsilon", epsilon);
    for (int m : {static_cast<int>(i), sub, pw, rm2, add_eps, sq, dv, mul}) dead[static_cast<std::size_t>(m)] = 1;
    node(add) = std::move(ln);
    ++count;
  }
  if (count == 0) return 0;
  std::vector<Node> kept;
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  remove_dead(g);
  return count;
}

std::string optimize(Graph& g) {
  const int ids = eliminate_identities(g);
  const int bns = fold_batchnorm(g);
  const int blocks = reparameterize(g);
  const int lns = fuse_layernorm(g);
  const int affine = batchnorm_to_conv(g);
  return "identities removed " + std::to_string(ids) + ", batchnorms folded " + std::to_string(bns) +
         ", blocks reparameterised " + std::to_string(blocks) + ", layernorms fused " + std::to_string(lns) +
         ", batchnorms as depthwise 1x1 " + std::to_string(affine);
}

}  // namespace nnjit::graph
