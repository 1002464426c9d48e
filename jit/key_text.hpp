// KeyText: a string written with <<, for kernel keys and names.
//
//   KeyText s;
//   s << "pointwise/" << shape.key() << "/b" << block;
//   return std::move(s).str();
//
// A load builds a few hundred keys (every kernel cache lookup builds one): an
// std::ostringstream costs about 10k instructions each (a locale and a sentry per insert),
// this a few hundred. It takes text, characters and integers — bools as 0 and 1, as an
// ostream writes them — and nothing that would need a format (no floats: a key that holds
// one spells it exactly, jit/post_ops.hpp's hex_float).
#pragma once

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>

namespace nnjit::jit {

class KeyText {
 public:
  KeyText& operator<<(std::string_view text) {
    s_.append(text);
    return *this;
  }
  KeyText& operator<<(char c) {
    s_.push_back(c);
    return *this;
  }
  template <std::integral T>
    requires(!std::same_as<T, char>)
  KeyText& operator<<(T value) {
    if constexpr (std::same_as<T, bool>) {
      s_.push_back(value ? '1' : '0');
    } else {
      char buf[24];
      const auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
      s_.append(buf, end);
    }
    return *this;
  }
  std::string str() && { return std::move(s_); }

 private:
  std::string s_;
};

}  // namespace nnjit::jit
