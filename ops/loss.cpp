// Loss ops (opset 12 on): NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss, float32
// scores with int32/int64 targets, computed in double.
//
// Both read their scores as [N, C, D] (D the product of the dims after C, 1 for [N, C])
// and their targets as [N, D]. SoftmaxCrossEntropyLoss is a log-softmax over axis 1
// (ops/softmax.hpp) followed by the same NLL reference as NegativeLogLikelihoodLoss:
//
//   loss[n, d] = -weight[t] * log_prob[n, t, d]   with t = target[n, d]; 0 where t == ignore_index
//   none -> loss (target's shape); sum -> sum(loss); mean -> sum(loss) / sum(weight[t]) over the
//   targets not ignored (weight 1 without weights: the count, so 0 / 0 = NaN when all are ignored)
//
// A target outside [0, C) that is not ignore_index is refused at run time (InvalidInput).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ops/registry.hpp"
#include "ops/softmax.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

namespace {

enum class LossReduction { None, Sum, Mean };

LossReduction loss_reduction(const Attributes& attrs, const std::string& where) {
  const std::string r = attrs.get_string("reduction", "mean");
  if (r == "none") return LossReduction::None;
  if (r == "sum") return LossReduction::Sum;
  if (r == "mean") return LossReduction::Mean;
  throw_invalid(where + ": reduction must be none, sum or mean, got '" + r + "'");
}

std::optional<int64_t> ignore_index(const Attributes& attrs) {
  if (!attrs.has("ignore_index")) return std::nullopt;
  return attrs.get_int("ignore_index", 0);
}

// Scores [N, C, d1, ...] as [N, C, D].
struct LossDims {
  int64_t N, C, D;
};

LossDims loss_dims(const Shape& scores) {
  int64_t D = 1;
  for (std::size_t i = 2; i < scores.size(); ++i) D *= scores[i];
  return {scores[0], scores[1], D};
}

// The NLL reference over log-probabilities `log_prob` [N, C, D] (dense), targets [N, D]
// and optional weights [C]; writes the loss (N * D elements, or one when reduced) to dst.
void nll_reference(const float* log_prob, const Tensor& target, const float* weight, LossDims dims, LossReduction red,
                   std::optional<int64_t> ignore, float* dst, const char* op) {
  double total = 0, weight_total = 0;
  for (int64_t n = 0; n < dims.N; ++n)
    for (int64_t d = 0; d < dims.D; ++d) {
      const int64_t e = n * dims.D + d, t = int_at(target, e);
      double loss = 0;
      if (ignore && t == *ignore) {
        loss = 0;
      } else {
        if (t < 0 || t >= dims.C)
          throw_invalid(std::string(op) + ": target " + std::to_string(t) + " at flat index " + std::to_string(e) +
                        " is outside [0, " + std::to_string(dims.C) + "), the classes" +
                        (ignore ? ", and is not ignore_index " + std::to_string(*ignore) : ""));
        const double w = weight ? weight[t] : 1.0;
        loss = -w * log_prob[(n * dims.C + t) * dims.D + d];
        weight_total += w;
      }
      if (red == LossReduction::None) dst[e] = static_cast<float>(loss);
      total += loss;
    }
  if (red == LossReduction::Sum) dst[0] = static_cast<float>(total);
  if (red == LossReduction::Mean) dst[0] = static_cast<float>(total / weight_total);
}

// Shared shape rule: scores (input 0) [N, C, d1, ...], targets (input 1) [N, d1, ...],
// optional weights (input 2) [C]; output 0 the loss, output 1 (SoftmaxCrossEntropyLoss's
// log_prob, when `max_outputs` is 2) the scores' shape.
void infer_loss(InferContext& c, int max_outputs) {
  c.require_inputs(2, 3);
  if (c.num_outputs() > max_outputs)
    c.fail("has " + std::to_string(c.num_outputs()) + " outputs; the op has at most " + std::to_string(max_outputs));
  c.require_type(0, {DType::Float32});
  const Shape &x = c.shape(0), &t = c.shape(1);
  if (c.rank(0) < 2) c.fail("input has shape " + shape_str(x) + "; needs [N, C, ...]");
  if (c.dtype(1) != DType::Int32 && c.dtype(1) != DType::Int64)
    c.fail("target must be int32 or int64, got " + dtype_name(c.dtype(1)));
  Shape want{x[0]};
  want.insert(want.end(), x.begin() + 2, x.end());
  if (t != want) c.fail("target has shape " + shape_str(t) + "; input " + shape_str(x) + " needs " + shape_str(want));
  if (c.has_input(2)) {
    c.require_same_type(0, 2);
    if (c.shape(2) != Shape{x[1]})
      c.fail("weight has shape " + shape_str(c.shape(2)) + "; needs [C] = " + shape_str(Shape{x[1]}));
  }
  const LossReduction red = loss_reduction(c.attrs, c.where());
  c.set_output(0, DType::Float32, red == LossReduction::None ? t : Shape{});
  c.set_output(1, DType::Float32, x);
}

void infer_nll(InferContext& c) { infer_loss(c, 1); }
void infer_sce(InferContext& c) { infer_loss(c, 2); }

void compute_nll(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const float* weight = c.has(2) ? c.in(2).data<float>() : nullptr;
  nll_reference(x.data<float>(), c.in(1), weight, loss_dims(x.shape()),
                loss_reduction(c.attrs, "NegativeLogLikelihoodLoss"), ignore_index(c.attrs), c.out(0).data<float>(),
                "NegativeLogLikelihoodLoss");
}

void compute_sce(const ComputeContext& c) {
  const Tensor& x = c.in(0);
  const LossDims dims = loss_dims(x.shape());
  // log_softmax over C into the log_prob output when asked for, else into scratch.
  Tensor* log_prob_out = c.outputs.size() > 1 ? c.outputs[1] : nullptr;
  std::vector<float> scratch;
  float* log_prob = nullptr;
  if (log_prob_out) {
    log_prob = log_prob_out->data<float>();
  } else {
    scratch.resize(static_cast<std::size_t>(x.numel()));
    log_prob = scratch.data();
  }
  softmax_reference(dims.N, dims.C, dims.D, x.data<float>(), log_prob, /*log_softmax=*/true);
  const float* weight = c.has(2) ? c.in(2).data<float>() : nullptr;
  nll_reference(log_prob, c.in(1), weight, dims, loss_reduction(c.attrs, "SoftmaxCrossEntropyLoss"),
                ignore_index(c.attrs), c.out(0).data<float>(), "SoftmaxCrossEntropyLoss");
}

}  // namespace

void register_loss_ops(std::vector<OpSchema>& out) {
  out.push_back({"NegativeLogLikelihoodLoss", 12, infer_nll, compute_nll, nullptr});
  out.push_back({"SoftmaxCrossEntropyLoss", 12, infer_sce, compute_sce, nullptr});
}

}  // namespace nnjit::ops
