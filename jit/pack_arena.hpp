// Memory for the weights a model packs at load. On a VM, fresh memory is most of what
// packing costs: each first touch of a page traps to the kernel (and often to the host).
// One reservation of address space per load, carved by the compile workers into
// cache-line-aligned ranges, saves the mmap/munmap or malloc and memset each buffer paid
// on top of that (cold loads up to 27% shorter on the zoo, commit c208814), and packs
// small weights side by side in pages.
//
//   jit::PackArena arena(upper_bound_bytes);
//   {
//     jit::PackArena::Use use(arena);  // this thread's packed buffers come from arena
//     PointwiseWeights w = pack_pointwise_weights(plan, weights, bias);  // AlignedBuffer::packed
//   }
//   arena.trim();  // gives back the address space never carved
//
// Contracts:
//  - carve() is thread-safe. Its ranges are fresh memory (zero), aligned to kAlign, and
//    never handed out twice; each holds a share of the reservation, which is unmapped
//    when the arena and every range carved from it are gone.
//  - When the reservation is spent or could not be made, carve() returns null and the
//    caller allocates on its own: an arena never makes a load fail.
//  - A kernel reading a vector past a range's end reads mapped memory.
//  - trim() only once no thread carves any more.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>

namespace nnjit::jit {

class PackArena {
 public:
  static constexpr std::size_t kPage = 4096;
  static constexpr std::size_t kAlign = 64;  // a cache line: ranges of two threads never share one

  explicit PackArena(std::size_t reserve_bytes);
  PackArena(const PackArena&) = delete;
  PackArena& operator=(const PackArena&) = delete;

  // A range of at least `bytes` and its share of the reservation, or {null, null}.
  std::pair<void*, std::shared_ptr<void>> carve(std::size_t bytes);
  void trim();
  std::size_t carved_bytes() const { return next_.load(); }
  std::size_t reserved_bytes() const;

  // The arena of the calling thread (null when none): where AlignedBuffer::packed carves.
  static PackArena* current();
  class Use {
   public:
    explicit Use(PackArena& arena);
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

   private:
    PackArena* previous_;
  };

 private:
  struct Region;
  std::shared_ptr<Region> region_;
  std::atomic<std::size_t> next_{0};
  std::size_t limit_ = 0;  // carving stops here (the reservation's size, or its used part once trimmed)
};

}  // namespace nnjit::jit
