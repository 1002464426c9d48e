// The nn op group: convolution, matrix products, pooling, normalisation, softmax.
// Each family lives in its own nn_*.cpp; this file only gathers them.
#include "ops/nn_schemas.hpp"
#include "ops/registry.hpp"

namespace nnjit::ops {

void register_nn_ops(std::vector<OpSchema>& out) {
  register_conv_ops(out);
  register_pool_ops(out);
  register_gemm_ops(out);
  register_norm_ops(out);
  register_softmax_ops(out);
}

}  // namespace nnjit::ops
