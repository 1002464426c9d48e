// Compile: one run function per step (see compile.hpp).
#include "runtime/compile.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "jit/isa.hpp"
#include "runtime/thread_pool.hpp"
#include "jit/layout.hpp"
#include "jit/pack_arena.hpp"
#include "runtime/runners.hpp"

namespace nnjit::runtime {

namespace {

// Buffers a compile worker reuses from step to step for the deferred constants it packs
// (re-parameterised weights, Tensor::deferred): they are computed into these rather than
// into fresh storage each, so packing faults in fresh memory only for what it keeps.
// compile_steps installs one per worker thread; each step starts again at its first slot.
class WeightStage {
 public:
  // `capacity`: floats of the largest deferred constant. Slots that big are reserved, and
  // only the pages a step uses are faulted in, once.
  explicit WeightStage(int64_t capacity) : capacity_(capacity) {}
  const float* compute(const Tensor& t) {
    if (used_ == slots_.size()) slots_.emplace_back(std::max(capacity_, t.numel()));
    jit::AlignedBuffer<float>& b = slots_[used_];
    if (static_cast<int64_t>(b.size()) < t.numel()) b = jit::AlignedBuffer<float>(t.numel());
    std::memset(static_cast<void*>(b.data()), 0, t.nbytes());
    if (!t.compute_into(b.data())) return nullptr;
    ++used_;
    return b.data();
  }
  void next_step() { used_ = 0; }

 private:
  int64_t capacity_;
  std::vector<jit::AlignedBuffer<float>> slots_;
  std::size_t used_ = 0;
};
thread_local WeightStage* t_stage = nullptr;

// A deferred constant not computed yet (Tensor::deferred): what a stage computes.
bool pending_deferred(const Tensor& t) { return !t.aligned() && t.unaligned_bytes() == nullptr; }

}  // namespace

// A weight lying unaligned in the mapped model file is packed from there, a deferred one
// computed into the worker's stage.
jit::FloatsIn data_or_null(const graph::Graph& g, int v) {
  if (v < 0) return nullptr;
  const Tensor& t = g.values[static_cast<std::size_t>(v)].constant;
  if (t_stage != nullptr && pending_deferred(t) && t.dtype() == DType::Float32)
    if (const float* staged = t_stage->compute(t)) return staged;
  return graph::read_floats(t);
}

std::string serves(const graph::Graph& g, const Step& s) {
  std::string out;
  for (int n : s.nodes) out += (out.empty() ? "node '" : ", '") + g.nodes[static_cast<std::size_t>(n)].name + "'";
  return out + " (" + s.op + ")";
}

namespace {

// A step's use of the model's pool: the pool (null: one thread) and what the step's
// jobs taught it of how fast each thread runs them (ThreadPool::Balance).
struct StepPool {
  ThreadPool* pool = nullptr;
  std::shared_ptr<ThreadPool::Balance> balance;

