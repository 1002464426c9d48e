// Session::run through the public API: input checks, and errors only the data reveals.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "jit/host_info.hpp"
#include "nnjit/nnjit.hpp"
#include "runtime/probe.hpp"
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

// y = Conv(ConvTranspose(Conv(x))): two steps both threads run around a reference op the
// caller runs alone for milliseconds.
std::shared_ptr<const Model> serial_middle_model(const Engine& engine, const Options& options) {
  onnx::ModelProto m = testing::empty_model(13);
  auto* g = m.mutable_graph();
  testing::add_tensor_info(g->mutable_input(), "x", onnx::TensorProto::FLOAT, {1, 16, 48, 48});
  testing::add_tensor_info(g->mutable_output(), "y", onnx::TensorProto::FLOAT, {1, 16, 48, 48});
  const std::vector<float> w(16 * 16 * 9, 0.01f);
  testing::add_float_initializer(g, "w1", {16, 16, 3, 3}, w);
  testing::add_float_initializer(g, "wt", {16, 16, 3, 3}, w);
  testing::add_float_initializer(g, "w2", {16, 16, 3, 3}, w);
  for (const char* conv : {"c1", "c2"}) {
    const bool first = conv[1] == '1';
    auto* n = testing::add_node(g, "Conv", {first ? "x" : "t", first ? "w1" : "w2"}, {first ? "a" : "y"}, conv);
    auto* pads = n->add_attribute();
    pads->set_name("pads");
    pads->set_type(onnx::AttributeProto::INTS);
    for (int k = 0; k < 4; ++k) pads->add_ints(1);
  }
  auto* t = testing::add_node(g, "ConvTranspose", {"a", "wt"}, {"t"}, "ct");
  auto* pads = t->add_attribute();
  pads->set_name("pads");
  pads->set_type(onnx::AttributeProto::INTS);
  for (int k = 0; k < 4; ++k) pads->add_ints(1);
  const std::string bytes = m.SerializeAsString();
  return engine.load_bytes(bytes.data(), bytes.size(), "serial_middle.onnx", ".", options);
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

}  // namespace

TEST_SUITE("runtime") {
  TEST_CASE("Options::spin_during_run: false lets the workers sleep through a run's serial steps") {
    // The CPUs the process may keep busy (affinity mask, cgroup quota), not the machine's:
    // with one, the pool opens no Section.
    if (jit::usable_threads(runtime::probe_host(runtime::real_sources())) < 2) {
      MESSAGE("skipped: one usable CPU");
      return;
    }
    Engine engine;
    const Tensor x = Tensor::from(std::vector<float>(16 * 48 * 48, 1.f), {1, 16, 48, 48});
    // CPU time over wall time of 20 runs: with spinning, the worker spins beside the
    // caller's reference op; without, it sleeps there.
    auto busy = [&](bool spin) {
      auto model = serial_middle_model(engine, {.threads = 2, .spin_during_run = spin});
      Session s = model->session();
      for (int k = 0; k < 3; ++k) s.run({{"x", x}});
      const double cpu0 = cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < 20; ++k) s.run({{"x", x}});
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return (cpu_seconds() - cpu0) / wall;
    };
    const double spinning = busy(true), sleeping = busy(false);
    INFO("CPU seconds per wall second: spinning " << spinning << ", sleeping " << sleeping);
    CHECK(spinning > sleeping + 0.2);
  }


  TEST_CASE("a session whose arena would exceed the machine's memory is refused, named, before allocating") {
    Engine engine;
    onnx::ModelProto m = testing::empty_model(13);
    auto* g = m.mutable_graph();
    // 64 Gi floats a value: 256 GiB of activations, more than the machines this runs on.
    testing::add_tensor_info(g->mutable_input(), "x", onnx::TensorProto::FLOAT, {65536, 1024, 1024});
    testing::add_tensor_info(g->mutable_output(), "y", onnx::TensorProto::FLOAT, {65536, 1024, 1024});
    testing::add_node(g, "Relu", {"x"}, {"a"}, "relu");
    testing::add_node(g, "Neg", {"a"}, {"y"}, "neg");
    const std::string bytes = m.SerializeAsString();
    auto model = engine.load_bytes(bytes.data(), bytes.size(), "huge.onnx", ".");
    try {
      Session s = model->session();
      FAIL("a 256 GiB arena was accepted");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("more than this machine's") != std::string::npos);
    }
  }

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
