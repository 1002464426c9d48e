#include <algorithm>

#include "ops/spatial.hpp"

namespace nnjit::ops {

std::vector<int64_t> read_per_axis(const Attributes& attrs, const char* name, std::size_t count, int64_t fallback,
                                   int64_t min_value, const std::string& where) {
  std::vector<int64_t> v = attrs.get_ints(name, std::vector<int64_t>(count, fallback));
  if (v.size() != count)
    throw_invalid(where + ": attribute '" + name + "' has " + std::to_string(v.size()) + " values, expected " +
                  std::to_string(count));
  for (int64_t x : v)
    if (x < min_value || x > kMaxSpatialValue)
      throw_invalid(where + ": attribute '" + name + "' = " + shape_str(v) + " has an out-of-range value");
  return v;
}

SpatialParams resolve_spatial(const Attributes& attrs, const Shape& in_size, const Shape& kernel,
                              const SpatialOptions& options, const std::string& where) {
  const std::size_t r = in_size.size();
  if (kernel.size() != r)
    throw_invalid(where + ": kernel has " + std::to_string(kernel.size()) + " spatial dims, input has " +
                  std::to_string(r));
  for (int64_t k : kernel)
    if (k < 1 || k > kMaxSpatialValue) throw_invalid(where + ": kernel shape " + shape_str(kernel) + " is invalid");

  SpatialParams p;
  p.in_size = in_size;
  p.kernel = kernel;
  p.stride = read_per_axis(attrs, "strides", r, 1, 1, where);
  p.dilation = options.has_dilations ? read_per_axis(attrs, "dilations", r, 1, 1, where) : std::vector<int64_t>(r, 1);
  p.pad_begin.assign(r, 0);
  p.pad_end.assign(r, 0);
  p.out_size.assign(r, 0);

  const std::string auto_pad = attrs.get_string("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    std::vector<int64_t> pads = read_per_axis(attrs, "pads", 2 * r, 0, 0, where);
    for (std::size_t i = 0; i < r; ++i) {
      p.pad_begin[i] = pads[i];
      p.pad_end[i] = pads[r + i];
    }
  } else if (auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") {
    throw_invalid(where + ": auto_pad '" + auto_pad + "' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID");
  }

  for (std::size_t i = 0; i < r; ++i) {
    const int a = static_cast<int>(i);
    const int64_t in = in_size[i], s = p.stride[i], dk = p.dilated_kernel(a);
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      // Output covers ceil(in/stride) positions; the pad that takes is split evenly,
      // the odd element going to the end (UPPER) or the beginning (LOWER).
      p.out_size[i] = ceil_div(in, s);
      const int64_t total = std::max<int64_t>(0, (p.out_size[i] - 1) * s + dk - in);
      p.pad_begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      p.pad_end[i] = total - p.pad_begin[i];
      continue;
    }
    const int64_t span = in + p.pad_begin[i] + p.pad_end[i] - dk;
    if (span < 0)
      throw_invalid(where + ": the kernel " + shape_str(kernel) + " (dilations " + shape_str(p.dilation) +
                    ") is larger than the padded input along spatial axis " + std::to_string(i) + " (size " +
                    std::to_string(in) + ")");
    if (options.pads_below_kernel && (p.pad_begin[i] >= dk || p.pad_end[i] >= dk))
      throw_invalid(where + ": pads along spatial axis " + std::to_string(i) + " must be smaller than the kernel");
    const bool ceil_mode = options.ceil_mode && auto_pad == "NOTSET";
    int64_t out = (ceil_mode ? ceil_div(span, s) : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p.pad_begin[i]) --out;
    p.out_size[i] = out;
  }
  return p;
}

}  // namespace nnjit::ops
