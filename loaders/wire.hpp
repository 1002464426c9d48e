// Lifts the large raw_data of a ModelProto's initializers out of its protobuf bytes, so
// that protobuf parses only the small rest and the weights are copied once, into one
// buffer, instead of into a string per tensor.
//
//   auto lifted = lift_initializer_data(bytes, size, 4096);
//   if (lifted) model.ParseFromArray(lifted->rest.data(), lifted->rest.size());
//   // initializer i's raw_data, when lifted: bytes + lifted->spans[i]->offset
//
// The wire format is walked by hand: ModelProto.graph (7) > GraphProto.initializer (5) >
// TensorProto.raw_data (9). Anything unusual — a group, a malformed varint or length, a
// repeated graph or raw_data field (protobuf would merge them) — gives std::nullopt and
// the caller parses the original bytes, which also reports the error, if any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nnjit::loaders {

struct RawSpan {
  std::size_t offset = 0;  // into the original bytes
  std::size_t size = 0;
};

struct LiftedModel {
  std::string rest;                            // the model without the lifted fields
  std::vector<std::optional<RawSpan>> spans;   // per graph initializer, in order
  std::size_t lifted_bytes = 0;                // sum of the spans' sizes
};

// Lifts every initializer raw_data of at least `min_bytes`.
std::optional<LiftedModel> lift_initializer_data(const std::uint8_t* data, std::size_t size, std::size_t min_bytes);

}  // namespace nnjit::loaders
