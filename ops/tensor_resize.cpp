// Resize (opsets 10, 11, 13) and its predecessor Upsample (opsets 7, 9): nearest,
// n-linear and (Resize-11+) n-cubic interpolation over any number of axes.
//
// Every output coordinate x along an axis maps to a source coordinate x_ori by the
// coordinate_transformation_mode; nearest rounds x_ori by nearest_mode, linear blends
// the two neighbours of x_ori, cubic the four around it with Keys' kernel of parameter
// cubic_coeff_a (taps are clamped to the axis, i.e. edge-extended; with exclude_outside
// the taps past the axis get weight 0 and the others are renormalised). The ONNX
// backend tests' reference (onnx/backend/test/case/node/resize.py) is followed where
// the spec is vague: align_corners and pytorch_half_pixel use the *real* resized length
// input_length * scale, not the rounded output size, when scales are given.
#include <algorithm>
#include <cmath>
#include <utility>

#include "ops/tensor_common.hpp"
#include "ops/util.hpp"

namespace nnjit::ops::tensor_detail {

namespace {

enum class Interp { Nearest, Linear, Cubic };
enum class Coord { HalfPixel, PytorchHalfPixel, AlignCorners, Asymmetric, TfHalfPixelForNN, TfCropAndResize };
// Legacy: Resize-10 and Upsample, which ONNX Runtime rounds down when upsampling and up
// when downsampling (the opset 10 backend tests expect this).
enum class Round { PreferFloor, PreferCeil, Floor, Ceil, Legacy };

struct ResizeAttrs {
  Interp interp = Interp::Nearest;
  Coord coord = Coord::HalfPixel;
  Round round = Round::PreferFloor;
  float extrapolation = 0;
  double cubic_a = -0.75;        // cubic_coeff_a
  bool exclude_outside = false;  // cubic: renormalise the weights of the taps inside the axis
};

// Resize-10 and Upsample have only `mode`: asymmetric coordinates, legacy rounding.
bool is_legacy(std::string_view op, int opset) { return op == "Upsample" || opset < 11; }

template <class E, std::size_t N>
E parse_name(const std::string& value, const std::pair<const char*, E> (&table)[N], const char* attr,
             const std::string& where) {
  for (const auto& [name, e] : table)
    if (value == name) return e;
  throw_invalid(where + ": unknown " + attr + " '" + value + "'");
}

constexpr std::pair<const char*, Coord> kCoordNames[] = {
    {"half_pixel", Coord::HalfPixel},
    {"pytorch_half_pixel", Coord::PytorchHalfPixel},
    {"align_corners", Coord::AlignCorners},
    {"asymmetric", Coord::Asymmetric},
    {"tf_half_pixel_for_nn", Coord::TfHalfPixelForNN},
    {"tf_crop_and_resize", Coord::TfCropAndResize},
};
constexpr std::pair<const char*, Round> kRoundNames[] = {
    {"round_prefer_floor", Round::PreferFloor},
    {"round_prefer_ceil", Round::PreferCeil},
    {"floor", Round::Floor},
    {"ceil", Round::Ceil},
};

ResizeAttrs resize_attrs(const Attributes& a, bool legacy, const std::string& where) {
  ResizeAttrs r;
  const std::string mode = a.get_string("mode", "nearest");
  // Upsample-7 models from old exporters say "bilinear"; cubic came with Resize-11.
  const std::pair<const char*, Interp> modes[] = {
      {"nearest", Interp::Nearest},
      {"linear", Interp::Linear},
      {legacy ? "bilinear" : "cubic", legacy ? Interp::Linear : Interp::Cubic}};
  r.interp = parse_name(mode, modes, "mode", where);
  if (legacy) {
    r.coord = Coord::Asymmetric;
    r.round = Round::Legacy;
    return r;
  }
  r.coord = parse_name(a.get_string("coordinate_transformation_mode", "half_pixel"), kCoordNames,
                       "coordinate_transformation_mode", where);
  r.round = parse_name(a.get_string("nearest_mode", "round_prefer_floor"), kRoundNames, "nearest_mode", where);
  r.extrapolation = a.get_float("extrapolation_value", 0);
  r.cubic_a = a.get_float("cubic_coeff_a", -0.75f);
  const int64_t exclude = a.get_int("exclude_outside", 0);
  if (exclude != 0 && exclude != 1)
    throw_invalid(where + ": exclude_outside must be 0 or 1, got " + std::to_string(exclude));
  r.exclude_outside = exclude != 0;
  return r;
}

// The operands that fix the output size; null when absent.
struct ResizeOperands {
  const Tensor* roi = nullptr;
  const Tensor* scales = nullptr;
  const Tensor* sizes = nullptr;
  std::vector<float> scale_attr;  // Upsample-7
};

struct AxisPlan {
  int64_t in = 0, out = 0;
  double scale = 1;   // out / in as the coordinate transform uses it
  double length = 0;  // the resized length (in * scale), not rounded
  double roi_start = 0, roi_end = 1;
};

struct ResizePlan {
  Shape out;
  std::vector<AxisPlan> axes;
};

std::vector<double> floats_of(const Tensor& t, const char* what, const std::string& where) {
  if (t.dtype() != DType::Float32 && t.dtype() != DType::Float64)
    throw_unsupported(where + ": " + what + " of type " + dtype_name(t.dtype()) + " is not supported");
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(number_at(t, i));
  return v;
}

ResizePlan plan_resize(const Shape& in, const ResizeAttrs& attrs, const ResizeOperands& ops, const std::string& where) {
  const std::size_t r = in.size();
  ResizePlan p;
  p.axes.resize(r);
  for (std::size_t d = 0; d < r; ++d) p.axes[d].in = in[d];

  if (attrs.coord == Coord::TfCropAndResize) {
    if (!ops.roi) throw_invalid(where + ": tf_crop_and_resize needs the roi input");
    const std::vector<double> roi = floats_of(*ops.roi, "roi", where);
    if (roi.size() != 2 * r)
      throw_invalid(where + ": roi has " + std::to_string(roi.size()) +
                    " values, expected 2 * rank = " + std::to_string(2 * r));
    for (std::size_t d = 0; d < r; ++d) {
      p.axes[d].roi_start = roi[d];
      p.axes[d].roi_end = roi[d + r];
    }
  }

  const bool has_sizes = ops.sizes && ops.sizes->numel() > 0;
  const bool has_scales = !ops.scale_attr.empty() || (ops.scales && ops.scales->numel() > 0);
  if (has_sizes == has_scales) throw_invalid(where + ": exactly one of scales and sizes must be given");
  if (has_sizes) {
    if (ops.sizes->dtype() != DType::Int64)
      throw_invalid(where + ": sizes must be int64, not " + dtype_name(ops.sizes->dtype()));
    const std::vector<int64_t> sizes = to_ints(*ops.sizes);
    if (sizes.size() != r)
      throw_invalid(where + ": sizes " + shape_str(sizes) + " do not match the input rank " + std::to_string(r));
    for (std::size_t d = 0; d < r; ++d) {
      AxisPlan& a = p.axes[d];
      if (sizes[d] < 0) throw_invalid(where + ": sizes " + shape_str(sizes) + " has a negative size");
      a.out = sizes[d];
      a.length = static_cast<double>(sizes[d]);
      a.scale = a.in ? static_cast<double>(a.out) / static_cast<double>(a.in) : 1.0;
    }
  } else {
    const std::vector<double> scales = ops.scale_attr.empty()
                                           ? floats_of(*ops.scales, "scales", where)
                                           : std::vector<double>(ops.scale_attr.begin(), ops.scale_attr.end());
    if (scales.size() != r)
      throw_invalid(where + ": scales has " + std::to_string(scales.size()) + " values for an input of rank " +
                    std::to_string(r));
    for (std::size_t d = 0; d < r; ++d) {
      AxisPlan& a = p.axes[d];
      if (!(scales[d] > 0) || !std::isfinite(scales[d]))
        throw_invalid(where + ": scale " + std::to_string(scales[d]) + " for axis " + std::to_string(d) +
                      " is not positive");
      a.scale = scales[d];
      const double crop = attrs.coord == Coord::TfCropAndResize ? a.roi_end - a.roi_start : 1.0;
      a.length = static_cast<double>(a.in) * crop * a.scale;
      if (!(a.length >= 0 && a.length < 1e15))
        throw_invalid(where + ": scales and roi give axis " + std::to_string(d) + " the length " +
                      std::to_string(a.length));
      a.out = static_cast<int64_t>(std::floor(a.length));
    }
  }
  for (std::size_t d = 0; d < r; ++d) {
    if (p.axes[d].in == 0 && p.axes[d].out > 0)
      throw_invalid(where + ": cannot resize the empty axis " + std::to_string(d) + " to " +
                    std::to_string(p.axes[d].out));
    p.out.push_back(p.axes[d].out);
  }
  return p;
}

// Where output index x along an axis samples the input.
double source_coord(const AxisPlan& a, Coord c, int64_t x_out) {
  const double x = static_cast<double>(x_out);
  const double in = static_cast<double>(a.in);
  switch (c) {
    case Coord::HalfPixel:
      return (x + 0.5) / a.scale - 0.5;
    case Coord::PytorchHalfPixel:
      return a.length > 1 ? (x + 0.5) / a.scale - 0.5 : 0.0;
    case Coord::AlignCorners:
      return a.length == 1 ? 0.0 : x * (in - 1) / (a.length - 1);
    case Coord::Asymmetric:
      return x / a.scale;
    case Coord::TfHalfPixelForNN:
      return (x + 0.5) / a.scale;
    case Coord::TfCropAndResize: {
      const double span = (a.roi_end - a.roi_start) * (in - 1);
      return a.roi_start * (in - 1) + (a.length == 1 ? span / 2 : x * span / (a.length - 1));
    }
  }
  return 0;
}

// tf_crop_and_resize writes extrapolation_value wherever the crop leaves the input.
bool outside(const AxisPlan& a, Coord c, double x_ori) {
  return c == Coord::TfCropAndResize && (x_ori < 0 || x_ori > static_cast<double>(a.in - 1));
}

int64_t round_coord(double x, Round mode, bool downsampling) {
  const double f = std::floor(x);
  const double frac = x - f;
  switch (mode) {
    case Round::PreferFloor:
      return static_cast<int64_t>(frac <= 0.5 ? f : f + 1);
    case Round::PreferCeil:
      return static_cast<int64_t>(frac < 0.5 ? f : f + 1);
    case Round::Floor:
      return static_cast<int64_t>(f);
    case Round::Ceil:
      return static_cast<int64_t>(std::ceil(x));
    case Round::Legacy:
      return static_cast<int64_t>(downsampling ? std::ceil(x) : f);
  }
  return 0;
}

// ---- nearest: an indexed copy, for any storable type ---------------------------------

void resize_nearest(const Tensor& src, Tensor& dst, const ResizePlan& p, const ResizeAttrs& attrs) {
  std::vector<std::vector<int64_t>> maps(p.axes.size());
  bool needs_fill = false;
  for (std::size_t d = 0; d < p.axes.size(); ++d) {
    const AxisPlan& a = p.axes[d];
    for (int64_t x = 0; x < a.out; ++x) {
      const double xo = source_coord(a, attrs.coord, x);
      int64_t i = -1;
      if (!outside(a, attrs.coord, xo)) i = std::clamp(round_coord(xo, attrs.round, a.scale < 1), int64_t{0}, a.in - 1);
      needs_fill |= i < 0;
      maps[d].push_back(i);
    }
  }
  if (needs_fill && src.dtype() != DType::Float32)
    throw_unsupported("Resize: tf_crop_and_resize extrapolation for type " + dtype_name(src.dtype()));
  const float fill = attrs.extrapolation;
  indexed_copy(src, dst, maps, needs_fill ? &fill : nullptr);
}

// ---- linear and cubic: one 1-D pass per resized axis, innermost first ------------------

// The input indices (clamped to the axis) one output index blends, and their weights.
// Taps of weight 0 are left out, so that an exact sample does not let 0 * inf of a
// neighbour in.
struct Taps {
  int64_t index[4] = {};
  double weight[4] = {};
  int count = 0;
  bool outside = false;  // write the extrapolation value
};

// Linear blends floor(x_ori) and the next index, cubic floor(x_ori) - 1 .. + 2.
std::vector<Taps> filter_taps(const AxisPlan& a, const ResizeAttrs& attrs) {
  const bool cubic = attrs.interp == Interp::Cubic;
  std::vector<Taps> taps;
  for (int64_t x = 0; x < a.out; ++x) {
    const double xo = source_coord(a, attrs.coord, x);
    Taps t;
    if (outside(a, attrs.coord, xo)) {
      t.outside = true;
      taps.push_back(t);
      continue;
    }
    const double f = std::floor(xo), frac = xo - f;
    const int64_t first = static_cast<int64_t>(f) - (cubic ? 1 : 0);
    double w[4];
    const int n = cubic ? 4 : 2;
    if (cubic) {
      const double dist[4] = {1 + frac, frac, 1 - frac, 2 - frac};
      for (int k = 0; k < 4; ++k) w[k] = cubic_kernel(dist[k], attrs.cubic_a);
    } else {
      w[0] = 1 - frac;
      w[1] = frac;
    }
    double inside = 0;
    for (int k = 0; k < n; ++k) {
      const int64_t i = first + k;
      if (attrs.exclude_outside && (i < 0 || i >= a.in)) w[k] = 0;
      inside += w[k];
    }
    for (int k = 0; k < n; ++k) {
      if (w[k] == 0) continue;
      t.index[t.count] = std::clamp(first + k, int64_t{0}, a.in - 1);
      t.weight[t.count++] = attrs.exclude_outside && inside != 0 ? w[k] / inside : w[k];
    }
    taps.push_back(t);
  }
  return taps;
}

bool is_identity(const AxisPlan& a, const std::vector<Taps>& taps) {
  if (a.out != a.in) return false;
  for (int64_t x = 0; x < a.out; ++x) {
    const Taps& t = taps[static_cast<std::size_t>(x)];
    if (t.outside || t.count != 1 || t.index[0] != x || t.weight[0] != 1) return false;
  }
  return true;
}

void resize_filtered(const Tensor& src, Tensor& dst, const ResizePlan& p, const ResizeAttrs& attrs) {
  // The passes run in double, as the ONNX reference does, and round once at the end.
  Shape shape = src.shape();
  std::vector<double> cur(src.data<float>(), src.data<float>() + src.numel());
  for (int d = static_cast<int>(p.axes.size()) - 1; d >= 0; --d) {
    const AxisPlan& a = p.axes[static_cast<std::size_t>(d)];
    const std::vector<Taps> taps = filter_taps(a, attrs);
    if (is_identity(a, taps)) continue;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < d; ++k) outer *= shape[k];
    for (std::size_t k = static_cast<std::size_t>(d) + 1; k < shape.size(); ++k) inner *= shape[k];
    std::vector<double> next(static_cast<std::size_t>(outer * a.out * inner));
    for (int64_t o = 0; o < outer; ++o) {
      const double* s = cur.data() + o * a.in * inner;
      double* t = next.data() + o * a.out * inner;
      for (int64_t x = 0; x < a.out; ++x) {
        const Taps& tap = taps[static_cast<std::size_t>(x)];
        double* row = t + x * inner;
        std::fill(row, row + inner, tap.outside ? static_cast<double>(attrs.extrapolation) : 0.0);
        for (int k = 0; k < tap.count; ++k) {
          const double* r = s + tap.index[k] * inner;
          for (int64_t i = 0; i < inner; ++i) row[i] += tap.weight[k] * r[i];
        }
      }
    }
    cur.swap(next);
    shape[static_cast<std::size_t>(d)] = a.out;
  }
  float* out = dst.data<float>();
  for (int64_t i = 0; i < dst.numel(); ++i) out[i] = static_cast<float>(cur[static_cast<std::size_t>(i)]);
}

// ---- schemas ------------------------------------------------------------------------

// Input positions: Upsample-9 and Resize-10 take (X, scales); Resize-11+ takes
// (X, roi, scales, sizes); Upsample-7 has a scales attribute.
ResizeOperands operands_of(const InferContext& ctx, std::string_view op, const ResizeAttrs& attrs) {
  ResizeOperands o;
  if (op == "Upsample" && ctx.opset < 9) {
    if (!ctx.attrs.has("scales")) ctx.fail("attribute scales is required");
    o.scale_attr = ctx.attrs.get_floats("scales");
  } else if (is_legacy(op, ctx.opset)) {
    o.scales = &ctx.constant(1, "scales");
  } else {
    if (attrs.coord == Coord::TfCropAndResize && ctx.has_input(1)) o.roi = &ctx.constant(1, "roi");
    if (ctx.has_input(2)) o.scales = &ctx.constant(2, "scales");
    if (ctx.has_input(3)) o.sizes = &ctx.constant(3, "sizes");
  }
  return o;
}

ResizeOperands operands_of(const ComputeContext& ctx, std::string_view op) {
  ResizeOperands o;
  if (op == "Upsample" && ctx.opset < 9) {
    o.scale_attr = ctx.attrs.get_floats("scales");
  } else if (is_legacy(op, ctx.opset)) {
    o.scales = &ctx.in(1);
  } else {
    if (ctx.has(1)) o.roi = &ctx.in(1);
    if (ctx.has(2)) o.scales = &ctx.in(2);
    if (ctx.has(3)) o.sizes = &ctx.in(3);
  }
  return o;
}

void infer_common(InferContext& ctx, std::string_view op) {
  const bool legacy = is_legacy(op, ctx.opset);
  if (op == "Upsample")
    ctx.require_inputs(1, ctx.opset < 9 ? 1 : 2);
  else
    ctx.require_inputs(legacy ? 2 : 1, legacy ? 2 : 4);
  require_storable(ctx, 0);
  const ResizeAttrs attrs = resize_attrs(ctx.attrs, legacy, ctx.where());
  if (attrs.interp != Interp::Nearest) ctx.require_type(0, {DType::Float32});
  const ResizePlan p = plan_resize(ctx.shape(0), attrs, operands_of(ctx, op, attrs), ctx.where());
  ctx.set_output(0, ctx.dtype(0), p.out);
}

void compute_common(const ComputeContext& ctx, std::string_view op) {
  const ResizeAttrs attrs = resize_attrs(ctx.attrs, is_legacy(op, ctx.opset), std::string(op));
  const ResizePlan p = plan_resize(ctx.in(0).shape(), attrs, operands_of(ctx, op), std::string(op));
  if (attrs.interp == Interp::Nearest)
    resize_nearest(ctx.in(0), ctx.out(0), p, attrs);
  else
    resize_filtered(ctx.in(0), ctx.out(0), p, attrs);
}

void resize_infer(InferContext& ctx) { infer_common(ctx, "Resize"); }
void resize_compute(const ComputeContext& ctx) { compute_common(ctx, "Resize"); }
void upsample_infer(InferContext& ctx) { infer_common(ctx, "Upsample"); }
void upsample_compute(const ComputeContext& ctx) { compute_common(ctx, "Upsample"); }

}  // namespace

void register_resize_ops(std::vector<OpSchema>& out) {
  out.push_back({"Resize", 10, resize_infer, resize_compute, nullptr});
  out.push_back({"Upsample", 7, upsample_infer, upsample_compute, nullptr});
}

}  // namespace nnjit::ops::tensor_detail
