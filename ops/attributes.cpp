#include "ops/attributes.hpp"

namespace nnjit::ops {

const Attribute* Attributes::find(const std::string& name, Attribute::Kind kind) const {
  auto it = map_.find(name);
  if (it == map_.end()) return nullptr;
  if (it->second.kind != kind) throw_invalid("attribute '" + name + "' has the wrong type");
  return &it->second;
}

int64_t Attributes::get_int(const std::string& name, int64_t fallback) const {
  const Attribute* a = find(name, Attribute::Kind::Int);
  return a ? a->i : fallback;
}
float Attributes::get_float(const std::string& name, float fallback) const {
  const Attribute* a = find(name, Attribute::Kind::Float);
  return a ? a->f : fallback;
}
std::string Attributes::get_string(const std::string& name, const std::string& fallback) const {
  const Attribute* a = find(name, Attribute::Kind::String);
  return a ? a->s : fallback;
}
std::vector<int64_t> Attributes::get_ints(const std::string& name, std::vector<int64_t> fallback) const {
  const Attribute* a = find(name, Attribute::Kind::Ints);
  return a ? a->ints : fallback;
}
std::vector<float> Attributes::get_floats(const std::string& name, std::vector<float> fallback) const {
  const Attribute* a = find(name, Attribute::Kind::Floats);
  return a ? a->floats : fallback;
}
std::vector<std::string> Attributes::get_strings(const std::string& name, std::vector<std::string> fallback) const {
  const Attribute* a = find(name, Attribute::Kind::Strings);
  return a ? a->strings : fallback;
}
const nnjit::Tensor* Attributes::get_tensor(const std::string& name) const {
  const Attribute* a = find(name, Attribute::Kind::Tensor);
  return a ? &a->t : nullptr;
}

}  // namespace nnjit::ops
