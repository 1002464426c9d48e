// jit/layout.hpp's transpose_floats, the packers' transpose: every (rows, cols) around
// its 4x4 blocks and kRun-column passes, from sources at every byte alignment, into lines
// longer than the rows (what lies past each line's rows is left as it was).
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "jit/layout.hpp"

namespace nnjit::testing {
namespace {

TEST_SUITE("layout") {
  TEST_CASE("transpose_floats: to[c * ld + j] = from[j * stride + c], at any source alignment") {
    for (int64_t rows : {0, 1, 3, 4, 5, 8, 15, 16, 17})
      for (int64_t cols : {1, 3, 4, 7, 63, 64, 65, 130})
        for (int64_t extra : {0, 2})  // stride past cols (a row of a bigger matrix)
          for (std::size_t offset : {0, 1, 2, 3}) {
            CAPTURE(rows);
            CAPTURE(cols);
            CAPTURE(extra);
            CAPTURE(offset);
            const int64_t stride = cols + extra, ld = rows + 3;
            std::vector<float> src(static_cast<std::size_t>(rows * stride));
            for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f - 7.f;
            std::vector<unsigned char> bytes(src.size() * sizeof(float) + 8);
            if (!src.empty()) std::memcpy(bytes.data() + offset, src.data(), src.size() * sizeof(float));
            constexpr float kUntouched = -123.f;
            std::vector<float> dst(static_cast<std::size_t>(cols * ld), kUntouched);
            jit::transpose_floats(jit::FloatsIn::bytes(bytes.data() + offset), stride, rows, cols, dst.data(), ld);
            int wrong = 0;
            for (int64_t c = 0; c < cols; ++c)
              for (int64_t j = 0; j < ld; ++j) {
                const float want = j < rows ? src[static_cast<std::size_t>(j * stride + c)] : kUntouched;
                wrong += dst[static_cast<std::size_t>(c * ld + j)] != want;
              }
            CHECK(wrong == 0);
          }
  }
}

}  // namespace
}  // namespace nnjit::testing
