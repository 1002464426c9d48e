// loaders/wire.hpp: large initializer raw_data lifted out of the protobuf bytes before
// parsing. The lifted model must load to exactly what protobuf's own parse gives, and
// anything the walker does not expect must fall back to that parse.
#include <doctest/doctest.h>

#include <cstring>

#include "loaders/wire.hpp"
#include "onnx_test_util.hpp"

namespace nnjit::testing {
namespace {

using onnx::TensorProto;

TensorProto* add_raw(onnx::GraphProto* g, const std::string& name, TensorProto::DataType type, int64_t n,
                     std::size_t elem_size, int seed) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  t->add_dims(n);
  std::string raw(static_cast<std::size_t>(n) * elem_size, '\0');
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>((i * 131 + static_cast<std::size_t>(seed)) % 251);
  t->set_raw_data(raw);
  return t;
}

// Big and small raw_data, typed fields, bools and external data, in one graph.
onnx::ModelProto mixed_model() {
  onnx::ModelProto m = small_model();
  auto* g = m.mutable_graph();
  add_raw(g, "big", TensorProto::FLOAT, 3000, 4, 1);
  add_raw(g, "small", TensorProto::FLOAT, 10, 4, 2);
  add_raw(g, "big_odd", TensorProto::INT8, 4097, 1, 3);  // an odd size: the next lands unaligned
  add_raw(g, "flags", TensorProto::BOOL, 5000, 1, 4);
  add_raw(g, "big2", TensorProto::INT64, 700, 8, 5);
  // Outputs read every initializer so that none is dropped.
  for (const char* name : {"big", "small", "big_odd", "flags", "big2"}) {
    add_node(g, "Identity", {name}, {std::string(name) + "_out"});
    add_tensor_info(g->mutable_output(), std::string(name) + "_out", TensorProto::FLOAT, {});
  }
  return m;
}

// A length-delimited protobuf field, written by hand.
std::string length_field(unsigned number, const std::string& payload) {
  std::string out;
  for (std::uint64_t v : {std::uint64_t{number} << 3 | 2, std::uint64_t{payload.size()}}) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  return out + payload;
}

const graph::Value& value_named(const graph::Graph& g, const std::string& name) {
  for (const auto& v : g.values)
    if (v.name == name) return v;
  FAIL("no value " << name);
  return g.values.front();
}

TEST_SUITE("loaders") {

TEST_CASE("onnx wire: large raw_data is lifted, the rest parses to the same model without it") {
  const onnx::ModelProto m = mixed_model();
  const std::string bytes = m.SerializeAsString();
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  auto lifted = loaders::lift_initializer_data(data, bytes.size(), 4096);
  REQUIRE(lifted);
  REQUIRE(lifted->spans.size() == static_cast<std::size_t>(m.graph().initializer_size()));
  CHECK(lifted->rest.size() < bytes.size() - 12000);
  onnx::ModelProto rest;
  REQUIRE(rest.ParseFromString(lifted->rest));
  std::size_t total = 0;
  for (int i = 0; i < m.graph().initializer_size(); ++i) {
    const TensorProto& t = m.graph().initializer(i);
    const auto& span = lifted->spans[static_cast<std::size_t>(i)];
    INFO("initializer " << t.name());
    const bool big = t.raw_data().size() >= 4096;
    REQUIRE(span.has_value() == big);
    CHECK(rest.graph().initializer(i).has_raw_data() == (t.has_raw_data() && !big));
    CHECK(rest.graph().initializer(i).name() == t.name());
    if (!big) continue;
    total += span->size;
    REQUIRE(span->size == t.raw_data().size());
    CHECK(std::memcmp(data + span->offset, t.raw_data().data(), span->size) == 0);
  }
  CHECK(lifted->lifted_bytes == total);
  // Everything but the lifted fields is untouched.
  onnx::ModelProto expected = m;
  for (auto& t : *expected.mutable_graph()->mutable_initializer())
    if (t.raw_data().size() >= 4096) t.clear_raw_data();
  CHECK(rest.SerializeAsString() == expected.SerializeAsString());
}

TEST_CASE("onnx wire: a lifted model loads to the same tensors, aligned, bools normalised") {
  const onnx::ModelProto m = mixed_model();
  const graph::Graph g = load(m);
  for (const auto& t : m.graph().initializer()) {
    INFO("initializer " << t.name());
    const graph::Value& v = value_named(g, t.name());
    if (!t.has_raw_data()) continue;
    REQUIRE(v.constant.nbytes() == t.raw_data().size());
    if (t.data_type() == TensorProto::BOOL) {
      const auto* b = static_cast<const std::uint8_t*>(v.constant.raw());
      for (std::size_t i = 0; i < t.raw_data().size(); ++i) REQUIRE(b[i] == (t.raw_data()[i] != 0));
      continue;
    }
    CHECK(std::memcmp(v.constant.raw(), t.raw_data().data(), t.raw_data().size()) == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(v.constant.raw()) % 64 == 0);
  }
}

TEST_CASE("onnx wire: a lifted raw_data of the wrong size is refused by name") {
  onnx::ModelProto m = mixed_model();
  m.mutable_graph()->mutable_initializer(1)->add_dims(2);  // "big": [3000, 2] needs 24000 bytes
  check_error([&] { load(m); }, ErrorCode::InvalidInput, {"test.onnx", "initializer 'big'", "raw_data", "12000", "24000"});
}

TEST_CASE("onnx wire: what the walker does not expect falls back to protobuf's parse") {
  const onnx::ModelProto m = mixed_model();
  const std::string bytes = m.SerializeAsString();
  auto lift = [](const std::string& b) {
    return loaders::lift_initializer_data(reinterpret_cast<const std::uint8_t*>(b.data()), b.size(), 4096);
  };
  SUBCASE("two graph fields (protobuf merges them)") {
    onnx::ModelProto extra;
    add_raw(extra.mutable_graph(), "more", TensorProto::FLOAT, 2000, 4, 9);
    const std::string twice = bytes + extra.SerializeAsString();
    CHECK_FALSE(lift(twice));
    onnx::ModelProto merged;
    REQUIRE(merged.ParseFromString(twice));
    const std::string merged_bytes = merged.SerializeAsString();
    const graph::Graph a = loaders::load_onnx(twice.data(), twice.size(), "a.onnx", "");
    const graph::Graph b = loaders::load_onnx(merged_bytes.data(), merged_bytes.size(), "b.onnx", "");
    CHECK(a.values.size() == b.values.size());
    CHECK(value_named(a, "more").constant.numel() == 2000);
  }
  SUBCASE("two raw_data fields in one tensor (protobuf keeps the last)") {
    TensorProto t;
    t.set_name("twice");
    t.set_data_type(TensorProto::FLOAT);
    t.add_dims(2000);
    t.set_raw_data(std::string(8000, '\1'));
    onnx::ModelProto shell = m;
    const std::string graph = shell.graph().SerializeAsString() + length_field(5, t.SerializeAsString() +
                                                                                  length_field(9, std::string(8000, '\2')));
    shell.clear_graph();
    const std::string model = shell.SerializeAsString() + length_field(7, graph);
    CHECK_FALSE(lift(model));
    const graph::Graph g = loaders::load_onnx(model.data(), model.size(), "twice.onnx", "");
    CHECK(static_cast<const std::uint8_t*>(value_named(g, "twice").constant.raw())[0] == 2);
  }
  SUBCASE("truncated bytes: no lifting, and the error is protobuf's") {
    CHECK_FALSE(lift(bytes.substr(0, bytes.size() - 100)));
    check_error([&] { loaders::load_onnx(bytes.data(), bytes.size() - 100, "cut.onnx", ""); },
                ErrorCode::InvalidInput, {"cut.onnx", "truncated"});
  }
}

}  // TEST_SUITE
}  // namespace
}  // namespace nnjit::testing
