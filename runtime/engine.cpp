// Engine, Model and Session: the phases load -> optimize -> plan -> compile, then run.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "graph/passes.hpp"
#include "loaders/onnx_loader.hpp"
#include "nnjit/engine.hpp"
#include "runtime/compile.hpp"
#include "runtime/memory_report.hpp"
#include "runtime/model_impl.hpp"
#include "runtime/model_memory.hpp"
#include "runtime/probe.hpp"
#include "runtime/profiling.hpp"
#include "runtime/thread_pool.hpp"

namespace nnjit {

namespace {

using runtime::memory_order;
using runtime::plan_model_memory;
using runtime::put_blocks_in_place;
using runtime::reorder_steps;
using runtime::stored_numel;
using runtime::with_conv_stage;

const ops::Attributes kNoAttributes;

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::vector<TensorInfo> infos_of(const graph::Graph& g, const std::vector<int>& ids) {
  std::vector<TensorInfo> out;
  for (int v : ids) {
    const graph::Value& val = g.values[static_cast<std::size_t>(v)];
    out.push_back({val.name, val.dtype, val.shape});
  }
  return out;
}

// The execution plan (graph/plan): fused steps, kernels and layouts. The blocked twins
// it adds become values of the model's graph, so every step reads and writes slots.
void plan_steps(ModelImpl& m, const graph::PlanLimits& limits) {
  m.graph.values.resize(m.graph_values);  // drop what an earlier plan added
  m.steps.clear();
  graph::ExecutionPlan plan = graph::plan_graph(m.graph, m.host, m.options, limits);
  for (graph::Value& v : plan.added_values) m.graph.values.push_back(std::move(v));
  m.block = std::move(plan.block);
  m.isa = plan.isa;
  m.composed_gathers = plan.composed_gathers;
  m.shortcuts = std::move(plan.shortcuts);
  m.alias_candidates.clear();
  for (const auto& a : plan.aliases)
    m.alias_candidates.push_back({a.value, a.parent, static_cast<std::size_t>(a.offset_bytes)});
  m.steps.reserve(plan.steps.size());
  for (graph::PlannedStep& p : plan.steps) {
    runtime::Step s;
    s.nodes = std::move(p.nodes);
    s.op = std::move(p.op);
    s.inputs = std::move(p.inputs);
    s.outputs = std::move(p.outputs);
    s.kind = p.kind;
    s.plan = std::move(p.plan);
    s.block = std::move(p.block);
    s.se = std::move(p.se);
    s.stream = std::move(p.stream);
    s.channels = std::move(p.channels);
    s.src_shift = p.src_shift;
    s.reason = std::move(p.reason);
    s.attrs = s.kind == graph::StepKind::reference ? &m.graph.nodes[static_cast<std::size_t>(s.nodes.at(0))].attrs
                                                   : &kNoAttributes;
    m.steps.push_back(std::move(s));
  }
}

// What Model::steps() shows (ModelImpl::step_infos builds it on first use).
std::vector<StepInfo> describe_steps(const ModelImpl& m) {
  std::vector<StepInfo> infos;
  const graph::Graph& g = m.graph;
  auto bytes_of = [&](int v) -> double {
    if (v < 0) return 0;
    const graph::Value& val = g.values[static_cast<std::size_t>(v)];
    if (val.dtype == DType::Undefined || !val.shape_known) return 0;
    return static_cast<double>(stored_numel(m, v)) * static_cast<double>(dtype_size(val.dtype));
  };
  for (const runtime::Step& s : m.steps) {
    StepInfo info;
    info.op = s.op;
    for (int n : s.nodes) info.nodes.push_back(g.nodes[static_cast<std::size_t>(n)].name);
    info.kernel = s.kernel;
    info.reason = s.reason;
    info.split = s.split;
    info.shape = s.outputs.empty() || s.outputs[0] < 0 ? "-"
                                                        : shape_str(g.values[static_cast<std::size_t>(s.outputs[0])].shape);
    const int out_block = s.outputs.empty() || s.outputs[0] < 0 ? 0 : m.block[static_cast<std::size_t>(s.outputs[0])];
    info.layout = out_block ? "nChw" + std::to_string(out_block) + "c" : "nchw";
    info.plan = graph::kernel_plan_key(s.plan);
    info.flops = graph::kernel_plan_flops(s.plan);
    if (s.block)  // a fused block does the work of its three convolutions
      info.flops = (s.block->has_expand ? s.block->expand.shape.flops() : 0) + s.block->depthwise.shape.flops() +
                   s.block->project.shape.flops();
    if (s.se) info.flops = s.se->reduce.shape.flops() + s.se->expand.shape.flops();
    if (s.stream) {  // every stage's convolution (a pool counts none)
      info.flops = 0;
      for (const graph::RowStage& st : s.stream->stages)
        info.flops += with_conv_stage(st, 0.0, [](const auto& shape) { return shape.flops(); });
    }
    info.code = s.code;
    info.code_size = s.code_size;
    for (int v : s.inputs) info.bytes += bytes_of(v);
    for (int v : s.outputs) info.bytes += bytes_of(v);
    infos.push_back(std::move(info));
  }
  return infos;
}

// Drops the constants that only JIT steps read, and only to pack them at compile: the
// packed copies serve every run, and a model then holds its weights once, not twice.
// Those it keeps are copied out of the model file's mapping, which then goes.
// (The inputs a step packs: conv {src, w, b, res}: w, b; ir_block {src, 3 x (w, b), res};
// se_block {x, 2 x (w, b)}; row_stream {src, n x (w, b), res}.) Graph outputs stay.
// Returns what it took out, for the caller to let go of.
std::vector<Tensor> release_packed_constants(ModelImpl& m) {
  std::vector<Tensor> dropped;
  graph::Graph& g = m.graph;
  std::vector<char> needed(g.values.size(), 0);
  for (int v : g.outputs) needed[static_cast<std::size_t>(v)] = 1;
  for (const runtime::Step& s : m.steps) {
    std::size_t first = 1, end = 1;  // inputs [first, end) are packed
    switch (s.kind) {
      case graph::StepKind::conv: end = 3; break;
      case graph::StepKind::ir_block: end = 7; break;
      case graph::StepKind::se_block: end = 5; break;
      case graph::StepKind::row_stream: end = s.inputs.size() - 1; break;
      default: break;
    }
    for (std::size_t i = 0; i < s.inputs.size(); ++i)
      if (s.inputs[i] >= 0 && (i < first || i >= end)) needed[static_cast<std::size_t>(s.inputs[i])] = 1;
  }
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    Tensor& c = g.values[v].constant;
    if (!c.defined()) continue;
    if (!needed[v]) dropped.push_back(std::exchange(c, Tensor()));
    // Nothing left to compute or copy at run time, and the file's mapping can go.
    else if (!c.aligned() || g.file_bytes.holds(c.unaligned_bytes())) dropped.push_back(std::exchange(c, c.clone()));
  }
  g.file_bytes = {};
  return dropped;
}

// A plan and its memory plan, to try another and come back.
struct PlanState {
  std::vector<graph::Value> added;  // the plan's values after the graph's own
  std::vector<runtime::Step> steps;
  std::vector<int> block;
  std::string isa;
  bool composed_gathers = false;
  std::vector<int> shortcuts;
  std::vector<runtime::ValueAlias> alias_candidates, aliases;
  runtime::MemoryPlan memory;
  bool pointwise_in_place = true;
};
PlanState save_plan(const ModelImpl& m) {
  return {{m.graph.values.begin() + static_cast<std::ptrdiff_t>(m.graph_values), m.graph.values.end()},
          m.steps,
          m.block,
          m.isa,
          m.composed_gathers,
          m.shortcuts,
          m.alias_candidates,
          m.aliases,
          m.memory,
          m.pointwise_in_place};
}
void restore_plan(ModelImpl& m, PlanState s) {
  m.graph.values.resize(m.graph_values);
  for (graph::Value& v : s.added) m.graph.values.push_back(std::move(v));
  m.steps = std::move(s.steps);
  m.block = std::move(s.block);
  m.isa = std::move(s.isa);
  m.composed_gathers = s.composed_gathers;
  m.shortcuts = std::move(s.shortcuts);
  m.alias_candidates = std::move(s.alias_candidates);
  m.aliases = std::move(s.aliases);
  m.memory = std::move(s.memory);
  m.pointwise_in_place = s.pointwise_in_place;
}

void check_options(const Options& o) {
  if (o.threads < 1 || o.threads > 1024) throw_invalid("threads must be between 1 and 1024, got " + std::to_string(o.threads));
  if (o.isa != "auto" && o.isa != "avx512" && o.isa != "avx2" && o.isa != "reference")
    throw_invalid("isa must be auto, avx512, avx2 or reference, got '" + o.isa + "'");
  if (o.default_dim < 0) throw_invalid("default_dim must not be negative");
  if (o.load_threads < 0 || o.load_threads > 1024)
    throw_invalid("load_threads must be between 0 and 1024, got " + std::to_string(o.load_threads));
}

// Threads a load compiles on: Options::load_threads, or every usable CPU.
int load_threads(const Options& o, const jit::HostInfo& host) {
  return o.load_threads > 0 ? o.load_threads : jit::usable_threads(host);
}

// A model from what `parse` reads. The second compile worker starts before it
// (runtime::EarlyWorker), its need judged on the probed host: a host override that leaves
// one thread ends it unused at compile.
std::shared_ptr<const Model> build_model(const std::function<graph::Graph()>& parse, const jit::HostInfo& host,
                                         const Options& options, std::shared_ptr<runtime::ThreadPool> pool,
                                         Clock::time_point t0) {
  runtime::EarlyWorker early(load_threads(options, host) > 1);
  graph::Graph g = parse();
  auto m = std::make_unique<ModelImpl>();
  m->options = options;
  m->pool = std::move(pool);
  m->host = runtime::apply_overrides(host, options.host);
  graph::finalize(g, options);
  m->inputs = infos_of(g, g.inputs);
  m->outputs = infos_of(g, g.outputs);
  m->loaded_counts = graph::op_counts(g);
  m->times.parse = ms_since(t0);

  auto t = Clock::now();
  if (options.optimize) m->optimize_report = graph::optimize(g);
  m->graph = std::move(g);
  m->times.optimize = ms_since(t);

  t = Clock::now();
  m->graph_values = m->graph.values.size();
  graph::PlanLimits limits;
  bool by_memory = false;        // steps in memory_order
  std::vector<int> in_place_blocks;  // put_blocks_in_place
  auto plan = [&](const graph::PlanLimits& l) {
    plan_steps(*m, l);
    if (by_memory) reorder_steps(*m, memory_order(*m));
    put_blocks_in_place(*m, in_place_blocks);
    plan_model_memory(*m);
  };
  plan(limits);
  // Applies a change to the plan; keeps it if the arena shrinks, else restores the plan.
  auto keep_if_smaller = [&](auto change) {
    PlanState kept = save_plan(*m);
    change();
    if (m->memory.arena_bytes < kept.memory.arena_bytes) return true;
    restore_plan(*m, std::move(kept));
    return false;
  };
  auto try_limits = [&](const graph::PlanLimits& variant) {
    if (!keep_if_smaller([&] { plan(variant); })) return false;
    limits = variant;
    return true;
  };
  // Steps that free memory early, where that moves any (the identity permutation is the
  // only sorted one) and shrinks the arena.
  if (const std::vector<std::size_t> order = memory_order(*m); !std::is_sorted(order.begin(), order.end()))
    by_memory = keep_if_smaller([&] {
      reorder_steps(*m, order);
      plan_model_memory(*m, false);
    });
  // Gathers reading the sources of other gathers save copies but keep the sources alive.
  if (m->composed_gathers) {
    graph::PlanLimits variant = limits;
    variant.compose_gathers = false;
    try_limits(variant);
  }
  // Row streams save the values between their stages but keep the chain's input alive
  // to its end and add buffers: drop each one whose absence shrinks the arena.
  // Only a stream alive at the peak (from its input's first write to its own step) can
  // matter to the arena.
  std::vector<int> heads;
  for (std::size_t k = 0; k < m->steps.size(); ++k) {
    const runtime::Step& s = m->steps[k];
    if (s.kind != graph::StepKind::row_stream) continue;
    const runtime::ValuePlan& input = m->memory.values[static_cast<std::size_t>(s.inputs[0])];
    const int from = input.first_step >= 0 ? input.first_step : 0;
    if (m->memory.peak_step >= from && m->memory.peak_step <= static_cast<int>(k)) heads.push_back(s.nodes.front());
  }
  for (int head : heads) {
    graph::PlanLimits variant = limits;
    variant.no_row_stream.push_back(head);
    try_limits(variant);
  }
  // Downsampling shortcuts read late (graph::read_downsamples_late), one at a time while
  // the peak holds a shortcut's input and reading it late shrinks the arena.
  for (bool kept = true; kept;) {
    std::vector<int> at_peak;
    for (const runtime::Step& s : m->steps) {
      if (s.nodes.empty() || std::find(m->shortcuts.begin(), m->shortcuts.end(), s.nodes.front()) == m->shortcuts.end())
        continue;
      const runtime::ValuePlan& in = m->memory.values[static_cast<std::size_t>(s.inputs[0])];
      if (in.first_step <= m->memory.peak_step && m->memory.peak_step <= in.last_step) at_peak.push_back(s.nodes.front());
    }
    kept = false;
    for (std::size_t i = 0; i < at_peak.size() && !kept; ++i) {
      graph::PlanLimits variant = limits;
      variant.late_downsample.push_back(at_peak[i]);
      kept = try_limits(variant);
    }
  }
  // Inverted-residual blocks over their own input, where the plan allows it: their
  // buffers grow (the input rows copied, a second pair per thread) and chains of values
  // can place worse, so only where that shrinks the arena. A block over its input saves
  // bytes at its own step only (its input dies there, its output starts there), so it is
  // tried only where every step at the live bound is such a block, with an output of its
  // own (not a Concat's slice). On threads each block runs in three rounds
  // (InvertedResidualRunner::run_in_place: mobilenet_v2 13% slower on two): there, only
  // when a memory limit asks for it.
  std::vector<int> able;
  for (const runtime::Step& s : m->steps)
    if (s.block && s.block->in_place_ok) able.push_back(s.nodes.front());
  bool able_at_peak = !able.empty();
  for (std::size_t k = 0; k < m->steps.size() && able_at_peak; ++k) {
    if (m->memory.live[k] < m->memory.live_bound) continue;
    const runtime::Step& s = m->steps[k];
    able_at_peak = s.block && s.block->in_place_ok &&
                   m->memory.values[static_cast<std::size_t>(s.inputs[0])].last_step == static_cast<int>(k) &&
                   std::none_of(m->aliases.begin(), m->aliases.end(),
                                [&](const runtime::ValueAlias& a) { return a.value == s.outputs[0]; });
  }
  if (able_at_peak && (m->options.threads == 1 || m->options.max_arena_bytes) && keep_if_smaller([&] {
        put_blocks_in_place(*m, able);
        plan_model_memory(*m, false);
      }))
    in_place_blocks = std::move(able);
  if (const std::size_t limit = m->options.max_arena_bytes; limit && m->memory.arena_bytes > limit) {
    // Smaller tiles shrink the fused blocks' buffers; if that is not enough, say what is.
    limits.smallest_tiles = true;
    plan(limits);
    if (m->memory.arena_bytes > limit)
      throw_invalid(m->graph.source + ": the activation arena needs " + std::to_string(m->memory.arena_bytes) +
                    " bytes, over --max-arena-bytes " + std::to_string(limit) +
                    "; the smallest arena nnjit can reach for this model is " +
                    std::to_string(m->memory.arena_bytes) + " bytes");
  }
  m->times.plan = ms_since(t);

  t = Clock::now();
  const int threads = load_threads(options, m->host);
  runtime::compile_steps(*m, threads, &early);
  m->times.compile = ms_since(t);
  runtime::write_perf_map_if_asked();  // NNJIT_PERF_MAP=1: perf report names our kernels
  runtime::write_jitdump_if_asked();   // NNJIT_JITDUMP=1: perf inject --jit annotates them

  // What the model no longer needs goes on a thread beside the caller (ModelImpl::releasing).
  std::vector<Tensor> dropped = release_packed_constants(*m);
  if (threads > 1 && !dropped.empty()) {
    try {
      m->releasing = std::thread([dropped = std::move(dropped)]() mutable { dropped.clear(); });
      runtime::keep_off_caller_cpu(m->releasing);
    } catch (const std::system_error&) {
      // No thread to be had: the constants went with the callable, here.
    }
  }
  dropped.clear();  // one load thread: here, inside the load's time
  for (const graph::Value& v : m->graph.values)
    if (v.constant.defined()) m->weights_bytes += v.constant.nbytes();
  m->weights_stored_bytes = m->weights_bytes;
  for (const runtime::Step& s : m->steps) m->weights_bytes += s.packed_bytes;
  m->times.total = ms_since(t0);
  return std::make_shared<const Model>(std::move(m));
}

}  // namespace

