// The elementwise op group: activations and math (elementwise_unary.cpp), arithmetic,
// comparisons and variadic ops (elementwise_binary.cpp), Cast/Where/Identity/Dropout
// (elementwise_misc.cpp).
#include "ops/elementwise.hpp"

#include "ops/registry.hpp"

namespace nnjit::ops {

namespace ew {

Shape broadcast_inputs(const InferContext& c, int first) {
  Shape out = c.shape(first);
  for (int i = first + 1; i < c.num_inputs(); ++i) {
    try {
      out = broadcast_shapes(out, c.shape(i));
    } catch (const Error& e) {
      c.fail(std::string("input ") + std::to_string(i) + ": " + e.what());
    }
  }
  return out;
}

}  // namespace ew

void register_elementwise_ops(std::vector<OpSchema>& out) {
  ew::register_unary_ops(out);
  ew::register_binary_ops(out);
  ew::register_misc_ops(out);
}

}  // namespace nnjit::ops
