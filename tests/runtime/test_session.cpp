// Session::run through the public API: input checks, and errors only the data reveals.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "nnjit/nnjit.hpp"
#include "tests/loaders/onnx_test_util.hpp"

using namespace nnjit;

namespace {

// y = Gather(data, idx): the indices arrive at run time.
std::shared_ptr<const Model> gather_model(const Engine& engine) {
  onnx::ModelProto m = testing::empty_model(13);
  auto* g = m.mutable_graph();
  testing::add_tensor_info(g->mutable_input(), "data", onnx::TensorProto::FLOAT, {4});
  testing::add_tensor_info(g->mutable_input(), "idx", onnx::TensorProto::INT64, {2});
  testing::add_tensor_info(g->mutable_output(), "y", onnx::TensorProto::FLOAT, {2});
  testing::add_node(g, "Gather", {"data", "idx"}, {"y"}, "pick");
  const std::string bytes = m.SerializeAsString();
  return engine.load_bytes(bytes.data(), bytes.size(), "gather.onnx", ".");
}

}  // namespace

TEST_SUITE("runtime") {
  TEST_CASE("run: a run-time error names the node; the session stays usable") {
    Engine engine;
    auto model = gather_model(engine);
    Session s = model->session();
    Tensor data = Tensor::from(std::vector<float>{10, 11, 12, 13}, {4});
    try {
      s.run({{"data", data}, {"idx", Tensor::from(std::vector<int64_t>{0, 9}, {2})}});
      FAIL("an out-of-range index was accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::InvalidInput);
      CHECK(std::string(e.what()).find("node 'pick' (Gather)") != std::string::npos);
    }
    auto out = s.run({{"data", data}, {"idx", Tensor::from(std::vector<int64_t>{3, -4}, {2})}});
    CHECK(out[0].tensor.data<float>()[0] == 13);
    CHECK(out[0].tensor.data<float>()[1] == 10);
  }

  TEST_CASE("Model::steps() is described once, on first use, whichever threads ask at once") {
    Engine engine;
    auto model = gather_model(engine);
    std::vector<const std::vector<StepInfo>*> seen(4, nullptr);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < seen.size(); ++t) threads.emplace_back([&, t] { seen[t] = &model->steps(); });
    for (auto& th : threads) th.join();
    for (const auto* s : seen) CHECK(s == seen[0]);
    REQUIRE(seen[0]->size() == 1);
    CHECK((*seen[0])[0].op == "Gather");
    CHECK((*seen[0])[0].nodes == std::vector<std::string>{"pick"});
    CHECK(model->plan_report().find("Gather") != std::string::npos);
  }

  TEST_CASE("run: wrong name, type, shape, a missing or repeated input are invalid input") {
    Engine engine;
    auto model = gather_model(engine);
    Session s = model->session();
    Tensor data = Tensor::from(std::vector<float>{1, 2, 3, 4}, {4});
    Tensor idx = Tensor::from(std::vector<int64_t>{0, 1}, {2});
    auto code_of = [&](const std::vector<NamedTensor>& in) {
      try {
        s.run(in);
      } catch (const Error& e) {
        return e.code();
      }
      return ErrorCode::Internal;
    };
    CHECK(code_of({{"data", data}, {"nope", idx}}) == ErrorCode::InvalidInput);
    CHECK(code_of({{"data", idx}, {"idx", idx}}) == ErrorCode::InvalidInput);
    CHECK(code_of({{"data", data.reshaped({2, 2})}, {"idx", idx}}) == ErrorCode::InvalidInput);
    CHECK(code_of({{"data", data}}) == ErrorCode::InvalidInput);
    CHECK(code_of({{"data", data}, {"data", data}, {"idx", idx}}) == ErrorCode::InvalidInput);
  }
}
