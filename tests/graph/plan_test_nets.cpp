// The small models of the planner's tests (see plan_test_nets.hpp).
#include "tests/graph/plan_test_nets.hpp"

namespace nnjit::plan_test {

// ------------------------------------------------------------------ the models

// X[1,C,8,8] -> 1x1 Conv (C -> C) -> A, then what `tail` adds, reading "A".
Net conv_then(int64_t c, const std::function<void(Net&)>& tail) {
  Net n;
  n.input("X", {1, c, 8, 8});
  n.conv("X", "A", c, c, 1);
  tail(n);
  return n;
}

Net conv_relu() { return conv_then(16, [](Net& n) { n.op("Relu", {"A"}, "Y"); n.output("Y"); }); }
Net conv_clip() { return conv_then(16, [](Net& n) { n.clip("A", "Y", 0.f, 6.f); n.output("Y"); }); }
// Conv -> one activation node of `type` (a LeakyRelu's alpha is 0.1).
Net conv_act(const std::string& type) {
  return conv_then(16, [=](Net& n) {
    auto* a = n.op(type, {"A"}, "Y");
    if (type == "LeakyRelu") attr_float(a, "alpha", 0.1f);
    n.output("Y");
  });
}
Net conv_silu(bool gate_first) {
  return conv_then(16, [=](Net& n) {
    n.op("Sigmoid", {"A"}, "S");
    n.op("Mul", gate_first ? std::vector<std::string>{"S", "A"} : std::vector<std::string>{"A", "S"}, "Y");
    n.output("Y");
  });
}
Net conv_hard_swish(float alpha) {
  return conv_then(16, [=](Net& n) {
    n.hard_sigmoid("A", "S", alpha, 0.5f);
    n.op("Mul", {"A", "S"}, "Y");
    n.output("Y");
  });
}
// Conv -> Add(R) -> Relu: relu(conv + residual).
Net conv_add_relu() {
  Net n = conv_then(16, [](Net& n) {
    n.op("Add", {"A", "R"}, "B");
    n.op("Relu", {"B"}, "Y");
    n.output("Y");
  });
  n.input("R", {1, 16, 8, 8});
  return n;
}
// Conv -> Relu -> Add(R): relu(conv) + residual.
Net conv_relu_add() {
  Net n = conv_then(16, [](Net& n) {
    n.op("Relu", {"A"}, "B");
    n.op("Add", {"R", "B"}, "Y");
    n.output("Y");
  });
  n.input("R", {1, 16, 8, 8});
  return n;
}
// The conv's output has a second reader.
Net conv_relu_shared() {
  return conv_then(16, [](Net& n) {
    n.op("Relu", {"A"}, "Y");
    n.op("Sigmoid", {"A"}, "Z");
    n.output("Y").output("Z");
  });
}
// The conv's output is a graph output too.
Net conv_relu_output() { return conv_then(16, [](Net& n) { n.op("Relu", {"A"}, "Y"); n.output("A").output("Y"); }); }
// The SiLU gate is read twice.
Net conv_silu_gate_shared() {
  return conv_then(16, [](Net& n) {
    n.op("Sigmoid", {"A"}, "S");
    n.op("Mul", {"A", "S"}, "Y");
    n.output("Y").output("S");
  });
}
// The Add's result (between conv+add and relu) is a graph output: the Add fuses, the Relu
// does not.
Net conv_add_output_relu() {
  Net n = conv_then(16, [](Net& n) {
    n.op("Add", {"A", "R"}, "B");
    n.op("Relu", {"B"}, "Y");
    n.output("B").output("Y");
  });
  n.input("R", {1, 16, 8, 8});
  return n;
}

// One conv of the given geometry on X[1,16,8,8] (or [1,4,6,6,6] for a 3-D conv).
Net one_conv(int64_t k, int64_t groups, int64_t pad, int spatial) {
  Net n;
  n.input("X", spatial == 2 ? std::vector<int64_t>{1, 16, 8, 8} : std::vector<int64_t>{1, 4, 6, 6, 6});
  n.conv("X", "Y", spatial == 2 ? 16 : 4, spatial == 2 ? 16 : 8, k, groups, pad, 1, spatial);
  n.output("Y");
  return n;
}
Net variable_weights() {
  Net n;
  n.input("X", {1, 16, 8, 8}).input("W", {16, 16, 3, 3});
  auto* c = n.op("Conv", {"X", "W"}, "Y");
  attr_ints(c, "pads", {1, 1, 1, 1});
  n.output("Y");
  return n;
}

// A graph input read by two pointwise convs.
Net input_two_convs() {
  Net n;
  n.input("X", {1, 16, 8, 8});
  n.conv("X", "A", 16, 24, 1);
  n.conv("X", "B", 16, 8, 1);
  n.op("Relu", {"A"}, "Y");
  n.op("Relu", {"B"}, "Z");
  n.output("Y").output("Z");
  return n;
}
// A conv read by two reference ops.
Net conv_two_reference_readers() {
  Net n;
  n.input("X", {1, 16, 8, 8});
  n.conv("X", "A", 16, 16, 1);
  auto* t = n.op("Transpose", {"A"}, "T");
  attr_ints(t, "perm", {0, 2, 3, 1});
  auto* s = n.op("Softmax", {"A"}, "S");
  attr_int(s, "axis", 1);
  n.output("T").output("S");
  return n;
}

// Odd channel counts (block tails), batch 2: stem 3x3 s2 (3 -> 17) + Relu, 1x1 (17 -> 40)
// + ReLU6, depthwise 3x3 + SiLU, grouped 3x3 (groups 4) + HardSwish, 1x1 (40 -> 17) +
// Add of the stem's output + Relu, MaxPool, a Softmax output and a pooled output.
Net mixed_net() {
  Net n;
  n.input("X", {2, 3, 13, 11});
  n.conv("X", "c1", 3, 17, 3, 1, 1, 2);
  n.op("Relu", {"c1"}, "r1");
  n.conv("r1", "c2", 17, 40, 1);
  n.clip("c2", "r2", 0.f, 6.f);
  n.conv("r2", "c3", 40, 40, 3, 40, 1);
  n.op("Sigmoid", {"c3"}, "s3");
  n.op("Mul", {"c3", "s3"}, "r3");
  n.conv("r3", "c4", 40, 40, 3, 4, 1);
  n.hard_sigmoid("c4", "s4", 1.f / 6.f, 0.5f);
  n.op("Mul", {"s4", "c4"}, "r4");
  n.conv("r4", "c5", 40, 17, 1);
  n.op("Add", {"c5", "r1"}, "a5");
  n.op("Relu", {"a5"}, "r5");
  auto* mp = n.op("MaxPool", {"r5"}, "p5");
  attr_ints(mp, "kernel_shape", {2, 2});
  attr_ints(mp, "strides", {2, 2});
  auto* sm = n.op("Softmax", {"r5"}, "Y");
  attr_int(sm, "axis", 1);
  n.output("Y").output("p5");
  return n;
}
// Large early activations streamed row by row: a stem conv into its max pool, and a
// pointwise conv into a 5x5 conv into a strided conv that adds a residual computed
// before them (a ResNet bottleneck's shape).
Net row_stream_net() {
  Net n;
  n.input("X", {1, 3, 97, 90});
  n.conv("X", "c1", 3, 48, 3, 1, 1);  // 48 x 97 x 90 floats: 1.6 MiB
  n.op("Relu", {"c1"}, "r1");
  auto* mp = n.op("MaxPool", {"r1"}, "p1");
  attr_ints(mp, "kernel_shape", {3, 3});
  attr_ints(mp, "strides", {2, 2});
  attr_ints(mp, "pads", {1, 1, 1, 1});
  n.conv("p1", "e1", 48, 32, 1);             // a pointwise first stage
  n.op("Relu", {"e1"}, "q1");
  n.conv("q1", "c2", 32, 64, 5, 1, 2);       // 64 x 49 x 45 floats: 550 KiB
  n.op("Relu", {"c2"}, "r2");
  n.conv("r2", "c3", 64, 40, 3, 1, 1, 2);
  n.conv("p1", "side", 48, 40, 3, 1, 1, 2);  // the residual, 40 x 25 x 23, computed last
  n.op("Add", {"c3", "side"}, "a3");
  n.op("Relu", {"a3"}, "Y");
  n.output("Y");
  return n;
}

// A residual from a graph input: relu(conv3x3(conv1x1(X)) + X), then relu(conv(.)) + X,
// with 17 channels and batch 2; HardSigmoid(0.2) * x (not a HardSwish) at the end.
Net residual_net() {
  Net n;
  n.input("X", {2, 17, 7, 9});
  n.conv("X", "c1", 17, 40, 1);
  n.op("Relu", {"c1"}, "r1");
  n.conv("r1", "c2", 40, 17, 3, 1, 1);
  n.op("Add", {"X", "c2"}, "a2");
  n.op("Relu", {"a2"}, "r2");
  n.conv("r2", "c3", 17, 17, 3, 1, 1);
  n.op("Relu", {"c3"}, "r3");
  n.op("Add", {"r3", "X"}, "a3");
  n.conv("a3", "c4", 17, 3, 1);
  n.hard_sigmoid("c4", "s4", 0.2f, 0.5f);
  n.op("Mul", {"c4", "s4"}, "Y");
  n.output("Y");
  return n;
}

// Clip as opset-9 attributes (0, 6), and Clip with only a min of 0 (a ReLU).
Net conv_clip_attributes() {
  Net n;
  n.m = testing::empty_model(9);
  n.input("X", {1, 16, 8, 8});
  n.conv("X", "A", 16, 16, 1);
  auto* c = n.op("Clip", {"A"}, "Y");
  attr_float(c, "min", 0.f);
  attr_float(c, "max", 6.f);
  n.output("Y");
  return n;
}
Net conv_clip_min_only() {
  return conv_then(16, [](Net& n) {
    n.op("Clip", {"A", n.scalar("lo", 0.f)}, "Y");
    n.output("Y");
  });
}

// Batch 1 (the fused blocks' case): an inverted residual 17 -> 40 -> 17 with ReLU6s and
// the input added, a squeeze-excitation (GlobalAveragePool -> 1x1 + Relu -> 1x1 +
// Sigmoid -> Mul), then GlobalAveragePool -> Flatten -> Gemm (a Linear layer).
Net block_net() {
  Net n;
  n.input("X", {1, 17, 9, 7});
  n.conv("X", "e", 17, 40, 1);
  n.clip("e", "er", 0.f, 6.f);
  n.conv("er", "d", 40, 40, 3, 40, 1);
  n.clip("d", "dr", 0.f, 6.f);
  n.conv("dr", "p", 40, 17, 1);
  n.op("Add", {"p", "X"}, "b");
  n.conv("b", "c", 17, 24, 1);
  n.op("Relu", {"c"}, "cr");
  n.op("GlobalAveragePool", {"cr"}, "sq");
  n.conv("sq", "s1", 24, 8, 1);
  n.op("Relu", {"s1"}, "s1r");
  n.conv("s1r", "s2", 8, 24, 1);
  n.op("Sigmoid", {"s2"}, "gate");
  n.op("Mul", {"cr", "gate"}, "se");
  n.op("GlobalAveragePool", {"se"}, "gp");
  n.op("Flatten", {"gp"}, "f");
  auto* fc = n.op("Gemm", {"f", n.weights("fc_w", {10, 24}), n.weights("fc_b", {10})}, "Y");
  attr_int(fc, "transB", 1);
  n.output("Y");
  return n;
}

// Channel moves between blocked tensors, with widths that are no multiple of a block:
// Concat(5 + 7 channels) -> channel shuffle (2 groups) -> Slice of channels 0..4 into a
// 1x1 conv, and Slice 4..12 as a graph output.
Net gather_net() {
  Net n;
  n.input("X", {1, 16, 6, 5});
  n.conv("X", "a", 16, 5, 1);
  n.op("Relu", {"a"}, "ar");
  n.conv("X", "b", 16, 7, 1);
  n.op("Relu", {"b"}, "br");
  auto* cat = n.op("Concat", {"ar", "br"}, "cat");
  attr_int(cat, "axis", 1);
  n.op("Reshape", {"cat", n.ints("shape5", {1, 2, 6, 6, 5})}, "r5");
  auto* t = n.op("Transpose", {"r5"}, "t5");
  attr_ints(t, "perm", {0, 2, 1, 3, 4});
  n.op("Reshape", {"t5", n.ints("shape4", {1, 12, 6, 5})}, "sh");
  n.op("Slice", {"sh", n.ints("s0", {0}), n.ints("e0", {4}), n.ints("ax0", {1})}, "lo");
  n.op("Slice", {"sh", n.ints("s1", {4}), n.ints("e1", {12}), n.ints("ax1", {1})}, "Z");
  n.conv("lo", "Y", 4, 9, 1);
  n.output("Y").output("Z");
  return n;
}

// Odds and ends at batch 2 with 17 channels: a conv without bias, a crop of H and W,
// AveragePool (ceil mode, padding not counted), x * Sigmoid(GlobalAveragePool(x)),
// ReduceMean to [N,C], Flatten -> Gemm with 24 inputs (a whole number of AVX2 blocks
// only) and with 17, and a Gemm reading a 2-D graph input.
Net misc_net() {
  Net n;
  n.input("X", {2, 24, 7, 8}).input("V", {2, 16});
  n.op("Conv", {"X", n.weights("c1_w", {17, 24, 1, 1})}, "c1");
  n.op("Slice", {"c1", n.ints("cs", {1, 2}), n.ints("ce", {6, 7}), n.ints("ca", {2, 3})}, "crop");
  auto* ap = n.op("AveragePool", {"crop"}, "ap");
  attr_ints(ap, "kernel_shape", {3, 3});
  attr_ints(ap, "strides", {2, 2});
  attr_ints(ap, "pads", {1, 1, 1, 1});
  attr_int(ap, "ceil_mode", 1);
  n.op("GlobalAveragePool", {"ap"}, "g");
  n.op("Sigmoid", {"g"}, "gs");
  n.op("Mul", {"gs", "ap"}, "sc");
  auto* rm = n.op("ReduceMean", {"sc"}, "rm");
  attr_ints(rm, "axes", {2, 3});
  attr_int(rm, "keepdims", 0);
  auto* g1 = n.op("Gemm", {"rm", n.weights("g1_w", {5, 17}), n.weights("g1_b", {5})}, "Y17");
  attr_int(g1, "transB", 1);
  n.conv("X", "c2", 24, 24, 1);
  n.op("Relu", {"c2"}, "c2r");
  n.op("GlobalAveragePool", {"c2r"}, "g2");
  n.op("Flatten", {"g2"}, "f2");
  auto* g2 = n.op("Gemm", {"f2", n.weights("g2_w", {6, 24})}, "h");
  attr_int(g2, "transB", 1);
  n.op("Relu", {"h"}, "Y24");
  auto* g3 = n.op("Gemm", {"V", n.weights("g3_w", {3, 16}), n.weights("g3_b", {3})}, "YV");
  attr_int(g3, "transB", 1);
  n.output("Y17").output("Y24").output("YV").output("crop");
  return n;
}

// Linear layers on plain tensors (the gemm step): ConvNeXt's MLP on [1,3,5,40], 15 rows
// of 40 -> 33 -> 40 columns (tile tails everywhere) — MatMul + bias Add + Relu, then
// MatMul + Add with the bias first; a MatMul on a 3-D graph input
// with no bias whose product is also a graph output (nothing fused); a Gemm transB = 0
// with alpha, beta and a [1,N] C, then a Sigmoid.
Net linear_net() {
  Net n;
  n.input("X", {1, 5, 3, 40}).input("S", {2, 7, 19});
  auto* tr = n.op("Transpose", {"X"}, "xt");  // a reference op first: the products read plain values
  attr_ints(tr, "perm", {0, 2, 1, 3});
  n.op("MatMul", {"xt", n.weights("w1", {40, 33})}, "m1");
  n.op("Add", {"m1", n.weights("b1", {33})}, "a1");
  n.op("Relu", {"a1"}, "r1");
  n.op("MatMul", {"r1", n.weights("w2", {33, 40})}, "m2");
  n.op("Add", {n.weights("b2", {1, 1, 1, 40}), "m2"}, "Y");
  n.op("MatMul", {"S", n.weights("w3", {19, 17})}, "M");
  n.op("Relu", {"M"}, "MR");
  n.op("Reshape", {"MR", n.ints("flat", {14, 17})}, "f");
  auto* gm = n.op("Gemm", {"f", n.weights("w4", {17, 9}), n.weights("c4", {1, 9})}, "gm");
  attr_float(gm, "alpha", 0.5f);
  attr_float(gm, "beta", 2.f);
  n.op("Sigmoid", {"gm"}, "G");
  n.output("Y").output("M").output("G");
  return n;
}

// torch's GELU, x * (erf(x / sqrt 2) + 1) * 0.5 in five nodes, after a MatMul + bias (the
// gemm step takes it) and after a conv (operands of the Adds and Muls the other way
// round); and the same pattern dividing by 2, not sqrt 2, which no kernel fuses.
Net gelu_net() {
  Net n;
  n.input("X", {1, 4, 6, 20}).input("C", {1, 8, 5, 5});
  auto gelu = [&](const std::string& x, const std::string& y, float divisor, bool swapped) {
    n.op("Div", {x, n.scalar(y + "_d", divisor)}, y + "_div");
    n.op("Erf", {y + "_div"}, y + "_erf");
    const std::string one = n.scalar(y + "_one", 1.f), half = n.scalar(y + "_half", 0.5f);
    n.op("Add", swapped ? std::vector<std::string>{one, y + "_erf"} : std::vector<std::string>{y + "_erf", one},
         y + "_add");
    n.op("Mul", swapped ? std::vector<std::string>{y + "_add", x} : std::vector<std::string>{x, y + "_add"},
         y + "_mul");
    n.op("Mul", swapped ? std::vector<std::string>{half, y + "_mul"} : std::vector<std::string>{y + "_mul", half}, y);
  };
  n.op("MatMul", {"X", n.weights("w", {20, 24})}, "m");
  n.op("Add", {"m", n.weights("b", {24})}, "a");
  gelu("a", "Y1", 1.41421356f, false);
  n.conv("C", "c", 8, 16, 1);
  gelu("c", "Y2", 1.41421356f, true);
  n.op("MatMul", {"X", n.weights("w3", {20, 8})}, "m3");
  gelu("m3", "Y3", 2.f, false);
  n.output("Y1").output("Y2").output("Y3");
  return n;
}

// Concat of a value twice and of a plain graph input, read by a conv and a reference op;
// the graph input is a graph output too.
Net concat_net() {
  Net n;
  n.input("X", {1, 5, 4, 4});
  n.conv("X", "a", 5, 3, 1);
  n.op("Relu", {"a"}, "ar");
  auto* cat = n.op("Concat", {"ar", "ar", "X"}, "cat");
  attr_int(cat, "axis", 1);
  n.conv("cat", "Y", 11, 6, 1);
  auto* sm = n.op("Softmax", {"cat"}, "Z");
  attr_int(sm, "axis", 1);
  n.output("Y").output("Z").output("X");
  return n;
}

// Geometry at batch 2, 17 channels: asymmetric padding, a strided pointwise, a dilated
// depthwise, a dilated dense conv, SAME_UPPER padding; two conv outputs that cannot fuse
// an Add (a graph output, a second reader) added by an eltwise step with its Relu, then
// multiplied; a GlobalMaxPool.
Net geometry_net() {
  Net n;
  n.input("X", {2, 17, 11, 10});
  auto* c1 = n.conv("X", "c1", 17, 17, 3);
  for (auto& a : *c1->mutable_attribute())
    if (a.name() == "pads") {  // top, left, bottom, right
      a.clear_ints();
      for (int64_t v : {0, 0, 1, 1}) a.add_ints(v);
    }
  n.conv("c1", "c2", 17, 9, 1, 1, 0, 2);
  auto* c3 = n.conv("c1", "c3", 17, 17, 3, 17, 2);
  attr_ints(c3, "dilations", {2, 2});
  auto* c4 = n.conv("X", "c4", 17, 8, 3, 1, 2);
  attr_ints(c4, "dilations", {2, 2});
  auto* c5 = n.op("Conv", {"X", n.weights("c5_w", {8, 17, 3, 3}), n.weights("c5_b", {8})}, "c5");
  auto* ap = c5->add_attribute();
  ap->set_name("auto_pad");
  ap->set_type(onnx::AttributeProto::STRING);
  ap->set_s("SAME_UPPER");
  n.op("GlobalMaxPool", {"c5"}, "gmp");
  n.op("Add", {"c4", "c5"}, "e");
  n.op("Relu", {"e"}, "er");
  n.op("Mul", {"er", "c4"}, "m");
  n.output("c2").output("c3").output("c4").output("gmp").output("m");
  return n;
}

// Residual and product operands that are constants of the full shape.
Net constant_operands() {
  Net n;
  n.input("X", {1, 17, 5, 6});
  n.conv("X", "c", 17, 17, 1);
  n.op("Add", {"c", n.weights("K", {1, 17, 5, 6})}, "a");
  n.op("Relu", {"a"}, "r");
  n.op("Mul", {n.weights("M", {1, 17, 5, 6}), "r"}, "Y");
  n.output("Y");
  return n;
}

// DARTS's FactorizedReduce at batch 2: relu(x) -> crop [1:, 1:] (two Slices) -> 1x1 stride 2,
// which folds into the conv; a stride-1 1x1 over another crop, which cannot (the whole
// tensor would give a larger output).
Net crop_net() {
  Net n;
  n.input("X", {2, 24, 14, 14});
  n.conv("X", "c0", 24, 24, 1);
  n.op("Relu", {"c0"}, "r");
  n.op("Slice", {"r", n.ints("rs", {1}), n.ints("re", {14}), n.ints("ra", {2})}, "rows");
  n.op("Slice", {"rows", n.ints("cs", {1}), n.ints("ce", {14}), n.ints("ca", {3})}, "crop");
  n.conv("crop", "Y", 24, 20, 1, 1, 0, 2);
  n.op("Slice", {"r", n.ints("s2", {1, 1}), n.ints("e2", {14, 14}), n.ints("a2", {2, 3})}, "crop2");
  n.conv("crop2", "Z", 24, 20, 1);
  n.output("Y").output("Z");
  return n;
}

const std::vector<NamedNet>& all_nets() {
  static const std::vector<NamedNet> nets = {
      {"conv_relu", conv_relu},
      {"conv_clip", conv_clip},
      {"conv_silu", [] { return conv_silu(false); }},
      {"conv_silu_gate_first", [] { return conv_silu(true); }},
      {"conv_hard_swish", [] { return conv_hard_swish(1.f / 6.f); }},
      {"conv_hard_sigmoid_0.2", [] { return conv_hard_swish(0.2f); }},
      {"conv_add_relu", conv_add_relu},
      {"conv_relu_add", conv_relu_add},
      {"conv_relu_shared", conv_relu_shared},
      {"conv_relu_output", conv_relu_output},
      {"conv_silu_gate_shared", conv_silu_gate_shared},
      {"conv_add_output_relu", conv_add_output_relu},
      {"pointwise", [] { return one_conv(1, 1, 0); }},
      {"pointwise_padded", [] { return one_conv(1, 1, 1); }},
      {"depthwise", [] { return one_conv(3, 16, 1); }},
      {"grouped", [] { return one_conv(3, 4, 1); }},
      {"dense", [] { return one_conv(3, 1, 1); }},
      {"conv3d", [] { return one_conv(3, 1, 1, 3); }},
      {"variable_weights", variable_weights},
      {"input_two_convs", input_two_convs},
      {"conv_two_reference_readers", conv_two_reference_readers},
      {"mixed_net", mixed_net},
      {"residual_net", residual_net},
      {"conv_clip_attributes", conv_clip_attributes},
      {"conv_clip_min_only", conv_clip_min_only},
      {"block_net", block_net},
      {"gather_net", gather_net},
      {"misc_net", misc_net},
      {"linear_net", linear_net},
      {"gelu_net", gelu_net},
      {"crop_net", crop_net},
      {"concat_net", concat_net},
      {"geometry_net", geometry_net},
      {"constant_operands", constant_operands},
      {"conv_leaky_relu", [] { return conv_act("LeakyRelu"); }},
      {"conv_hard_swish_op", [] { return conv_act("HardSwish"); }},
      {"row_stream_net", row_stream_net},
      {"cells_net", cells_net},
      {"bottleneck_net", [] { return bottleneck_net(false); }},
      {"bottleneck_net_shortcut_first", [] { return bottleneck_net(true); }},
      {"ir_chain_net", ir_chain_net},
  };
  return nets;
}

}  // namespace nnjit::plan_test
