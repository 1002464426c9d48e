// nnjit::Tensor — a dense, row-major, shared-storage n-d array.
//
//   auto t = nnjit::Tensor::from(data.data(), {1, 3, 224, 224});  // copies
//   float* p = t.data<float>();
//
// Copies of a Tensor share storage (like a shared_ptr); clone() makes a deep copy.
// Element types use ONNX's TensorProto.DataType numbering.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nnjit/error.hpp"

namespace nnjit {

enum class DType : int {
  Undefined = 0,
  Float32 = 1,
  UInt8 = 2,
  Int8 = 3,
  UInt16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  String = 8,
  Bool = 9,
  Float16 = 10,
  Float64 = 11,
  UInt32 = 12,
  UInt64 = 13,
  Complex64 = 14,
  Complex128 = 15,
  BFloat16 = 16,
};

// Bytes per element; 0 for Undefined, String and types nnjit cannot store.
std::size_t dtype_size(DType t);
// "float32", "int64", ... ; "dtype(N)" for unknown numbers.
std::string dtype_name(DType t);

using Shape = std::vector<int64_t>;

// "[1,3,224,224]"
std::string shape_str(const Shape& s);
// Product of dims; throws InvalidInput when a dim is negative or the product overflows.
int64_t shape_numel(const Shape& s);

template <class T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::Int32; }
template <> constexpr DType dtype_of<int8_t>() { return DType::Int8; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::UInt8; }
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled storage of the given type and shape.
  Tensor(DType dtype, Shape shape);

  // Copies numel(shape) elements from data.
  template <class T>
  static Tensor from(const T* data, Shape shape) {
    Tensor t(dtype_of<T>(), std::move(shape));
    copy_in(t, data);
    return t;
  }
  template <class T>
  static Tensor from(const std::vector<T>& v, Shape shape) {
    return from(v.data(), std::move(shape));
  }
  // A view of memory owned elsewhere; `owner` keeps it alive (e.g. a mapped file).
  static Tensor view(DType dtype, Shape shape, void* data, std::shared_ptr<void> owner);
  // The same for bytes at any alignment (a weight where the model file put it): data()
  // and raw() first copy them to aligned storage, once (thread-safe), which all copies
  // of the tensor then share; unaligned_bytes() reads them where they lie.
  static Tensor view_unaligned(DType dtype, Shape shape, const void* data, std::shared_ptr<void> owner);
  // Elements computed when first needed: data(), raw() and clone() call `fill` once
  // (thread-safe) on zeroed aligned storage, which all copies of the tensor then share.
  // A load-time transform (re-parameterised weights) then runs on whichever thread first
  // reads it, and never for a tensor nobody reads.
  static Tensor deferred(DType dtype, Shape shape, std::function<void(void* dst)> fill);
  // For a deferred tensor not yet computed: computes its elements into `dst` (zeroed,
  // nbytes() long) without keeping them — for a reader that needs them once, in a buffer
  // of its own — and returns true. Otherwise does nothing and returns false.
  bool compute_into(void* dst) const;
  // The bytes it views, aligned or not, without copying (read them with std::memcpy);
  // for a view_unaligned once copied, the bytes as viewed: writes went to the copy.
  // Null for a deferred tensor.
  const void* unaligned_bytes() const { return ptr_; }
  // False only for a view_unaligned() not yet copied or a deferred() not yet computed.
  bool aligned() const;

  bool defined() const { return dtype_ != DType::Undefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(static_cast<std::size_t>(i)); }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return numel_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }

  void* raw() { return lazy_ ? resolve() : ptr_; }
  const void* raw() const { return lazy_ ? resolve() : ptr_; }
  template <class T>
  T* data() {
    check_type(dtype_of<T>());
    return static_cast<T*>(raw());
  }
  template <class T>
  const T* data() const {
    check_type(dtype_of<T>());
    return static_cast<const T*>(raw());
  }

  Tensor clone() const;
  // Same storage, new shape of equal element count.
  Tensor reshaped(Shape shape) const;
  // True when both tensors share the same storage pointer.
  bool same_storage(const Tensor& o) const { return ptr_ == o.ptr_ && lazy_ == o.lazy_; }

 private:
  template <class T>
  static void copy_in(Tensor& t, const T* data) {
    T* dst = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) dst[i] = data[i];
  }
  void check_type(DType want) const;
  struct Lazy;             // how a view_unaligned or deferred gets its aligned storage (tensor.cpp)
  void* resolve() const;   // that storage, made on first call

  DType dtype_ = DType::Undefined;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<void> owner_;
  void* ptr_ = nullptr;  // for a view_unaligned, its bytes where they lie; null if deferred
  std::shared_ptr<Lazy> lazy_;
};

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Reads a tensor from a .npy file or an ONNX TensorProto (.pb) file, chosen by content.
// Throws InvalidInput naming the file and what is wrong with it.
Tensor read_tensor_file(const std::string& path);
// Writes a .npy (version 1.0, little-endian, C order).
void write_npy(const std::string& path, const Tensor& t);

}  // namespace nnjit
