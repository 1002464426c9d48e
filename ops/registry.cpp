// The table of every op nnjit claims. Each op group (one .cpp per group) appends its
// schemas; adding a group means adding one line to kGroups.
#include <map>

#include "ops/op.hpp"
#include "ops/registry.hpp"

namespace nnjit::ops {

namespace {

using GroupFn = void (*)(std::vector<OpSchema>&);
constexpr GroupFn kGroups[] = {
    register_elementwise_ops,  // ops/elementwise.cpp
    register_nn_ops,           // ops/nn.cpp: Conv, Gemm, MatMul, BatchNormalization, pooling, norms, Softmax
    register_tensor_ops,       // ops/tensor_ops.cpp: shape and data movement
    register_reduce_ops,       // ops/reduce.cpp: Reduce*, ArgMax, ArgMin, Hardmax
    register_math_extra_ops,   // ops/math_extra.cpp: rounding, trigonometry, ELU family, Sign, IsNaN, PRelu, ...
    register_logic_ops,        // ops/logic.cpp: And, Or, Xor, GreaterOrEqual, LessOrEqual, Mod
    register_index_ops,        // ops/index_ops.cpp: Size, GatherElements, GatherND, Scatter*, TopK, CumSum, OneHot, ...
    register_norm_extra_ops,   // ops/norm_extra.cpp: InstanceNormalization, LRN, MeanVarianceNormalization
    register_loss_ops,         // ops/loss.cpp: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss
    register_einsum_ops,       // ops/einsum.cpp: Einsum
    register_recurrent_ops,    // ops/recurrent.cpp: LSTM, GRU, RNN
    register_quant_ops,        // ops/quant.cpp: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
                               // QLinearMatMul; ops/quant_conv.cpp: ConvInteger, QLinearConv
    register_sample_ops,       // ops/sample_ops.cpp: GridSample, RoiAlign
    register_rearrange_ops,    // ops/rearrange_ops.cpp: MaxUnpool, ReverseSequence
};

const std::map<std::string_view, OpSchema>& table() {
  static const std::map<std::string_view, OpSchema> t = [] {
    std::vector<OpSchema> all;
    for (GroupFn g : kGroups) g(all);
    std::map<std::string_view, OpSchema> m;
    for (const OpSchema& s : all) m.emplace(s.name, s);
    return m;
  }();
  return t;
}

}  // namespace

const OpSchema* find_schema(std::string_view op_type) {
  auto it = table().find(op_type);
  return it == table().end() ? nullptr : &it->second;
}

std::vector<std::string> supported_ops() {
  std::vector<std::string> v;
  for (const auto& [name, s] : table()) v.emplace_back(name);
  return v;
}

}  // namespace nnjit::ops
