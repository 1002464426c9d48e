// nnjit errors: every failure the library reports is an nnjit::Error with a code.
//
//   try { engine.load("m.onnx"); }
//   catch (const nnjit::Error& e) { std::cerr << e.what(); return int(e.code()); }
//
// The code values are the CLI's exit codes (tools/README): scripts rely on them.
#pragma once

#include <stdexcept>
#include <string>

namespace nnjit {

enum class ErrorCode : int {
  Internal = 1,      // a bug or an environment failure (out of memory, I/O)
  InvalidInput = 2,  // a malformed model or tensor file, a wrong input name/shape/type, bad arguments
  Unsupported = 3,   // a well-formed model that needs an op, attribute or type nnjit lacks
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void throw_invalid(const std::string& message) {
  throw Error(ErrorCode::InvalidInput, message);
}
[[noreturn]] inline void throw_unsupported(const std::string& message) {
  throw Error(ErrorCode::Unsupported, message);
}
[[noreturn]] inline void throw_internal(const std::string& message) {
  throw Error(ErrorCode::Internal, message);
}

}  // namespace nnjit
