// The sliding-window geometry that Conv and the pooling ops share.
//
//   SpatialParams w = resolve_spatial(node.attrs, {56, 56}, {3, 3}, {}, "node 'c1' (Conv)");
//   // w.out_size == {56, 56} for pads=[1,1,1,1]; w.pad_begin/pad_end hold the pads
//   // that auto_pad (SAME_UPPER, SAME_LOWER, VALID) and ceil_mode resolve to.
//
// Every vector holds one entry per spatial axis (the dims after N and C), outermost
// first. Output position o along axis i reads input positions
//   o * stride[i] - pad_begin[i] + k * dilation[i],  k = 0 .. kernel[i]-1,
// and positions outside [0, in_size[i]) are padding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nnjit/tensor.hpp"
#include "ops/attributes.hpp"

namespace nnjit::ops {

struct SpatialParams {
  std::vector<int64_t> in_size, kernel, stride, dilation, pad_begin, pad_end, out_size;

  int spatial_rank() const { return static_cast<int>(in_size.size()); }
  int64_t dilated_kernel(int i) const { return (kernel[i] - 1) * dilation[i] + 1; }
  int64_t in_plane() const { return product(in_size); }
  int64_t out_plane() const { return product(out_size); }
  int64_t kernel_plane() const { return product(kernel); }
  bool operator==(const SpatialParams&) const = default;

  static int64_t product(const std::vector<int64_t>& v) {
    int64_t n = 1;
    for (int64_t d : v) n *= d;
    return n;
  }
};

struct SpatialOptions {
  bool has_dilations = true;       // AveragePool (before opset 19) has none
  bool ceil_mode = false;          // pools: round the output size up instead of down
  bool pads_below_kernel = false;  // pools: refuse a pad >= the (dilated) kernel, as ONNX Runtime does
};

// Attribute values beyond this are certainly wrong and would overflow the size arithmetic.
constexpr int64_t kMaxSpatialValue = int64_t{1} << 32;

// Attribute `name` (default: `count` copies of `fallback`), which must hold `count` values
// in [min_value, kMaxSpatialValue]; else InvalidInput prefixed with `where`.
std::vector<int64_t> read_per_axis(const Attributes& attrs, const char* name, std::size_t count, int64_t fallback,
                                   int64_t min_value, const std::string& where);

// Reads strides, dilations, pads and auto_pad from attrs and resolves the padding and
// output size of every axis. Output sizes follow the ONNX spec; with ceil_mode, a last
// window that would start inside the end padding is dropped (as PyTorch and the ONNX
// reference do), so every window overlaps the input. Throws InvalidInput, prefixed with
// `where`, for malformed attributes or an input smaller than the kernel.
SpatialParams resolve_spatial(const Attributes& attrs, const Shape& in_size, const Shape& kernel,
                              const SpatialOptions& options, const std::string& where);

// ceil(a / b) for b > 0 and any sign of a.
inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

}  // namespace nnjit::ops
