// The ONNX loader on small models built here with the protobuf classes: structure,
// every initializer encoding, attributes, and the errors for malformed graphs.
#include <doctest/doctest.h>

#include <cstring>
#include <functional>

#include "onnx_test_util.hpp"

namespace nnjit::testing {
namespace {

using onnx::TensorProto;

int find_value(const graph::Graph& g, const std::string& name) {
  for (std::size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i].name == name) return static_cast<int>(i);
  return -1;
}

template <class T>
std::vector<T> values_of(const Tensor& t) {
  std::vector<T> out(static_cast<std::size_t>(t.numel()));
  if (t.nbytes()) std::memcpy(out.data(), t.raw(), t.nbytes());
  return out;
}

TEST_SUITE("loaders") {

TEST_CASE("onnx loader: a small model's values, nodes, inputs and outputs") {
  graph::Graph g = load(small_model());
  CHECK(g.source == "test.onnx");
  CHECK(g.opset == 17);
  CHECK(g.unsupported.empty());
  REQUIRE(g.inputs.size() == 1);
  const graph::Value& x = g.values[static_cast<std::size_t>(g.inputs[0])];
  CHECK(x.name == "X");
  CHECK(x.dtype == DType::Float32);
  CHECK(x.shape == Shape{-1, 3});
  CHECK(x.dim_params == std::vector<std::string>{"N", ""});
  CHECK(x.shape_known);
  CHECK(x.producer == -1);

  const int w = find_value(g, "W");
  REQUIRE(g.is_constant(w));
  CHECK(values_of<float>(g.values[static_cast<std::size_t>(w)].constant) == std::vector<float>{1, 2, 3});
  CHECK(g.values[static_cast<std::size_t>(w)].shape == Shape{3});

  REQUIRE(g.nodes.size() == 2);
  CHECK(g.nodes[0].name == "add0");
  CHECK(g.nodes[1].name == "Relu_1");  // anonymous nodes are named <op_type>_<index>
  CHECK(g.nodes[0].inputs == std::vector<int>{g.inputs[0], w});
  CHECK(g.nodes[1].inputs == g.nodes[0].outputs);
  CHECK(g.values[static_cast<std::size_t>(g.nodes[1].outputs[0])].producer == 1);
  REQUIRE(g.outputs.size() == 1);
  CHECK(g.values[static_cast<std::size_t>(g.outputs[0])].name == "Y");
}

TEST_CASE("onnx loader: an input with an initializer is a constant; nodes may come in any order") {
  onnx::ModelProto m = small_model();
  auto* g = m.mutable_graph();
  add_tensor_info(g->mutable_input(), "W", TensorProto::FLOAT, {3});
  // Relu before the Add that feeds it.
  g->mutable_node()->SwapElements(0, 1);
  graph::Graph gr = load(m);
  CHECK(gr.inputs.size() == 1);
  CHECK(gr.is_constant(find_value(gr, "W")));
  CHECK(gr.nodes[0].op_type == "Relu");
  CHECK(gr.nodes[0].name == "Relu_0");
}

TEST_CASE("onnx loader: input shapes and types") {
  onnx::ModelProto m = empty_model();
  auto* g = m.mutable_graph();
  add_tensor_info(g->mutable_input(), "fixed", TensorProto::INT64, {2, 5});
  add_tensor_info(g->mutable_input(), "anon", TensorProto::FLOAT16, {-1, 7}, {""});
  auto* norank = g->add_input();
  norank->set_name("norank");
  norank->mutable_type()->mutable_tensor_type()->set_elem_type(TensorProto::UINT8);
  auto* scalar = g->add_input();
  scalar->set_name("scalar");
  scalar->mutable_type()->mutable_tensor_type()->set_elem_type(TensorProto::FLOAT);
  scalar->mutable_type()->mutable_tensor_type()->mutable_shape();
  auto* seq = g->add_input();
  seq->set_name("seq");
  seq->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(1);
  auto* map = g->add_input();
  map->set_name("dict");
  map->mutable_type()->mutable_map_type()->set_key_type(TensorProto::INT64);
  add_node(g, "Identity", {"fixed"}, {"out"});
  add_tensor_info(g->mutable_output(), "out", TensorProto::INT64, {2, 5});

  graph::Graph gr = load(m);
  REQUIRE(gr.inputs.size() == 6);
  const auto& v = [&](const char* n) -> const graph::Value& { return gr.values[static_cast<std::size_t>(find_value(gr, n))]; };
  CHECK(v("fixed").shape == Shape{2, 5});
  CHECK(v("fixed").dim_params == std::vector<std::string>{"", ""});
  CHECK(v("fixed").dtype == DType::Int64);
  CHECK(v("anon").shape == Shape{-1, 7});
  CHECK(v("anon").dim_params == std::vector<std::string>{"?", ""});
  CHECK(v("anon").dtype == DType::Float16);
  CHECK_FALSE(v("norank").shape_known);
  CHECK(v("norank").dtype == DType::UInt8);
  CHECK(v("scalar").shape_known);
  CHECK(v("scalar").shape.empty());
  REQUIRE(gr.unsupported.size() == 2);
  CHECK(gr.unsupported[0].find("'seq' is a sequence") != std::string::npos);
  CHECK(gr.unsupported[1].find("'dict' is a map") != std::string::npos);

  // Negative dim values and missing types are malformed.
  onnx::ModelProto bad = m;
  bad.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)->set_dim_value(-4);
  check_error([&] { load(bad); }, ErrorCode::InvalidInput, {"test.onnx", "'fixed'", "negative"});
  bad = m;
  bad.mutable_graph()->mutable_input(0)->clear_type();
  check_error([&] { load(bad); }, ErrorCode::InvalidInput, {"'fixed'", "no type"});
}

// Each encoding of the same values must decode to the same bytes.
template <class T>
void check_encodings(int data_type, DType dtype, const std::vector<T>& values,
                     const std::function<void(TensorProto&)>& typed) {
  CAPTURE(dtype_name(dtype));
  TensorProto raw;
  raw.set_data_type(data_type);
  raw.add_dims(static_cast<int64_t>(values.size()));
  raw.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
  TensorProto field = raw;
  field.clear_raw_data();
  typed(field);

  for (TensorProto* p : {&raw, &field}) {
    onnx::ModelProto m = empty_model();
    auto* g = m.mutable_graph();
    *g->add_initializer() = *p;
    g->mutable_initializer(0)->set_name("c");
    add_node(g, "Identity", {"c"}, {"y"});
    add_tensor_info(g->mutable_output(), "y", data_type, {});
    graph::Graph gr = load(m);
    REQUIRE(gr.unsupported.empty());
    const Tensor& t = gr.values[static_cast<std::size_t>(find_value(gr, "c"))].constant;
    CHECK(t.dtype() == dtype);
    CHECK(t.shape() == Shape{static_cast<int64_t>(values.size())});
    CHECK(values_of<T>(t) == values);

    // The same tensor as a Constant node's attribute, and through parse_tensor_proto.
    onnx::ModelProto m2 = empty_model();
    auto* n = add_node(m2.mutable_graph(), "Constant", {}, {"y"});
    auto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    *a->mutable_t() = *p;
    add_tensor_info(m2.mutable_graph()->mutable_output(), "y", data_type, {});
    graph::Graph g2 = load(m2);
    const Tensor* at = g2.nodes[0].attrs.get_tensor("value");
    REQUIRE(at != nullptr);
    CHECK(values_of<T>(*at) == values);

    const std::string bytes = p->SerializeAsString();
    CHECK(values_of<T>(loaders::parse_tensor_proto(bytes.data(), bytes.size(), "t.pb")) == values);
  }
}

TEST_CASE("onnx loader: every initializer encoding gives the same values") {
  check_encodings<float>(TensorProto::FLOAT, DType::Float32, {1.5f, -2.f, 3.25f, 1e-30f},
                         [](TensorProto& p) { for (float v : {1.5f, -2.f, 3.25f, 1e-30f}) p.add_float_data(v); });
  check_encodings<double>(TensorProto::DOUBLE, DType::Float64, {1.0 / 3, -1e300},
                          [](TensorProto& p) { p.add_double_data(1.0 / 3); p.add_double_data(-1e300); });
  check_encodings<int64_t>(TensorProto::INT64, DType::Int64, {INT64_MIN, -1, 0, INT64_MAX},
                           [](TensorProto& p) { for (int64_t v : {INT64_MIN, int64_t{-1}, int64_t{0}, INT64_MAX}) p.add_int64_data(v); });
  check_encodings<int32_t>(TensorProto::INT32, DType::Int32, {INT32_MIN, 7},
                           [](TensorProto& p) { p.add_int32_data(INT32_MIN); p.add_int32_data(7); });
  check_encodings<int16_t>(TensorProto::INT16, DType::Int16, {-300, 32767},
                           [](TensorProto& p) { p.add_int32_data(-300); p.add_int32_data(32767); });
  check_encodings<int8_t>(TensorProto::INT8, DType::Int8, {-128, 5, 127},
                          [](TensorProto& p) { for (int v : {-128, 5, 127}) p.add_int32_data(v); });
  check_encodings<uint8_t>(TensorProto::UINT8, DType::UInt8, {0, 200, 255},
                           [](TensorProto& p) { for (int v : {0, 200, 255}) p.add_int32_data(v); });
  check_encodings<uint16_t>(TensorProto::UINT16, DType::UInt16, {65535, 1},
                            [](TensorProto& p) { p.add_int32_data(65535); p.add_int32_data(1); });
  // Bools: any non-zero int32 is true, stored as 1.
  check_encodings<uint8_t>(TensorProto::BOOL, DType::Bool, {0, 1, 1},
                           [](TensorProto& p) { for (int v : {0, 1, 256}) p.add_int32_data(v); });
  // 16-bit floats travel as bit patterns: 1.0 = 0x3c00 (half), 0x3f80 (bfloat16).
  check_encodings<uint16_t>(TensorProto::FLOAT16, DType::Float16, {0x3c00, 0xc000},
                            [](TensorProto& p) { p.add_int32_data(0x3c00); p.add_int32_data(0xc000); });
  check_encodings<uint16_t>(TensorProto::BFLOAT16, DType::BFloat16, {0x3f80, 0xbf80},
                            [](TensorProto& p) { p.add_int32_data(0x3f80); p.add_int32_data(0xbf80); });
  check_encodings<uint32_t>(TensorProto::UINT32, DType::UInt32, {4000000000u, 3},
                            [](TensorProto& p) { p.add_uint64_data(4000000000u); p.add_uint64_data(3); });
  check_encodings<uint64_t>(TensorProto::UINT64, DType::UInt64, {UINT64_MAX, 9},
                            [](TensorProto& p) { p.add_uint64_data(UINT64_MAX); p.add_uint64_data(9); });
}

TEST_CASE("onnx loader: initializers whose data does not match their shape") {
  const auto model_with = [](const TensorProto& t) {
    onnx::ModelProto m = empty_model();
    *m.mutable_graph()->add_initializer() = t;
    add_node(m.mutable_graph(), "Identity", {t.name()}, {"y"});
    add_tensor_info(m.mutable_graph()->mutable_output(), "y", TensorProto::FLOAT, {});
    return m;
  };
  TensorProto t;
  t.set_name("weights");
  t.set_data_type(TensorProto::FLOAT);
  t.add_dims(2);
  t.add_dims(3);
  for (int i = 0; i < 5; ++i) t.add_float_data(1.f);
  check_error([&] { load(model_with(t)); }, ErrorCode::InvalidInput, {"test.onnx", "initializer 'weights'", "6", "5"});

  t.clear_float_data();
  t.set_raw_data(std::string(23, '\0'));
  check_error([&] { load(model_with(t)); }, ErrorCode::InvalidInput, {"initializer 'weights'", "raw_data", "23"});

  t.clear_raw_data();  // no data at all for 6 elements
  check_error([&] { load(model_with(t)); }, ErrorCode::InvalidInput, {"initializer 'weights'"});

  // A shape whose element count overflows must not allocate anything.
  t.clear_dims();
  t.add_dims(INT64_MAX / 2);
  t.add_dims(4);
  check_error([&] { load(model_with(t)); }, ErrorCode::InvalidInput, {"initializer 'weights'", "too many"});
  t.clear_dims();
  t.add_dims(-1);
  check_error([&] { load(model_with(t)); }, ErrorCode::InvalidInput, {"initializer 'weights'", "negative"});
  t.clear_dims();
  t.add_dims(1LL << 40);  // a terabyte of floats announced, 0 bytes present
  t.set_raw_data("abcd");
  check_error([&] { load(model_with(t)); }, ErrorCode::InvalidInput, {"initializer 'weights'", "raw_data"});

  // A zero-element tensor needs no data.
  t.clear_dims();
  t.add_dims(0);
  t.clear_raw_data();
  graph::Graph g = load(model_with(t));
  CHECK(g.values[static_cast<std::size_t>(find_value(g, "weights"))].constant.numel() == 0);

  TensorProto untyped = t;
  untyped.clear_data_type();
  check_error([&] { load(model_with(untyped)); }, ErrorCode::InvalidInput, {"initializer 'weights'", "element type"});
}

TEST_CASE("onnx loader: string, complex and unknown element types are recorded as unsupported") {
  onnx::ModelProto m = empty_model();
  auto* g = m.mutable_graph();
  auto* s = g->add_initializer();
  s->set_name("labels");
  s->set_data_type(TensorProto::STRING);
  s->add_dims(2);
  s->add_string_data("cat");
  s->add_string_data("dog");
  auto* c = g->add_initializer();
  c->set_name("phase");
  c->set_data_type(TensorProto::COMPLEX64);
  c->add_dims(1);
  c->add_float_data(1.f);
  c->add_float_data(2.f);
  auto* f8 = g->add_initializer();
  f8->set_name("fp8");
  f8->set_data_type(17);  // FLOAT8E4M3FN in newer ONNX
  f8->set_raw_data("x");
  auto* sparse = g->add_sparse_initializer();
  sparse->mutable_values()->set_name("sp");
  add_node(g, "Concat", {"labels", "phase", "fp8", "sp"}, {"y"});
  add_tensor_info(g->mutable_output(), "y", TensorProto::STRING, {});
  graph::Graph gr = load(m);
  REQUIRE(gr.unsupported.size() == 4);
  CHECK(gr.unsupported[0].find("initializer 'labels'") != std::string::npos);
  CHECK(gr.unsupported[0].find("string") != std::string::npos);
  CHECK(gr.unsupported[1].find("initializer 'phase'") != std::string::npos);
  CHECK(gr.unsupported[2].find("initializer 'fp8'") != std::string::npos);
  CHECK(gr.unsupported[3].find("sparse initializer 'sp'") != std::string::npos);
  CHECK(gr.nodes[0].inputs.size() == 4);  // the names still resolve
}

TEST_CASE("onnx loader: attributes of every kind") {
  using AP = onnx::AttributeProto;
  onnx::ModelProto m = empty_model();
  auto* g = m.mutable_graph();
  add_tensor_info(g->mutable_input(), "x", TensorProto::FLOAT, {1});
  auto* n = add_node(g, "Custom", {"x"}, {"y"}, "c");
  n->set_domain("com.example");
  const auto attr = [&](const char* name, AP::AttributeType type) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(type);
    return a;
  };
  attr("f", AP::FLOAT)->set_f(0.5f);
  attr("i", AP::INT)->set_i(-7);
  attr("s", AP::STRING)->set_s("same_upper");
  auto* t = attr("t", AP::TENSOR)->mutable_t();
  t->set_data_type(TensorProto::INT64);
  t->add_int64_data(42);
  auto* fs = attr("fs", AP::FLOATS);
  fs->add_floats(1.f);
  fs->add_floats(2.f);
  auto* is = attr("is", AP::INTS);
  is->add_ints(3);
  is->add_ints(-4);
  auto* ss = attr("ss", AP::STRINGS);
  // assign(), not add_strings("a"): GCC 12 -O3 gives a false -Wrestrict for the latter.
  ss->add_strings()->assign(1, 'a');
  ss->add_strings()->assign(1, 'b');
  attr("empty_ints", AP::INTS);
  // IR 0.0.1 style: no type field, the value field present says what it is.
  auto* legacy = n->add_attribute();
  legacy->set_name("legacy");
  legacy->set_i(9);
  auto* body = attr("body", AP::GRAPH)->mutable_g();
  body->set_name("then");
  add_tensor_info(g->mutable_output(), "y", TensorProto::FLOAT, {1});

