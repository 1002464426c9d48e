#include "loaders/onnx_loader.hpp"

#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "loaders/mapped_file.hpp"
#include "loaders/tensor_proto.hpp"
#include "loaders/wire.hpp"
#include "onnx.pb.h"

namespace nnjit::loaders {

namespace {

std::string quote(const std::string& s) { return "'" + s + "'"; }
std::string str(int64_t v) { return std::to_string(v); }

[[noreturn]] void not_a_model(const std::string& name, const std::string& why) {
  throw_invalid(name + ": not a valid ONNX model (" + why + ")");
}

// Runs f; an Unsupported error becomes an entry of g.unsupported (so that one report can
// list every problem) and the result is false.
template <class F>
bool collect_unsupported(graph::Graph& g, F&& f) {
  try {
    f();
    return true;
  } catch (const Error& e) {
    if (e.code() != ErrorCode::Unsupported) throw;
    g.unsupported.emplace_back(e.what());
    return false;
  }
}

int default_opset(const onnx::ModelProto& m) {
  int opset = 0;
  for (const auto& imp : m.opset_import()) {
    if (!imp.domain().empty() && imp.domain() != "ai.onnx") continue;
    const int64_t v = imp.version();
    if (v <= 0 || v > INT_MAX) throw_invalid("opset_import: ai.onnx version " + str(v) + " is not valid");
    if (opset != 0 && opset != v)
      throw_invalid("opset_import lists ai.onnx twice, as " + str(opset) + " and " + str(v));
    opset = static_cast<int>(v);
  }
  return opset;  // 0 = none imported; finalize refuses it
}

// Before IR version 0.0.2 attributes had no type field; the value field present tells.
onnx::AttributeProto::AttributeType guess_type(const onnx::AttributeProto& a) {
  using AP = onnx::AttributeProto;
  if (a.has_f()) return AP::FLOAT;
  if (a.has_i()) return AP::INT;
  if (a.has_s()) return AP::STRING;
  if (a.has_t()) return AP::TENSOR;
  if (a.has_g()) return AP::GRAPH;
  if (a.has_sparse_tensor()) return AP::SPARSE_TENSOR;
  if (a.has_tp()) return AP::TYPE_PROTO;
  if (a.floats_size()) return AP::FLOATS;
  if (a.ints_size()) return AP::INTS;
  if (a.strings_size()) return AP::STRINGS;
  if (a.tensors_size()) return AP::TENSORS;
  if (a.graphs_size()) return AP::GRAPHS;
  if (a.sparse_tensors_size()) return AP::SPARSE_TENSORS;
  if (a.type_protos_size()) return AP::TYPE_PROTOS;
  return AP::UNDEFINED;
}

// Throws Unsupported for a type that is not a tensor (after naming what it is).
void require_tensor_type(const onnx::TypeProto& t, const std::string& what) {
  switch (t.value_case()) {
    case onnx::TypeProto::kTensorType: return;
    case onnx::TypeProto::kSequenceType: throw_unsupported(what + " is a sequence; only tensors are supported");
    case onnx::TypeProto::kMapType: throw_unsupported(what + " is a map; only tensors are supported");
    case onnx::TypeProto::kOptionalType: throw_unsupported(what + " is an optional; only tensors are supported");
    case onnx::TypeProto::kSparseTensorType:
      throw_unsupported(what + " is a sparse tensor; only dense tensors are supported");
    default: throw_invalid(what + " has no type");
  }
}

// dtype, shape and symbolic dim names of a graph input.
void set_input_type(graph::Value& v, const onnx::ValueInfoProto& vi, const std::string& what) {
  if (!vi.has_type()) throw_invalid(what + " has no type");
  require_tensor_type(vi.type(), what);
  const auto& tt = vi.type().tensor_type();
  if (tt.elem_type() <= 0) throw_invalid(what + " has no element type");
  v.dtype = static_cast<DType>(tt.elem_type());  // finalize judges which types it supports
  if (!tt.has_shape()) return;                    // rank unknown: shape_known stays false
  for (int i = 0; i < tt.shape().dim_size(); ++i) {
    const auto& d = tt.shape().dim(i);
    if (d.value_case() == onnx::TensorShapeProto::Dimension::kDimValue) {
      if (d.dim_value() < 0) throw_invalid(what + " dim " + str(i) + " is negative (" + str(d.dim_value()) + ")");
      v.shape.push_back(d.dim_value());
      v.dim_params.emplace_back();
    } else {
      v.shape.push_back(-1);
      v.dim_params.push_back(d.dim_param().empty() ? "?" : d.dim_param());
    }
  }
  v.shape_known = true;
}

class Builder {
 public:
  // `lifted`: per initializer, its raw_data when lift_initializer_data took it out.
  Builder(graph::Graph& g, ExternalFiles& files, const std::vector<LiftedRaw>& lifted)
      : g_(g), files_(files), lifted_(lifted) {}

