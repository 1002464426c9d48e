// eltwise: elementwise ops on channel-blocked activations — an activation alone, an Add
// or Mul of two same-shape tensors with an optional activation after, and the channel
// scale of squeeze-excitation with an optional activation on the scale.
//
//   // EfficientNet's SE: x * sigmoid(s), s the [N][C][1][1] squeeze, one kernel.
//   EltwiseShape shape{.channels = 96, .plane = 112 * 112, .op = EltwiseOp::scale_channels,
//                      .activation = Activation::sigmoid()};
//   auto planned = plan_eltwise(shape, host);               // EltwisePlan or a reason
//   const EltwisePlan& plan = std::get<EltwisePlan>(planned);
//   auto kernel = get_eltwise_kernel(plan, "node 'mul7' (Mul)");   // at load
//   kernel->run(x, s, x);                                   // in place: dst may be a
//
// What dst holds, per op (act = shape.activation, `none` allowed everywhere):
//   unary           dst = act(a)                  (Relu, Sigmoid, ...; SiLU and HardSwish
//                                                  are x * act(x) gating in one op)
//   add, mul        dst = act(a + b), act(a * b)  (ResNet's Add -> Relu is add + relu)
//   scale_channels  dst[n][c][p] = a[n][c][p] * act(b[n][c])   (SE: Sigmoid -> Mul)
// Layouts (B = plan.block: 16 on AVX-512, 8 on AVX2; see jit/layout.hpp):
//   a, dst  [N][ceil(C/B)][plane][B]   (plane = H*W, or any product of spatial dims)
//   b       like a for add and mul; [N][ceil(C/B)][1][B] for scale_channels; unused (may
//           be null) for unary
// Contracts:
//  - Lanes of dst past channel C are written as 0 whatever a and b hold there (sigmoid(0)
//    is not 0).
//  - In place: dst may be exactly a, or exactly b for add and mul (every vector is read
//    before the same vector is written, and no other). Any other overlap is undefined.
//  - One call of the generated code (EltwiseArgs) handles one image and a range of its
//    vectors — [begin, end) of the blocks * plane vectors of B floats, vector v being
//    pixel v % plane of block v / plane — so threads may split any layer evenly, even
//    one of a single block. begin <= end <= blocks * plane; an empty range does nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "jit/host_info.hpp"
#include "jit/isa.hpp"
#include "jit/jit_kernel.hpp"
#include "jit/layout.hpp"
#include "jit/post_ops.hpp"

namespace nnjit::jit {

enum class EltwiseOp {
  unary,           // dst = act(a)
  add,             // dst = act(a + b)
  mul,             // dst = act(a * b)
  scale_channels,  // dst = a * act(b), b one vector per channel block
};
const char* eltwise_op_name(EltwiseOp op);
inline bool eltwise_is_binary(EltwiseOp op) { return op == EltwiseOp::add || op == EltwiseOp::mul; }

struct EltwiseShape {
  int64_t batch = 1;
  int64_t channels = 0;  // C
  int64_t plane = 0;     // pixels per channel (H*W)
  EltwiseOp op = EltwiseOp::unary;
  Activation activation;

  std::string key() const;
  bool operator==(const EltwiseShape&) const = default;
};

struct EltwisePlan {
  EltwiseShape shape;
  Isa isa = Isa::avx512;
  int block = 16;      // channels per block (= floats per vector)
  int64_t blocks = 0;  // ceil(C / block)
  int unroll = 1;      // vectors per loop step, each with its own activation temporaries

  // Vectors of B floats in one image of a (and dst): what EltwiseArgs' range indexes.
  int64_t image_vectors() const { return blocks * shape.plane; }
  int64_t image_floats() const { return image_vectors() * block; }
  // Floats of b per image: image_floats() for add and mul, one vector per block for
  // scale_channels, 0 for unary.
  int64_t b_image_floats() const;

  // The kernel's name (jit/README.md), e.g. f32_eltwise_add_relu__avx512,
  // f32_eltwise_scale_sigmoid__avx2, f32_eltwise_silu__avx512 (unary), f32_eltwise_copy__avx2.
  std::string name() const;
  // Every field the emitter reads, for KernelCache.
  std::string key() const;
  bool operator==(const EltwisePlan&) const = default;
};

// Chooses ISA and unroll for `shape` on `host`, or says why no eltwise kernel can run
// it. A pure function.
std::variant<EltwisePlan, std::string> plan_eltwise(const EltwiseShape& shape, const HostInfo& host);

// What one call of the generated code reads. Pointers are to one image.
struct EltwiseArgs {
  const float* a;
  const float* b;  // see EltwiseShape; ignored for unary
  float* dst;
  int64_t begin;  // vectors [begin, end) of plan.image_vectors()
  int64_t end;
};

class EltwiseKernel : public JitKernel {
 public:
  // `plan` comes from plan_eltwise (an inconsistent one throws std::invalid_argument).
  explicit EltwiseKernel(const EltwisePlan& plan, std::string serves = "");

  const EltwisePlan& plan() const { return plan_; }
  void operator()(const EltwiseArgs& args) const { entry<void(const EltwiseArgs*)>()(&args); }
  // Every image, on the calling thread. `b` may be null for unary.
  void run(const float* a, const float* b, float* dst) const;

 private:
  void generate();
  void emit_range(bool masked);
  void emit_vectors(int count, bool masked);

  EltwisePlan plan_;
  ConstantTable table_;
  Xbyak::Label table_label_;
};

// The process-wide cache: kernels for equal plans are compiled once and shared.
std::shared_ptr<const EltwiseKernel> get_eltwise_kernel(const EltwisePlan& plan, const std::string& serves);

}  // namespace nnjit::jit