  graph::Graph gr = load(m);
  const ops::Attributes& at = gr.nodes[0].attrs;
  CHECK(gr.nodes[0].domain == "com.example");
  CHECK(at.get_float("f", 0) == 0.5f);
  CHECK(at.get_int("i", 0) == -7);
  CHECK(at.get_string("s", "") == "same_upper");
  REQUIRE(at.get_tensor("t") != nullptr);
  CHECK(at.get_tensor("t")->data<int64_t>()[0] == 42);
  CHECK(at.get_tensor("t")->rank() == 0);
  CHECK(at.get_floats("fs") == std::vector<float>{1.f, 2.f});
  CHECK(at.get_ints("is") == std::vector<int64_t>{3, -4});
  CHECK(at.all().at("ss").strings == std::vector<std::string>{"a", "b"});
  CHECK(at.all().at("empty_ints").kind == ops::Attribute::Kind::Ints);
  CHECK(at.get_int("legacy", 0) == 9);
  CHECK(at.all().at("body").kind == ops::Attribute::Kind::Other);
  REQUIRE(gr.unsupported.size() == 1);
  CHECK(gr.unsupported[0].find("node 'c' attribute 'body'") != std::string::npos);

  onnx::ModelProto bad = m;
  *bad.mutable_graph()->mutable_node(0)->add_attribute() = n->attribute(0);
  check_error([&] { load(bad); }, ErrorCode::InvalidInput, {"node 'c'", "'f'", "twice"});
  bad = m;
  bad.mutable_graph()->mutable_node(0)->mutable_attribute(1)->set_ref_attr_name("alpha");
  check_error([&] { load(bad); }, ErrorCode::InvalidInput, {"node 'c'", "'i'", "alpha"});
  bad = m;
  bad.mutable_graph()->mutable_node(0)->add_attribute()->set_name("nothing");
  check_error([&] { load(bad); }, ErrorCode::InvalidInput, {"node 'c'", "'nothing'"});
}

