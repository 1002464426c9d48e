// Channel-blocked activations (nChw16c on AVX-512, nChw8c on AVX2) and their conversion
// from and to ONNX's plain NCHW, used at graph inputs and outputs.
//
//   // A [1, 24, 56, 56] tensor in nChw16c: 2 blocks of 16 channels, the last 8 lanes zero.
//   AlignedBuffer<float> b(blocked_size(1, 24, 56 * 56, 16));
//   nchw_to_blocked(plain, b.data(), 1, 24, 56 * 56, 16);
//   // element (n, c, p) of the blocked tensor:
//   //   b[((n * ceil(C/B) + c / B) * plane + p) * B + c % B]
//
// Contracts:
//  - `plane` is the product of the spatial dims (H*W for 2-D; any rank works).
//  - Lanes past the last channel are written as zeros, and kernels keep them zero: a
//    kernel may read a whole block without masking, and a zero lane multiplies to zero.
//  - src and dst must not overlap.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include <sys/mman.h>
#include <utility>

#include "jit/pack_arena.hpp"

namespace nnjit::jit {

inline int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }
inline int64_t div_up(int64_t value, int64_t divisor) { return (value + divisor - 1) / divisor; }

// Channels rounded up to whole blocks.
inline int64_t blocked_channels(int64_t channels, int block) { return round_up(channels, block); }
// Floats held by a blocked tensor.
inline int64_t blocked_size(int64_t batch, int64_t channels, int64_t plane, int block) {
  return batch * blocked_channels(channels, block) * plane;
}

// The conversions work on every image and block, or on blocks [first, last) of the
// flattened (image, block) range: how threads split them. They walk the plane in runs
// of kRun pixels, so the plain side is read (written) in contiguous runs while the
// blocked run of kRun * block floats stays in L1.
inline constexpr int64_t kReorderRun = 64;

inline void nchw_to_blocked(const float* src, float* dst, int64_t batch, int64_t channels, int64_t plane,
                            int block, int64_t first = 0, int64_t last = -1) {
  const int64_t blocks = div_up(channels, block);
  if (last < 0) last = batch * blocks;
  for (int64_t nb = first; nb < last; ++nb) {
    const int64_t n = nb / blocks, cb = nb % blocks;
    const int64_t lanes = std::min<int64_t>(block, channels - cb * block);
    float* d = dst + nb * plane * block;
    const float* s = src + (n * channels + cb * block) * plane;
    for (int64_t p0 = 0; p0 < plane; p0 += kReorderRun) {
      const int64_t p1 = std::min(plane, p0 + kReorderRun);
      for (int64_t l = 0; l < lanes; ++l)
        for (int64_t p = p0; p < p1; ++p) d[p * block + l] = s[l * plane + p];
      for (int64_t l = lanes; l < block; ++l)
        for (int64_t p = p0; p < p1; ++p) d[p * block + l] = 0.f;
    }
  }
}

inline void blocked_to_nchw(const float* src, float* dst, int64_t batch, int64_t channels, int64_t plane,
                            int block, int64_t first = 0, int64_t last = -1) {
  const int64_t blocks = div_up(channels, block);
  if (last < 0) last = batch * blocks;
  for (int64_t nb = first; nb < last; ++nb) {
    const int64_t n = nb / blocks, cb = nb % blocks;
    const int64_t lanes = std::min<int64_t>(block, channels - cb * block);
    const float* s = src + nb * plane * block;
    float* d = dst + (n * channels + cb * block) * plane;
    for (int64_t p0 = 0; p0 < plane; p0 += kReorderRun) {
      const int64_t p1 = std::min(plane, p0 + kReorderRun);
      for (int64_t l = 0; l < lanes; ++l)
        for (int64_t p = p0; p < p1; ++p) d[l * plane + p] = s[p * block + l];
    }
  }
}

