// External data: weights in files beside the model, mapped rather than copied.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "onnx_test_util.hpp"

namespace nnjit::testing {
namespace {

using onnx::TensorProto;

// The file behind the mapping that holds p ("" if p is not in a file mapping).
std::string mapped_path(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode;
    std::getline(in >> std::ws, path);
    const auto dash = range.find('-');
    const auto lo = std::stoull(range.substr(0, dash), nullptr, 16), hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (addr >= lo && addr < hi) return path;
  }
  return "";
}

bool is_mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0) return true;
  return false;
}

void set_external(TensorProto* t, const std::string& location, int64_t offset, int64_t length) {
  t->clear_float_data();
  t->clear_int64_data();
  t->set_data_location(TensorProto::EXTERNAL);
  const auto add = [&](const char* k, const std::string& v) {
    auto* kv = t->add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("location", location);
  if (offset >= 0) add("offset", std::to_string(offset));
  if (length >= 0) add("length", std::to_string(length));
}

// weights.bin (8192 bytes): A float[4,4] at 0, C float[2] at 70 (unaligned), B int64[8]
// at 8128, ending exactly at a page boundary.
struct ExternalModel {
  TempDir dir;
  std::vector<float> a, c{0.25f, -8.f};
  std::vector<int64_t> b;
  onnx::ModelProto model = empty_model();

  ExternalModel() {
    for (int i = 0; i < 16; ++i) a.push_back(static_cast<float>(i) * 0.5f);
    for (int i = 0; i < 8; ++i) b.push_back(int64_t{1} << (i * 7));
    std::string bytes(8192, '\0');
    std::memcpy(bytes.data(), a.data(), 64);
    std::memcpy(bytes.data() + 70, c.data(), 8);
    std::memcpy(bytes.data() + 8128, b.data(), 64);
    dir.write("weights.bin", bytes);

    auto* g = model.mutable_graph();
    add_tensor_info(g->mutable_input(), "x", TensorProto::FLOAT, {4, 4});
    set_external(add_float_initializer(g, "A", {4, 4}, {}), "weights.bin", 0, 64);
    set_external(add_float_initializer(g, "C", {2}, {}), "./weights.bin", 70, 8);
    auto* bt = g->add_initializer();
    bt->set_name("B");
    bt->set_data_type(TensorProto::INT64);
    bt->add_dims(8);
    set_external(bt, "weights.bin", 8128, -1);  // length: to the end of the file
    add_node(g, "Add", {"x", "A"}, {"y"});
    add_node(g, "Mul", {"y", "C"}, {"z"});
    add_node(g, "Cast", {"B"}, {"b"});
    add_tensor_info(g->mutable_output(), "z", TensorProto::FLOAT, {4, 4});
    add_tensor_info(g->mutable_output(), "b", TensorProto::FLOAT, {8});
  }
  TensorProto* init(const std::string& name) {
    for (auto& t : *model.mutable_graph()->mutable_initializer())
      if (t.name() == name) return &t;
    return nullptr;
  }
  graph::Graph load_file() {
    dir.write("model.onnx", model.SerializeAsString());
    return loaders::load_onnx_file(dir.file("model.onnx"));
  }
  const Tensor& constant(const graph::Graph& g, const std::string& name) {
    for (const auto& v : g.values)
      if (v.name == name) return v.constant;
    FAIL("no value " << name);
    static Tensor none;
    return none;
  }
};

TEST_SUITE("loaders") {

TEST_CASE("onnx external data: mapped, shared, and kept alive by the tensors") {
  ExternalModel em;
  const std::string data_path = std::filesystem::canonical(em.dir.file("weights.bin")).string();
  Tensor a, b;
  {
    graph::Graph g = em.load_file();
    CHECK(g.unsupported.empty());
    a = em.constant(g, "A");
    b = em.constant(g, "B");
    const Tensor& c = em.constant(g, "C");
    CHECK(a.shape() == Shape{4, 4});
    CHECK(std::vector<float>(a.data<float>(), a.data<float>() + 16) == em.a);
    CHECK(std::vector<int64_t>(b.data<int64_t>(), b.data<int64_t>() + 8) == em.b);
    CHECK(std::vector<float>(c.data<float>(), c.data<float>() + 2) == em.c);
    // Views into one mapping of the file, not copies; C's unaligned offset is copied.
    CHECK(mapped_path(a.raw()) == data_path);
    CHECK(mapped_path(b.raw()) == data_path);
    CHECK(static_cast<const char*>(b.raw()) - static_cast<const char*>(a.raw()) == 8128);
    CHECK(mapped_path(c.raw()) != data_path);
  }
  // The graph is gone; the tensors still hold the mapping.
  CHECK(is_mapped(data_path));
  CHECK(a.data<float>()[15] == 7.5f);
  // Kernels may read one vector past a tensor's end, even at the end of the file.
  const volatile auto* past = static_cast<const volatile std::uint8_t*>(b.raw()) + 64;
  int sum = 0;
  for (int i = 0; i < 64; ++i) sum += past[i];
  CHECK(sum == 0);
  a = Tensor();
  b = Tensor();
  CHECK_FALSE(is_mapped(data_path));
}

TEST_CASE("onnx external data: load_onnx resolves against base_dir; Constant attributes too") {
  ExternalModel em;
  auto* g = em.model.mutable_graph();
  auto* n = add_node(g, "Constant", {}, {"k"}, "const");
  auto* attr = n->add_attribute();
  attr->set_name("value");
  attr->set_type(onnx::AttributeProto::TENSOR);
  *attr->mutable_t() = *em.init("A");
  add_tensor_info(g->mutable_output(), "k", TensorProto::FLOAT, {4, 4});
  const std::string bytes = em.model.SerializeAsString();
  graph::Graph gr = loaders::load_onnx(bytes.data(), bytes.size(), "mem.onnx", em.dir.path.string());
  const Tensor* k = gr.nodes.back().attrs.get_tensor("value");
  REQUIRE(k != nullptr);
  CHECK(k->data<float>()[3] == 1.5f);
  CHECK(k->raw() == em.constant(gr, "A").raw());  // one mapping per file
}

TEST_CASE("onnx external data: refused locations, files and ranges") {
  const auto expect = [](ExternalModel& em, const std::vector<std::string>& parts) {
    check_error([&] { em.load_file(); }, ErrorCode::InvalidInput, parts);
  };
  {
    ExternalModel em;
    em.init("A")->mutable_external_data(0)->set_value("missing.bin");
    expect(em, {"model.onnx", "initializer 'A'", "missing.bin", "No such file"});
  }
  {
    ExternalModel em;
    em.init("A")->mutable_external_data(0)->set_value("/etc/passwd");
    expect(em, {"initializer 'A'", "/etc/passwd", "absolute"});
  }
  for (const char* escape : {"../weights.bin", "sub/../../weights.bin", "..", "."}) {
    ExternalModel em;
    em.init("A")->mutable_external_data(0)->set_value(escape);
    expect(em, {"initializer 'A'", escape});
  }
  {
    ExternalModel em;
    std::filesystem::create_directory(em.dir.path / "sub");
    em.init("A")->mutable_external_data(0)->set_value("sub");
    expect(em, {"initializer 'A'", "not a regular file"});
  }
  {
    ExternalModel em;
    em.init("B")->mutable_external_data(1)->set_value("9000");
    expect(em, {"initializer 'B'", "offset 9000", "8192 bytes"});
  }
  {
    ExternalModel em;
    em.init("A")->mutable_external_data(1)->set_value("8190");
    expect(em, {"initializer 'A'", "8190", "length 64", "beyond the end"});
  }
  {
    ExternalModel em;
    em.init("A")->mutable_external_data(2)->set_value("60");
    expect(em, {"initializer 'A'", "60 bytes", "[4,4]"});
  }
  {
    ExternalModel em;
    em.init("A")->mutable_external_data(1)->set_value("12abc");
    expect(em, {"initializer 'A'", "offset '12abc'"});
  }
  {
    ExternalModel em;
    em.init("A")->mutable_external_data(2)->set_value("-64");
    expect(em, {"initializer 'A'", "length '-64'"});
  }
  {
    ExternalModel em;
    em.init("A")->mutable_external_data(0)->set_key("where");
    expect(em, {"initializer 'A'", "no location"});
  }
}

}  // TEST_SUITE
}  // namespace
}  // namespace nnjit::testing
