// Registration functions of the op groups (see registry.cpp).
#pragma once

#include <vector>

#include "ops/op.hpp"

namespace nnjit::ops {

void register_elementwise_ops(std::vector<OpSchema>& out);
void register_nn_ops(std::vector<OpSchema>& out);
void register_tensor_ops(std::vector<OpSchema>& out);
void register_reduce_ops(std::vector<OpSchema>& out);
void register_math_extra_ops(std::vector<OpSchema>& out);
void register_logic_ops(std::vector<OpSchema>& out);
void register_index_ops(std::vector<OpSchema>& out);
void register_norm_extra_ops(std::vector<OpSchema>& out);
void register_loss_ops(std::vector<OpSchema>& out);
void register_einsum_ops(std::vector<OpSchema>& out);
void register_recurrent_ops(std::vector<OpSchema>& out);
void register_quant_ops(std::vector<OpSchema>& out);
void register_sample_ops(std::vector<OpSchema>& out);
void register_rearrange_ops(std::vector<OpSchema>& out);

}  // namespace nnjit::ops
