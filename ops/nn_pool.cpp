// MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool: shape rules and references.
#include <algorithm>
#include <limits>

#include "ops/nn_schemas.hpp"
#include "ops/pool.hpp"

namespace nnjit::ops {

Shape PoolParams::src_shape() const {
  Shape s{batch, channels};
  s.insert(s.end(), in_size.begin(), in_size.end());
  return s;
}

Shape PoolParams::dst_shape() const {
  Shape s{batch, channels};
  s.insert(s.end(), out_size.begin(), out_size.end());
  return s;
}

PoolParams resolve_pool(PoolKind kind, const Attributes& attrs, const Shape& src, const std::string& where) {
  if (src.size() < 3)
    throw_invalid(where + ": input X has shape " + shape_str(src) + "; pooling needs [N, C, spatial...]");
  if (!attrs.has("kernel_shape")) throw_invalid(where + ": attribute kernel_shape is required");
  const Shape kernel = attrs.get_ints("kernel_shape");
  const Shape in_size(src.begin() + 2, src.end());

  SpatialOptions options;
  options.has_dilations = kind == PoolKind::Max;
  options.ceil_mode = attrs.get_int("ceil_mode", 0) != 0;
  options.pads_below_kernel = true;
  PoolParams p;
  static_cast<SpatialParams&>(p) = resolve_spatial(attrs, in_size, kernel, options, where);
  p.kind = kind;
  p.batch = src[0];
  p.channels = src[1];
  p.count_include_pad = kind == PoolKind::Average && attrs.get_int("count_include_pad", 0) != 0;
  return p;
}

PoolParams resolve_pool(PoolKind kind, const InferContext& ctx) {
  return resolve_pool(kind, ctx.attrs, ctx.shape(0), ctx.where());
}

namespace {

// The part of one pooling window that lies inside the input. Along axis a the window
// of output o reads input o*stride - pad_begin + k*dilation; the taps inside the input
// are k in [k_first, k_first + count).
class Window {
 public:
  explicit Window(const SpatialParams& p)
      : p_(p),
        r_(static_cast<std::size_t>(p.spatial_rank())),
        in_stride_(r_),
        start_(r_),
        first_(r_),
        count_(r_),
        tap_(r_) {
    int64_t s = 1;
    for (std::size_t a = r_; a-- > 0;) {
      in_stride_[a] = s;
      s *= p.in_size[a];
    }
  }

  // Moves to the window of output `o` (a flat index in the output plane).
  void at(int64_t o) {
    for (std::size_t a = r_; a-- > 0;) {
      const int64_t out = o % p_.out_size[a];
      o /= p_.out_size[a];
      start_[a] = out * p_.stride[a] - p_.pad_begin[a];
      const int64_t d = p_.dilation[a], k = p_.kernel[a];
      const int64_t lo = std::clamp<int64_t>(ceil_div(-start_[a], d), 0, k);
      const int64_t hi = std::clamp<int64_t>(ceil_div(p_.in_size[a] - start_[a], d), lo, k);
      first_[a] = start_[a] + lo * d;
      count_[a] = hi - lo;
    }
  }

  // Elements of the window inside the input.
  int64_t inside() const {
    int64_t n = 1;
    for (int64_t c : count_) n *= c;
    return n;
  }

  // Elements of the window inside the padded input (count_include_pad; no dilation).
  int64_t inside_padded() const {
    int64_t n = 1;
    for (std::size_t a = 0; a < r_; ++a)
      n *= std::min(start_[a] + p_.kernel[a], p_.in_size[a] + p_.pad_end[a]) - start_[a];
    return n;
  }

  // Calls f(offset in the input plane) for every window element inside the input.
  template <class F>
  void visit(F&& f) {
    if (inside() == 0) return;
    std::fill(tap_.begin(), tap_.end(), 0);
    for (;;) {
      int64_t offset = 0;
      for (std::size_t a = 0; a < r_; ++a) offset += (first_[a] + tap_[a] * p_.dilation[a]) * in_stride_[a];
      f(offset);
      std::size_t a = r_;
      while (a-- > 0) {
        if (++tap_[a] < count_[a]) break;
        tap_[a] = 0;
      }
      if (a == static_cast<std::size_t>(-1)) return;
    }
  }

 private:
  const SpatialParams& p_;
  std::size_t r_;
  std::vector<int64_t> in_stride_, start_, first_, count_, tap_;
};

}  // namespace

template <class T>
void maxpool_reference(const PoolParams& p, const T* src, T* dst) {
  const int64_t planes = p.batch * p.channels, in_plane = p.in_plane(), out_plane = p.out_plane();
  Window w(p);
  for (int64_t o = 0; o < out_plane; ++o) {
    w.at(o);
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* s = src + plane * in_plane;
      // A window with no element inside the input (only possible with dilation) gives lowest().
      T m = std::numeric_limits<T>::lowest();
      w.visit([&](int64_t i) { m = std::max(m, s[i]); });
      dst[plane * out_plane + o] = m;
    }
  }
}

template void maxpool_reference<float>(const PoolParams&, const float*, float*);
template void maxpool_reference<int8_t>(const PoolParams&, const int8_t*, int8_t*);
template void maxpool_reference<uint8_t>(const PoolParams&, const uint8_t*, uint8_t*);