  explicit StepPool(ThreadPool* p) : pool(p), balance(p ? std::make_shared<ThreadPool::Balance>() : nullptr) {}
  int threads() const { return pool ? pool->threads() : 1; }
};

// Runs body(begin, end, worker) over [0, n) on the pool's threads, or inline.
template <class Body>
void parallel(const StepPool& pool, int64_t n, Body&& body) {
  if (pool.threads() == 1 || n <= 1) {
    body(int64_t{0}, n, 0);
    return;
  }
  pool.pool->parallel_for(
      n, [&](int64_t begin, int64_t end, int worker) { body(begin, end, worker); }, pool.balance.get());
}

// A k x k JIT convolution (depthwise, dense, grouped): weights packed now, the kernel
// shared through its family's cache; threads split the output rows of all images.
template <class Plan, class Pack, class Get>
void compile_rows_conv(const graph::Graph& g, Step& s, const Plan& plan, Pack pack, Get get, const StepPool& pool) {
  auto weights = std::make_shared<decltype(pack(plan, nullptr, nullptr))>(
      pack(plan, data_or_null(g, s.inputs[1]), data_or_null(g, s.inputs[2])));
  s.packed_bytes = (weights->weights.size() + weights->bias.size()) * sizeof(float);
  auto kernel = get(plan, serves(g, s));
  s.kernel = kernel->name();
  s.code = kernel->code();
  s.code_size = kernel->code_size();
  const int64_t ho = plan.shape.out_height(), rows = plan.shape.batch * ho;
  if (pool.threads() > 1) s.split = "rows/" + std::to_string(std::min<int64_t>(rows, pool.threads()));
  s.run = [kernel, weights, pool, ho, rows](const ops::ComputeContext& c) {
    const Plan& p = kernel->plan();
    const float* src = c.inputs[0]->data<float>();
    float* dst = c.outputs[0]->data<float>();
    const float* res = c.inputs[3] ? c.inputs[3]->data<float>() : nullptr;
    parallel(pool, rows, [&](int64_t begin, int64_t end, int) {
      for (int64_t n = begin / ho; n * ho < end; ++n) {
        const int64_t r0 = std::max(begin, n * ho) - n * ho, r1 = std::min(end, (n + 1) * ho) - n * ho;
        (*kernel)(rows_args(p, src + n * p.src_image_floats(), dst + n * p.dst_image_floats(), *weights,
                            res ? res + n * p.dst_image_floats() : nullptr, r0, r1));
      }
    });
  };
}

// A pointwise convolution: one image at a time split into pixel / row slices, each slice
// its own kernel planned from the whole layer's plan (so one packing serves all).
void compile_pointwise(const graph::Graph& g, Step& s, const jit::PointwisePlan& plan, const StepPool& pool) {
  auto weights = std::make_shared<jit::PointwiseWeights>(
      jit::pack_pointwise_weights(plan, data_or_null(g, s.inputs[1]), data_or_null(g, s.inputs[2])));
  s.packed_bytes = (weights->weights.size() + weights->bias.size()) * sizeof(float);
  struct Part {
    std::shared_ptr<const jit::PointwiseKernel> kernel;
    int64_t src = 0, dst = 0;  // float offsets in the image
  };
  std::vector<Part> parts;
  const int threads = pool.threads();
  jit::PointwisePlan one = plan;
  one.shape.batch = 1;
  if (threads > 1)
    for (const jit::PointwiseSlice& sl : jit::slice_pointwise(one, threads))
      parts.push_back({jit::get_pointwise_kernel(sl.plan, serves(g, s)), sl.src_pixel * plan.block,
                       sl.dst_pixel * plan.block});
  // A small plane (SE, 7x7 heads) does not split into pixels: split output-channel tiles.
  const bool by_tiles = threads > 1 && parts.size() <= 1 && plan.tiles() > 1;
  if (parts.size() <= 1) parts = {{jit::get_pointwise_kernel(one, serves(g, s)), 0, 0}};
  // The kernels that run are the parts' (one image each): the first names the step.
  s.kernel = parts[0].kernel->name();
  s.code = parts[0].kernel->code();
  s.code_size = parts[0].kernel->code_size();
  if (parts.size() > 1) s.split = (plan.shape.stride == 1 ? "pixels/" : "rows/") + std::to_string(parts.size());
  if (by_tiles) s.split = "tiles/" + std::to_string(std::min<int64_t>(plan.tiles(), threads));
  const int64_t batch = plan.shape.batch, shift = s.src_shift * plan.block;
  s.run = [parts, weights, pool, batch, by_tiles, shift, src_image = plan.src_image_floats(),
           dst_image = plan.dst_image_floats()](const ops::ComputeContext& c) {
    const float* src = c.inputs[0]->data<float>() + shift;
    float* dst = c.outputs[0]->data<float>();
    const float* res = c.inputs[3] ? c.inputs[3]->data<float>() : nullptr;
    for (int64_t n = 0; n < batch; ++n) {
      const float* r = res ? res + n * dst_image : nullptr;
      if (by_tiles) {
        const jit::PointwiseKernel& k = *parts[0].kernel;
        parallel(pool, k.plan().tiles(), [&](int64_t begin, int64_t end, int) {
          k({src + n * src_image, dst + n * dst_image, weights->weights.data(), weights->bias.data(), r, begin, end});
        });
        continue;
      }
      parallel(pool, static_cast<int64_t>(parts.size()), [&](int64_t begin, int64_t end, int) {
        for (int64_t k = begin; k < end; ++k) {
          const Part& part = parts[static_cast<std::size_t>(k)];
          (*part.kernel)({src + n * src_image + part.src, dst + n * dst_image + part.dst, weights->weights.data(),
                          weights->bias.data(), r ? r + part.dst : nullptr, 0, part.kernel->plan().tiles()});
        }
      });
    }
  };
}

// N, C and the plane of a 4-D (or any rank >= 2) value.
struct Nchw {
  int64_t n = 1, c = 1, plane = 1;
};
Nchw nchw_of(const graph::Value& v) {
  Nchw d;
  d.n = v.shape.at(0);
  d.c = v.shape.at(1);
  for (std::size_t i = 2; i < v.shape.size(); ++i) d.plane *= v.shape[i];
  return d;
}

// Floats one image of value `v` takes in its slot (whole blocks when blocked).
int64_t stored_image_floats(const ModelImpl& m, int v) {
  const graph::Value& val = m.graph.values[static_cast<std::size_t>(v)];
  const Nchw d = nchw_of(val);
  const int block = m.block[static_cast<std::size_t>(v)];
  return (block ? jit::blocked_channels(d.c, block) : d.c) * d.plane;
}

// Whether the memory plan gave step s's output the bytes of its first input (a fused
// block or row stream writing over its own input).
bool over_first_input(const ModelImpl& m, const Step& s) {
  const ValuePlan& out = m.memory.values[static_cast<std::size_t>(s.outputs[0])];
  return out.kind == ValueKind::InPlace && out.donor == s.inputs[0];
}

// What a fused step's runner tells the profiler and `nnjit info`.
template <class Runner>
void describe_tiled(Step& s, const Runner& runner, const StepPool& pool) {
  s.packed_bytes = runner.packed_bytes();
  s.kernel = runner.name();
  s.code = runner.code();
  s.code_size = runner.code_size();
  if (pool.threads() > 1) s.split = "tiles/" + std::to_string(std::min<int64_t>(runner.tiles(), pool.threads()));
}

// Packs one step's weights, generates (or finds) its kernels and sets its run function.
void compile_step(ModelImpl& m, Step& s) {
  const graph::Graph& g = m.graph;
  const StepPool pool(m.pool.get());
  switch (s.kind) {
    case graph::StepKind::reference: {
      const ops::OpSchema* schema = ops::find_schema(s.op);
      if (!schema) throw_internal("no schema for planned op " + s.op);
      s.kernel = "reference";
      s.run = schema->compute;
      break;
    }
    case graph::StepKind::to_blocked:
    case graph::StepKind::to_plain: {
      const Nchw d = nchw_of(g.values[static_cast<std::size_t>(s.outputs[0])]);
      const int block = m.block[static_cast<std::size_t>(s.kind == graph::StepKind::to_blocked ? s.outputs[0] : s.inputs[0])];
      s.kernel = s.kind == graph::StepKind::to_blocked ? "reorder_nchw_to_nChw" + std::to_string(block) + "c"
                                                       : "reorder_nChw" + std::to_string(block) + "c_to_nchw";
      const int64_t pairs = d.n * jit::div_up(d.c, block);  // (image, block) pairs, split over threads
      if (s.kind == graph::StepKind::to_blocked)
        s.run = [d, block, pool, pairs](const ops::ComputeContext& c) {
          parallel(pool, pairs, [&](int64_t begin, int64_t end, int) {
            jit::nchw_to_blocked(c.inputs[0]->data<float>(), c.outputs[0]->data<float>(), d.n, d.c, d.plane, block,
                                 begin, end);
          });
        };
      else
        s.run = [d, block, pool, pairs](const ops::ComputeContext& c) {
          parallel(pool, pairs, [&](int64_t begin, int64_t end, int) {
            jit::blocked_to_nchw(c.inputs[0]->data<float>(), c.outputs[0]->data<float>(), d.n, d.c, d.plane, block,
                                 begin, end);
          });
        };
      break;
    }
    case graph::StepKind::ir_block: {
      // In place only where the memory plan gave the output the input's bytes.
      const bool over_input = over_first_input(m, s);
      s.block->in_place = s.block->in_place && over_input;
      auto runner = std::make_shared<const InvertedResidualRunner>(g, s, m.host);
      describe_tiled(s, *runner, pool);
      if (over_input && pool.threads() > 1 && runner->tiles() > 1) {
        s.run = [runner, pool](const ops::ComputeContext& c) {
          runner->run_in_place(c.outputs[0]->data<float>(), c.inputs[7] ? c.inputs[7]->data<float>() : nullptr,
                               c.outputs[1]->data<float>(), *pool.pool, pool.balance.get());
        };
        break;
      }
      s.run = [runner, pool](const ops::ComputeContext& c) {
        // Each worker takes a run of consecutive tiles and its own pair of buffers.
        const int64_t per_worker = runner->expanded_floats() + runner->depthwise_floats();
        parallel(pool, runner->tiles(), [&](int64_t begin, int64_t end, int worker) {
          float* buffers = c.outputs[1]->data<float>() + worker * per_worker;
          runner->run(c.inputs[0]->data<float>(), c.outputs[0]->data<float>(),
                      c.inputs[7] ? c.inputs[7]->data<float>() : nullptr, buffers,
                      buffers + runner->expanded_floats(), begin, end);
        });
      };
      break;
    }
    case graph::StepKind::row_stream: {
      auto runner = std::make_shared<const RowStreamRunner>(g, s, m.host);
      describe_tiled(s, *runner, pool);
      // An identity shortcut's output over the stream's own input, split between threads.
      if (over_first_input(m, s) && pool.threads() > 1 && runner->tiles() > 1) {
        s.run = [runner, pool](const ops::ComputeContext& c) {
          runner->run_in_place(c.outputs[0]->data<float>(), c.outputs[1]->data<float>(), *pool.pool,
                               pool.balance.get());
        };
        break;
      }
      s.run = [runner, pool](const ops::ComputeContext& c) {
        // Each worker takes a run of consecutive tiles and its own buffers.
        const Tensor* res = c.inputs.back();
        parallel(pool, runner->tiles(), [&](int64_t begin, int64_t end, int worker) {
          runner->run(c.inputs[0]->data<float>(), c.outputs[0]->data<float>(), res ? res->data<float>() : nullptr,
                      c.outputs[1]->data<float>() + worker * runner->buffers_floats(), begin, end);
        });
      };
      break;
    }
    case graph::StepKind::se_block: {
      // pool -> reduce -> expand (+ gate) -> scale, on the step's buffers:
      // [pooled | reduced | gate], each N vectors of whole blocks.
      const graph::SqueezeExcitePlan& se = *s.se;
      const std::string who = serves(g, s);
      auto pool_k = jit::get_pool_kernel(se.pool, who);
      auto reduce_k = jit::get_pointwise_kernel(se.reduce, who);
      auto expand_k = jit::get_pointwise_kernel(se.expand, who);
      auto scale_k = jit::get_eltwise_kernel(se.scale, who);
      auto reduce_w = std::make_shared<jit::PointwiseWeights>(
          jit::pack_pointwise_weights(se.reduce, data_or_null(g, s.inputs[1]), data_or_null(g, s.inputs[2])));
      auto expand_w = std::make_shared<jit::PointwiseWeights>(
          jit::pack_pointwise_weights(se.expand, data_or_null(g, s.inputs[3]), data_or_null(g, s.inputs[4])));
      s.packed_bytes = (reduce_w->weights.size() + reduce_w->bias.size() + expand_w->weights.size() +
                        expand_w->bias.size()) * sizeof(float);
      s.kernel = "se[" + pool_k->name() + " > " + reduce_k->name() + " > " + expand_k->name() + " > " +
                 scale_k->name() + "]";
      s.code = scale_k->code();
      s.code_size = scale_k->code_size();
      if (pool.threads() > 1) s.split = "blocks+pixels/" + std::to_string(pool.threads());
      const int64_t pooled = se.pooled_floats(), reduced = se.reduced_floats();
      s.run = [pool_k, reduce_k, expand_k, scale_k, reduce_w, expand_w, pool, pooled, reduced](
                  const ops::ComputeContext& c) {
        const float* x = c.inputs[0]->data<float>();
        float* dst = c.outputs[0]->data<float>();
        float* p0 = c.outputs[1]->data<float>();
        float* p1 = p0 + pooled;
        float* gate = p1 + reduced;
        const jit::PoolPlan& pp = pool_k->plan();
        const jit::EltwisePlan& sp = scale_k->plan();
        parallel(pool, pp.shape.batch * pp.blocks, [&](int64_t begin, int64_t end, int) {
          for (int64_t n = begin / pp.blocks; n * pp.blocks < end; ++n)
            (*pool_k)({x + n * pp.src_image_floats(), p0 + n * pp.dst_image_floats(),
                       std::max(begin, n * pp.blocks) - n * pp.blocks, std::min(end, (n + 1) * pp.blocks) - n * pp.blocks});
        });
        reduce_k->run(p0, p1, *reduce_w);
        expand_k->run(p1, gate, *expand_w);
        for (int64_t n = 0; n < sp.shape.batch; ++n)
          parallel(pool, sp.image_vectors(), [&](int64_t begin, int64_t end, int) {
            (*scale_k)({x + n * sp.image_floats(), gate + n * sp.b_image_floats(), dst + n * sp.image_floats(),
                        begin, end});
          });
      };
      break;
    }
    case graph::StepKind::crop: {
      const graph::Value& in = g.values[static_cast<std::size_t>(s.inputs[0])];
      const graph::Value& out = g.values[static_cast<std::size_t>(s.outputs[0])];
      const int block = m.block[static_cast<std::size_t>(s.outputs[0])];
      const int64_t planes = in.shape[0] * jit::div_up(in.shape[1], block);  // (image, block) pairs
      const int64_t H = in.shape[2], W = in.shape[3], Ho = out.shape[2], Wo = out.shape[3];
      const int64_t top = s.channels.at(0).second, left = s.channels.at(1).second;
      const int64_t step = s.channels.size() > 2 ? s.channels[2].second : 1;
      // In place (the memory plan gave the output the input's bytes): every pixel moves to
      // the same or a lower address, so one forward pass reads each before it is written
      // over; threads would write what another has still to read.
      const bool in_place = m.memory.values[static_cast<std::size_t>(s.outputs[0])].kind == ValueKind::InPlace;
      s.kernel = std::string(step == 1 ? "crop" : "subsample" + std::to_string(step)) + "_nChw" + std::to_string(block) +
                 "c" + (in_place ? "_in_place" : "");
      s.run = [planes, H, W, Ho, Wo, top, left, step, block, in_place, pool](const ops::ComputeContext& c) {
        const std::size_t row_bytes = static_cast<std::size_t>(Wo * block) * sizeof(float);
        const std::size_t pixel_bytes = static_cast<std::size_t>(block) * sizeof(float);
        auto copy = [&](int64_t begin, int64_t end, int) {
          float* dst = c.outputs[0]->data<float>();
          const float* src = c.inputs[0]->data<float>();
          for (int64_t p = begin; p < end; ++p)
            for (int64_t r = 0; r < Ho; ++r) {
              float* d = dst + ((p * Ho + r) * Wo) * block;
              const float* x = src + ((p * H + top + r * step) * W + left) * block;
              if (step == 1) std::memmove(d, x, row_bytes);
              else
                for (int64_t j = 0; j < Wo; ++j) std::memmove(d + j * block, x + j * step * block, pixel_bytes);
            }
        };
        if (in_place) copy(0, planes, 0);
        else parallel(pool, planes, copy);
      };
      break;
    }
    case graph::StepKind::gather: {
      // A Concat whose inputs the memory plan placed inside its output: nothing to copy.
      if (std::any_of(m.aliases.begin(), m.aliases.end(), [&](const ValueAlias& a) { return a.parent == s.outputs[0]; })) {
        s.kernel = "none (inputs computed in place)";
        s.run = [](const ops::ComputeContext&) {};
        break;
      }
      // Output block by output block: a block whose lanes come from one input block in
      // order is one copy of the plane; any other is copied lane by lane.
      const int block = m.block[static_cast<std::size_t>(s.outputs[0])];
      const graph::Value& out = g.values[static_cast<std::size_t>(s.outputs[0])];
      const Nchw d = nchw_of(out);
      struct Source {
        int input = 0;
        int64_t floats = 0;  // one image of that input
      };
      std::vector<Source> sources;
      for (int v : s.inputs) sources.push_back({0, stored_image_floats(m, v)});
      const int64_t out_blocks = jit::div_up(d.c, block), out_image = stored_image_floats(m, s.outputs[0]);
      std::vector<std::pair<int, int64_t>> table = s.channels;
      s.kernel = "gather_nChw" + std::to_string(block) + "c";
      if (block > 16) throw_internal("gather: blocks of more than 16 channels");
      if (pool.threads() > 1) s.split = "blocks/" + std::to_string(std::min<int64_t>(out_blocks, pool.threads()));
      s.run = [table, sources, d, block, out_blocks, out_image, pool](const ops::ComputeContext& c) {
        const int64_t plane = d.plane;
        for (int64_t n = 0; n < d.n; ++n)
          parallel(pool, out_blocks, [&](int64_t begin, int64_t end, int) {
            for (int64_t ob = begin; ob < end; ++ob) {
              float* dst = c.outputs[0]->data<float>() + n * out_image + ob * plane * block;
              const int64_t first = ob * block, lanes = std::min<int64_t>(block, d.c - first);
              const auto [k0, c0] = table[static_cast<std::size_t>(first)];
              bool whole = lanes == block && c0 % block == 0;
              for (int64_t l = 1; whole && l < lanes; ++l)
                whole = table[static_cast<std::size_t>(first + l)] == std::pair<int, int64_t>{k0, c0 + l};
              if (whole) {
                const float* src = c.inputs[static_cast<std::size_t>(k0)]->data<float>() +
                                   n * sources[static_cast<std::size_t>(k0)].floats + c0 / block * plane * block;
                std::memcpy(dst, src, static_cast<std::size_t>(plane * block) * sizeof(float));
                continue;
              }
              // Lane by lane from wherever each comes, pixel by pixel so that each output
              // line is written once (padding lanes read a zero).
              constexpr int kMaxBlock = 16;
              static const float kZero[1] = {0.f};
              const float* src[kMaxBlock];
              int64_t step[kMaxBlock];
              for (int64_t l = 0; l < block; ++l) {
                if (l >= lanes) {
                  src[l] = kZero;
                  step[l] = 0;
                  continue;
                }
                const auto [k, ch] = table[static_cast<std::size_t>(first + l)];
                src[l] = c.inputs[static_cast<std::size_t>(k)]->data<float>() +
                         n * sources[static_cast<std::size_t>(k)].floats + ch / block * plane * block + ch % block;
                step[l] = block;
              }
              for (int64_t p = 0; p < plane; ++p)
                for (int64_t l = 0; l < block; ++l) dst[p * block + l] = src[l][p * step[l]];
            }
          });
      };
      break;
    }
    case graph::StepKind::pool: {
      const auto& plan = std::get<jit::PoolPlan>(s.plan);
      auto kernel = jit::get_pool_kernel(plan, serves(g, s));
      s.kernel = kernel->name();
      s.code = kernel->code();
      s.code_size = kernel->code_size();
      const int64_t pairs = plan.shape.batch * plan.blocks;  // (image, block) pairs, split over threads
      if (pool.threads() > 1) s.split = "blocks/" + std::to_string(std::min<int64_t>(pairs, pool.threads()));
      s.run = [kernel, pool, pairs](const ops::ComputeContext& c) {
        const jit::PoolPlan& p = kernel->plan();
        parallel(pool, pairs, [&](int64_t begin, int64_t end, int) {
          for (int64_t n = begin / p.blocks; n * p.blocks < end; ++n)
            (*kernel)({c.inputs[0]->data<float>() + n * p.src_image_floats(),
                       c.outputs[0]->data<float>() + n * p.dst_image_floats(),
                       std::max(begin, n * p.blocks) - n * p.blocks, std::min(end, (n + 1) * p.blocks) - n * p.blocks});
        });
      };
      break;
    }
    case graph::StepKind::eltwise: {
      const auto& plan = std::get<jit::EltwisePlan>(s.plan);
      auto kernel = jit::get_eltwise_kernel(plan, serves(g, s));
      s.kernel = kernel->name();
      s.code = kernel->code();
      s.code_size = kernel->code_size();
      if (pool.threads() > 1) s.split = "pixels/" + std::to_string(pool.threads());
      s.run = [kernel, pool](const ops::ComputeContext& c) {
        const jit::EltwisePlan& p = kernel->plan();
        for (int64_t n = 0; n < p.shape.batch; ++n) {
          const float* a = c.inputs[0]->data<float>() + n * p.image_floats();
          const float* b = c.inputs[1] ? c.inputs[1]->data<float>() + n * p.b_image_floats() : nullptr;
          float* dst = c.outputs[0]->data<float>() + n * p.image_floats();
          parallel(pool, p.image_vectors(), [&](int64_t begin, int64_t end, int) { (*kernel)({a, b, dst, begin, end}); });
        }
      };
      break;
    }
    case graph::StepKind::gemm: {
      // Gemm's alpha, beta and transB go into the packed weights; threads split the rows
      // in whole register tiles, or the panels (column tiles) when rows are few.
      const auto& plan = std::get<jit::GemmPlan>(s.plan);
      const graph::Node& product = g.nodes[static_cast<std::size_t>(s.nodes.at(0))];  // MatMul or Gemm
      const ops::Attributes& attrs = product.attrs;
      const bool gemm = product.op_type == "Gemm";
      auto weights = std::make_shared<jit::GemmWeights>(jit::pack_gemm_weights(
          plan, data_or_null(g, s.inputs[1]), gemm && attrs.get_int("transB", 0) != 0,
          gemm ? attrs.get_float("alpha", 1.f) : 1.f, data_or_null(g, s.inputs[2]),
          gemm ? attrs.get_float("beta", 1.f) : 1.f));
      s.packed_bytes = (weights->weights.size() + weights->bias.size()) * sizeof(float);
      auto kernel = jit::get_gemm_kernel(plan, serves(g, s));
      s.kernel = kernel->name();
      s.code = kernel->code();
      s.code_size = kernel->code_size();
      const int64_t rows = plan.shape.m, tile = plan.main.rows, row_tiles = jit::div_up(rows, tile);
      const int64_t panels = plan.panels();
      const bool by_rows = row_tiles >= 2 * pool.threads() || row_tiles >= panels;
      if (pool.threads() > 1)
        s.split = (by_rows ? "rows/" : "panels/") + std::to_string(std::min(by_rows ? row_tiles : panels,
                                                                              int64_t{pool.threads()}));
      s.run = [kernel, weights, pool, rows, tile, row_tiles, panels, by_rows](const ops::ComputeContext& c) {
        const jit::GemmShape& sh = kernel->plan().shape;
        jit::GemmArgs args{c.inputs[0]->data<float>(), c.outputs[0]->data<float>(), weights->weights.data(),
                           weights->bias.data(), sh.k, sh.n, 0, rows, 0, panels};
        parallel(pool, by_rows ? row_tiles : panels, [&](int64_t begin, int64_t end, int) {
          jit::GemmArgs part = args;
          if (by_rows) {
            part.row_begin = begin * tile;
            part.row_end = std::min(rows, end * tile);
          } else {
            part.panel_begin = begin;
            part.panel_end = end;
          }
          (*kernel)(part);
        });
      };
      break;
    }
    case graph::StepKind::conv:
      std::visit(
          [&](const auto& plan) {
            using P = std::decay_t<decltype(plan)>;
            if constexpr (std::is_same_v<P, jit::PointwisePlan>)
              compile_pointwise(g, s, plan, pool);
            else if constexpr (std::is_same_v<P, jit::DepthwisePlan>)
              compile_rows_conv(g, s, plan, jit::pack_depthwise_weights, jit::get_depthwise_kernel, pool);
            else if constexpr (std::is_same_v<P, jit::DensePlan>)
              compile_rows_conv(g, s, plan, jit::pack_dense_weights, jit::get_dense_kernel, pool);
            else if constexpr (std::is_same_v<P, jit::GroupedPlan>)
              compile_rows_conv(g, s, plan, jit::pack_grouped_weights, jit::get_grouped_kernel, pool);
            else
              throw_internal("a conv step without a kernel plan");
          },
          s.plan);
      break;
  }
}

}  // namespace

EarlyWorker::EarlyWorker(bool start) {
  if (!start) return;
  thread_ = std::thread([this] {
    std::function<void()> work;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return given_ || done_; });
      work = std::move(work_);
    }
    if (!work) return;
    run_anywhere();  // it runs beside the load thread now (run() kept it off that CPU)
    work();
  });
}