TEST_CASE("onnx loader: names that do not resolve, or resolve twice") {
  onnx::ModelProto m = small_model();
  m.mutable_graph()->mutable_node(1)->set_input(0, "ghost");
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"test.onnx", "node 'Relu_1'", "'ghost'"});

  m = small_model();
  add_node(m.mutable_graph(), "Neg", {"X"}, {"S"}, "neg");
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"node 'neg' output 'S'", "node 'add0'"});

  m = small_model();
  add_node(m.mutable_graph(), "Neg", {"X"}, {"W"}, "neg");
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"node 'neg' output 'W'", "initializer"});

  m = small_model();
  add_node(m.mutable_graph(), "Neg", {"X"}, {"X"}, "neg");
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"node 'neg' output 'X'", "is already a graph input"});

  m = small_model();
  add_node(m.mutable_graph(), "Split", {"X"}, {"P", "P"}, "split");
  check_error([&] { load(m); }, ErrorCode::InvalidInput,
              {"node 'split' output 'P'", "is already the output of node 'split'"});

  m = small_model();
  add_tensor_info(m.mutable_graph()->mutable_output(), "nowhere", TensorProto::FLOAT, {});
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"graph output 'nowhere'"});

  m = small_model();
  add_float_initializer(m.mutable_graph(), "W", {1}, {0.f});
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"initializer 'W'"});

  m = small_model();
  m.mutable_graph()->mutable_node(0)->clear_op_type();
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"node 'add0'", "op_type"});

  m = small_model();
  m.mutable_graph()->clear_output();
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"no outputs"});

  // An empty name is an absent optional input or output.
  m = small_model();
  m.mutable_graph()->mutable_node(1)->add_input("");
  m.mutable_graph()->mutable_node(1)->add_output("");
  graph::Graph g = load(m);
  CHECK(g.nodes[1].inputs.back() == -1);
  CHECK(g.nodes[1].outputs.back() == -1);

  // A graph output may be an input or a constant.
  m = small_model();
  add_tensor_info(m.mutable_graph()->mutable_output(), "W", TensorProto::FLOAT, {3});
  add_tensor_info(m.mutable_graph()->mutable_output(), "X", TensorProto::FLOAT, {-1, 3});
  CHECK(load(m).outputs.size() == 3);
}