const std::vector<StepInfo>& ModelImpl::step_infos() const {
  std::call_once(described, [this] { described_steps = describe_steps(*this); });
  return described_steps;
}

std::size_t ModelImpl::unfused_bound() const {
  std::call_once(unfused_once, [this] { unfused_bound_bytes = runtime::unfused_live_bound(*this); });
  return unfused_bound_bytes;
}

// ---------------------------------------------------------------------------- Model

Model::Model(std::unique_ptr<ModelImpl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
const std::vector<TensorInfo>& Model::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Model::outputs() const { return impl_->outputs; }
const LoadTimes& Model::load_times() const { return impl_->times; }
const std::vector<std::string>& Model::bound_dims() const { return impl_->graph.bound_dims; }
std::size_t Model::weights_bytes() const { return impl_->weights_bytes; }
std::size_t Model::arena_bytes() const { return impl_->memory.arena_bytes; }
const std::vector<StepInfo>& Model::steps() const { return impl_->step_infos(); }
int Model::dump_kernels(const std::string& dir) const { return runtime::dump_kernels(*impl_, dir); }
Session Model::session() const { return Session(shared_from_this()); }

std::string Model::memory_report() const {
  const ModelImpl& m = *impl_;
  std::vector<std::string> names;
  for (const graph::Value& v : m.graph.values) names.push_back(v.name);
  runtime::MemoryReport r = runtime::make_memory_report(m.memory, names);
  r.weights_bytes_stored = m.weights_stored_bytes;
  for (const runtime::Step& s : m.steps) r.weights_bytes_packed += s.packed_bytes;
  std::string text = r.to_text();
  text += "live-set bound of the graph as loaded (one step per node, plain layout): " +
          std::to_string(m.unfused_bound()) + " bytes; arena / that bound " +
          std::to_string(static_cast<double>(m.memory.arena_bytes) / static_cast<double>(std::max<std::size_t>(m.unfused_bound(), 1))).substr(0, 5) +
          "\n";
  return text;
}

std::string Model::summary() const {
  std::string s = "ops as loaded:   " + impl_->loaded_counts + "\n";
  s += "ops as executed: " + graph::op_counts(impl_->graph) + "\n";
  if (!impl_->optimize_report.empty()) s += "optimisation:    " + impl_->optimize_report + "\n";
  return s;
}

std::string Model::plan_report() const {
  std::string s = "kernels: " + impl_->isa + ", threads " + std::to_string(impl_->options.threads) + "\n";
  for (std::size_t i = 0; i < impl_->step_infos().size(); ++i) {
    const StepInfo& st = impl_->step_infos()[i];
    std::string nodes;
    for (const std::string& n : st.nodes) nodes += (nodes.empty() ? "" : "+") + n;
    s += "#" + std::to_string(i) + " " + st.op + " [" + nodes + "] -> " + st.shape + " " + st.layout +
         "  kernel=" + st.kernel;
    if (!st.split.empty()) s += "  split=" + st.split;
    if (!st.reason.empty()) s += "  (" + st.reason + ")";
    s += "\n";
  }
  return s;
}

// ---------------------------------------------------------------------------- Session

struct Session::State {
  Clock::time_point created = Clock::now();
  std::shared_ptr<void> arena;
  std::vector<Tensor> slots;  // one per value: constants, views into the arena, bound inputs
  std::vector<ops::ComputeContext> contexts;  // one per step, pointing into slots
};

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)), state_(std::make_unique<State>()) {
  const ModelImpl& m = model_->impl();
  const graph::Graph& g = m.graph;
  State& st = *state_;
  const std::size_t arena = std::max<std::size_t>(m.memory.arena_bytes, 1);
  // An arena larger than the machine's memory (a model asking for absurd shapes) is
  // refused before the allocator is asked: it could only fail, or overcommit.
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && arena / static_cast<std::size_t>(page) > static_cast<std::size_t>(pages))
    throw_internal("out of memory: a " + std::to_string(arena) + "-byte arena is more than this machine's " +
                   std::to_string(static_cast<std::size_t>(pages) * static_cast<std::size_t>(page)) + " bytes");
  void* base = std::aligned_alloc(runtime::kArenaAlign, (arena + 2 * runtime::kArenaAlign - 1) / runtime::kArenaAlign * runtime::kArenaAlign);
  if (!base) throw_internal("out of memory allocating a " + std::to_string(arena) + "-byte arena");
  st.arena = std::shared_ptr<void>(base, [](void* p) { std::free(p); });
  st.slots.resize(g.values.size());
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    const graph::Value& val = g.values[v];
    const runtime::ValuePlan& p = m.memory.values[v];
    if (val.constant.defined()) {
      st.slots[v] = val.constant;
    } else if ((p.kind == runtime::ValueKind::Allocate || p.kind == runtime::ValueKind::InPlace ||
                p.kind == runtime::ValueKind::Output || p.kind == runtime::ValueKind::Alias) &&
               p.first_step >= 0) {
      Shape shape = val.shape;  // a blocked value's slot holds whole blocks of channels
      if (const int block = m.block[v]) shape[1] = jit::blocked_channels(shape[1], block);
      st.slots[v] = Tensor::view(val.dtype, shape, static_cast<char*>(base) + p.offset, st.arena);
    }
  }
  st.contexts.reserve(m.steps.size());
  for (const runtime::Step& s : m.steps) {
    ops::ComputeContext ctx{*s.attrs, g.opset, {}, {}};
    for (int v : s.inputs) ctx.inputs.push_back(v >= 0 ? &st.slots[static_cast<std::size_t>(v)] : nullptr);
    for (int v : s.outputs) ctx.outputs.push_back(v >= 0 ? &st.slots[static_cast<std::size_t>(v)] : nullptr);
    st.contexts.push_back(std::move(ctx));
  }
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

