// The sub-groups of register_nn_ops (ops/nn.cpp), one per nn_*.cpp file.
#pragma once

#include <vector>

#include "ops/op.hpp"

namespace nnjit::ops {

void register_conv_ops(std::vector<OpSchema>& out);     // nn_conv.cpp: Conv, ConvTranspose
void register_pool_ops(std::vector<OpSchema>& out);     // nn_pool.cpp: MaxPool, AveragePool, Global*Pool
void register_gemm_ops(std::vector<OpSchema>& out);     // nn_gemm.cpp: Gemm, MatMul
void register_norm_ops(std::vector<OpSchema>& out);     // nn_norm.cpp: BatchNormalization, LayerNormalization
void register_softmax_ops(std::vector<OpSchema>& out);  // nn_softmax.cpp: Softmax, LogSoftmax

}  // namespace nnjit::ops
