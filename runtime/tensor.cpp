#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "nnjit/tensor.hpp"

namespace nnjit {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: case DType::Int32: case DType::UInt32: return 4;
    case DType::UInt8: case DType::Int8: case DType::Bool: return 1;
    case DType::UInt16: case DType::Int16: case DType::Float16: case DType::BFloat16: return 2;
    case DType::Int64: case DType::Float64: case DType::UInt64: case DType::Complex64: return 8;
    case DType::Complex128: return 16;
    default: return 0;
  }
}

std::string dtype_name(DType t) {
  switch (t) {
    case DType::Undefined: return "undefined";
    case DType::Float32: return "float32";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::UInt16: return "uint16";
    case DType::Int16: return "int16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::String: return "string";
    case DType::Bool: return "bool";
    case DType::Float16: return "float16";
    case DType::Float64: return "float64";
    case DType::UInt32: return "uint32";
    case DType::UInt64: return "uint64";
    case DType::Complex64: return "complex64";
    case DType::Complex128: return "complex128";
    case DType::BFloat16: return "bfloat16";
  }
  return "dtype(" + std::to_string(static_cast<int>(t)) + ")";
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw_invalid("shape " + shape_str(s) + " has a negative dimension");
    if (d != 0 && n > INT64_MAX / d) throw_invalid("shape " + shape_str(s) + ": element count overflows");
    n *= d;
  }
  return n;
}

namespace {
// Storage is 64-byte aligned (one zmm, one cache line) and padded so that kernels may
// read one vector past the end.
constexpr std::size_t kAlign = 64;
constexpr std::size_t kPad = 64;
constexpr std::size_t kMaxBytes = std::size_t{1} << 40;  // refuse absurd allocations early
}  // namespace

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  numel_ = shape_numel(shape_);
  const std::size_t es = dtype_size(dtype_);
  if (es == 0) throw_unsupported("tensors of type " + dtype_name(dtype_) + " are not supported");
  if (static_cast<uint64_t>(numel_) > kMaxBytes / es)
    throw_invalid("tensor of shape " + shape_str(shape_) + " is too large to allocate");
  std::size_t bytes = (nbytes() + kPad + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  if (!p) throw_internal("out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, bytes);
  owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  ptr_ = p;
}

Tensor Tensor::view(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.owner_ = std::move(owner);
  t.ptr_ = data;
  return t;
}

struct Tensor::Lazy {
  std::function<void(void*)> fill;  // deferred; else copy the viewed bytes
  std::mutex fill_mutex;            // guards fill: compute_into reads it, resolve clears it
  std::once_flag once;
  std::atomic<void*> aligned{nullptr};
  Tensor storage;
};

Tensor Tensor::view_unaligned(DType dtype, Shape shape, const void* data, std::shared_ptr<void> owner) {
  Tensor t = view(dtype, std::move(shape), const_cast<void*>(data), std::move(owner));
  if (reinterpret_cast<std::uintptr_t>(data) % std::max<std::size_t>(dtype_size(dtype), 1) != 0)
    t.lazy_ = std::make_shared<Lazy>();
  return t;
}

Tensor Tensor::deferred(DType dtype, Shape shape, std::function<void(void* dst)> fill) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.lazy_ = std::make_shared<Lazy>();
  t.lazy_->fill = std::move(fill);
  return t;
}

bool Tensor::compute_into(void* dst) const {
  if (!lazy_ || aligned()) return false;
  // fill is set once at creation and cleared only by resolve(): read it under the same
  // once_flag discipline by copying it first.
  std::function<void(void*)> fill;
  {
    std::lock_guard lock(lazy_->fill_mutex);
    fill = lazy_->fill;
  }
  if (!fill) return false;
  fill(dst);
  return true;
}

bool Tensor::aligned() const { return !lazy_ || lazy_->aligned.load(std::memory_order_acquire) != nullptr; }

void* Tensor::resolve() const {
  Lazy& l = *lazy_;
  std::call_once(l.once, [&] {
    l.storage = Tensor(dtype_, shape_);
    if (l.fill) l.fill(l.storage.ptr_);
    else if (nbytes()) std::memcpy(l.storage.ptr_, ptr_, nbytes());
    std::lock_guard lock(l.fill_mutex);
    l.fill = nullptr;  // what it captured (source tensors) is not needed any more
    l.aligned.store(l.storage.ptr_, std::memory_order_release);
  });
  return l.aligned.load(std::memory_order_acquire);
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor t(dtype_, shape_);
  // Not yet copied to aligned storage: the bytes where they lie serve as well.
  if (nbytes()) std::memcpy(t.ptr_, aligned() || ptr_ == nullptr ? raw() : ptr_, nbytes());
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel_)
    throw_invalid("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

void Tensor::check_type(DType want) const {
  if (want != dtype_)
    throw_internal("tensor of type " + dtype_name(dtype_) + " accessed as " + dtype_name(want));
}

}  // namespace nnjit