std::vector<NamedTensor> Session::run(const std::vector<NamedTensor>& inputs) { return run(inputs, nullptr); }

std::vector<NamedTensor> Session::run(const std::vector<NamedTensor>& inputs, RunProfile* profile) {
  const ModelImpl& m = model_->impl();
  const graph::Graph& g = m.graph;
  State& st = *state_;
  std::vector<char> given(m.inputs.size(), 0);
  for (const NamedTensor& in : inputs) {
    std::size_t k = 0;
    while (k < m.inputs.size() && m.inputs[k].name != in.name) ++k;
    if (k == m.inputs.size()) {
      std::string names;
      for (const TensorInfo& i : m.inputs) names += (names.empty() ? "'" : ", '") + i.name + "'";
      throw_invalid("input '" + in.name + "' is not an input of the model (its inputs: " + names + ")");
    }
    if (given[k]++) throw_invalid("input '" + in.name + "' is given twice");
    const TensorInfo& want = m.inputs[k];
    if (in.tensor.dtype() != want.dtype)
      throw_invalid("input '" + in.name + "' has type " + dtype_name(in.tensor.dtype()) + ", the model expects " +
                    dtype_name(want.dtype));
    if (in.tensor.shape() != want.shape)
      throw_invalid("input '" + in.name + "' has shape " + shape_str(in.tensor.shape()) + ", the model expects " +
                    shape_str(want.shape));
    st.slots[static_cast<std::size_t>(g.inputs[k])] = in.tensor;
  }
  for (std::size_t k = 0; k < m.inputs.size(); ++k)
    if (!given[k]) throw_invalid("input '" + m.inputs[k].name + "' is missing");

  // Workers stay awake between steps (Options::spin_during_run).
  const runtime::ThreadPool::Section section(m.options.spin_during_run ? m.pool.get() : nullptr);
  Clock::time_point run_start;
  if (profile) {
    run_start = Clock::now();
    profile->start_us = std::chrono::duration<double, std::micro>(run_start - st.created).count();
    profile->steps.clear();
    profile->steps.reserve(m.steps.size());
  }
  for (std::size_t i = 0; i < m.steps.size(); ++i) {
    try {
      if (!profile) {
        m.steps[i].run(st.contexts[i]);
        continue;
      }
      const auto t0 = Clock::now();
      m.steps[i].run(st.contexts[i]);
      const auto t1 = Clock::now();
      profile->steps.push_back({i, std::chrono::duration<double, std::micro>(t0 - run_start).count(),
                                std::chrono::duration<double, std::micro>(t1 - t0).count()});
    } catch (const Error& e) {
      // Errors only the data can reveal (an index out of range): name the step's node.
      const runtime::Step& s = m.steps[i];
      const std::string where = s.nodes.empty() ? "step #" + std::to_string(i) + " (" + s.kernel + ")"
                                                : "node '" + g.nodes[static_cast<std::size_t>(s.nodes[0])].name + "' (" + s.op + ")";
      throw Error(e.code(), where + ": " + e.what());
    }
  }

  if (profile) profile->total_us = std::chrono::duration<double, std::micro>(Clock::now() - run_start).count();
  std::vector<NamedTensor> out;
  out.reserve(m.outputs.size());
  for (std::size_t k = 0; k < m.outputs.size(); ++k)
    out.push_back({m.outputs[k].name, st.slots[static_cast<std::size_t>(g.outputs[k])].clone()});
  // Drop the references to the caller's input tensors.
  for (int v : g.inputs) st.slots[static_cast<std::size_t>(v)] = Tensor();
  return out;
}

