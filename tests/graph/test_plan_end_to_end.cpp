// The planner's small models end to end through the public API: isa=auto and isa=avx2
// (where the host has AVX2) against isa=reference, and a second run of each session.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/graph/plan_test_nets.hpp"

using namespace nnjit;
using namespace nnjit::plan_test;

TEST_SUITE("graph") {
  TEST_CASE("plan_graph end to end: isa=auto and isa=avx2 agree with isa=reference") {
    static const Engine engine;
    const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    std::vector<std::string> isas = {"reference"};
    if (has_avx2) isas.insert(isas.end(), {"auto", "avx2"});
    for (const NamedNet& nn : all_nets()) {
      const std::string net_name = nn.name;
      CAPTURE(net_name);
      const std::string bytes = nn.make().bytes();
      std::vector<std::vector<NamedTensor>> results;
      std::vector<NamedTensor> inputs;
      for (const std::string& isa : isas) {
        CAPTURE(isa);
        auto model = engine.load_bytes(bytes.data(), bytes.size(), std::string(nn.name) + ".onnx", "", isa_options(isa));
        if (inputs.empty()) {
          uint32_t seed = 100;
          for (const TensorInfo& in : model->inputs()) inputs.push_back({in.name, testing::random_tensor(in.shape, seed++)});
        }
        if (isa != "reference") {
          bool jit = false;
          for (const StepInfo& s : model->steps()) jit = jit || (s.kernel != "reference" && s.kernel != "reorder");
          const std::string name = nn.name;
          const bool all_reference = name == "conv3d" || name == "variable_weights" || name == "pointwise_padded";
          CHECK_MESSAGE(jit != all_reference, model->plan_report());
        }
        Session session = model->session();
        results.push_back(session.run(inputs));
        // A second run of the same session (its arena holds the first run's values).
        const std::vector<NamedTensor> again = session.run(inputs);
        for (std::size_t k = 0; k < again.size(); ++k)
          CHECK_MESSAGE(testing::max_abs_diff(again[k].tensor, results.back()[k].tensor) == 0,
                        "second run differs at output " << again[k].name);
      }
      const std::vector<NamedTensor>& want = results[0];
      for (std::size_t r = 1; r < results.size(); ++r) {
        CAPTURE(isas[r]);
        REQUIRE(results[r].size() == want.size());
        for (std::size_t k = 0; k < want.size(); ++k) {
          CAPTURE(want[k].name);
          const Tensor& a = results[r][k].tensor;
          const Tensor& b = want[k].tensor;
          REQUIRE(a.shape() == b.shape());
          // Relative to the output's scale: max |got - want| <= 1e-5 max |want|.
          double scale = 0;
          for (int64_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(b.data<float>()[i])));
          const double tol = 1e-5 * std::max(scale, 1e-3);
          int64_t worst = 0;
          double err = 0;
          for (int64_t i = 0; i < a.numel(); ++i) {
            const double d = std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]);
            if (std::isnan(d) || d > err) {
              err = d;
              worst = i;
              if (std::isnan(d)) break;
            }
          }
          CHECK_MESSAGE(err <= tol, "max |err| " << err << " at index " << worst << " (got " << a.data<float>()[worst]
                                                 << ", want " << b.data<float>()[worst] << "), scale " << scale);
        }
      }
    }
  }
}
