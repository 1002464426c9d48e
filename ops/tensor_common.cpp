#include "ops/tensor_common.hpp"

#include <cstring>

#include "ops/util.hpp"

namespace nnjit::ops::tensor_detail {

namespace {

struct Bytes16 {
  uint64_t lo, hi;
};

// Calls f(T{}) with a trivially copyable T of `size` bytes.
template <class F>
void with_elem_type(std::size_t size, F&& f) {
  switch (size) {
    case 1:
      f(uint8_t{});
      return;
    case 2:
      f(uint16_t{});
      return;
    case 4:
      f(uint32_t{});
      return;
    case 8:
      f(uint64_t{});
      return;
    case 16:
      f(Bytes16{});
      return;
    default:
      throw_internal("data movement: no element type of " + std::to_string(size) + " bytes");
  }
}

void require_same_dtype(const Tensor& src, const Tensor& dst, const char* what) {
  if (src.dtype() != dst.dtype())
    throw_internal(std::string(what) + ": source is " + dtype_name(src.dtype()) + " but destination is " +
                   dtype_name(dst.dtype()));
}

template <class T>
void affine_copy_t(const T* src, T* dst, const Shape& out, int64_t base, const std::vector<int64_t>& steps) {
  const int64_t n = shape_numel(out);
  if (n == 0) return;
  const int r = static_cast<int>(out.size());
  if (r == 0) {
    dst[0] = src[base];
    return;
  }
  const int64_t inner = out[r - 1], step = steps[r - 1];
  std::vector<int64_t> idx(static_cast<std::size_t>(r), 0);
  int64_t off = base;
  for (int64_t e = 0; e < n; e += inner) {
    for (int64_t i = 0; i < inner; ++i) dst[e + i] = src[off + i * step];
    for (int d = r - 2; d >= 0; --d) {
      off += steps[d];
      if (++idx[d] < out[d]) break;
      off -= steps[d] * out[d];
      idx[d] = 0;
    }
  }
}

template <class T>
void indexed_copy_t(const T* src, T* dst, const Shape& out, const std::vector<std::vector<int64_t>>& offs, T fill) {
  const int64_t n = shape_numel(out);
  if (n == 0) return;
  const int r = static_cast<int>(out.size());
  if (r == 0) {
    dst[0] = src[0];
    return;
  }
  const int64_t inner = out[r - 1];
  const int64_t* last = offs[r - 1].data();
  std::vector<int64_t> idx(static_cast<std::size_t>(r), 0);
  for (int64_t e = 0; e < n; e += inner) {
    // Offset of the row's first element from the outer dims; -1 when any of them pads.
    int64_t base = 0;
    for (int d = 0; d < r - 1 && base >= 0; ++d) {
      const int64_t o = offs[d][idx[d]];
      base = o < 0 ? -1 : base + o;
    }
    if (base < 0) {
      for (int64_t i = 0; i < inner; ++i) dst[e + i] = fill;
    } else {
      for (int64_t i = 0; i < inner; ++i) dst[e + i] = last[i] < 0 ? fill : src[base + last[i]];
    }
    for (int d = r - 2; d >= 0; --d) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
}

IntList ints_from(const Attributes& attrs, const char* name) {
  IntList l;
  if (attrs.has(name)) {
    l.present = true;
    l.values = attrs.get_ints(name);
  }
  return l;
}

}  // namespace

void require_storable(const InferContext& ctx, int i) {
  if (dtype_size(ctx.dtype(i)) == 0)
    ctx.unsupported("input " + std::to_string(i) + " has type " + dtype_name(ctx.dtype(i)) +
                    ", which nnjit cannot store");
}

void copy_all(const Tensor& src, Tensor& dst) {
  if (src.nbytes() != dst.nbytes())
    throw_internal("copy of " + std::to_string(src.nbytes()) + " bytes into " + std::to_string(dst.nbytes()));
  if (src.nbytes()) std::memcpy(dst.raw(), src.raw(), src.nbytes());
}

void affine_copy(const Tensor& src, Tensor& dst, int64_t base, const std::vector<int64_t>& steps) {
  require_same_dtype(src, dst, "affine copy");
  if (steps.size() != dst.shape().size()) throw_internal("affine copy: steps do not match the output rank");
  with_elem_type(dtype_size(dst.dtype()), [&](auto tag) {
    using T = decltype(tag);
    affine_copy_t(static_cast<const T*>(src.raw()), static_cast<T*>(dst.raw()), dst.shape(), base, steps);
  });
}

void indexed_copy(const Tensor& src, Tensor& dst, const std::vector<std::vector<int64_t>>& maps, const void* fill) {
  require_same_dtype(src, dst, "indexed copy");
  const int r = dst.rank();
  if (static_cast<int>(maps.size()) != r || src.rank() != r) throw_internal("indexed copy: rank mismatch");
  // Turn per-axis indices into per-axis element offsets once.
  const std::vector<int64_t> strides = strides_of(src.shape());
  std::vector<std::vector<int64_t>> offs(maps.size());
  bool needs_fill = false;
  for (int d = 0; d < r; ++d) {
    if (static_cast<int64_t>(maps[d].size()) != dst.dim(d)) throw_internal("indexed copy: map size mismatch");
    offs[d].reserve(maps[d].size());
    for (int64_t m : maps[d]) {
      if (m >= src.dim(d)) throw_internal("indexed copy: index out of range");
      needs_fill |= m < 0;
      offs[d].push_back(m < 0 ? -1 : m * strides[d]);
    }
  }
  if (needs_fill && !fill) throw_internal("indexed copy: padding without a fill value");
  with_elem_type(dtype_size(dst.dtype()), [&](auto tag) {
    using T = decltype(tag);
    T f{};
    if (fill) std::memcpy(&f, fill, sizeof(T));
    indexed_copy_t(static_cast<const T*>(src.raw()), static_cast<T*>(dst.raw()), dst.shape(), offs, f);
  });
}

void fill_all(Tensor& dst, const void* value) {
  with_elem_type(dtype_size(dst.dtype()), [&](auto tag) {
    using T = decltype(tag);
    T v;
    std::memcpy(&v, value, sizeof(T));
    T* p = static_cast<T*>(dst.raw());
    for (int64_t i = 0; i < dst.numel(); ++i) p[i] = v;
  });
}

std::vector<int64_t> constant_ints(const InferContext& ctx, int i, const char* what) {
  const Tensor& t = ctx.constant(i, what);
  if (t.dtype() != DType::Int64 && t.dtype() != DType::Int32)
    ctx.fail(std::string("input ") + std::to_string(i) + " (" + what + ") must be int64, not " + dtype_name(t.dtype()));
  if (t.rank() > 1)
    ctx.fail(std::string("input ") + std::to_string(i) + " (" + what + ") must be 1-D, not " + shape_str(t.shape()));
  return to_ints(t);
}

IntList attr_or_input_ints(const InferContext& ctx, const char* name, int input, int input_since) {
  if (ctx.opset < input_since) return ints_from(ctx.attrs, name);
  IntList l;
  if (ctx.has_input(input)) {
    l.present = true;
    l.values = constant_ints(ctx, input, name);
  }
  return l;
}

IntList attr_or_input_ints(const ComputeContext& ctx, const char* name, int input, int input_since) {
  if (ctx.opset < input_since) return ints_from(ctx.attrs, name);
  IntList l;
  if (ctx.has(input)) {
    l.present = true;
    l.values = to_ints(ctx.in(input));
  }
  return l;
}

}  // namespace nnjit::ops::tensor_detail
