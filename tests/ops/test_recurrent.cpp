// The recurrent ops of ops/recurrent.cpp (RNN, GRU, LSTM). Values were computed with
// torch.nn.RNN / GRU / LSTM (weights pasted in ONNX gate order, reordered for torch: its
// LSTM gates are i,f,g,o and GRU r,z,n; its GRU is ONNX's linear_before_reset=1), or by
// hand from the ONNX formulas where torch has no counterpart (GRU linear_before_reset=0,
// LSTM peepholes, input_forget, clip, the parameterised activations).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ops/op.hpp"
#include "tests/ops/op_runner.hpp"

using namespace nnjit;
using namespace nnjit::testing::ew;
using V = std::vector<double>;

namespace {

// lstm: LSTM seq=3 batch=2 input=2 hidden=3 bidirectional=False lens=None
const std::vector<float> lstm_x = {0.3, 0.8, 0.6, -0.5, -0.4, 0.7, -1, 0.6, 0.6, -0.1, -0.4, -0.4};
const std::vector<float> lstm_w = {-0.5, -0.1, 0,    0.1, 1,   0.6, 0.2, 1,    -0.6, -0.7, 0.2, -0.9,
                                   -0.9, 0,    -0.1, 0.8, 0.3, 0,   0,   -0.5, -1,   -0.6, 0.4, -0.6};
const std::vector<float> lstm_r = {-0.3, -1,  0.7,  -0.7, -0.5, 0.8,  0,    0.7,  0.3, 0.5,  -0.8, 0.1,
                                   0,    0.7, -0.3, 0.2,  -0.9, -0.2, -0.4, -0.7, 0.6, -0.2, 1,    0.2,
                                   0.2,  0.3, 0.4,  -0.7, -0.1, -0.5, -0.2, -0.8, 0.9, -0.6, 0.3,  -0.4};
const std::vector<float> lstm_b = {0.7, 0.3, -0.7, 0.7,  0.9,  0.8,  0.1,  -0.7, -0.6, 0.9, 0.1,  -0.6,
                                   0.8, 0.3, 0.1,  -0.2, -0.2, -0.5, -0.9, 0.8,  -0.1, 0.1, -0.4, 0.5};
const std::vector<float> lstm_h0 = {-0.9, -0.3, -0.9, -0.8, 0.9, 0.3};
const std::vector<float> lstm_c0 = {-0.1, 0, 0.7, -0.3, 0.2, 0.4};
const V lstm_y = {0.44667593, -0.27443205, 0.13921645,   0.14299839, -0.273583,  0.26228123,
                  0.40676293, -0.21089999, -0.076576845, 0.49607344, 0.14974698, 0.0062474388,
                  0.39607703, -0.29100451, -0.064656628, 0.35650469, 0.13880131, -0.03832006};
const V lstm_yh = {0.39607703, -0.29100451, -0.064656628, 0.35650469, 0.13880131, -0.03832006};
const V lstm_yc = {0.63230099, -0.5624176, -0.094087886, 0.79939773, 0.17761535, -0.060654092};

// gru: GRU seq=3 batch=2 input=2 hidden=3 bidirectional=False lens=None
const std::vector<float> gru_x = {-0.3, 0, 0.5, 0.8, -0.7, 0.9, -1, 0.5, 0.6, -0.7, -0.2, 0.6};
const std::vector<float> gru_w = {-1,   0.3, 0.6, 0,    0.5,  -0.5, -0.6, -0.3, -0.6,
                                  -0.3, 0.9, 0.1, -0.3, -0.5, 0.9,  -0.1, 1,    0};
const std::vector<float> gru_r = {0,   0.8, 0.5, 0.2, -0.1, 0.8,  -0.2, 0.8,  -0.9, -0.1, 0,   0.9,  -0.5, 0.6,
                                  0.4, 0.4, 0.3, 0.9, -0.3, -0.2, -0.6, -0.9, -0.6, 0.8,  0.7, -0.8, 0.2};
const std::vector<float> gru_b = {0,    0.2,  0.3, -0.4, 0.9, -0.1, 0.3, 0.3, -0.6,
                                  -0.9, -0.2, 0.5, 0.6,  0.5, -0.8, 0.8, 0.6, 0.8};
const std::vector<float> gru_h0 = {0, 0.8, -0.9, -0.9, -1, -0.5};
const V gru_y = {0.41697971, -0.10459199, -0.88011698, 0.14938582, 0.052887183,  -0.28546287,
                 0.45728155, -0.48145115, -0.86291445, 0.41021279, -0.28995173,  -0.54609998,
                 0.68492664, 0.14052267,  -0.68986462, 0.44162817, -0.089874402, -0.53430756};
const V gru_yh = {0.68492664, 0.14052267, -0.68986462, 0.44162817, -0.089874402, -0.53430756};

// rnn: RNN seq=3 batch=2 input=2 hidden=3 bidirectional=False lens=None
const std::vector<float> rnn_x = {0.4, -1, -0.4, 0.9, 0.1, 0.6, 0.3, 0.2, -0.6, 0.1, -0.9, 0.6};
const std::vector<float> rnn_w = {0.9, 0.7, -0.9, -0.3, -0.4, -0.8};
const std::vector<float> rnn_r = {0.3, 0.6, -0.4, 0.7, 0.6, -0.7, 0.5, 0.8, -0.6};
const std::vector<float> rnn_b = {0.1, 0.3, 0.2, -0.8, 0.3, 0.3};
const std::vector<float> rnn_h0 = {0.6, 0.6, -0.3, 0.4, 0.7, 0.8};
const V rnn_y = {-0.36270747, 0.91042459,   0.97045194,   -0.2069665,   0.68047601, 0.21651806,
                 -0.13981635, -0.056895316, -0.055228964, -0.030402199, 0.3643099,  0.48613498,
                 -0.84082736, 0.76849921,   0.52100117,   -0.79133334,  0.7957842,  0.34922938};
const V rnn_yh = {-0.84082736, 0.76849921, 0.52100117, -0.79133334, 0.7957842, 0.34922938};

// rnn_relu: RNN seq=2 batch=1 input=2 hidden=2 bidirectional=False lens=None
const std::vector<float> rnn_relu_x = {-0.2, -0.5, -0.1, 0.3};
const std::vector<float> rnn_relu_w = {-0.8, -0.2, -0.7, 0.3};
const std::vector<float> rnn_relu_r = {0.7, -0.2, -0.3, 0.1};
const std::vector<float> rnn_relu_b = {-0.6, -0.5, -0.3, -0.1};
const V rnn_relu_y = {0, 0, 0, 0};
const V rnn_relu_yh = {0, 0};

// lstm_bi: LSTM seq=3 batch=2 input=2 hidden=2 bidirectional=True lens=None
const std::vector<float> lstm_bi_x = {-0.8, 0.5, 0.2, -0.4, -0.8, 0.5, -0.7, -0.7, -0.7, -0.8, 0.8, -0.5};
const std::vector<float> lstm_bi_w = {-0.4, 0.7,  0.2,  -0.6, -0.1, 0.8, -0.2, 0.4,  -0.8, 0.5, 0.6,
                                      0.7,  0.3,  -0.3, -0.9, 0,    0.5, -0.6, -0.5, 0.1,  0.5, 0.8,
                                      -0.7, -0.6, 0.6,  0.3,  0.4,  1,   0.9,  0.7,  0.6,  -0.2};
const std::vector<float> lstm_bi_r = {0.3,  -0.6, 0.5, 0.5,  0.4,  -0.1, -0.2, -0.2, -0.9, 0.7, 0.1,
                                      -0.2, 0.1,  0.4, -0.2, 0.7,  0.8,  -0.2, -0.7, 0.5,  1,   -0.7,
                                      0.4,  0.7,  0.8, -0.8, -0.8, 1,    -0.8, -0.6, 0.1,  -0.1};
const std::vector<float> lstm_bi_b = {0.5,  -0.6, 0.8, -0.6, 0.5,  -0.9, -0.1, -0.9, -0.4, -0.4, 0.4,
                                      -0.1, -0.9, 1,   0.8,  0.8,  -0.5, -0.2, -0.5, -0.8, -0.9, 0,
                                      -0.8, -0.6, 0.7, 0,    -0.6, 0.3,  -0.5, 0.1,  -0.4, 0};
const std::vector<float> lstm_bi_h0 = {0.3, 0.1, -0.2, 0.6, 0.7, -0.6, -0.7, -0.8};
const std::vector<float> lstm_bi_c0 = {1, 0.9, -0.5, 0.9, -0.6, 0, 0, 0.8};
const V lstm_bi_y = {0.57953595,  0.20400333,   0.026308566,  0.11992192,  -0.098032855, -0.25646754,
                     -0.12287736, -0.094931339, 0.53965581,   0.15278339,  0.20038176,   0.094025969,
                     -0.09271345, -0.21567733,  -0.058286714, -0.16124353, 0.36391273,   0.085045611,
                     0.23545238,  -0.020264537, -0.19470715,  -0.11705242, 0.028754788,  0.053943742};
const V lstm_bi_yh = {0.36391273,   0.085045611, 0.23545238,  -0.020264537,
                      -0.098032855, -0.25646754, -0.12287736, -0.094931339};
const V lstm_bi_yc = {0.57977789,  0.3322458,   0.35661741,  -0.082489556,
                      -0.39524365, -0.77522925, -0.63054081, -0.26312263};

// gru_lens: GRU seq=3 batch=3 input=2 hidden=2 bidirectional=True lens=[3, 1, 2]
const std::vector<float> gru_lens_x = {-0.9, -0.4, 0.2, -0.9, -0.5, -0.1, 0.8,  0.5, 0.7,
                                       0.5,  0.4,  0.7, 0.4,  0.5,  -0.4, -0.7, 0.5, -0.7};
const std::vector<float> gru_lens_w = {0.8, 0.2, -0.3, 0.9,  -0.7, 0,   -0.8, 0.9,  0.2, 0.6,  -0.4, 0.6,
                                       0.4, 0.3, 0.9,  -0.1, -0.2, 0.4, 0.7,  -0.3, 0.3, -0.6, 0.1,  0.5};
const std::vector<float> gru_lens_r = {-0.9, 0.5,  -1,   0.9, -0.1, -0.2, 0.4, 0,    0.5,  -0.8, 0.1,  0.1,
                                       0.9,  -0.9, -0.1, 0.3, 0.1,  -0.9, 0.2, -0.6, -0.6, 0.8,  -0.6, -0.1};
const std::vector<float> gru_lens_b = {0.5, 0.4,  0.1,  0.6, -0.1, 0.2,  0.6, 0.4,  0.3, -0.2, 0.1,  -0.2,
                                       0.5, -0.2, -0.1, 0.5, 0,    -0.3, 0.7, -0.2, 0.7, 0.6,  -0.1, 0.4};
const std::vector<float> gru_lens_h0 = {-0.9, -0.2, 0.7, 0.2, 0.1, 0.3, 0.4, 0.2, -0.2, -0.6, -0.4, -0.4};
const V gru_lens_y = {-0.81495404,
                      -0.13558165,
                      0.29130216,
                      -0.20907558,
                      -0.032195463,
                      0.28087151,
                      0.12730745,
                      -0.26964855,
                      -0.1021979,
                      -0.38618638,
                      -0.22721304,
                      0.045824408,
                      -0.73405142,
                      -0.10837407,
                      0,
                      0,
                      0.020270951,
                      0.28919814,
                      0.22899747,
                      0.16875749,
                      0,
                      0,
                      -0.40173746,
                      0.12355627,
                      -0.63684392,
                      -0.066394625,
                      0,
                      0,
                      0,
                      0,
                      0.29296796,
                      0.14671761,
                      0,
                      0,
                      0,
                      0};
const V gru_lens_yh = {-0.63684392, -0.066394625, 0.29130216, -0.20907558, 0.020270951, 0.28919814,
                       0.12730745,  -0.26964855,  -0.1021979, -0.38618638, -0.22721304, 0.045824408};

// Checks shape and values to within tol.
void check_close(const Tensor& got, const Shape& shape, const V& want, double tol = 1e-5) {
  REQUIRE(got.shape() == shape);
  const V v = values(got);
  REQUIRE(v.size() == want.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    INFO("element " << i);
    CHECK(v[i] == doctest::Approx(want[i]).epsilon(tol).scale(1));
  }
}

// A [d0, d1, inner] array with its first two dims swapped: time-major <-> batch-major.
template <class T>
std::vector<T> swap01(const std::vector<T>& v, int64_t d0, int64_t d1, int64_t inner) {
  std::vector<T> out(v.size());
  for (int64_t a = 0; a < d0; ++a)
    for (int64_t b = 0; b < d1; ++b)
      for (int64_t k = 0; k < inner; ++k) out[(b * d0 + a) * inner + k] = v[(a * d1 + b) * inner + k];
  return out;
}

// The hidden=1, input=1 GRU of the hand-computed cases: gates z, r, h.
OpRunner tiny_gru() {
  return OpRunner("GRU")
      .outputs(2)
      .attr_i("hidden_size", 1)
      .in(f32({0.5f, -1.f}, {2, 1, 1}))
      .in(f32({0.4f, -0.3f, 0.8f}, {1, 3, 1}))
      .in(f32({0.2f, 0.5f, -0.6f}, {1, 3, 1}))
      .in(f32({0.1f, 0.2f, 0.3f, -0.1f, 0.4f, 0.2f}, {1, 6}))
      .absent()
      .in(f32({0.3f}, {1, 1, 1}));
}

// The hidden=1, input=1 LSTM of the hand-computed cases: gates i, o, f, c; P i, o, f.
OpRunner tiny_lstm() {
  return OpRunner("LSTM")
      .outputs(3)
      .attr_i("hidden_size", 1)
      .in(f32({1.5f, -2.f}, {2, 1, 1}))
      .in(f32({0.6f, -0.4f, 0.3f, 0.9f}, {1, 4, 1}))
      .in(f32({0.2f, 0.7f, -0.5f, 0.4f}, {1, 4, 1}))
      .in(f32({0.1f, 0.f, 0.2f, -0.1f, 0.f, 0.1f, 0.3f, 0.2f}, {1, 8}))
      .absent()
      .in(f32({0.4f}, {1, 1, 1}))
      .in(f32({-0.2f}, {1, 1, 1}))
      .in(f32({0.5f, -0.3f, 0.8f}, {1, 3}));
}

// An RNN (hidden 3, input 2, batch 2, seq 3) for the error cases, before the change under test.
OpRunner small_rnn() {
  return OpRunner("RNN")
      .outputs(2)
      .attr_i("hidden_size", 3)
      .in(f32(rnn_x, {3, 2, 2}))
      .in(f32(rnn_w, {1, 3, 2}))
      .in(f32(rnn_r, {1, 3, 3}));
}

}  // namespace

