// run_split_in_place: the three rounds of a step writing over its own input keep every
// row's reads ahead of its writes for any split a Balance gives, because the rounds
// share one split. A 3-row stencil in place, one row per tile, against its out-of-place
// answer: a worker keeps the input row above its next tile (as the fused runners keep
// their rows in a buffer), and its first tile is deferred.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "runtime/runners.hpp"
#include "runtime/thread_pool.hpp"

using nnjit::runtime::ThreadPool;

namespace {

// out[k] = in[k - 1] + 2 in[k] + in[k + 1], rows outside the image 0.
std::vector<double> stencil(const std::vector<double>& in) {
  const auto n = static_cast<int64_t>(in.size());
  auto at = [&](int64_t k) { return k < 0 || k >= n ? 0.0 : in[static_cast<std::size_t>(k)]; };
  std::vector<double> out(in.size());
  for (int64_t k = 0; k < n; ++k) out[static_cast<std::size_t>(k)] = at(k - 1) + 2 * at(k) + at(k + 1);
  return out;
}

// The stencil over `data` in place on the pool, split by `balance`.
void stencil_in_place(std::vector<double>& data, ThreadPool& pool, ThreadPool::Balance* balance) {
  const auto n = static_cast<int64_t>(data.size());
  auto at = [&](int64_t k) { return k < 0 || k >= n ? 0.0 : data[static_cast<std::size_t>(k)]; };
  std::vector<double> above(static_cast<std::size_t>(pool.threads()));  // per worker: the input row above its next tile
  std::vector<double> first(static_cast<std::size_t>(pool.threads()));  // per worker: its deferred first tile
  auto tile = [&](int64_t k, double row_above) { return row_above + 2 * at(k) + at(k + 1); };
  nnjit::runtime::run_split_in_place(
      pool, balance, n,
      [&](int64_t k, int w) { first[static_cast<std::size_t>(w)] = tile(k, at(k - 1)); },
      [&](int64_t begin, int64_t end, bool after, int w) {
        double& a = above[static_cast<std::size_t>(w)];
        if (!after) a = at(begin - 1);  // not written yet: a first tile is deferred
        for (int64_t k = begin; k < end; ++k) {
          const double out = tile(k, a);
          a = at(k);
          data[static_cast<std::size_t>(k)] = out;
        }
      },
      [&](int64_t k, int w) { data[static_cast<std::size_t>(k)] = first[static_cast<std::size_t>(w)]; });
}

}  // namespace

TEST_SUITE("runtime") {
  TEST_CASE("run_split_in_place: every split a Balance gives, the in-place answer of the out-of-place one") {
    for (int threads : {2, 3}) {
      ThreadPool pool(threads);
      // Speeds taught as if range 1 were 1/8 to 8 times as fast as range 0 (and range 2,
      // with three threads, half as fast): the splits move the ranges' edges everywhere.
      for (int64_t skew : {-3, -1, 0, 1, 3}) {
        ThreadPool::Balance balance;
        ThreadPool::Split taught(static_cast<std::size_t>(threads) + 1);
        for (int w = 0; w <= threads; ++w) taught[static_cast<std::size_t>(w)] = 30 * w;
        std::vector<int64_t> done(static_cast<std::size_t>(threads), 1000);
        done[1] = skew < 0 ? 1000 << -skew : 1000 >> skew;
        if (threads == 3) done[2] = 2000;
        std::vector<char> by_caller(static_cast<std::size_t>(threads), 0);
        by_caller[0] = 1;
        for (int k = 0; k < 50; ++k) balance.learn(taught, done, by_caller);
        for (int64_t rows : {3, 4, 5, 7, 12, 29}) {
          CAPTURE(threads);
          CAPTURE(skew);
          CAPTURE(rows);
          std::vector<double> data(static_cast<std::size_t>(rows));
          for (int64_t k = 0; k < rows; ++k) data[static_cast<std::size_t>(k)] = static_cast<double>((k * 7919) % 101);
          const std::vector<double> want = stencil(data);
          ThreadPool::Balance used = balance;  // round 1 teaches it what this host did
          const ThreadPool::Split split = pool.split(rows, &used);
          stencil_in_place(data, pool, &used);
          CHECK(data == want);
          if (skew != 0 && rows >= 12) CHECK(split[1] != rows / threads);  // the split moved
        }
      }
    }
  }
}