  void build(onnx::GraphProto& gp) {
    add_initializers(gp);
    add_inputs(gp);
    add_nodes(gp);
    add_outputs(gp);
  }

 private:
  // Where a value came from, for the error naming a second value of its name.
  enum class Origin : unsigned char { initializer, graph_input, node_output };
  std::string origin_text(std::size_t value) const {
    switch (origin_[value]) {
      case Origin::initializer: return "an initializer";
      case Origin::graph_input: return "a graph input";
      default: return "the output of node " + quote(g_.nodes[static_cast<std::size_t>(g_.values[value].producer)].name);
    }
  }

  // Adds a value whose name must be new; what() names it for the error (built only then:
  // a load adds thousands of values).
  template <class What>
  int add_named(graph::Value v, What&& what, Origin origin) {
    auto [it, fresh] = by_name_.emplace(v.name, static_cast<int>(g_.values.size()));
    if (!fresh) throw_invalid(what() + " is already " + origin_text(static_cast<std::size_t>(it->second)));
    origin_.push_back(origin);
    return g_.add_value(std::move(v));
  }

  void add_initializers(onnx::GraphProto& gp) {
    for (int i = 0; i < gp.initializer_size(); ++i) {
      onnx::TensorProto& p = *gp.mutable_initializer(i);
      if (p.name().empty()) throw_invalid("initializer #" + str(i) + " has no name");
      const std::string what = "initializer " + quote(p.name());
      graph::Value v;
      v.name = p.name();
      const auto at = static_cast<std::size_t>(i);
      const bool was_lifted = at < lifted_.size() && lifted_[at].data != nullptr;
      if (collect_unsupported(g_, [&] {
            v.constant = was_lifted ? decode_tensor(p, what, &files_, lifted_[at])
                                    : decode_tensor(p, what, &files_, TakeRaw::yes);
          })) {
        v.dtype = v.constant.dtype();
        v.shape = v.constant.shape();
        v.shape_known = true;
      }
      add_named(std::move(v), [&] { return what; }, Origin::initializer);
      // The decoded tensor is all we keep: free the protobuf's copy now so that the
      // weights are not held twice at the peak. (On the arena, whose large raw_data was
      // lifted out, there is nothing large to free, and a swap would copy.)
      if (p.GetArena() == nullptr) onnx::TensorProto().Swap(&p);
    }
    for (int i = 0; i < gp.sparse_initializer_size(); ++i) {
      const std::string& name = gp.sparse_initializer(i).values().name();
      if (name.empty()) throw_invalid("sparse initializer #" + str(i) + " has no name");
      const std::string what = "sparse initializer " + quote(name);
      g_.unsupported.push_back(what + ": sparse initializers are not supported");
      graph::Value v;
      v.name = name;
      add_named(std::move(v), [&] { return what; }, Origin::initializer);
    }
  }

