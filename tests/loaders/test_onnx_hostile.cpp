// Hostile bytes: random buffers, truncations and mutations of valid models must each
// load or throw nnjit::Error — never crash, hang or allocate without bound. A small
// seeded fuzzer; fuzz/fuzz_onnx_loader.cpp is the libFuzzer version.
#include <doctest/doctest.h>

#include <memory>
#include <random>

#include "onnx_test_util.hpp"

namespace nnjit::testing {
namespace {

// A model touching most of the loader: every attribute kind, several encodings.
onnx::ModelProto rich_model() {
  onnx::ModelProto m = small_model();
  auto* g = m.mutable_graph();
  auto* t = g->add_initializer();
  t->set_name("shape");
  t->set_data_type(onnx::TensorProto::INT64);
  t->add_dims(2);
  t->add_int64_data(-1);
  t->add_int64_data(3);
  auto* r = g->add_initializer();
  r->set_name("raw");
  r->set_data_type(onnx::TensorProto::FLOAT16);
  r->add_dims(2);
  r->set_raw_data(std::string("\x00\x3c\x00\xc0", 4));
  // Raw data big enough to be lifted out before parsing (loaders/wire.hpp).
  auto* big = g->add_initializer();
  big->set_name("big");
  big->set_data_type(onnx::TensorProto::FLOAT);
  big->add_dims(1100);
  big->set_raw_data(std::string(4400, '\x3f'));
  auto* n = add_node(g, "Reshape", {"Y", "shape"}, {"Z"}, "reshape");
  auto* a = n->add_attribute();
  a->set_name("allowzero");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(0);
  auto* c = add_node(g, "Constant", {}, {"K"});
  auto* ca = c->add_attribute();
  ca->set_name("value_floats");
  ca->set_type(onnx::AttributeProto::FLOATS);
  ca->add_floats(1.f);
  add_tensor_info(g->mutable_output(), "Z", onnx::TensorProto::FLOAT, {-1, 3}, {"N"});
  add_tensor_info(g->mutable_output(), "K", onnx::TensorProto::FLOAT, {1});
  return m;
}

// Loads or throws nnjit::Error; anything else fails the test (a crash fails the run).
// Both ways: bytes copied in, and bytes kept by an owner (as a mapped file is), whose
// weights the graph then views where they lie; every constant is read to the end.
void load_or_refuse(const std::string& bytes, int& loaded, int& refused) {
  for (bool owned : {false, true}) {
    try {
      auto keep = std::make_shared<std::string>(bytes);
      // base_dir does not exist: external data in a mutated model must be refused, not found.
      graph::Graph g = loaders::load_onnx(keep->data(), keep->size(), "fuzz.onnx", "/nonexistent-nnjit-dir",
                                          owned ? std::shared_ptr<void>(keep) : std::shared_ptr<void>());
      keep.reset();
      std::uint8_t sum = 0;
      for (const graph::Value& v : g.values)
        if (v.constant.defined() && v.constant.nbytes() > 0)
          sum ^= static_cast<const std::uint8_t*>(v.constant.raw())[v.constant.nbytes() - 1];
      (void)sum;
      if (owned) ++loaded;
    } catch (const Error& e) {
      if (owned) ++refused;
      CHECK(std::string(e.what()).rfind("fuzz.onnx: ", 0) == 0);
    }
  }
}

TEST_SUITE("loaders") {

TEST_CASE("onnx loader: random bytes, truncations and mutations never crash") {
  const std::string valid = rich_model().SerializeAsString();
  {
    int loaded = 0, refused = 0;
    load_or_refuse(valid, loaded, refused);
    REQUIRE(loaded == 1);
  }
  std::mt19937 rng(20240601);
  int loaded = 0, refused = 0;
  for (int i = 0; i < 300; ++i) {  // random buffers
    std::string bytes(std::uniform_int_distribution<std::size_t>(1, 512)(rng), '\0');
    for (char& ch : bytes) ch = static_cast<char>(rng());
    load_or_refuse(bytes, loaded, refused);
  }
  for (std::size_t len = 1; len < valid.size(); ++len)  // every truncation
    load_or_refuse(valid.substr(0, len), loaded, refused);
  for (int i = 0; i < 2000; ++i) {  // byte flips, inserts and deletes in a valid model
    std::string bytes = valid;
    const int edits = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      const std::size_t at = std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(rng);
      switch (rng() % 4) {
        case 0: bytes[at] = static_cast<char>(rng()); break;
        case 1: bytes[at] = static_cast<char>(bytes[at] ^ (1 << (rng() % 8))); break;
        case 2: bytes.insert(at, 1, static_cast<char>(rng())); break;
        default: bytes.erase(at, 1); break;
      }
    }
    load_or_refuse(bytes, loaded, refused);
  }
  MESSAGE("hostile models: " << loaded << " loaded, " << refused << " refused");
  CHECK(refused > 0);
}

TEST_CASE("onnx loader: a huge element count announced by a tiny file allocates nothing") {
  onnx::ModelProto m = small_model();
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("big");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(1LL << 20);
  t->add_dims(1LL << 20);  // 4 TiB of floats, no data
  add_node(m.mutable_graph(), "Identity", {"big"}, {"out"});
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"initializer 'big'"});
}

}  // TEST_SUITE
}  // namespace
}  // namespace nnjit::testing