// ---------------------------------------------------------------------------- Engine

struct Engine::Impl {
  jit::HostInfo host = runtime::probe_host(runtime::real_sources());
  std::mutex pools_mutex;
  std::map<int, std::shared_ptr<runtime::ThreadPool>> pools;  // by thread count

  // The pool for `threads` workers, made on first use; null for one thread.
  std::shared_ptr<runtime::ThreadPool> pool(int threads) {
    if (threads <= 1) return nullptr;
    std::lock_guard lock(pools_mutex);
    auto& p = pools[threads];
    if (!p) p = std::make_shared<runtime::ThreadPool>(threads, jit::quota_cpus(host));
    return p;
  }
};

Engine::Engine() : impl_(std::make_unique<Impl>()) {}
Engine::~Engine() = default;

std::shared_ptr<const Model> Engine::load(const std::string& path, const Options& options) const {
  check_options(options);
  const auto t0 = Clock::now();
  return build_model([&] { return loaders::load_onnx_file(path); }, impl_->host, options,
                     impl_->pool(options.threads), t0);
}

std::shared_ptr<const Model> Engine::load_bytes(const void* data, std::size_t size, const std::string& name,
                                                const std::string& base_dir, const Options& options) const {
  check_options(options);
  const auto t0 = Clock::now();
  return build_model([&] { return loaders::load_onnx(data, size, name, base_dir); }, impl_->host, options,
                     impl_->pool(options.threads), t0);
}

std::vector<HostFigure> Engine::host_figures() const { return runtime::host_figures(impl_->host); }
HostPeaks Engine::measure_peaks() const { return runtime::measure_host_peaks(impl_->host); }

}  // namespace nnjit