  void add_inputs(const onnx::GraphProto& gp) {
    std::unordered_set<std::string> listed;
    for (int i = 0; i < gp.input_size(); ++i) {
      const auto& vi = gp.input(i);
      if (vi.name().empty()) throw_invalid("graph input #" + str(i) + " has no name");
      const std::string what = "graph input " + quote(vi.name());
      if (!listed.insert(vi.name()).second) throw_invalid(what + " is listed twice");
      // An input with an initializer is a default the caller could override; nnjit
      // treats it as the constant it almost always is (weights listed as inputs).
      if (by_name_.count(vi.name())) continue;
      graph::Value v;
      v.name = vi.name();
      collect_unsupported(g_, [&] { set_input_type(v, vi, what); });
      g_.inputs.push_back(add_named(std::move(v), [&] { return what; }, Origin::graph_input));
    }
  }

  // `node` names the node for errors: "node 'x'".
  ops::Attribute attribute(const onnx::AttributeProto& a, const std::string& node) {
    using AP = onnx::AttributeProto;
    const auto what = [&] { return node + " attribute " + quote(a.name()); };
    if (!a.ref_attr_name().empty())
      throw_invalid(what() + " refers to function attribute " + quote(a.ref_attr_name()) + " outside a function");
    ops::Attribute out;
    const auto unsupported = [&](const char* kind) {
      g_.unsupported.push_back(what() + " is " + kind + ", which nnjit does not support");
    };
    switch (a.type() != AP::UNDEFINED ? a.type() : guess_type(a)) {
      case AP::FLOAT: out.kind = ops::Attribute::Kind::Float; out.f = a.f(); break;
      case AP::INT: out.kind = ops::Attribute::Kind::Int; out.i = a.i(); break;
      case AP::STRING: out.kind = ops::Attribute::Kind::String; out.s = a.s(); break;
      case AP::TENSOR:
        if (collect_unsupported(g_, [&] { out.t = decode_tensor(a.t(), what(), &files_); }))
          out.kind = ops::Attribute::Kind::Tensor;
        break;
      case AP::FLOATS:
        out.kind = ops::Attribute::Kind::Floats;
        out.floats.assign(a.floats().begin(), a.floats().end());
        break;
      case AP::INTS:
        out.kind = ops::Attribute::Kind::Ints;
        out.ints.assign(a.ints().begin(), a.ints().end());
        break;
      case AP::STRINGS:
        out.kind = ops::Attribute::Kind::Strings;
        out.strings.assign(a.strings().begin(), a.strings().end());
        break;
      case AP::GRAPH: unsupported("a subgraph (control flow)"); break;
      case AP::GRAPHS: unsupported("a list of subgraphs"); break;
      case AP::TENSORS: unsupported("a list of tensors"); break;
      case AP::SPARSE_TENSOR: unsupported("a sparse tensor"); break;
      case AP::SPARSE_TENSORS: unsupported("a list of sparse tensors"); break;
      case AP::TYPE_PROTO: unsupported("a type"); break;
      case AP::TYPE_PROTOS: unsupported("a list of types"); break;
      default: throw_invalid(what() + " has no type and no value");
    }
    return out;
  }

