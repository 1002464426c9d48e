// A whole file mapped into memory, shared by the tensors that view it.
//
//   auto f = loaders::MappedFile::open("weights.bin");   // throws InvalidInput naming it
//   Tensor w = Tensor::view(DType::Float32, {64, 3}, f->data() + offset, f);
//
// The mapping is private and copy-on-write: the file on disk never changes, and code
// that (wrongly) writes into a constant gets its own page rather than a fault. At least
// kReadPastEnd zero bytes are readable past the last byte, because kernels may read one
// vector past the end of a tensor (runtime/tensor.cpp pads its own storage the same way).
// A file truncated by another process while mapped still faults; that is the price of
// not copying weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace nnjit::loaders {

class MappedFile {
 public:
  static constexpr std::size_t kReadPastEnd = 64;

  // Throws InvalidInput "cannot open '<path>': <reason>" (missing, unreadable, not a
  // regular file). An empty file maps to a valid pointer with size() == 0.
  static std::shared_ptr<MappedFile> open(const std::string& path);

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::uint8_t* data() const { return static_cast<std::uint8_t*>(base_); }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  void* base_ = nullptr;
  std::size_t size_ = 0;      // bytes of the file
  std::size_t reserved_ = 0;  // bytes of address space, file plus zero padding
  std::string path_;
};

}  // namespace nnjit::loaders
