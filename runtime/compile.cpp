// Compile: one run function per step (see compile.hpp).
#include "runtime/compile.hpp"

#include <cstring>
#include <memory>

#include "jit/layout.hpp"

namespace nnjit::runtime {

namespace {

const float* data_or_null(const graph::Graph& g, int v) {
  return v >= 0 ? g.values[static_cast<std::size_t>(v)].constant.data<float>() : nullptr;
}

std::string serves(const graph::Graph& g, const Step& s) {
  std::string out;
  for (int n : s.nodes) out += (out.empty() ? "node '" : ", '") + g.nodes[static_cast<std::size_t>(n)].name + "'";
  return out + " (" + s.op + ")";
}

// A JIT convolution: weights packed now, the kernel shared through its family's cache.
template <class Plan, class Pack, class Get>
void compile_conv(const graph::Graph& g, Step& s, const Plan& plan, Pack pack, Get get) {
  auto weights = std::make_shared<decltype(pack(plan, nullptr, nullptr))>(
      pack(plan, data_or_null(g, s.inputs[1]), data_or_null(g, s.inputs[2])));
  auto kernel = get(plan, serves(g, s));
  s.kernel = kernel->name();
  s.code = kernel->code();
  s.code_size = kernel->code_size();
  s.run = [kernel, weights](const ops::ComputeContext& c) {
    kernel->run(c.inputs[0]->data<float>(), c.outputs[0]->data<float>(), *weights,
                c.inputs[3] ? c.inputs[3]->data<float>() : nullptr);
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

}  // namespace

void compile_steps(ModelImpl& m) {
  const graph::Graph& g = m.graph;
  for (Step& s : m.steps) {
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
        if (s.kind == graph::StepKind::to_blocked)
          s.run = [d, block](const ops::ComputeContext& c) {
            jit::nchw_to_blocked(c.inputs[0]->data<float>(), c.outputs[0]->data<float>(), d.n, d.c, d.plane, block);
          };
        else
          s.run = [d, block](const ops::ComputeContext& c) {
            jit::blocked_to_nchw(c.inputs[0]->data<float>(), c.outputs[0]->data<float>(), d.n, d.c, d.plane, block);
          };
        break;
      }
      case graph::StepKind::concat: {
        // Per image, each input's blocks one after another.
        std::vector<int64_t> in_floats;
        for (int v : s.inputs) in_floats.push_back(stored_image_floats(m, v));
        const int64_t out_floats = stored_image_floats(m, s.outputs[0]);
        const int64_t batch = g.values[static_cast<std::size_t>(s.outputs[0])].shape[0];
        s.kernel = "copy_concat_nChw" + std::to_string(m.block[static_cast<std::size_t>(s.outputs[0])]) + "c";
        s.run = [in_floats, out_floats, batch](const ops::ComputeContext& c) {
          float* dst = c.outputs[0]->data<float>();
          for (int64_t n = 0; n < batch; ++n) {
            float* d = dst + n * out_floats;
            for (std::size_t k = 0; k < in_floats.size(); ++k) {
              std::memcpy(d, c.inputs[k]->data<float>() + n * in_floats[k], static_cast<std::size_t>(in_floats[k]) * 4);
              d += in_floats[k];
            }
          }
        };
        break;
      }
      case graph::StepKind::conv:
        std::visit(
            [&](const auto& plan) {
              using P = std::decay_t<decltype(plan)>;
              if constexpr (std::is_same_v<P, jit::PointwisePlan>)
                compile_conv(g, s, plan, jit::pack_pointwise_weights, jit::get_pointwise_kernel);
              else if constexpr (std::is_same_v<P, jit::DepthwisePlan>)
                compile_conv(g, s, plan, jit::pack_depthwise_weights, jit::get_depthwise_kernel);
              else if constexpr (std::is_same_v<P, jit::DensePlan>)
                compile_conv(g, s, plan, jit::pack_dense_weights, jit::get_dense_kernel);
              else if constexpr (std::is_same_v<P, jit::GroupedPlan>)
                compile_conv(g, s, plan, jit::pack_grouped_weights, jit::get_grouped_kernel);
              else
                throw_internal("a conv step without a kernel plan");
            },
            s.plan);
        break;
    }
  }
}

}  // namespace nnjit::runtime
