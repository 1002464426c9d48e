// Helpers for the loader tests: build small ONNX models with the generated protobuf
// classes, and check the errors they give.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "graph/graph.hpp"
#include "loaders/onnx_loader.hpp"
#include "nnjit/error.hpp"
#include "onnx.pb.h"

namespace nnjit::testing {

// A model with opset 17 and an empty graph; tests add what they need.
inline onnx::ModelProto empty_model(int opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("nnjit-tests");
  auto* imp = m.add_opset_import();
  imp->set_domain("");
  imp->set_version(opset);
  m.mutable_graph()->set_name("test");
  return m;
}

// Adds a float tensor input/output description; dims < 0 are symbolic and take a name
// from `params` ("" = anonymous dim).
inline onnx::ValueInfoProto* add_tensor_info(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                                             const std::string& name, int elem_type, const std::vector<int64_t>& dims,
                                             const std::vector<std::string>& params = {}) {
  auto* vi = list->Add();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  for (std::size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (dims[i] >= 0)
      d->set_dim_value(dims[i]);
    else if (i < params.size() && !params[i].empty())
      d->set_dim_param(params[i]);
  }
  return vi;
}

inline onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, const std::vector<std::string>& inputs,
                                 const std::vector<std::string>& outputs, const std::string& name = "") {
  auto* n = g->add_node();
  n->set_op_type(op);
  if (!name.empty()) n->set_name(name);
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return n;
}

inline onnx::TensorProto* add_float_initializer(onnx::GraphProto* g, const std::string& name,
                                                const std::vector<int64_t>& dims, const std::vector<float>& values) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float v : values) t->add_float_data(v);
  return t;
}

// Y = Relu(X + W): X [N,3] symbolic batch, W [3] initializer.
inline onnx::ModelProto small_model() {
  onnx::ModelProto m = empty_model();
  auto* g = m.mutable_graph();
  add_tensor_info(g->mutable_input(), "X", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  add_float_initializer(g, "W", {3}, {1.f, 2.f, 3.f});
  add_node(g, "Add", {"X", "W"}, {"S"}, "add0");
  add_node(g, "Relu", {"S"}, {"Y"});
  add_tensor_info(g->mutable_output(), "Y", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  return m;
}

inline graph::Graph load(const onnx::ModelProto& m, const std::string& base_dir = "") {
  const std::string bytes = m.SerializeAsString();
  return loaders::load_onnx(bytes.data(), bytes.size(), "test.onnx", base_dir);
}

// Runs f, which must throw nnjit::Error with `code` and a message holding every part.
template <class F>
void check_error(F&& f, ErrorCode code, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("no error thrown; expected one mentioning " << (parts.empty() ? "" : parts[0]));
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(e.code() == code, msg);
    for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "'" << p << "' not in: " << msg);
  }
}

// A fresh folder under /tmp, removed with its content at scope end.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "nnjit-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream f(file(name), std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(f.good());
  }
};

}  // namespace nnjit::testing