TEST_SUITE("ops") {
  TEST_CASE("LSTM matches torch.nn.LSTM: Y, Y_h, Y_c with biases and initial states") {
    auto y = OpRunner("LSTM")
                 .outputs(3)
                 .attr_i("hidden_size", 3)
                 .in(f32(lstm_x, {3, 2, 2}))
                 .in(f32(lstm_w, {1, 12, 2}))
                 .in(f32(lstm_r, {1, 12, 3}))
                 .in(f32(lstm_b, {1, 24}))
                 .absent()
                 .in(f32(lstm_h0, {1, 2, 3}))
                 .in(f32(lstm_c0, {1, 2, 3}))
                 .run();
    check_close(y[0], {3, 1, 2, 3}, lstm_y);
    check_close(y[1], {1, 2, 3}, lstm_yh);
    check_close(y[2], {1, 2, 3}, lstm_yc);
  }

  TEST_CASE("GRU with linear_before_reset=1 matches torch.nn.GRU") {
    auto y = OpRunner("GRU")
                 .outputs(2)
                 .attr_i("hidden_size", 3)
                 .attr_i("linear_before_reset", 1)
                 .in(f32(gru_x, {3, 2, 2}))
                 .in(f32(gru_w, {1, 9, 2}))
                 .in(f32(gru_r, {1, 9, 3}))
                 .in(f32(gru_b, {1, 18}))
                 .absent()
                 .in(f32(gru_h0, {1, 2, 3}))
                 .run();
    check_close(y[0], {3, 1, 2, 3}, gru_y);
    check_close(y[1], {1, 2, 3}, gru_yh);
  }

  TEST_CASE("RNN matches torch.nn.RNN with Tanh (the default) and with Relu") {
    auto y = OpRunner("RNN")
                 .outputs(2)
                 .attr_i("hidden_size", 3)
                 .in(f32(rnn_x, {3, 2, 2}))
                 .in(f32(rnn_w, {1, 3, 2}))
                 .in(f32(rnn_r, {1, 3, 3}))
                 .in(f32(rnn_b, {1, 6}))
                 .absent()
                 .in(f32(rnn_h0, {1, 2, 3}))
                 .run();
    check_close(y[0], {3, 1, 2, 3}, rnn_y);
    check_close(y[1], {1, 2, 3}, rnn_yh);

    // No initial_h: the state starts at zero.
    auto r = OpRunner("RNN")
                 .outputs(2)
                 .attr_i("hidden_size", 2)
                 .attr_strings("activations", {"Relu"})
                 .in(f32(rnn_relu_x, {2, 1, 2}))
                 .in(f32(rnn_relu_w, {1, 2, 2}))
                 .in(f32(rnn_relu_r, {1, 2, 2}))
                 .in(f32(rnn_relu_b, {1, 4}))
                 .run();
    check_close(r[0], {2, 1, 1, 2}, rnn_relu_y);
    check_close(r[1], {1, 1, 2}, rnn_relu_yh);
  }

  TEST_CASE("RNN computes float64 too") {
    auto to64 = [](const std::vector<float>& v, Shape s) {
      Tensor t(DType::Float64, std::move(s));
      for (std::size_t i = 0; i < v.size(); ++i) t.data<double>()[i] = v[i];
      return t;
    };
    auto y = OpRunner("RNN")
                 .outputs(2)
                 .attr_i("hidden_size", 3)
                 .in(to64(rnn_x, {3, 2, 2}))
                 .in(to64(rnn_w, {1, 3, 2}))
                 .in(to64(rnn_r, {1, 3, 3}))
                 .in(to64(rnn_b, {1, 6}))
                 .absent()
                 .in(to64(rnn_h0, {1, 2, 3}))
                 .run();
    CHECK(y[0].dtype() == DType::Float64);
    check_close(y[0], {3, 1, 2, 3}, rnn_y, 1e-7);
    check_close(y[1], {1, 2, 3}, rnn_yh, 1e-7);
  }

  TEST_CASE("bidirectional LSTM matches torch: the reverse direction runs from the last step") {
    auto y = OpRunner("LSTM")
                 .outputs(3)
                 .attr_i("hidden_size", 2)
                 .attr_s("direction", "bidirectional")
                 .in(f32(lstm_bi_x, {3, 2, 2}))
                 .in(f32(lstm_bi_w, {2, 8, 2}))
                 .in(f32(lstm_bi_r, {2, 8, 2}))
                 .in(f32(lstm_bi_b, {2, 16}))
                 .absent()
                 .in(f32(lstm_bi_h0, {2, 2, 2}))
                 .in(f32(lstm_bi_c0, {2, 2, 2}))
                 .run();
    check_close(y[0], {3, 2, 2, 2}, lstm_bi_y);
    check_close(y[1], {2, 2, 2}, lstm_bi_yh);
    check_close(y[2], {2, 2, 2}, lstm_bi_yc);
  }

  TEST_CASE("sequence_lens: Y is zero past each length and Y_h holds the last valid step (torch packed sequence)") {
    for (DType lens_type : {DType::Int32, DType::Int64}) {
      CAPTURE(dtype_name(lens_type));
      Tensor lens = lens_type == DType::Int32 ? i32({3, 1, 2}, {3}) : i64({3, 1, 2}, {3});
      auto y = OpRunner("GRU")
                   .outputs(2)
                   .attr_i("hidden_size", 2)
                   .attr_i("linear_before_reset", 1)
                   .attr_s("direction", "bidirectional")
                   .in(f32(gru_lens_x, {3, 3, 2}))
                   .in(f32(gru_lens_w, {2, 6, 2}))
                   .in(f32(gru_lens_r, {2, 6, 2}))
                   .in(f32(gru_lens_b, {2, 12}))
                   .in_runtime(lens)
                   .in(f32(gru_lens_h0, {2, 3, 2}))
                   .run();
      check_close(y[0], {3, 2, 3, 2}, gru_lens_y);
      check_close(y[1], {2, 3, 2}, gru_lens_yh);
    }
    // Length 0 for batch entry 0: its Y is all zero and its Y_h the initial state, while
    // entry 1, running all 3 steps, gives what the RNN case above gives.
    auto z = small_rnn().in(f32(rnn_b, {1, 6})).in(i32({0, 3}, {2})).in(f32(rnn_h0, {1, 2, 3})).run();
    V want_y = rnn_y, want_yh = rnn_yh;
    for (int t = 0; t < 3; ++t)
      for (int j = 0; j < 3; ++j) want_y[static_cast<std::size_t>(t * 6 + j)] = 0;
    for (int j = 0; j < 3; ++j) want_yh[static_cast<std::size_t>(j)] = rnn_h0[static_cast<std::size_t>(j)];
    check_close(z[0], {3, 1, 2, 3}, want_y);
    check_close(z[1], {1, 2, 3}, want_yh);
  }

  TEST_CASE("layout=1 (opset 14) puts batch first in X, Y, Y_h and the initial states") {
    auto y = OpRunner("RNN")
                 .opset(14)
                 .outputs(2)
                 .attr_i("hidden_size", 3)
                 .attr_i("layout", 1)
                 .in(f32(swap01(rnn_x, 3, 2, 2), {2, 3, 2}))
                 .in(f32(rnn_w, {1, 3, 2}))
                 .in(f32(rnn_r, {1, 3, 3}))
                 .in(f32(rnn_b, {1, 6}))
                 .absent()
                 .in(f32(swap01(rnn_h0, 1, 2, 3), {2, 1, 3}))
                 .run();
    // Y [seq, 1, batch, hidden] -> [batch, seq, 1, hidden]
    check_close(y[0], {2, 3, 1, 3}, swap01(rnn_y, 3, 2, 3));
    check_close(y[1], {2, 1, 3}, swap01(rnn_yh, 1, 2, 3));
  }

  TEST_CASE("GRU linear_before_reset chooses where the reset gate applies (hand-computed)") {
    check_close(tiny_gru().run()[0], {2, 1, 1, 1}, {0.45449841, -0.076785929});
    check_close(tiny_gru().attr_i("linear_before_reset", 1).run()[0], {2, 1, 1, 1}, {0.4360513, -0.10333959});
  }

  TEST_CASE("GRU activations with alpha and beta, consumed in order by the functions that take them") {
    // HardSigmoid takes alpha 0.3 and beta 0.6; LeakyRelu the next alpha, 0.2.
    auto y = tiny_gru()
                 .attr_strings("activations", {"HardSigmoid", "LeakyRelu"})
                 .attr_floats("activation_alpha", {0.3f, 0.2f})
                 .attr_floats("activation_beta", {0.6f})
                 .run();
    check_close(y[0], {2, 1, 1, 1}, {0.4479912, 0.17264551});
    // LeakyRelu takes no beta, so ScaledTanh gets the first: alpha 0.8, beta 1.5.
    auto s = tiny_gru()
                 .attr_strings("activations", {"LeakyRelu", "ScaledTanh"})
                 .attr_floats("activation_alpha", {0.5f, 0.8f})
                 .attr_floats("activation_beta", {1.5f})
                 .run();
    check_close(s[0], {2, 1, 1, 1}, {0.56933488, -0.79886202});
    // Names are matched ignoring case; the defaults are Sigmoid and Tanh.
    check_close(tiny_gru().attr_strings("activations", {"sigmoid", "TANH"}).run()[0], {2, 1, 1, 1},
                {0.45449841, -0.076785929});
  }

  TEST_CASE("LSTM peepholes, input_forget and clip (hand-computed)") {
    auto y = tiny_lstm().run();
    check_close(y[0], {2, 1, 1, 1}, {0.2006724925793597, 0.010283101860703473});
    check_close(y[2], {1, 1, 1}, {0.013932119118326036});
    auto f = tiny_lstm().attr_i("input_forget", 1).attr_f("clip", 0.5f).run();
    check_close(f[0], {2, 1, 1, 1}, {0.0897846509087508, -0.026388198441024413});
    check_close(f[1], {1, 1, 1}, {-0.026388198441024413});
    check_close(f[2], {1, 1, 1}, {-0.04241887383854309});
  }

  TEST_CASE("recurrent ops refuse malformed models in infer, naming what is wrong") {
    CHECK_INVALID(OpRunner("RNN")
                      .outputs(2)
                      .in(f32(rnn_x, {3, 2, 2}))
                      .in(f32(rnn_w, {1, 3, 2}))
                      .in(f32(rnn_r, {1, 3, 3}))
                      .run());                                              // no hidden_size
    CHECK_INVALID(small_rnn().attr_i("hidden_size", 4).run());              // W, R do not match hidden_size
    CHECK_INVALID(small_rnn().attr_s("direction", "bidirectional").run());  // W has one direction
    CHECK_INVALID(small_rnn().attr_s("direction", "sideways").run());
    CHECK_INVALID(small_rnn().attr_f("clip", 0.f).run());
    CHECK_INVALID(small_rnn().attr_strings("activations", {"Tanh", "Tanh"}).run());  // one per direction
    CHECK_INVALID(small_rnn().opset(13).attr_i("layout", 1).run());                  // layout is opset 14
    CHECK_INVALID(small_rnn().opset(14).attr_i("layout", 2).run());
    CHECK_INVALID(small_rnn().in(f32(rnn_b, {1, 3})).run());                        // B holds 2*hidden
    CHECK_INVALID(small_rnn().absent().in(f32({1, 2, 3}, {3})).run());              // sequence_lens is an integer
    CHECK_INVALID(small_rnn().absent().in(i32({1, 2, 3}, {3})).run());              // one per batch entry
    CHECK_INVALID(small_rnn().absent().absent().in(f32(rnn_h0, {1, 3, 2})).run());  // initial_h shape
    CHECK_INVALID(small_rnn().outputs(3).run());                                    // RNN has no Y_c
    CHECK_INVALID(OpRunner("RNN")
                      .attr_i("hidden_size", 3)
                      .in(f32(rnn_x, {6, 2}))
                      .in(f32(rnn_w, {1, 3, 2}))
                      .in(f32(rnn_r, {1, 3, 3}))
                      .run());  // X rank
    CHECK_INVALID(OpRunner("RNN")
                      .attr_i("hidden_size", 3)
                      .in(f32(rnn_x, {3, 2, 2}))
                      .in(f32(rnn_w, {1, 3, 2}))
                      .in(Tensor(DType::Float64, {1, 3, 3}))
                      .run());  // R's type differs from X
    CHECK_INVALID(tiny_gru().attr_i("linear_before_reset", 2).run());
    CHECK_INVALID(tiny_lstm().attr_i("input_forget", 3).run());
    // P holds 3*hidden per direction.
    CHECK_INVALID(OpRunner("LSTM")
                      .attr_i("hidden_size", 1)
                      .in(f32({1.f}, {1, 1, 1}))
                      .in(f32({1, 1, 1, 1}, {1, 4, 1}))
                      .in(f32({1, 1, 1, 1}, {1, 4, 1}))
                      .absent()
                      .absent()
                      .absent()
                      .absent()
                      .in(f32({1, 1}, {1, 2}))
                      .run());
    // A GRU's W with LSTM's gate count.
    CHECK_INVALID(OpRunner("GRU")
                      .attr_i("hidden_size", 1)
                      .in(f32({1.f}, {1, 1, 1}))
                      .in(f32({1, 1, 1, 1}, {1, 4, 1}))
                      .in(f32({1, 1, 1}, {1, 3, 1}))
                      .run());
  }

  TEST_CASE("recurrent ops refuse unknown activations and non-float types as Unsupported") {
    CHECK_UNSUPPORTED(small_rnn().attr_strings("activations", {"Gelu"}).run());
    CHECK(small_rnn().attr_strings("activations", {"Gelu"}).check() ==
          std::vector<std::string>{"RNN activation 'Gelu' is not supported"});
    CHECK(small_rnn().attr_strings("activations", {"Relu"}).check().empty());
    CHECK_UNSUPPORTED(OpRunner("RNN")
                          .attr_i("hidden_size", 1)
                          .in(i32({1}, {1, 1, 1}))
                          .in(i32({1}, {1, 1, 1}))
                          .in(i32({1}, {1, 1, 1}))
                          .run());
  }

  TEST_CASE("sequence_lens outside [0, seq_length] is refused at run time") {
    CHECK_INVALID(small_rnn().absent().in_runtime(i32({4, 1}, {2})).run());
    CHECK_INVALID(small_rnn().absent().in_runtime(i64({1, -1}, {2})).run());
    CHECK_NOTHROW(small_rnn().absent().in_runtime(i64({3, 0}, {2})).run());
  }

}  // TEST_SUITE
