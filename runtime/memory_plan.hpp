// Activation memory, planned once at load (TFLite's arena planner, ORT's allocation plan).
//
//   // v0 (graph input) -> conv -> v1 -> relu -> v2 -> pool -> v3 (graph output)
//   std::vector<StepValues> steps = {
//       {.inputs = {0}, .outputs = {1}, .scratch_bytes = 4096},        // conv: a tile buffer
//       {.inputs = {1}, .outputs = {2}, .inplace = {{.output = 0, .input = 0}}},  // relu
//       {.inputs = {2}, .outputs = {3}}};
//   MemoryPlan plan = plan_memory(sizes, kinds, steps);
//   // plan.values[2].kind == ValueKind::InPlace, plan.values[2].offset == plan.values[1].offset
//   // step 0's tile buffer: base + plan.scratch[0].offset, plan.scratch[0].size bytes
//
// One record per value: {size, first_step, last_step, offset, kind}. Values computed by a
// step live in one arena per Session at base + offset. Values joined by in-place grants form
// one block whose lifetime is the union of theirs (a heir smaller than its donor frees the
// donor's tail); each step's scratch is a block living exactly that step. Blocks are
// placed largest first into the best-fitting gap among blocks whose lifetimes overlap,
// blocks of one size in two orders (earlier first step first; later last step first),
// and the smaller arena is kept; the arena size is the high-water mark.
//
// Contracts:
//  - Two blocks whose [first_step, last_step] ranges overlap never overlap in memory. So
//    two values alive at the same step never share bytes, except an in-place heir and its
//    donor at the handover step (the step that reads the donor and writes the heir).
//  - Graph outputs live until the end of the run: they are never reused, never overwritten.
//  - A step's scratch overlaps no value the step reads or writes, nor any value alive then.
//  - Every offset is a multiple of kArenaAlign; sizes are rounded up to it.
//  - A malformed description (mismatched vector sizes, a value id or in-place index out of
//    range) throws nnjit::Error (Internal: it is the engine's bug, not the model's).
//
// In-place contract. A step may request `inplace {output o, input i}` only if its kernel,
// run with dst == src (output o's buffer is input i's buffer), computes what it computes
// with separate buffers. The kernel must guarantee:
//  1. Output element k depends only on element k of input i (plus any elements of the other
//     inputs, which the planner guarantees never alias input i). No neighbourhoods: a
//     convolution, a pooling window, a transpose, a softmax over a row are not in-place.
//  2. Output element k sits at the same place as input element k in the stored layout
//     (same dtype size, same blocking and padding lanes); an output smaller than the input
//     is a prefix of it.
//  3. The kernel never writes a byte of dst before it has read every byte of src stored
//     there: it reads element k (a vector of them) before writing element k, and writes
//     nothing ahead of its reads (no stores into later elements, no prefetch-for-write
//     tricks that clobber unread data). With threads, each thread writes only the
//     elements it itself read first (split by index ranges of the same layout).
//  4. Input i is not read again after the step; its bytes hold the output afterwards.
// A compaction (a crop, a subsample) breaks 1 and 2 in one safe way: output element k is
// one input element stored at the same or a higher address, those addresses rising with
// k, and the kernel copies in order of k on one thread — so 3 holds. The output is
// smaller, and the bytes past it are free from the step on.
// The planner grants a request only when input i is an arena value (Allocate or InPlace;
// not a graph Input, Constant or Output), its last use is this step, output o is an
// Allocate value first written here, the output's byte size is <= the input's, input i's
// value appears once among the step's inputs (twice with InPlaceRequest::read_twice), and
// no other output of the step has taken it. Otherwise it says why in MemoryPlan::inplace and plans the output separately.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace nnjit::runtime {

enum class ValueKind { Unused, Input, Constant, Allocate, InPlace, Output, Alias };

const char* to_string(ValueKind kind);

struct ValuePlan {
  ValueKind kind = ValueKind::Unused;
  std::size_t size = 0;  // bytes, rounded up to the arena alignment
  int first_step = -1, last_step = -1;
  std::size_t offset = 0;
  int donor = -1;  // InPlace: the value whose bytes this one took over at first_step
  int parent = -1;  // Alias: the value whose bytes hold this one (at offset - parent's offset)
};

// "Value `value` lives inside value `parent`, `offset` bytes in" (a Concat whose inputs
// are written straight into its output's channel blocks). The parent's lifetime becomes
// the union of its own and its children's; the children are not placed on their own and
// no in-place request may take or give their bytes. Children of one parent must not
// overlap, must fit in it and must be values some step computes; a parent may not be a
// child itself. A malformed alias throws nnjit::Error (Internal).
struct ValueAlias {
  int value = -1;
  int parent = -1;
  std::size_t offset = 0;  // bytes, a multiple of kArenaAlign
};

// "Output index `output` of the step may share input index `input`'s memory" (indices into
// StepValues::outputs and ::inputs, not value ids). See the in-place contract above.
struct InPlaceRequest {
  int output = 0;
  int input = 0;
  // The step also reads input i's value through another of its inputs, every element
  // before it writes over that element, and none after (a row stream whose shortcut is
  // its own input, tiles in order on one thread): the one exception to "appears once".
  bool read_twice = false;
};

// What the planner needs to know of one step: the values it reads and writes (value ids;
// -1 for an absent optional one), its in-place requests, and the temporary bytes its
// kernel needs during the step only (e.g. a fused block's tile buffer; 0 = none).
struct StepValues {
  std::vector<int> inputs, outputs;
  std::vector<InPlaceRequest> inplace;
  std::size_t scratch_bytes = 0;
};

// A step's scratch buffer: base + offset, size bytes (size 0: the step has none).
struct ScratchPlan {
  std::size_t size = 0;  // rounded up to the arena alignment
  std::size_t offset = 0;
};

// The planner's answer to one in-place request, for `nnjit info` and tests.
struct InPlaceDecision {
  int step = -1;
  int output = -1, input = -1;  // value ids (-1 where the request named an absent value)
  bool granted = false;
  std::string reason;  // why it was denied; empty when granted
};

struct MemoryPlan {
  std::vector<ValuePlan> values;         // indexed by value id
  std::vector<ScratchPlan> scratch;      // indexed by step
  std::vector<InPlaceDecision> inplace;  // one per request, in step order
  std::size_t arena_bytes = 0;           // the high-water mark
  std::size_t naive_bytes = 0;           // every arena value and scratch, as if none were reused
  std::size_t live_bound = 0;  // largest sum of block sizes alive at one step: no plan that
                               // places whole blocks can use a smaller arena
  int peak_step = -1;          // the first step where live_bound is reached
  std::vector<std::size_t> live;  // per step: the sum of block sizes alive there
};

constexpr std::size_t kArenaAlign = 64;

// `sizes[v]` is value v's size in bytes; `kinds[v]` says which values are graph inputs,
// constants or outputs (Allocate for the rest that steps produce; InPlace is the planner's
// to give, passing it in is treated as Allocate). Steps run in the order given.
MemoryPlan plan_memory(const std::vector<std::size_t>& sizes, const std::vector<ValueKind>& kinds,
                       const std::vector<StepValues>& steps, const std::vector<ValueAlias>& aliases = {});

}  // namespace nnjit::runtime