void avgpool_reference(const PoolParams& p, const float* src, float* dst) {
  const int64_t planes = p.batch * p.channels, in_plane = p.in_plane(), out_plane = p.out_plane();
  Window w(p);
  for (int64_t o = 0; o < out_plane; ++o) {
    w.at(o);
    const int64_t divisor = p.count_include_pad ? w.inside_padded() : w.inside();
    for (int64_t plane = 0; plane < planes; ++plane) {
      const float* s = src + plane * in_plane;
      double sum = 0;
      w.visit([&](int64_t i) { sum += s[i]; });
      dst[plane * out_plane + o] = divisor > 0 ? static_cast<float>(sum / static_cast<double>(divisor))
                                               : std::numeric_limits<float>::quiet_NaN();
    }
  }
}

void global_avgpool_reference(int64_t planes, int64_t plane_size, const float* src, float* dst) {
  for (int64_t plane = 0; plane < planes; ++plane) {
    const float* s = src + plane * plane_size;
    double sum = 0;
    for (int64_t i = 0; i < plane_size; ++i) sum += s[i];
    dst[plane] = plane_size > 0 ? static_cast<float>(sum / static_cast<double>(plane_size))
                                : std::numeric_limits<float>::quiet_NaN();
  }
}

void global_maxpool_reference(int64_t planes, int64_t plane_size, const float* src, float* dst) {
  for (int64_t plane = 0; plane < planes; ++plane) {
    const float* s = src + plane * plane_size;
    float m = std::numeric_limits<float>::lowest();
    for (int64_t i = 0; i < plane_size; ++i) m = std::max(m, s[i]);
    dst[plane] = m;
  }
}

namespace {

void maxpool_infer(InferContext& ctx) {
  ctx.require_inputs(1, 1);
  ctx.require_type(0, {DType::Float32, DType::Int8, DType::UInt8});
  if (ctx.num_outputs() > 1) ctx.unsupported("the optional output Indices is not supported");
  ctx.set_output(0, ctx.dtype(0), resolve_pool(PoolKind::Max, ctx).dst_shape());
}

void maxpool_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  Tensor& y = ctx.out(0);
  const PoolParams p = resolve_pool(PoolKind::Max, ctx.attrs, x.shape(), "MaxPool");
  switch (x.dtype()) {
    case DType::Float32:
      maxpool_reference(p, x.data<float>(), y.data<float>());
      break;
    case DType::Int8:
      maxpool_reference(p, x.data<int8_t>(), y.data<int8_t>());
      break;
    case DType::UInt8:
      maxpool_reference(p, x.data<uint8_t>(), y.data<uint8_t>());
      break;
    default:
      throw_internal("MaxPool reference: unexpected type " + dtype_name(x.dtype()));
  }
}

void maxpool_check(const Attributes& attrs, int opset, std::vector<std::string>& problems) {
  if (attrs.get_int("storage_order", 0) != 0)
    problems.push_back("MaxPool storage_order=1 (column-major Indices) is not supported");
}

void avgpool_infer(InferContext& ctx) {
  ctx.require_inputs(1, 1);
  ctx.require_type(0, {DType::Float32});
  ctx.set_output(0, DType::Float32, resolve_pool(PoolKind::Average, ctx).dst_shape());
}

void avgpool_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const PoolParams p = resolve_pool(PoolKind::Average, ctx.attrs, x.shape(), "AveragePool");
  avgpool_reference(p, x.data<float>(), ctx.out(0).data<float>());
}

void avgpool_check(const Attributes& attrs, int opset, std::vector<std::string>& problems) {
  // Opset 19 added dilations to AveragePool; nnjit accepts models only up to opset 17,
  // but a stray attribute must not be silently ignored.
  for (int64_t d : attrs.get_ints("dilations"))
    if (d != 1) {
      problems.push_back("AveragePool dilations other than 1 are not supported");
      break;
    }
}

void global_pool_infer(InferContext& ctx) {
  ctx.require_inputs(1, 1);
  ctx.require_type(0, {DType::Float32});
  if (ctx.rank(0) < 3) ctx.fail("input X has shape " + shape_str(ctx.shape(0)) + "; needs [N, C, spatial...]");
  Shape s = ctx.shape(0);
  std::fill(s.begin() + 2, s.end(), 1);
  ctx.set_output(0, DType::Float32, s);
}

// Planes and elements per plane of a global pool's input.
std::pair<int64_t, int64_t> global_pool_planes(const Tensor& x) {
  const int64_t planes = x.dim(0) * x.dim(1);
  return {planes, planes ? x.numel() / planes : 0};
}

void global_avgpool_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const auto [planes, plane_size] = global_pool_planes(x);
  global_avgpool_reference(planes, plane_size, x.data<float>(), ctx.out(0).data<float>());
}

void global_maxpool_compute(const ComputeContext& ctx) {
  const Tensor& x = ctx.in(0);
  const auto [planes, plane_size] = global_pool_planes(x);
  global_maxpool_reference(planes, plane_size, x.data<float>(), ctx.out(0).data<float>());
}

}  // namespace

void register_pool_ops(std::vector<OpSchema>& out) {
  out.push_back({.name = "MaxPool",
                 .since_opset = 1,
                 .infer = maxpool_infer,
                 .compute = maxpool_compute,
                 .check = maxpool_check});
  out.push_back({.name = "AveragePool",
                 .since_opset = 1,
                 .infer = avgpool_infer,
                 .compute = avgpool_compute,
                 .check = avgpool_check});
  out.push_back(
      {.name = "GlobalAveragePool", .since_opset = 1, .infer = global_pool_infer, .compute = global_avgpool_compute});
  out.push_back(
      {.name = "GlobalMaxPool", .since_opset = 1, .infer = global_pool_infer, .compute = global_maxpool_compute});
}

}  // namespace nnjit::ops