TEST_CASE("onnx loader: opset imports") {
  onnx::ModelProto m = small_model();
  m.mutable_opset_import(0)->set_domain("ai.onnx");
  m.mutable_opset_import(0)->set_version(13);
  auto* ms = m.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  CHECK(load(m).opset == 13);

  m.mutable_opset_import()->DeleteSubrange(0, 1);
  CHECK(load(m).opset == 0);  // finalize refuses it

  m = small_model();
  m.mutable_opset_import(0)->set_version(-3);
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"opset"});
}

TEST_CASE("onnx loader: bytes that are not a model") {
  check_error([] { loaders::load_onnx("", 0, "empty.onnx", ""); }, ErrorCode::InvalidInput,
              {"empty.onnx: not a valid ONNX model", "empty"});
  const std::string text = "this is a text file, not a protobuf\n";
  check_error([&] { loaders::load_onnx(text.data(), text.size(), "text.onnx", ""); }, ErrorCode::InvalidInput,
              {"text.onnx: not a valid ONNX model"});
  onnx::ModelProto no_graph = small_model();
  no_graph.clear_graph();
  const std::string bytes = no_graph.SerializeAsString();
  check_error([&] { loaders::load_onnx(bytes.data(), bytes.size(), "m.onnx", ""); }, ErrorCode::InvalidInput,
              {"m.onnx: not a valid ONNX model", "no graph"});
  const std::string full = small_model().SerializeAsString();
  check_error([&] { loaders::load_onnx(full.data(), full.size() - 3, "cut.onnx", ""); }, ErrorCode::InvalidInput,
              {"cut.onnx: not a valid ONNX model"});
  check_error([&] { loaders::load_onnx(full.data(), std::size_t{3} << 30, "huge.onnx", ""); }, ErrorCode::InvalidInput,
              {"huge.onnx", "2 GiB", "external data"});
}

