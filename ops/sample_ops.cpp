// Ops that sample a feature map at computed, fractional positions: GridSample (opset 16)
// and RoiAlign (opsets 10, 16). Both take float32 [N, C, H, W] maps and compute in double.
//
// GridSample follows PyTorch's grid_sample (which ONNX specifies it as): grid values in
// [-1, 1] address the image's extent (align_corners: the centres of the corner pixels;
// otherwise their outer edges); padding_mode says what lies outside (zeros; border:
// the nearest edge pixel; reflection: the image mirrored at its extent). RoiAlign follows
// ONNX Runtime's RoiAlign (Mask R-CNN's), whose bilinear sampling clamps to the image.
#include <algorithm>
#include <cmath>

#include "ops/registry.hpp"
#include "ops/spatial.hpp"
#include "ops/util.hpp"

namespace nnjit::ops {

namespace {

// RoiAlign's samples per bin along an axis (sampling_ratio, or the adaptive count) are
// at most this: more would only make a hostile model run for ever.
constexpr int64_t kMaxSamples = int64_t{1} << 16;

// Flags such as align_corners: 0 or 1.
bool flag_attr(const Attributes& a, const char* name, const std::string& where) {
  const int64_t v = a.get_int(name, 0);
  if (v != 0 && v != 1) throw_invalid(where + ": " + name + " must be 0 or 1, got " + std::to_string(v));
  return v != 0;
}

// One [H, W] plane; reads outside it give 0. Coordinates are doubles so that a NaN or
// huge sample position is simply outside, never cast to an integer.
struct Plane {
  const float* data;
  int64_t H, W;
  double at(double y, double x) const {
    if (!(y >= 0 && y <= static_cast<double>(H - 1) && x >= 0 && x <= static_cast<double>(W - 1))) return 0;
    return data[static_cast<int64_t>(y) * W + static_cast<int64_t>(x)];
  }
};

// ---- GridSample: out[n, c, h, w] = X[n, c] sampled at grid[n, h, w] = (x, y) --------------

enum class GridMode { Bilinear, Nearest, Bicubic };
enum class GridPadding { Zeros, Border, Reflection };

struct GridAttrs {
  GridMode mode = GridMode::Bilinear;
  GridPadding padding = GridPadding::Zeros;
  bool align_corners = false;
};

GridAttrs grid_attrs(const Attributes& a, const std::string& where) {
  GridAttrs g;
  const std::string mode = a.get_string("mode", "bilinear");
  if (mode == "bilinear")
    g.mode = GridMode::Bilinear;
  else if (mode == "nearest")
    g.mode = GridMode::Nearest;
  else if (mode == "bicubic")
    g.mode = GridMode::Bicubic;
  else
    throw_invalid(where + ": mode '" + mode + "' is not bilinear, nearest or bicubic");
  const std::string pad = a.get_string("padding_mode", "zeros");
  if (pad == "zeros")
    g.padding = GridPadding::Zeros;
  else if (pad == "border")
    g.padding = GridPadding::Border;
  else if (pad == "reflection")
    g.padding = GridPadding::Reflection;
  else
    throw_invalid(where + ": padding_mode '" + pad + "' is not zeros, border or reflection");
  g.align_corners = flag_attr(a, "align_corners", where);
  return g;
}

// A grid value in [-1, 1] as a pixel coordinate along an axis of `size` pixels.
double unnormalize(double g, int64_t size, bool align_corners) {
  const double n = static_cast<double>(size);
  return align_corners ? (g + 1) / 2 * (n - 1) : ((g + 1) * n - 1) / 2;
}

// x mirrored into [lo, hi] (as often as it takes: the image repeats, flipped).
double reflect(double x, double lo, double hi) {
  if (lo == hi) return lo;
  const double span = hi - lo;
  x = std::fabs(x - lo);
  const double extra = std::fmod(x, span);
  const bool flipped = std::fmod(std::floor(x / span), 2.0) != 0;
  return flipped ? hi - extra : lo + extra;
}

// Applies border or reflection padding to a pixel coordinate: the result lies in the
// image. Zeros padding leaves it as is (reads outside then give 0).
double pad_coord(double x, int64_t size, const GridAttrs& g) {
  const double last = static_cast<double>(size - 1);
  switch (g.padding) {
    case GridPadding::Zeros:
      return x;
    case GridPadding::Border:
      return std::clamp(x, 0.0, last);
    case GridPadding::Reflection:
      // Mirrored at the corner pixels' centres, or at their outer edges.
      x = g.align_corners ? reflect(x, 0, last) : reflect(x, -0.5, last + 0.5);
      return std::clamp(x, 0.0, last);
  }
  return x;
}

double grid_sample_at(const Plane& p, double gx, double gy, const GridAttrs& g) {
  const double x = unnormalize(gx, p.W, g.align_corners), y = unnormalize(gy, p.H, g.align_corners);
  switch (g.mode) {
    case GridMode::Nearest:  // rounds half to even, as PyTorch's nearbyint does
      return p.at(std::nearbyint(pad_coord(y, p.H, g)), std::nearbyint(pad_coord(x, p.W, g)));
    case GridMode::Bilinear: {
      const double px = pad_coord(x, p.W, g), py = pad_coord(y, p.H, g);
      const double x0 = std::floor(px), y0 = std::floor(py), fx = px - x0, fy = py - y0;
      return (1 - fy) * ((1 - fx) * p.at(y0, x0) + fx * p.at(y0, x0 + 1)) +
             fy * ((1 - fx) * p.at(y0 + 1, x0) + fx * p.at(y0 + 1, x0 + 1));
    }
    case GridMode::Bicubic: {
      // The 4x4 taps around the unpadded position; padding applies to each tap.
      const double x0 = std::floor(x), y0 = std::floor(y), fx = x - x0, fy = y - y0;
      const double dx[4] = {1 + fx, fx, 1 - fx, 2 - fx}, dy[4] = {1 + fy, fy, 1 - fy, 2 - fy};
      double sum = 0;
      for (int i = 0; i < 4; ++i) {
        double row = 0;
        for (int j = 0; j < 4; ++j)
          row += cubic_kernel(dx[j], -0.75) * p.at(pad_coord(y0 - 1 + i, p.H, g), pad_coord(x0 - 1 + j, p.W, g));
        sum += cubic_kernel(dy[i], -0.75) * row;
      }
      return sum;
    }
  }
  return 0;
}

void infer_grid_sample(InferContext& c) {
  c.require_inputs(2, 2);
  c.require_type(0, {DType::Float32});
  c.require_type(1, {DType::Float32});
  const Shape &x = c.shape(0), &grid = c.shape(1);
  if (x.size() == 5) c.unsupported("volumetric (5-D) input X " + shape_str(x) + " is not supported");
  if (x.size() != 4) c.fail("input X has shape " + shape_str(x) + "; needs [N, C, H, W]");
  if (grid.size() != 4 || grid[0] != x[0] || grid[3] != 2)
    c.fail("grid has shape " + shape_str(grid) + "; needs [N, H_out, W_out, 2] with N = " + std::to_string(x[0]));
  grid_attrs(c.attrs, c.where());
  c.set_output(0, DType::Float32, {x[0], x[1], grid[1], grid[2]});
}

void compute_grid_sample(const ComputeContext& c) {
  const Tensor &x = c.in(0), &grid = c.in(1);
  const GridAttrs g = grid_attrs(c.attrs, "GridSample");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t points = grid.dim(1) * grid.dim(2);
  float* out = c.out(0).data<float>();
  if (H == 0 || W == 0) {  // every point lies outside an empty image, whatever the padding
    std::fill(out, out + c.out(0).numel(), 0.f);
    return;
  }
  for (int64_t n = 0; n < N; ++n) {
    const float* xy = grid.data<float>() + n * points * 2;
    for (int64_t ch = 0; ch < C; ++ch) {
      const Plane p{x.data<float>() + (n * C + ch) * H * W, H, W};
      float* o = out + (n * C + ch) * points;
      for (int64_t k = 0; k < points; ++k) o[k] = static_cast<float>(grid_sample_at(p, xy[2 * k], xy[2 * k + 1], g));
    }
  }
}

// ---- RoiAlign: out[r, c] = X[batch_indices[r], c] pooled over the bins of roi r -------------

struct RoiAttrs {
  bool max = false;  // mode max: the largest weighted tap; avg: the mean of the samples
  int64_t out_h = 1, out_w = 1, sampling_ratio = 0;
  double spatial_scale = 1;
  bool half_pixel = true;  // shift the roi by -0.5 pixel (opset 16's default)
};

RoiAttrs roi_attrs(const Attributes& a, int opset, const std::string& where) {
  RoiAttrs r;
  const std::string mode = a.get_string("mode", "avg");
  if (mode != "avg" && mode != "max") throw_invalid(where + ": mode '" + mode + "' is not avg or max");
  r.max = mode == "max";
  r.out_h = a.get_int("output_height", 1);
  r.out_w = a.get_int("output_width", 1);
  if (r.out_h < 1 || r.out_w < 1 || r.out_h > kMaxSpatialValue || r.out_w > kMaxSpatialValue)
    throw_invalid(where + ": output_height " + std::to_string(r.out_h) + " and output_width " +
                  std::to_string(r.out_w) + " must be positive");
  r.sampling_ratio = a.get_int("sampling_ratio", 0);
  if (r.sampling_ratio < 0 || r.sampling_ratio > kMaxSamples)
    throw_invalid(where + ": sampling_ratio " + std::to_string(r.sampling_ratio) + " is out of range");
  r.spatial_scale = a.get_float("spatial_scale", 1.0f);
  // Opset 10 has no coordinate_transformation_mode and behaves as output_half_pixel.
  const std::string coord =
      a.get_string("coordinate_transformation_mode", opset < 16 ? "output_half_pixel" : "half_pixel");
  if (coord != "half_pixel" && coord != "output_half_pixel")
    throw_invalid(where + ": coordinate_transformation_mode '" + coord + "' is not half_pixel or output_half_pixel");
  r.half_pixel = coord == "half_pixel";
  return r;
}

void infer_roi_align(InferContext& c) {
  c.require_inputs(3, 3);
  c.require_type(0, {DType::Float32});
  c.require_type(1, {DType::Float32});
  if (c.dtype(2) != DType::Int64) c.fail("batch_indices must be int64, got " + dtype_name(c.dtype(2)));
  const Shape &x = c.shape(0), &rois = c.shape(1), &batch = c.shape(2);
  if (x.size() != 4) c.fail("input X has shape " + shape_str(x) + "; needs [N, C, H, W]");
  if (rois.size() != 2 || rois[1] != 4) c.fail("rois has shape " + shape_str(rois) + "; needs [num_rois, 4]");
  if (batch != Shape{rois[0]})
    c.fail("batch_indices has shape " + shape_str(batch) + "; needs [" + std::to_string(rois[0]) + "], one per roi");
  const RoiAttrs a = roi_attrs(c.attrs, c.opset, c.where());
  c.set_output(0, DType::Float32, {rois[0], x[1], a.out_h, a.out_w});
}

// The bilinear sample of RoiAlign at (y, x): 0 more than a pixel outside the image,
// else clamped into it. Weighted taps are returned so that max mode can pick among them.
void roi_taps(const Plane& p, double y, double x, double taps[4]) {
  std::fill(taps, taps + 4, 0.0);
  const double H = static_cast<double>(p.H), W = static_cast<double>(p.W);
  if (!(y >= -1 && y <= H && x >= -1 && x <= W)) return;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  double y0 = std::floor(y), x0 = std::floor(x), y1 = y0 + 1, x1 = x0 + 1;
  if (y0 >= H - 1) y = y0 = y1 = H - 1;
  if (x0 >= W - 1) x = x0 = x1 = W - 1;
  const double ly = y - y0, lx = x - x0;
  taps[0] = (1 - ly) * (1 - lx) * p.at(y0, x0);
  taps[1] = (1 - ly) * lx * p.at(y0, x1);
  taps[2] = ly * (1 - lx) * p.at(y1, x0);
  taps[3] = ly * lx * p.at(y1, x1);
}

// Samples per bin along an axis: sampling_ratio, or adaptively ceil(roi size / bins).
int64_t samples_per_bin(double roi_size, int64_t bins, int64_t ratio, int64_t roi) {
  if (ratio > 0) return ratio;
  const double n = std::ceil(roi_size / static_cast<double>(bins));
  if (!(n <= static_cast<double>(kMaxSamples)))
    throw_invalid("RoiAlign: roi " + std::to_string(roi) + " is too large to sample adaptively");
  return std::max<int64_t>(static_cast<int64_t>(n), 1);
}

void compute_roi_align(const ComputeContext& c) {
  const Tensor &x = c.in(0), &rois = c.in(1), &batch = c.in(2);
  const RoiAttrs a = roi_attrs(c.attrs, c.opset, "RoiAlign");
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), R = rois.dim(0);
  const double offset = a.half_pixel ? 0.5 : 0.0;
  float* out = c.out(0).data<float>();
  for (int64_t r = 0; r < R; ++r) {
    const int64_t b = batch.data<int64_t>()[r];
    if (b < 0 || b >= N)
      throw_invalid("RoiAlign: batch index " + std::to_string(b) + " of roi " + std::to_string(r) +
                    " is out of range for a batch of " + std::to_string(N));
    const float* box = rois.data<float>() + r * 4;  // x1, y1, x2, y2
    for (int k = 0; k < 4; ++k)
      if (!std::isfinite(box[k])) throw_invalid("RoiAlign: roi " + std::to_string(r) + " is not finite");
    const double x1 = box[0] * a.spatial_scale - offset, y1 = box[1] * a.spatial_scale - offset;
    double roi_w = box[2] * a.spatial_scale - offset - x1, roi_h = box[3] * a.spatial_scale - offset - y1;
    if (!a.half_pixel) {  // the legacy mode makes every roi at least one pixel
      roi_w = std::max(roi_w, 1.0);
      roi_h = std::max(roi_h, 1.0);
    }
    const double bin_h = roi_h / static_cast<double>(a.out_h), bin_w = roi_w / static_cast<double>(a.out_w);
    const int64_t grid_h = samples_per_bin(roi_h, a.out_h, a.sampling_ratio, r);
    const int64_t grid_w = samples_per_bin(roi_w, a.out_w, a.sampling_ratio, r);
    const double count = static_cast<double>(grid_h * grid_w);
    for (int64_t ch = 0; ch < C; ++ch) {
      const Plane p{x.data<float>() + (b * C + ch) * H * W, H, W};
      float* o = out + (r * C + ch) * a.out_h * a.out_w;
      for (int64_t ph = 0; ph < a.out_h; ++ph)
        for (int64_t pw = 0; pw < a.out_w; ++pw) {
          double acc = 0;
          bool first = true;
          for (int64_t iy = 0; iy < grid_h; ++iy) {
            const double y =
                y1 + (static_cast<double>(ph) + (static_cast<double>(iy) + 0.5) / static_cast<double>(grid_h)) * bin_h;
            for (int64_t ix = 0; ix < grid_w; ++ix) {
              const double xs =
                  x1 +
                  (static_cast<double>(pw) + (static_cast<double>(ix) + 0.5) / static_cast<double>(grid_w)) * bin_w;
              double t[4];
              roi_taps(p, y, xs, t);
              if (!a.max) {
                acc += t[0] + t[1] + t[2] + t[3];
              } else {  // ONNX Runtime's max: the largest weighted tap of the largest sample
                const double m = std::max({t[0], t[1], t[2], t[3]});
                acc = first ? m : std::max(acc, m);
                first = false;
              }
            }
          }
          o[ph * a.out_w + pw] = static_cast<float>(a.max ? acc : acc / count);
        }
    }
  }
}

}  // namespace

void register_sample_ops(std::vector<OpSchema>& out) {
  out.push_back({"GridSample", 16, infer_grid_sample, compute_grid_sample, nullptr});
  out.push_back({"RoiAlign", 10, infer_roi_align, compute_roi_align, nullptr});
}

}  // namespace nnjit::ops