// Floats to read at any alignment: what the packers take their ONNX weights as, so that a
// weight lying unaligned in a mapped model file (Tensor::view_unaligned) is packed from
// where it lies. Converts from const float*; each read is a 4-byte memcpy, one load.
class FloatsIn {
 public:
  FloatsIn() = default;
  FloatsIn(const float* p) : p_(reinterpret_cast<const unsigned char*>(p)) {}  // NOLINT(google-explicit-constructor)
  FloatsIn(std::nullptr_t) {}                                                  // NOLINT(google-explicit-constructor)
  static FloatsIn bytes(const void* p) {
    FloatsIn f;
    f.p_ = static_cast<const unsigned char*>(p);
    return f;
  }
  float operator[](int64_t i) const {
    float f;
    std::memcpy(&f, p_ + i * static_cast<int64_t>(sizeof(float)), sizeof(float));
    return f;
  }
  FloatsIn operator+(int64_t i) const { return bytes(p_ + i * static_cast<int64_t>(sizeof(float))); }
  friend bool operator==(FloatsIn a, std::nullptr_t) { return a.p_ == nullptr; }
  // Where float i lies, for loads that take any alignment (_mm_loadu_ps).
  const void* address(int64_t i) const { return p_ + i * static_cast<int64_t>(sizeof(float)); }

 private:
  const unsigned char* p_ = nullptr;
};

// A packer's transpose: to[c * ld + j] = from[j * stride + c] for j < rows, c < cols —
// `rows` source rows (each read in order) become `cols` lines of `rows` floats. In 4x4
// SSE blocks, a pass of kRun columns at a time (its lines stay in L1 while every row
// writes them): packing weights is most of what a load computes.
void transpose_floats(FloatsIn from, int64_t stride, int64_t rows, int64_t cols, float* to, int64_t ld);

// A zero-filled float array aligned to a cache line, for blocked tensors and packed
// weights (the kernels' full-vector loads are then aligned). Packers make theirs with
// packed(): carved from the calling thread's PackArena when it has one.
template <class T>
class AlignedBuffer {
 public:
  static constexpr std::size_t kAlignment = 64;
  static constexpr std::size_t kMapBytes = std::size_t{2} << 20;  // buffers this big are mapped
  static constexpr std::size_t kPage = 4096;
  static constexpr std::size_t kArenaBytes = std::size_t{1} << 10;  // packed buffers this big are carved

  AlignedBuffer() = default;
  static AlignedBuffer packed(int64_t count) {
    const std::size_t bytes = count > 0 ? static_cast<std::size_t>(count) * sizeof(T) : 0;
    if (PackArena* arena = PackArena::current(); arena != nullptr && bytes >= kArenaBytes) {
      auto [p, share] = arena->carve(bytes);
      if (p != nullptr) {
        AlignedBuffer b;
        b.data_ = static_cast<T*>(p);
        b.size_ = static_cast<std::size_t>(count);
        b.share_ = std::move(share);
        return b;
      }
    }
    return AlignedBuffer(count);
  }
  explicit AlignedBuffer(int64_t count) : size_(count > 0 ? static_cast<std::size_t>(count) : 0) {
    if (size_ == 0) return;
    const std::size_t bytes = (size_ * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
    if (bytes >= kMapBytes) {
      // Buffers of 2 MiB and more (the packed weights of big layers) are fresh anonymous
      // memory: zero already, so not written twice. No transparent huge pages asked for:
      // on a VM whose host reclaims idle guest memory, faulting in a fresh 2 MiB page
      // (zeroed, and compacted for) costs 5x the 512 small pages it replaces (100 MiB:
      // 220 ms against 40 ms measured), and load time is what this buffer is about.
      mapped_ = (bytes + kPage - 1) / kPage * kPage;
      void* p = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      map_ = p;
      data_ = static_cast<T*>(p);
      return;
    }
    data_ = static_cast<T*>(std::aligned_alloc(kAlignment, bytes));
    if (data_ == nullptr) throw std::bad_alloc();
    std::memset(static_cast<void*>(data_), 0, bytes);
  }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)),
        map_(std::exchange(o.map_, nullptr)), mapped_(std::exchange(o.mapped_, 0)), share_(std::move(o.share_)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(map_, o.map_);
    std::swap(mapped_, o.mapped_);
    std::swap(share_, o.share_);
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() {
    if (share_) return;  // a range of a PackArena: the arena's last share unmaps it
    if (map_) ::munmap(map_, mapped_);
    else std::free(data_);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
  void* map_ = nullptr;     // the mapping of a big buffer (data_ lies inside it), else null
  std::size_t mapped_ = 0;  // its length
  std::shared_ptr<void> share_;  // set when carved from a PackArena
};

}  // namespace nnjit::jit