TEST_CASE("onnx loader: load_onnx_file") {
  TempDir dir;
  dir.write("m.onnx", small_model().SerializeAsString());
  graph::Graph g = loaders::load_onnx_file(dir.file("m.onnx"));
  CHECK(g.source == dir.file("m.onnx"));
  CHECK(g.nodes.size() == 2);
  check_error([&] { loaders::load_onnx_file(dir.file("missing.onnx")); }, ErrorCode::InvalidInput, {"missing.onnx"});
  check_error([&] { loaders::load_onnx_file(dir.path.string()); }, ErrorCode::InvalidInput,
              {dir.path.string(), "not a regular file"});
  dir.write("empty.onnx", "");
  check_error([&] { loaders::load_onnx_file(dir.file("empty.onnx")); }, ErrorCode::InvalidInput,
              {"empty.onnx: not a valid ONNX model"});
}

TEST_CASE("onnx loader: parse_tensor_proto refuses external data and bad bytes") {
  TensorProto t;
  t.set_name("w");
  t.set_data_type(TensorProto::FLOAT);
  t.set_data_location(TensorProto::EXTERNAL);
  auto* kv = t.add_external_data();
  kv->set_key("location");
  kv->set_value("w.bin");
  const std::string bytes = t.SerializeAsString();
  check_error([&] { loaders::parse_tensor_proto(bytes.data(), bytes.size(), "in.pb"); }, ErrorCode::InvalidInput,
              {"in.pb", "tensor 'w'", "external"});
  check_error([&] { loaders::parse_tensor_proto("", 0, "in.pb"); }, ErrorCode::InvalidInput, {"in.pb", "empty"});
  check_error([&] { loaders::parse_tensor_proto("\xff\xff\xff", 3, "in.pb"); }, ErrorCode::InvalidInput,
              {"in.pb", "not a valid TensorProto"});
}

}  // TEST_SUITE
}  // namespace
}  // namespace nnjit::testing