  void add_nodes(const onnx::GraphProto& gp) {
    g_.nodes.reserve(static_cast<std::size_t>(gp.node_size()));
    // Outputs first: nodes need not be in topological order (finalize sorts them).
    for (int i = 0; i < gp.node_size(); ++i) {
      const auto& np = gp.node(i);
      graph::Node node;
      if (np.op_type().empty())
        throw_invalid("node " + (np.name().empty() ? "#" + str(i) : quote(np.name())) + " has no op_type");
      node.name = np.name().empty() ? np.op_type() + "_" + str(i) : np.name();
      node.op_type = np.op_type();
      node.domain = np.domain();
      const std::string what = "node " + quote(node.name);
      for (const auto& a : np.attribute()) {
        if (a.name().empty()) throw_invalid(what + " has an attribute with no name");
        if (node.attrs.has(a.name())) throw_invalid(what + " attribute " + quote(a.name()) + " is given twice");
        node.attrs.set(a.name(), attribute(a, what));
      }
      // In the graph before its outputs: a second output of the same name names it.
      g_.nodes.push_back(std::move(node));
      for (const std::string& out : np.output()) {
        std::vector<int>& outputs = g_.nodes.back().outputs;
        if (out.empty()) {
          outputs.push_back(-1);
          continue;
        }
        graph::Value v;
        v.name = out;
        v.producer = i;
        outputs.push_back(add_named(std::move(v), [&] { return what + " output " + quote(out); }, Origin::node_output));
      }
    }
    for (int i = 0; i < gp.node_size(); ++i) {
      graph::Node& node = g_.nodes[static_cast<std::size_t>(i)];
      for (const std::string& in : gp.node(i).input()) {
        if (in.empty()) {
          node.inputs.push_back(-1);
          continue;
        }
        auto it = by_name_.find(in);
        if (it == by_name_.end())
          throw_invalid("node " + quote(node.name) + " input " + quote(in) +
                        " is not a graph input, an initializer or the output of any node");
        node.inputs.push_back(it->second);
      }
    }
  }

  void add_outputs(const onnx::GraphProto& gp) {
    for (int i = 0; i < gp.output_size(); ++i) {
      const auto& vo = gp.output(i);
      if (vo.name().empty()) throw_invalid("graph output #" + str(i) + " has no name");
      const std::string what = "graph output " + quote(vo.name());
      auto it = by_name_.find(vo.name());
      if (it == by_name_.end())
        throw_invalid(what + " is not produced by any node, nor a graph input or initializer");
      if (vo.has_type()) collect_unsupported(g_, [&] { require_tensor_type(vo.type(), what); });
      g_.outputs.push_back(it->second);
    }
    if (g_.outputs.empty()) throw_invalid("the graph has no outputs");
  }