EarlyWorker::~EarlyWorker() { join(); }

bool EarlyWorker::run(std::function<void()> work) {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable() || given_ || done_) return false;
    work_ = std::move(work);
    given_ = true;
  }
  keep_off_caller_cpu(thread_);
  wake_.notify_one();
  return true;
}

void EarlyWorker::join() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void compile_steps(ModelImpl& m, int threads, EarlyWorker* early) {
  // Steps are independent: each packs its own weights and writes only its own Step; the
  // kernel caches are thread-safe. Workers take the next step until none is left.
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  int64_t stage_floats = 0;  // the largest deferred constant
  for (const graph::Value& v : m.graph.values)
    if (pending_deferred(v.constant)) stage_floats = std::max(stage_floats, v.constant.numel());
  // Steps with the most weights first: a big classifier head taken last would keep one
  // worker packing while the others sit idle.
  std::vector<std::size_t> order(m.steps.size()), weight_bytes(m.steps.size(), 0);
  for (std::size_t i = 0; i < m.steps.size(); ++i) {
    order[i] = i;
    for (int v : m.steps[i].inputs)
      if (m.graph.is_constant(v)) weight_bytes[i] += m.graph.values[static_cast<std::size_t>(v)].constant.nbytes();
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return weight_bytes[a] > weight_bytes[b]; });
  // Every packed buffer from one reservation of address space (pack_arena.hpp), with room
  // for padding to whole blocks and tiles, at most 64 GiB; past it, buffers are
  // allocated one by one.
  constexpr std::size_t kMaxReserve = std::size_t{64} << 30;
  std::size_t reserve = (std::size_t{32} << 20) + m.steps.size() * jit::PackArena::kPage;
  for (std::size_t b : weight_bytes) reserve = std::min(kMaxReserve, reserve + std::min(kMaxReserve, b) * 4);
  jit::PackArena arena(reserve);
  auto work = [&] {
    jit::PackArena::Use use(arena);
    WeightStage stage(stage_floats);
    t_stage = &stage;
    for (std::size_t k; !failed && (k = next++) < order.size(); stage.next_step()) {
      const std::size_t i = order[k];
      try {
        compile_step(m, m.steps[i]);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
    t_stage = nullptr;
  };
  auto extra = static_cast<std::size_t>(std::max(0, std::min<int>(threads, static_cast<int>(m.steps.size())) - 1));
  if (extra > 0 && early != nullptr && early->run(work)) --extra;
  std::vector<std::thread> helpers;
  helpers.reserve(extra);
  for (std::size_t t = 0; t < extra; ++t) helpers.emplace_back(work);
  work();
  for (auto& t : helpers) t.join();
  if (early != nullptr) early->join();
  arena.trim();
  if (error) std::rethrow_exception(error);
}

}  // namespace nnjit::runtime
