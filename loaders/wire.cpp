#include "loaders/wire.hpp"

namespace nnjit::loaders {

namespace {

enum WireType : unsigned { kVarint = 0, kFixed64 = 1, kLength = 2, kFixed32 = 5 };
constexpr unsigned kModelGraph = 7, kGraphInitializer = 5, kTensorRawData = 9;

// A cursor over [p, end) that fails (ok = false) instead of reading past the end.
struct Reader {
  const std::uint8_t* base;
  std::size_t pos, end;
  bool ok = true;

  bool done() const { return pos >= end; }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= end) break;
      const std::uint8_t b = base[pos++];
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  // One field: its number, wire type and where its payload lies (for kLength, the bytes
  // after the length). Returns false at the end or on malformed input.
  bool field(unsigned& number, unsigned& type, std::size_t& from, std::size_t& to) {
    if (!ok || done()) return false;
    const std::size_t start = pos;
    const std::uint64_t tag = varint();
    number = static_cast<unsigned>(tag >> 3);
    type = static_cast<unsigned>(tag & 7);
    if (!ok || number == 0 || tag >> 32) return ok = false;
    std::uint64_t skip = 0;
    switch (type) {
      case kVarint:
        varint();
        break;
      case kFixed64:
        skip = 8;
        break;
      case kFixed32:
        skip = 4;
        break;
      case kLength:
        skip = varint();
        break;
      default:  // groups: not in ONNX
        return ok = false;
    }
    if (!ok || skip > end - pos) return ok = false;
    from = type == kLength ? pos : start;
    pos += static_cast<std::size_t>(skip);
    to = pos;
    return true;
  }
};

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_length_field(std::string& out, unsigned number, const std::string& payload) {
  put_varint(out, (static_cast<std::uint64_t>(number) << 3) | kLength);
  put_varint(out, payload.size());
  out += payload;
}

void put_bytes(std::string& out, const std::uint8_t* base, std::size_t from, std::size_t to) {
  out.append(reinterpret_cast<const char*>(base) + from, to - from);
}

// A TensorProto without its raw_data when that is large; `span` gets where it was.
bool strip_tensor(const std::uint8_t* base, std::size_t from, std::size_t to, std::size_t min_bytes,
                  std::string& out, std::optional<RawSpan>& span) {
  Reader r{base, from, to};
  unsigned number = 0, type = 0;
  std::size_t a = 0, b = 0, field_start = r.pos;
  int raw_fields = 0;
  while (r.field(number, type, a, b)) {
    if (number == kTensorRawData) {
      if (type != kLength || ++raw_fields > 1) return false;
      if (b - a >= min_bytes) {
        span = RawSpan{a, b - a};
        field_start = r.pos;
        continue;
      }
    }
    put_bytes(out, base, field_start, r.pos);
    field_start = r.pos;
  }
  return r.ok;
}

bool strip_graph(const std::uint8_t* base, std::size_t from, std::size_t to, std::size_t min_bytes,
                 LiftedModel& m, std::string& out) {
  Reader r{base, from, to};
  unsigned number = 0, type = 0;
  std::size_t a = 0, b = 0, field_start = r.pos;
  while (r.field(number, type, a, b)) {
    if (number == kGraphInitializer && type == kLength) {
      std::string tensor;
      std::optional<RawSpan> span;
      if (!strip_tensor(base, a, b, min_bytes, tensor, span)) return false;
      if (span) m.lifted_bytes += span->size;
      m.spans.push_back(span);
      put_length_field(out, kGraphInitializer, tensor);
    } else {
      if (number == kGraphInitializer) return false;
      put_bytes(out, base, field_start, r.pos);
    }
    field_start = r.pos;
  }
  return r.ok;
}

}  // namespace

std::optional<LiftedModel> lift_initializer_data(const std::uint8_t* data, std::size_t size, std::size_t min_bytes) {
  LiftedModel m;
  Reader r{data, 0, size};
  unsigned number = 0, type = 0;
  std::size_t a = 0, b = 0, field_start = 0;
  int graphs = 0;
  while (r.field(number, type, a, b)) {
    if (number == kModelGraph) {
      if (type != kLength || ++graphs > 1) return std::nullopt;
      std::string graph;
      if (!strip_graph(data, a, b, min_bytes, m, graph)) return std::nullopt;
      put_length_field(m.rest, kModelGraph, graph);
    } else {
      put_bytes(m.rest, data, field_start, r.pos);
    }
    field_start = r.pos;
  }
  if (!r.ok || graphs != 1) return std::nullopt;
  return m;
}

}  // namespace nnjit::loaders