  graph::Graph& g_;
  ExternalFiles& files_;
  const std::vector<LiftedRaw>& lifted_;
  std::unordered_map<std::string, int> by_name_;
  std::vector<Origin> origin_;  // per value
};

// Where each lifted raw_data lives from here on. With an `owner` that keeps the bytes
// (a mapped file) they are viewed where they lie, at any alignment (Tensor::view_unaligned):
// the weights are then never copied before packing, and come from the page cache rather
// than from fresh memory (on a VM, first touches of fresh memory are most of load time).
// Without, they are copied into one buffer, each 64-byte aligned, the buffer readable 64
// bytes past the last (kernels may read a vector past a tensor's end).
std::vector<LiftedRaw> place_lifted(const std::uint8_t* data, const LiftedModel& m, const std::shared_ptr<void>& owner) {
  std::vector<LiftedRaw> out(m.spans.size());
  if (owner) {
    for (std::size_t i = 0; i < m.spans.size(); ++i)
      if (m.spans[i]) out[i] = LiftedRaw{data + m.spans[i]->offset, m.spans[i]->size, owner};
    return out;
  }
  constexpr std::size_t kAlign = 64;
  auto round_up = [](std::size_t v, std::size_t a) { return (v + a - 1) / a * a; };
  std::size_t bytes = kAlign;
  for (const auto& span : m.spans)
    if (span) bytes += round_up(span->size, kAlign);
  void* p = std::aligned_alloc(kAlign, bytes);
  if (p == nullptr) throw_internal("out of memory allocating " + std::to_string(bytes) + " bytes of weights");
  std::shared_ptr<void> slab(p, std::free);
  auto* to = static_cast<std::uint8_t*>(p);
  for (std::size_t i = 0; i < m.spans.size(); ++i) {
    if (!m.spans[i]) continue;
    const RawSpan& span = *m.spans[i];
    std::memcpy(to, data + span.offset, span.size);
    std::memset(to + span.size, 0, round_up(span.size, kAlign) - span.size);
    out[i] = LiftedRaw{to, span.size, slab};
    to += round_up(span.size, kAlign);
  }
  std::memset(to, 0, kAlign);
  return out;
}

}  // namespace

graph::Graph load_onnx(const void* data, std::size_t size, const std::string& name, const std::string& base_dir,
                       std::shared_ptr<void> owner) {
  if (size == 0) not_a_model(name, "the file is empty");
  // Large initializer raw_data is lifted out of the bytes before protobuf sees them
  // (loaders/wire.hpp): protobuf then parses a few hundred KiB, and the weights are
  // viewed where they lie or copied once (place_lifted).
  constexpr std::size_t kLiftBytes = 4096;
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  std::optional<LiftedModel> lifted = lift_initializer_data(bytes, size, kLiftBytes);
  auto parse = [&](onnx::ModelProto& model, const void* from, std::size_t n) {
    if (n > static_cast<std::size_t>(INT_MAX))
      not_a_model(name, std::to_string(size) +
                            " bytes; protobuf cannot parse a model over 2 GiB: save its weights as external data");
    if (!model.ParseFromArray(from, static_cast<int>(n)))
      not_a_model(name, "protobuf parsing failed: the file is truncated or not ONNX");
  };
  // The rest of a lifted model (nodes, names, attributes: thousands of small messages) is
  // parsed onto an arena: no malloc per message, and no destructor walk after the build.
  // A model parsed whole keeps its weights in its messages, on the heap, so that the
  // build frees each one as it takes it (Builder::add_initializers).
  google::protobuf::ArenaOptions arena_options;
  arena_options.start_block_size = std::size_t{64} << 10;
  arena_options.max_block_size = std::size_t{1} << 20;
  google::protobuf::Arena arena(arena_options);
  std::unique_ptr<onnx::ModelProto> whole;
  onnx::ModelProto* model = nullptr;
  std::vector<LiftedRaw> raw;
  if (lifted) {
    model = google::protobuf::Arena::CreateMessage<onnx::ModelProto>(&arena);
    parse(*model, lifted->rest.data(), lifted->rest.size());
  }
  if (lifted && model->has_graph() &&
      lifted->spans.size() == static_cast<std::size_t>(model->graph().initializer_size())) {
    raw = place_lifted(bytes, *lifted, owner);
  } else {
    whole = std::make_unique<onnx::ModelProto>();
    model = whole.get();
    parse(*model, data, size);
  }
  lifted.reset();
  if (!model->has_graph()) not_a_model(name, "it holds no graph");

  graph::Graph g;
  g.source = name;
  if (owner) g.file_bytes = {bytes, size};
  try {
    g.opset = default_opset(*model);
    ExternalFiles files{base_dir, {}};
    Builder(g, files, raw).build(*model->mutable_graph());
  } catch (const Error& e) {
    throw Error(e.code(), name + ": " + e.what());
  }
  return g;
}

graph::Graph load_onnx_file(const std::string& path) {
  std::shared_ptr<MappedFile> file = MappedFile::open(path);  // "cannot open '<path>': ..."
  return load_onnx(file->data(), file->size(), path, std::filesystem::path(path).parent_path().string(), file);
}

Tensor parse_tensor_proto(const void* data, std::size_t size, const std::string& name) {
  if (size == 0) throw_invalid(name + ": not a valid TensorProto (the file is empty)");
  if (size > static_cast<std::size_t>(INT_MAX))
    throw_invalid(name + ": not a valid TensorProto (protobuf cannot parse more than 2 GiB)");
  onnx::TensorProto p;
  if (!p.ParseFromArray(data, static_cast<int>(size)))
    throw_invalid(name + ": not a valid TensorProto (protobuf parsing failed)");
  try {
    return decode_tensor(p, p.name().empty() ? std::string("tensor") : "tensor " + quote(p.name()), nullptr);
  } catch (const Error& e) {
    throw Error(e.code(), name + ": " + e.what());
  }
}

}  // namespace nnjit::loaders
