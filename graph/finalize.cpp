// finalize(): from the graph as written to a graph with static shapes, in order.
#include <algorithm>
#include <map>
#include <queue>
#include <set>

#include "graph/graph.hpp"
#include "ops/op.hpp"

namespace nnjit::graph {

namespace {

// Constant subgraphs larger than this stay in the graph and run at run time: folding
// them would only trade load time and memory for nothing.
constexpr int64_t kMaxFoldBytes = int64_t{64} << 20;

void bind_dims(Graph& g, const Options& options, std::vector<std::string>& problems) {
  std::set<std::string> seen;
  for (int vi : g.inputs) {
    Value& v = g.values[static_cast<std::size_t>(vi)];
    if (!v.shape_known) {
      problems.push_back("input '" + v.name + "' has no tensor shape in the model");
      continue;
    }
    for (std::size_t d = 0; d < v.shape.size(); ++d) {
      if (v.shape[d] >= 0) continue;
      const std::string param = d < v.dim_params.size() ? v.dim_params[d] : "?";
      auto it = options.dims.find(param);
      const int64_t value = it != options.dims.end() ? it->second : options.default_dim;
      if (value < 0) throw_invalid("dimension '" + param + "' bound to a negative value");
      v.shape[d] = value;
      if (seen.insert(param).second) g.bound_dims.push_back(param + "=" + std::to_string(value));
    }
    shape_numel(v.shape);
  }
  for (const auto& [name, value] : options.dims)
    if (!seen.count(name))
      throw_invalid(g.source + ": --dim " + name + " names no symbolic dimension of the model's inputs");
}

// Kahn's algorithm, taking among the ready nodes the one first in the model's order: a
// model already in topological order (as ONNX requires) keeps the order its exporter wrote,
// which is program order and keeps values short-lived; others get the nearest valid
// order. The nodes left over lie on (or behind) a cycle.
void sort_topologically(Graph& g) {
  const std::size_t n = g.nodes.size();
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> consumers(g.values.size());
  for (std::size_t i = 0; i < n; ++i)
    for (int v : g.nodes[i].inputs)
      if (v >= 0 && g.values[static_cast<std::size_t>(v)].producer >= 0) {
        ++pending[i];
        consumers[static_cast<std::size_t>(v)].push_back(static_cast<int>(i));
      }
  std::vector<int> order;
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (std::size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(static_cast<int>(i));
  while (!ready.empty()) {
    const int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int v : g.nodes[static_cast<std::size_t>(i)].outputs) {
      if (v < 0) continue;
      for (int c : consumers[static_cast<std::size_t>(v)])
        if (--pending[static_cast<std::size_t>(c)] == 0) ready.push(c);
    }
  }
  if (order.size() != n) {
    for (std::size_t i = 0; i < n; ++i)
      if (pending[i] > 0)
        throw_invalid(g.source + ": the graph has a cycle through node '" + g.nodes[i].name + "' (" +
                      g.nodes[i].op_type + ")");
  }
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (int i : order) sorted.push_back(std::move(g.nodes[static_cast<std::size_t>(i)]));
  g.nodes = std::move(sorted);
  for (std::size_t i = 0; i < n; ++i)
    for (int v : g.nodes[i].outputs)
      if (v >= 0) g.values[static_cast<std::size_t>(v)].producer = static_cast<int>(i);
}

bool is_default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

std::string node_label(const Graph& g, const Node& n) {
  return "node '" + n.name + "' (" + n.op_type + ", opset " + std::to_string(g.opset) + ")";
}

// Problems that make the node unsupported before its shapes are looked at.
void check_node(const Graph& g, const Node& n, const ops::OpSchema* schema, std::vector<std::string>& problems) {
  if (!is_default_domain(n.domain)) {
    problems.push_back("op '" + n.op_type + "' of domain '" + n.domain + "' at " + node_label(g, n));
    return;
  }
  if (!schema) {
    problems.push_back("unknown op '" + n.op_type + "' at " + node_label(g, n));
    return;
  }
  if (g.opset < schema->since_opset) {
    problems.push_back("op '" + n.op_type + "' before opset " + std::to_string(schema->since_opset) + " at " +
                       node_label(g, n));
    return;
  }
  if (schema->check) {
    std::vector<std::string> mine;
    schema->check(n.attrs, g.opset, mine);
    for (const std::string& p : mine) problems.push_back(node_label(g, n) + ": " + p);
  }
}

void fold(Graph& g, const Node& n, const ops::OpSchema& schema) {
  std::vector<Tensor> outs;
  ops::ComputeContext ctx{n.attrs, g.opset, {}, {}};
  // An op that reads only shapes gets data-less views of its inputs.
  std::vector<Tensor> shape_views;
  shape_views.reserve(n.inputs.size());
  for (int v : n.inputs) {
    if (v < 0) {
      ctx.inputs.push_back(nullptr);
      continue;
    }
    const Value& val = g.values[static_cast<std::size_t>(v)];
    if (!val.constant.defined()) {
      shape_views.push_back(Tensor::view(val.dtype, val.shape, nullptr, nullptr));
      ctx.inputs.push_back(&shape_views.back());
    } else {
      ctx.inputs.push_back(&val.constant);
    }
  }
  outs.reserve(n.outputs.size());
  for (int v : n.outputs) {
    if (v < 0) {
      outs.emplace_back();
      continue;
    }
    const Value& val = g.values[static_cast<std::size_t>(v)];
    outs.emplace_back(val.dtype, val.shape);
  }
  for (Tensor& t : outs) ctx.outputs.push_back(t.defined() ? &t : nullptr);
  schema.compute(ctx);
  for (std::size_t i = 0; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0) g.values[static_cast<std::size_t>(n.outputs[i])].constant = std::move(outs[i]);
}

}  // namespace

void finalize(Graph& g, const Options& options) {
  std::vector<std::string> problems = g.unsupported;
  if (g.opset < ops::kMinOpset || g.opset > ops::kMaxOpset)
    problems.push_back("ai.onnx opset " + std::to_string(g.opset) + " (nnjit supports " +
                       std::to_string(ops::kMinOpset) + " to " + std::to_string(ops::kMaxOpset) + ")");
  bind_dims(g, options, problems);
  for (int vi : g.inputs) {
    const Value& v = g.values[static_cast<std::size_t>(vi)];
    if (dtype_size(v.dtype) == 0) problems.push_back("input '" + v.name + "' of type " + dtype_name(v.dtype));
  }
  sort_topologically(g);

  std::vector<char> folded(g.nodes.size(), 0);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const ops::OpSchema* schema = is_default_domain(n.domain) ? ops::find_schema(n.op_type) : nullptr;
    const std::size_t before = problems.size();
    check_node(g, n, schema, problems);
    bool inputs_known = true;
    for (int v : n.inputs)
      if (v >= 0 && !g.values[static_cast<std::size_t>(v)].shape_known) inputs_known = false;
    if (problems.size() != before || !inputs_known) continue;

    std::vector<ops::InputInfo> infos;
    bool all_constant = true;
    for (int v : n.inputs) {
      if (v < 0) {
        infos.emplace_back();
        continue;
      }
      const Value& val = g.values[static_cast<std::size_t>(v)];
      infos.push_back({val.dtype, val.shape, val.constant.defined() ? &val.constant : nullptr});
      all_constant = all_constant && val.constant.defined();
    }
    ops::InferContext ctx(n.name, n.op_type, g.opset, n.attrs, std::move(infos), static_cast<int>(n.outputs.size()));
    try {
      schema->infer(ctx);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::Unsupported) throw Error(e.code(), g.source + ": " + e.what());
      problems.push_back(e.what());
      continue;
    }
    int64_t out_bytes = 0;
    for (std::size_t o = 0; o < n.outputs.size(); ++o) {
      if (n.outputs[o] < 0) continue;
      const ops::OutputInfo& info = ctx.outputs()[o];
      if (info.dtype == DType::Undefined) throw_internal(ctx.where() + ": shape rule left output " + std::to_string(o) + " unset");
      Value& val = g.values[static_cast<std::size_t>(n.outputs[o])];
      val.dtype = info.dtype;
      val.shape = info.shape;
      val.shape_known = true;
      out_bytes += shape_numel(info.shape) * static_cast<int64_t>(dtype_size(info.dtype));
    }
    if ((all_constant || schema->reads_shapes_only) && out_bytes <= kMaxFoldBytes) {
      try {
        fold(g, n, *schema);
        folded[i] = 1;
      } catch (const Error& e) {
        if (e.code() != ErrorCode::Unsupported) throw Error(e.code(), g.source + ": " + e.what());
        problems.push_back(e.what());
      }
    }
  }
  if (!problems.empty()) {
    std::string msg = g.source + ": the model needs " + std::to_string(problems.size()) +
                      " thing(s) nnjit does not support:";
    for (const std::string& p : problems) msg += "\n  - " + p;
    throw_unsupported(msg);
  }
  std::vector<Node> kept;
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    if (!folded[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  remove_dead(g);
}

void remove_dead(Graph& g) {
  // Walk backwards from the outputs, marking what is needed.
  std::vector<char> needed(g.values.size(), 0);
  for (int v : g.outputs) needed[static_cast<std::size_t>(v)] = 1;
  std::vector<char> keep(g.nodes.size(), 0);
  for (std::size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    bool any = false;
    for (int v : n.outputs) any = any || (v >= 0 && needed[static_cast<std::size_t>(v)]);
    if (!any) continue;
    keep[i] = 1;
    for (int v : n.outputs)  // a kept node writes all its outputs, read or not
      if (v >= 0) needed[static_cast<std::size_t>(v)] = 1;
    for (int v : n.inputs)
      if (v >= 0) needed[static_cast<std::size_t>(v)] = 1;
  }
  for (int v : g.inputs) needed[static_cast<std::size_t>(v)] = 1;  // inputs stay part of the contract

  // Renumber values.
  std::vector<int> remap(g.values.size(), -1);
  std::vector<Value> values;
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    if (!needed[v]) continue;
    remap[v] = static_cast<int>(values.size());
    values.push_back(std::move(g.values[v]));
  }
  std::vector<Node> nodes;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (!keep[i]) continue;
    Node n = std::move(g.nodes[i]);
    for (int& v : n.inputs) v = v >= 0 ? remap[static_cast<std::size_t>(v)] : -1;
    for (int& v : n.outputs) v = v >= 0 ? remap[static_cast<std::size_t>(v)] : -1;
    nodes.push_back(std::move(n));
  }
  for (Value& v : values) v.producer = -1;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    for (int v : nodes[i].outputs)
      if (v >= 0) values[static_cast<std::size_t>(v)].producer = static_cast<int>(i);
  for (int& v : g.inputs) v = remap[static_cast<std::size_t>(v)];
  for (int& v : g.outputs) v = remap[static_cast<std::size_t>(v)];
  g.values = std::move(values);
  g.nodes = std::move(nodes);
}

std::string op_counts(const Graph& g) {
  std::map<std::string, int> counts;
  for (const Node& n : g.nodes) ++counts[n.op_type];
  std::vector<std::pair<std::string, int>> v(counts.begin(), counts.end());
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
  std::string out;
  for (auto& [op, c] : v) out += (out.empty() ? "" : ", ") + op + " x" + std::to_string(c);
  return out.empty() ? "(no ops)" : out;
}

}  // namespace nnjit::graph
