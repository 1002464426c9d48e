// Every zoo model (tools/export_zoo.py) must match torch's output within
// 1e-4 x max|reference|, through the public API.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "nnjit/nnjit.hpp"

namespace {

std::string zoo_dir() {
  const char* env = std::getenv("NNJIT_ZOO_DIR");
  return env ? env : NNJIT_ZOO_DIR;
}

const char* const kZoo[] = {"mobilenet_v2",     "mobilenet_v3_small", "efficientnet_b0",
                            "resnet50",         "resnext50_32x4d",    "shufflenet_v2_x1_0",
                            "squeezenet1_1",    "darts_net",          "repvgg_net"};

// tools/export_zoo.py --set coverage, in models/coverage/: architectures checked, not benchmarked.
const char* const kCoverage[] = {"googlenet",          "densenet121",   "mnasnet1_0",    "regnet_y_400mf",
                                 "regnet_x_400mf",     "mobilenet_v3_large", "resnet18", "squeezenet1_0",
                                 "shufflenet_v2_x0_5", "convnext_tiny", "efficientnet_v2_s", "swin_t",
                                 "maxvit_t"};

struct Error {
  double max_abs = 0, max_ref = 0;
};

Error compare(const nnjit::Tensor& got, const nnjit::Tensor& ref) {
  Error e;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double r = ref.data<float>()[i], g = got.data<float>()[i];
    e.max_ref = std::max(e.max_ref, std::fabs(r));
    e.max_abs = std::isnan(g) ? INFINITY : std::max(e.max_abs, std::fabs(g - r));
  }
  return e;
}

// `name` is relative to the zoo folder ("coverage/swin_t" for the coverage set).
void check_model(const std::string& name, const nnjit::Options& options) {
  const std::string base = zoo_dir() + "/" + name;
  REQUIRE_MESSAGE(std::filesystem::exists(base + ".onnx"),
                  base << ".onnx is missing: run scripts/export-zoo.sh");
  nnjit::Engine engine;
  auto model = engine.load(base + ".onnx", options);
  nnjit::Tensor input = nnjit::read_tensor_file(base + ".input.npy");
  nnjit::Tensor ref = nnjit::read_tensor_file(base + ".output.npy");
  nnjit::Session session = model->session();
  auto outputs = session.run({{model->inputs().at(0).name, input}});
  REQUIRE(outputs.size() == 1);
  REQUIRE(outputs[0].tensor.shape() == ref.shape());
  Error e = compare(outputs[0].tensor, ref);
  MESSAGE(name << " [isa=" << options.isa << ", threads=" << options.threads << "]: max|err| " << e.max_abs << ", relative to max|ref| "
               << e.max_abs / e.max_ref);
  CHECK(e.max_ref > 0);
  CHECK(e.max_abs <= 1e-4 * e.max_ref);
  // A second run on the same session gives the same answer (no state leaks between runs).
  auto again = session.run({{model->inputs().at(0).name, input}});
  CHECK(compare(again[0].tensor, outputs[0].tensor).max_abs == 0);
}

}  // namespace

TEST_SUITE("zoo") {
  TEST_CASE("zoo models match torch") {
    for (const char* name : kZoo) {
      // The JIT path as the host allows, forced to AVX2, and the reference ops alone.
      for (const char* isa : {"auto", "avx2", "reference"})
        SUBCASE((std::string(name) + " isa=" + isa).c_str()) { check_model(name, {.isa = isa}); }
      // Two threads: every split (rows, pixels, tiles, fused-block tiles) against torch.
      SUBCASE((std::string(name) + " threads=2").c_str()) { check_model(name, {.threads = 2}); }
    }
  }

  TEST_CASE("compiling on several threads gives the same plan and the same bits") {
    for (const char* name : kZoo) {
      const std::string base = zoo_dir() + "/" + name;
      if (!std::filesystem::exists(base + ".onnx")) continue;  // the test above says why
      nnjit::Engine engine;
      auto one = engine.load(base + ".onnx", {.load_threads = 1});
      auto four = engine.load(base + ".onnx", {.load_threads = 4});
      CHECK(one->plan_report() == four->plan_report());
      nnjit::Tensor input = nnjit::read_tensor_file(base + ".input.npy");
      auto a = one->session().run({{one->inputs().at(0).name, input}});
      auto b = four->session().run({{four->inputs().at(0).name, input}});
      INFO(name);
      CHECK(compare(a[0].tensor, b[0].tensor).max_abs == 0);
    }
    nnjit::Engine engine;
    CHECK_THROWS_WITH_AS(engine.load(zoo_dir() + "/mobilenet_v2.onnx", {.load_threads = -1}),
                         doctest::Contains("load_threads"), nnjit::Error);
  }
}

TEST_SUITE("coverage") {
  TEST_CASE("coverage models match torch") {
    for (const char* name : kCoverage) {
      const std::string path = std::string("coverage/") + name;
      for (const char* isa : {"auto", "avx2"})
        SUBCASE((path + " isa=" + isa).c_str()) { check_model(path, {.isa = isa}); }
      SUBCASE((path + " threads=2").c_str()) { check_model(path, {.threads = 2}); }
    }
  }
}
