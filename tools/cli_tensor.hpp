// Tensor helpers for the nnjit tool: binding files to names, seeded inputs, summaries and
// reference comparison. Only the public API (include/nnjit) is used.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nnjit/engine.hpp"
#include "nnjit/tensor.hpp"

namespace nnjit::cli {

// One --input or --expect argument resolved against the model: which of `infos` it
// names, and the file to read.
struct FileBinding {
  std::size_t index;
  std::string path;
};

// Resolves "NAME=FILE" / "FILE" specs. A spec is NAME=FILE only when the text before one
// of its '=' is the name of one of `infos` (so paths with '=' still work); FILE-only
// specs take, in order, the entries not named by any spec. `what` ("input"/"output")
// words the messages. Throws InvalidInput for a name given twice or too many files.
std::vector<FileBinding> bind_files(const std::vector<std::string>& specs, const std::vector<TensorInfo>& infos,
                                    const std::string& what);

// Reads `path` as the tensor for `info` and checks its dtype and shape against the
// model's (dims < 0 in `info` match anything). Throws InvalidInput naming both.
Tensor read_input(const TensorInfo& info, const std::string& path);

// The data `nnjit run` invents for an input not given (tools/README.md): float types
// uniform in [-1, 1) from mt19937(seed), drawn as ((r >> 8) * 2^-24) * 2 - 1; every
// other type zeros. Unknown dims (< 0) become 1.
Tensor seeded_input(const TensorInfo& info, uint32_t seed);

// Element i as a double, for any dtype nnjit stores (float16/bfloat16 decoded).
double element(const Tensor& t, int64_t i);

struct Stats {
  double min = 0, max = 0, mean = 0;
  int64_t nan_count = 0;
  int64_t finite_count = 0;
};
Stats stats(const Tensor& t);

// `name` with every character outside [A-Za-z0-9_.-] replaced by '_'; "_" if empty.
std::string sanitize_name(const std::string& name);

struct Comparison {
  bool match = false;
  double max_abs_err = 0;  // largest |out - ref| (inf when NaNs disagree)
  double max_ref = 0;      // largest |ref| over finite ref values
  double rel_err = 0;      // max_abs_err / max_ref (max_abs_err when max_ref is 0)
  std::string problem;     // non-empty when shapes differ; values are then not compared
};
// match = shapes equal and rel_err <= tolerance; NaN in both at one index agrees.
Comparison compare(const Tensor& out, const Tensor& ref, double tolerance);

// A number the way the tool prints it: up to 6 significant digits.
std::string fmt(double v);
// "13.4 MiB (14049824 bytes)"
std::string fmt_bytes(std::size_t bytes);

}  // namespace nnjit::cli
