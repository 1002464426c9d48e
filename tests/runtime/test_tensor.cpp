// nnjit::Tensor's lazy kinds. Views of unaligned bytes (a weight where the model file put
// it) read where they lie through unaligned_bytes(), and data()/raw() copy them to aligned
// storage once, shared by every copy of the tensor, whichever thread asks first. Deferred
// tensors (re-parameterised weights) compute their elements the same way, or into a
// caller's buffer without keeping them (compute_into).
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "jit/layout.hpp"
#include "nnjit/tensor.hpp"

namespace nnjit::testing {
namespace {

TEST_SUITE("tensor") {
  // 4 floats at byte 1 of a buffer: not aligned for float.
  struct Odd {
    std::shared_ptr<std::vector<unsigned char>> bytes = std::make_shared<std::vector<unsigned char>>(64);
    const float values[4] = {1.5f, -2.f, 3.25f, 1e-3f};
    Odd() { std::memcpy(bytes->data() + 1, values, sizeof(values)); }
    Tensor view() const { return Tensor::view_unaligned(DType::Float32, {2, 2}, bytes->data() + 1, bytes); }
  };

  TEST_CASE("an unaligned view reads where it lies until data() copies it, once") {
    const Odd odd;
    const Tensor t = odd.view();
    CHECK_FALSE(t.aligned());
    CHECK(t.unaligned_bytes() == odd.bytes->data() + 1);
    const jit::FloatsIn in = jit::FloatsIn::bytes(t.unaligned_bytes());
    for (int i = 0; i < 4; ++i) CHECK(in[i] == odd.values[i]);
    const Tensor clone = t.clone();  // from the bytes where they lie
    CHECK(t.aligned() == false);
    CHECK(reinterpret_cast<std::uintptr_t>(clone.data<float>()) % 64 == 0);

    const Tensor copy = t;  // shares the aligned copy made below
    const float* p = t.data<float>();
    CHECK(reinterpret_cast<std::uintptr_t>(p) % alignof(float) == 0);
    CHECK(t.aligned());
    CHECK(copy.aligned());
    CHECK(copy.data<float>() == p);
    CHECK(t.reshaped({4}).data<float>() == p);
    for (int i = 0; i < 4; ++i) {
      CHECK(p[i] == odd.values[i]);
      CHECK(clone.data<float>()[i] == odd.values[i]);
    }
  }

  TEST_CASE("an unaligned view: writes through data() land in the shared copy, and clone() sees them") {
    const Odd odd;
    Tensor t = odd.view();
    Tensor copy = t;
    t.data<float>()[2] = 7.f;
    CHECK(copy.data<float>()[2] == 7.f);
    CHECK(t.clone().data<float>()[2] == 7.f);
    float at_source;
    std::memcpy(&at_source, odd.bytes->data() + 1 + 2 * sizeof(float), sizeof(float));
    CHECK(at_source == 3.25f);  // the bytes it viewed are not written
  }

  TEST_CASE("view_unaligned of aligned bytes is a plain view") {
    auto bytes = std::make_shared<std::vector<float>>(std::vector<float>{1.f, 2.f, 3.f});
    const Tensor t = Tensor::view_unaligned(DType::Float32, {3}, bytes->data(), bytes);
    CHECK(t.aligned());
    CHECK(t.data<float>() == bytes->data());
  }

  TEST_CASE("an unaligned view asked for data() by many threads at once gives one copy") {
    for (int round = 0; round < 20; ++round) {
      const Odd odd;
      const Tensor t = odd.view();
      std::vector<const float*> seen(4, nullptr);
      std::vector<std::thread> threads;
      for (std::size_t i = 0; i < seen.size(); ++i) threads.emplace_back([&, i] { seen[i] = Tensor(t).data<float>(); });
      for (auto& th : threads) th.join();
      for (const float* p : seen) REQUIRE(p == seen[0]);
      CHECK(seen[0][3] == odd.values[3]);
    }
  }

  // 0, 1, 2, ... computed by a fill that counts its calls.
  struct Counted {
    std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
    Tensor make(int64_t n = 6) const {
      return Tensor::deferred(DType::Float32, {n}, [calls = calls, n](void* dst) {
        ++*calls;
        for (int64_t i = 0; i < n; ++i) static_cast<float*>(dst)[i] += static_cast<float>(i);  // onto zeros
      });
    }
  };

  TEST_CASE("a deferred tensor computes its elements once, when first read, for every copy") {
    const Counted c;
    const Tensor t = c.make();
    const Tensor copy = t;
    CHECK_FALSE(t.aligned());
    CHECK(t.unaligned_bytes() == nullptr);
    CHECK(*c.calls == 0);
    const float* p = copy.data<float>();
    CHECK(*c.calls == 1);
    CHECK(t.aligned());
    CHECK(t.data<float>() == p);
    CHECK(p[5] == 5.f);
    CHECK(t.clone().data<float>()[3] == 3.f);
    CHECK(*c.calls == 1);
    CHECK_FALSE(t.same_storage(c.make()));  // two deferred tensors are not one storage
    float out[6] = {};
    CHECK_FALSE(t.compute_into(out));  // computed already: nothing to do
  }

  TEST_CASE("a deferred tensor computed into a caller's buffer keeps nothing; clone() computes it") {
    const Counted c;
    const Tensor t = c.make();
    std::vector<float> out(6, 0.f);
    CHECK(t.compute_into(out.data()));
    CHECK(out[4] == 4.f);
    CHECK(*c.calls == 1);
    CHECK_FALSE(t.aligned());  // still not stored
    const Tensor clone = t.clone();
    CHECK(*c.calls == 2);
    CHECK(clone.data<float>()[2] == 2.f);
    const Counted never;
    { const Tensor unread = never.make(); }
    CHECK(*never.calls == 0);
  }

  TEST_CASE("a deferred tensor read by many threads at once is computed once") {
    for (int round = 0; round < 20; ++round) {
      const Counted c;
      const Tensor t = c.make(1000);
      std::vector<const float*> seen(4, nullptr);
      std::vector<std::thread> threads;
      for (std::size_t i = 0; i < seen.size(); ++i) threads.emplace_back([&, i] { seen[i] = Tensor(t).data<float>(); });
      for (auto& th : threads) th.join();
      for (const float* p : seen) REQUIRE(p == seen[0]);
      CHECK(*c.calls == 1);
      CHECK(seen[0][999] == 999.f);
    }
  }
}

}  // namespace
}  // namespace nnjit::testing
