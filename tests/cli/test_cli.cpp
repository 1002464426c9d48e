// The nnjit CLI as scripts see it: exit codes, stderr messages that name the problem, the
// files `run` writes and the JSON line `bench --json` ends with (tools/README.md).
// Every bad input must end in a normal exit (never a signal) with the documented code.
// NNJIT_CLI_VERBOSE=1 prints each refusal's stderr, to review the messages by eye.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <random>
#include <sstream>

#include <unistd.h>

#include "cli_helpers.hpp"
#include "nnjit/nnjit.hpp"

using namespace nnjit::testing::cli;

namespace {

// Checks a refusal: a normal exit with `code`, and stderr holding "nnjit: error:" and
// each of `needles` (names of the file, node, input or flag at fault).
void check_refused(const CliResult& r, int code, const std::vector<std::string>& needles) {
  INFO("stdout: " << r.out);
  INFO("stderr: " << r.err);
  REQUIRE_MESSAGE(r.exited, "the CLI died with signal " << r.status);
  CHECK(r.status == code);
  CHECK(contains(r.err, "nnjit: error:"));
  for (const auto& n : needles) CHECK_MESSAGE(contains(r.err, n), "stderr should mention '" << n << "'");
  if (std::getenv("NNJIT_CLI_VERBOSE")) MESSAGE("exit " << r.status << ", stderr: " << r.err);
}

void check_ok(const CliResult& r) {
  INFO("stdout: " << r.out);
  INFO("stderr: " << r.err);
  REQUIRE_MESSAGE(r.exited, "the CLI died with signal " << r.status);
  CHECK(r.status == 0);
}

std::string relu_file(const TempDir& dir, const std::string& y = "y") {
  const std::string path = dir / "relu.onnx";
  write_file(path, relu_model("x", y).SerializeAsString());
  return path;
}

}  // namespace

TEST_SUITE("cli") {

TEST_CASE("probe, version and help exit 0") {
  CliResult r = run_cli({"probe"});
  check_ok(r);
  CHECK(contains(r.out, "SOURCE"));
  // A header and at least one figure.
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') >= 2);

  r = run_cli({"--version"});
  check_ok(r);
  CHECK(contains(r.out, "nnjit "));
  for (const char* cmd : {"probe", "info", "run", "bench"}) {
    r = run_cli({cmd, "--help"});
    check_ok(r);
    CHECK(contains(r.out, std::string("usage: nnjit ") + cmd));
  }
  r = run_cli({"--help"});
  check_ok(r);
}

TEST_CASE("info prints inputs, outputs and the plan") {
  TempDir dir;
  CliResult r = run_cli({"info", relu_file(dir), "--threads", "2"});
  check_ok(r);
  CHECK(contains(r.out, "inputs:"));
  CHECK(contains(r.out, "float32"));
  CHECK(contains(r.out, "[2,3]"));
  CHECK(contains(r.out, "plan:"));
  CHECK(contains(r.out, "arena:"));
}

TEST_CASE("run writes each output under its sanitized name") {
  TempDir dir;
  const std::string model = relu_file(dir, "out/y:0");
  const std::vector<float> x = {-1, 2, -3, 4, -5, 6};
  write_file(dir / "x.npy", npy_bytes("<f4", {2, 3}, float_bytes(x)));
  CliResult r = run_cli({"run", model, "--input", "x=" + (dir / "x.npy"), "--output-dir", dir / "outs"});
  check_ok(r);
  CHECK(contains(r.out, "out/y:0"));
  const std::string written = dir / "outs/out_y_0.npy";
  REQUIRE(fs::exists(written));
  // The file is the .npy of relu(x): header, then six floats.
  const std::string bytes = read_file(written);
  REQUIRE(bytes.size() >= 24);
  CHECK(bytes.compare(0, 6, "\x93NUMPY") == 0);
  std::vector<float> y(6);
  std::memcpy(y.data(), bytes.data() + bytes.size() - 24, 24);
  CHECK(y == std::vector<float>{0, 2, 0, 4, 0, 6});

  SUBCASE("--input FILE binds in order, --expect compares") {
    write_file(dir / "ref.npy", npy_bytes("<f4", {2, 3}, float_bytes({0, 2, 0, 4, 0, 6})));
    r = run_cli({"run", model, "--input", dir / "x.npy", "--expect", dir / "ref.npy", "--output-dir", dir / "o2"});
    check_ok(r);
    CHECK(contains(r.out, "match"));
    CHECK_FALSE(contains(r.out, "MISMATCH"));

    write_file(dir / "bad_ref.npy", npy_bytes("<f4", {2, 3}, float_bytes({0, 2, 0, 4, 0, 7})));
    r = run_cli({"run", model, "--input", dir / "x.npy", "--expect", "out/y:0=" + (dir / "bad_ref.npy"),
                 "--output-dir", dir / "o3"});
    REQUIRE(r.exited);
    CHECK(r.status == 1);
    CHECK(contains(r.out, "MISMATCH"));
    CHECK(contains(r.err, "nnjit: error:"));

    // A loose tolerance accepts the same reference: |7-6| / 7 ~ 0.14.
    r = run_cli({"run", model, "--input", dir / "x.npy", "--expect", dir / "bad_ref.npy", "--tolerance", "0.2",
                 "--output-dir", dir / "o4"});
    check_ok(r);
  }
  SUBCASE("a missing input gets seeded data") {
    r = run_cli({"run", model, "--output-dir", dir / "o5"});
    check_ok(r);
    CHECK(contains(r.err, "seed 0"));
    CHECK(fs::exists(dir / "o5/out_y_0.npy"));
  }
  SUBCASE("a path that holds '=' is still a path") {
    fs::create_directories(dir / "a=b");
    write_file(dir / "a=b/x.npy", npy_bytes("<f4", {2, 3}, float_bytes(x)));
    r = run_cli({"run", model, "--input", dir / "a=b/x.npy", "--output-dir", dir / "o6"});
    check_ok(r);
  }
}

TEST_CASE("run reads ONNX TensorProto .pb inputs") {
  TempDir dir;
  const std::string model = relu_file(dir);
  onnx::TensorProto t;
  t.set_name("x");
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(2);
  t.add_dims(3);
  for (float v : {-1.f, 2.f, -3.f, 4.f, -5.f, 6.f}) t.add_float_data(v);
  write_file(dir / "x.pb", t.SerializeAsString());
  write_file(dir / "ref.npy", npy_bytes("<f4", {2, 3}, float_bytes({0, 2, 0, 4, 0, 6})));
  CliResult r = run_cli({"run", model, "--input", dir / "x.pb", "--expect", "y=" + (dir / "ref.npy"), "--output-dir",
                         dir / "o"});
  check_ok(r);
  CHECK(contains(r.out, "match"));
}

TEST_CASE("a closed stdout is an error exit, not death by SIGPIPE") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::close(fds[0]);  // nobody reads: writes fail with EPIPE (or SIGPIPE if not ignored)
  CliResult r = run_cli({"probe"}, 120, fds[1]);
  ::close(fds[1]);
  INFO("stderr: " << r.err);
  REQUIRE_MESSAGE(r.exited, "the CLI died with signal " << r.status);
  CHECK(r.status == 1);
  CHECK(contains(r.err, "nnjit: error:"));
}

TEST_CASE("bench --json ends with one JSON object holding every field") {
  TempDir dir;
  const std::string model = relu_file(dir);
  CliResult r = run_cli({"bench", model, "--iterations", "5", "--warmup", "1", "--json"});
  check_ok(r);
  const std::string line = last_line(r.out);
  INFO("last line: " << line);
  JsonKeys j(line);
  REQUIRE(j.ok());
  CHECK(j.kinds().at("") == 'o');
  const char* numbers[] = {"threads", "iterations", "load_ms.parse", "load_ms.optimize", "load_ms.plan",
                           "load_ms.compile", "load_ms.total", "latency_ms.p50", "latency_ms.p90", "latency_ms.p99",
                           "latency_ms.mean", "latency_ms.min", "throughput_per_s", "arena_bytes", "weights_bytes",
                           "peak_rss_bytes"};
  for (const char* key : numbers) {
    INFO("key " << key);
    REQUIRE(j.kinds().count(key));
    CHECK(j.kinds().at(key) == 'n');
  }
  CHECK(j.kinds().at("load_ms") == 'o');
  CHECK(j.kinds().at("latency_ms") == 'o');
  REQUIRE(j.kinds().count("model"));
  CHECK(j.strings().at("model") == model);
  CHECK(contains(line, "\"iterations\": 5"));
}

TEST_CASE("bench --scenario: MLPerf's single-stream and offline, run to both minimums") {
  TempDir dir;
  const std::string model = relu_file(dir);
  SUBCASE("single-stream: at least --min-queries queries and --min-duration seconds") {
    CliResult r = run_cli({"bench", model, "--scenario", "single-stream", "--min-queries", "40", "--min-duration",
                           "0.3", "--warmup", "1", "--json"});
    check_ok(r);
    JsonKeys j(last_line(r.out));
    REQUIRE(j.ok());
    CHECK(j.strings().at("scenario") == "single-stream");
    CHECK(j.number("iterations") >= 40);
    CHECK(j.number("duration_s") >= 0.3);
    CHECK(j.number("streams") == 1);
    CHECK(j.number("latency_ms.p90") >= j.number("latency_ms.p50"));
    CHECK(contains(r.out, "scenario: single-stream"));
  }
  SUBCASE("offline: --streams sessions busy at once; throughput is queries over wall time") {
    CliResult r = run_cli({"bench", model, "--scenario", "offline", "--streams", "2", "--min-queries", "64",
                           "--min-duration", "0", "--json"});
    check_ok(r);
    JsonKeys j(last_line(r.out));
    REQUIRE(j.ok());
    CHECK(j.strings().at("scenario") == "offline");
    CHECK(j.number("streams") == 2);
    CHECK(j.number("iterations") >= 64);
    CHECK(j.number("throughput_per_s") == doctest::Approx(j.number("iterations") / j.number("duration_s")).epsilon(0.01));
  }
  SUBCASE("the plain loop says so") {
    CliResult r = run_cli({"bench", model, "--iterations", "3", "--json"});
    check_ok(r);
    JsonKeys j(last_line(r.out));
    REQUIRE(j.ok());
    CHECK(j.strings().at("scenario") == "loop");
  }
  SUBCASE("--gap-ms: idle before each timed run, not timed; named in the summary and the JSON") {
    CliResult r = run_cli({"bench", model, "--iterations", "10", "--warmup", "1", "--gap-ms", "20", "--json"});
    check_ok(r);
    JsonKeys j(last_line(r.out));
    REQUIRE(j.ok());
    CHECK(j.number("gap_ms") == 20);
    CHECK(j.number("duration_s") >= 10 * 0.020);                // the gaps are in the wall time
    CHECK(j.number("latency_ms.p50") < 20);                     // and not in the runs
    CHECK(contains(r.out, "gap ms: 20"));
    CliResult plain = run_cli({"bench", model, "--iterations", "2", "--json"});
    check_ok(plain);
    JsonKeys p(last_line(plain.out));
    REQUIRE(p.ok());
    CHECK(p.number("gap_ms") == 0);
    CHECK_FALSE(contains(plain.out, "gap ms"));
  }
  SUBCASE("bad scenario arguments") {
    check_refused(run_cli({"bench", model, "--gap-ms", "-1"}), 2, {"--gap-ms"});
    check_refused(run_cli({"bench", model, "--gap-ms", "60001"}), 2, {"--gap-ms", "60000"});
    check_refused(run_cli({"bench", model, "--scenario", "offline", "--gap-ms", "5"}), 2, {"--gap-ms", "offline"});
    check_refused(run_cli({"bench", model, "--scenario", "server"}), 2, {"--scenario", "server"});
    check_refused(run_cli({"bench", model, "--min-queries", "0"}), 2, {"--min-queries"});
    check_refused(run_cli({"bench", model, "--min-duration", "-1"}), 2, {"--min-duration"});
    check_refused(run_cli({"bench", model, "--streams", "0"}), 2, {"--streams"});
  }
}

TEST_CASE("bad model files are refused with exit 2") {
  TempDir dir;
  SUBCASE("empty file") {
    write_file(dir / "empty.onnx", "");
    check_refused(run_cli({"info", dir / "empty.onnx"}), 2, {"empty.onnx"});
  }
  SUBCASE("random bytes") {
    std::mt19937 rng(7);
    std::string junk(4096, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    write_file(dir / "junk.onnx", junk);
    check_refused(run_cli({"info", dir / "junk.onnx"}), 2, {"junk.onnx"});
  }
  SUBCASE("truncated model") {
    const std::string bytes = add_const_model(1000).SerializeAsString();
    write_file(dir / "cut.onnx", bytes.substr(0, bytes.size() / 2));
    check_refused(run_cli({"run", dir / "cut.onnx", "--output-dir", dir / "o"}), 2, {"cut.onnx"});
  }
  SUBCASE("missing file") {
    check_refused(run_cli({"info", dir / "nope.onnx"}), 2, {"nope.onnx"});
  }
  SUBCASE("a directory") {
    check_refused(run_cli({"info", dir.path.string()}), 2, {"directory"});
  }
  SUBCASE("missing external-data file") {
    onnx::ModelProto m = add_const_model(4);
    auto* w = m.mutable_graph()->mutable_initializer(0);
    w->clear_raw_data();
    w->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* e = w->add_external_data();
    e->set_key("location");
    e->set_value("missing_weights.bin");
    write_file(dir / "ext.onnx", m.SerializeAsString());
    check_refused(run_cli({"info", dir / "ext.onnx"}), 2, {"missing_weights.bin"});
  }
  SUBCASE("external data that points outside the model's folder") {
    onnx::ModelProto m = add_const_model(4);
    auto* w = m.mutable_graph()->mutable_initializer(0);
    w->clear_raw_data();
    w->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* e = w->add_external_data();
    e->set_key("location");
    e->set_value("../../../../etc/passwd");
    write_file(dir / "escape.onnx", m.SerializeAsString());
    CliResult r = run_cli({"info", dir / "escape.onnx"});
    REQUIRE(r.exited);
    CHECK(r.status == 2);
  }
  SUBCASE("dimensions whose product overflows") {
    const int64_t big = int64_t{1} << 40;
    onnx::ModelProto m = relu_model("x", "y", {big, big, big});
    write_file(dir / "huge.onnx", m.SerializeAsString());
    CliResult r = run_cli({"info", dir / "huge.onnx"});
    check_refused(r, 2, {});
    CHECK((contains(r.err, "overflow") || contains(r.err, "too large")));
  }
  SUBCASE("an initializer whose dims overflow") {
    onnx::ModelProto m = add_const_model(4);
    auto* w = m.mutable_graph()->mutable_initializer(0);
    w->clear_dims();
    w->add_dims(int64_t{1} << 62);
    w->add_dims(int64_t{1} << 62);
    write_file(dir / "huge_init.onnx", m.SerializeAsString());
    check_refused(run_cli({"info", dir / "huge_init.onnx"}), 2, {"W"});
  }
  SUBCASE("an initializer whose data is shorter than its dims") {
    onnx::ModelProto m = add_const_model(4);
    m.mutable_graph()->mutable_initializer(0)->set_raw_data(std::string(8, '\0'));
    write_file(dir / "short_init.onnx", m.SerializeAsString());
    check_refused(run_cli({"info", dir / "short_init.onnx"}), 2, {"W"});
  }
  SUBCASE("a cycle") {
    onnx::ModelProto m = empty_model();
    add_input(m, "x", {2});
    add_node(m, "Add", {"x", "t2"}, {"t1"}, "add_in_loop");
    add_node(m, "Relu", {"t1"}, {"t2"}, "relu_in_loop");
    add_output(m, "t2", {2});
    write_file(dir / "cycle.onnx", m.SerializeAsString());
    CliResult r = run_cli({"info", dir / "cycle.onnx"});
    check_refused(r, 2, {"cycle"});
    CHECK((contains(r.err, "add_in_loop") || contains(r.err, "relu_in_loop")));
  }
  SUBCASE("a node reading a value nobody produces") {
    onnx::ModelProto m = relu_model("x", "y");
    m.mutable_graph()->mutable_node(0)->set_input(0, "ghost");
    write_file(dir / "ghost.onnx", m.SerializeAsString());
    check_refused(run_cli({"info", dir / "ghost.onnx"}), 2, {"ghost"});
  }
}

TEST_CASE("a graph with an unknown op is refused with exit 3 naming op and node") {
  TempDir dir;
  onnx::ModelProto m = empty_model();
  add_input(m, "x", {2, 3});
  add_node(m, "FrobnicateXyz", {"x"}, {"y"}, "the_odd_node");
  add_output(m, "y", {2, 3});
  write_file(dir / "unknown.onnx", m.SerializeAsString());
  for (const char* cmd : {"info", "run", "bench"})
    check_refused(run_cli({cmd, dir / "unknown.onnx"}), 3, {"FrobnicateXyz", "the_odd_node"});
}

TEST_CASE("bad inputs to run are refused with exit 2") {
  TempDir dir;
  const std::string model = relu_file(dir);
  auto run = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"run", model, "--output-dir", dir / "o"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(args);
  };
  SUBCASE("wrong shape") {
    write_file(dir / "wrong_shape.npy", npy_bytes("<f4", {3, 2}, float_bytes({1, 2, 3, 4, 5, 6})));
    check_refused(run({"--input", "x=" + (dir / "wrong_shape.npy")}), 2, {"'x'", "[3,2]"});
  }
  SUBCASE("wrong type") {
    write_file(dir / "wrong_type.npy", npy_bytes("<i8", {2, 3}, std::string(48, '\0')));
    check_refused(run({"--input", "x=" + (dir / "wrong_type.npy")}), 2, {"'x'", "int64"});
  }
  SUBCASE("wrong name") {
    write_file(dir / "ok.npy", npy_bytes("<f4", {2, 3}, float_bytes({1, 2, 3, 4, 5, 6})));
    check_refused(run({"--input", "nosuch=" + (dir / "ok.npy")}), 2, {"nosuch"});
  }
  SUBCASE("the same input twice") {
    write_file(dir / "ok.npy", npy_bytes("<f4", {2, 3}, float_bytes({1, 2, 3, 4, 5, 6})));
    check_refused(run({"--input", "x=" + (dir / "ok.npy"), "--input", "x=" + (dir / "ok.npy")}), 2, {"'x'"});
  }
  SUBCASE("more files than inputs") {
    write_file(dir / "ok.npy", npy_bytes("<f4", {2, 3}, float_bytes({1, 2, 3, 4, 5, 6})));
    check_refused(run({"--input", dir / "ok.npy", "--input", dir / "ok.npy"}), 2, {"ok.npy"});
  }
  SUBCASE("missing tensor file") {
    check_refused(run({"--input", "x=" + (dir / "absent.npy")}), 2, {"absent.npy"});
  }
  SUBCASE("corrupt .npy: bad magic") {
    write_file(dir / "magic.npy", "NOTNUMPY" + std::string(100, 'x'));
    check_refused(run({"--input", "x=" + (dir / "magic.npy")}), 2, {"magic.npy"});
  }
  SUBCASE("corrupt .npy: data shorter than the header says") {
    write_file(dir / "short.npy", npy_bytes("<f4", {2, 3}, float_bytes({1, 2})));
    check_refused(run({"--input", "x=" + (dir / "short.npy")}), 2, {"short.npy"});
  }
  SUBCASE("corrupt .npy: header cut off") {
    const std::string full = npy_bytes("<f4", {2, 3}, float_bytes({1, 2, 3, 4, 5, 6}));
    write_file(dir / "cut.npy", full.substr(0, 20));
    check_refused(run({"--input", "x=" + (dir / "cut.npy")}), 2, {"cut.npy"});
  }
  SUBCASE("corrupt .npy: garbage header") {
    std::string bytes = npy_bytes("<f4", {2, 3}, float_bytes({1, 2, 3, 4, 5, 6}));
    for (std::size_t i = 12; i < 40; ++i) bytes[i] = '#';
    write_file(dir / "garbage.npy", bytes);
    check_refused(run({"--input", "x=" + (dir / "garbage.npy")}), 2, {"garbage.npy"});
  }
  SUBCASE("corrupt .npy: huge shape") {
    write_file(dir / "huge.npy", npy_bytes("<f4", {int64_t{1} << 40, int64_t{1} << 40}, float_bytes({1, 2})));
    check_refused(run({"--input", "x=" + (dir / "huge.npy")}), 2, {"huge.npy"});
  }
  SUBCASE("corrupt .pb tensor") {
    onnx::TensorProto t;
    t.set_data_type(onnx::TensorProto::FLOAT);
    t.add_dims(2);
    t.add_dims(3);
    t.set_raw_data(std::string(7, '\0'));  // 6 floats need 24 bytes
    write_file(dir / "bad.pb", t.SerializeAsString());
    check_refused(run({"--input", "x=" + (dir / "bad.pb")}), 2, {"bad.pb"});
  }
  SUBCASE("a bad reference file") {
    write_file(dir / "magic.npy", "NOTNUMPY" + std::string(100, 'x'));
    check_refused(run({"--expect", "y=" + (dir / "magic.npy")}), 2, {"magic.npy"});
  }
}

TEST_CASE("bad arguments are refused with exit 2") {
  TempDir dir;
  const std::string model = relu_file(dir);
  check_refused(run_cli({}), 2, {"command"});
  check_refused(run_cli({"frobnicate"}), 2, {"frobnicate"});
  check_refused(run_cli({"info", model, "--frobnicate"}), 2, {"--frobnicate"});
  check_refused(run_cli({"run", model, "--threads", "abc"}), 2, {"--threads", "abc"});
  check_refused(run_cli({"bench", model, "--threads", "0"}), 2, {"--threads"});
  check_refused(run_cli({"bench", model, "--iterations", "-3"}), 2, {"--iterations"});
  check_refused(run_cli({"run", model, "--threads"}), 2, {"--threads"});
  check_refused(run_cli({"info", model, "--isa", "sse9"}), 2, {"sse9"});
  check_refused(run_cli({"info", model, "--dim", "batch"}), 2, {"--dim"});
  check_refused(run_cli({"run", model, "--tolerance", "x"}), 2, {"--tolerance"});
  check_refused(run_cli({"info"}), 2, {"MODEL"});
  check_refused(run_cli({"run"}), 2, {"MODEL"});
  check_refused(run_cli({"info", model, model}), 2, {"unexpected"});
  check_refused(run_cli({"probe", "--threads", "2"}), 2, {"--threads"});
  check_refused(run_cli({"info", model, "--json"}), 2, {"--json"});
}


TEST_CASE("--max-arena-bytes: a limit the plan meets runs; one it cannot is exit 2 naming the smallest arena") {
  TempDir dir;
  onnx::ModelProto m = empty_model();
  add_input(m, "x", {1, 8, 16, 16});
  add_node(m, "Relu", {"x"}, {"a"}, "relu0");
  add_node(m, "Sigmoid", {"a"}, {"b"}, "sig0");
  add_node(m, "Relu", {"b"}, {"y"}, "relu1");
  add_output(m, "y", {1, 8, 16, 16});
  write_file(dir / "m.onnx", m.SerializeAsString());
  CliResult r = run_cli({"info", dir / "m.onnx", "--max-arena-bytes", "100000000"});
  check_ok(r);
  r = run_cli({"info", dir / "m.onnx", "--max-arena-bytes", "16"});
  CHECK(r.exited);
  CHECK(r.status == 2);
  CHECK(contains(r.err, "--max-arena-bytes 16"));
  CHECK(contains(r.err, "smallest arena"));
  r = run_cli({"bench", dir / "m.onnx", "--max-arena-bytes", "0"});
  CHECK(r.status == 2);  // a limit must be positive
}

namespace {
// x [1,16,12,12] -> Conv 1x1 (32 out) -> Relu -> Conv 3x3 depthwise -> y: JIT kernels.
onnx::ModelProto conv_model() {
  onnx::ModelProto m = empty_model();
  add_input(m, "x", {1, 16, 12, 12});
  auto weights = [&](const std::string& name, std::vector<int64_t> dims) {
    auto* w = m.mutable_graph()->add_initializer();
    w->set_name(name);
    w->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : dims) {
      w->add_dims(d);
      n *= d;
    }
    for (int64_t i = 0; i < n; ++i) w->add_float_data(static_cast<float>((i * 7) % 11) / 11.f - 0.5f);
  };
  weights("w1", {32, 16, 1, 1});
  weights("w2", {32, 1, 3, 3});
  add_node(m, "Conv", {"x", "w1"}, {"a"}, "pw");
  add_node(m, "Relu", {"a"}, {"b"}, "relu");
  auto* dw = add_node(m, "Conv", {"b", "w2"}, {"y"}, "dw");
  auto* g = dw->add_attribute();
  g->set_name("group");
  g->set_type(onnx::AttributeProto::INT);
  g->set_i(32);
  auto* p = dw->add_attribute();
  p->set_name("pads");
  p->set_type(onnx::AttributeProto::INTS);
  for (int k = 0; k < 4; ++k) p->add_ints(1);
  add_output(m, "y", {1, 32, 12, 12});
  return m;
}
}  // namespace

TEST_CASE("profile: a table of steps and a Chrome trace with one event per step and run") {
  TempDir dir;
  write_file(dir / "m.onnx", conv_model().SerializeAsString());
  CliResult r = run_cli({"profile", dir / "m.onnx", "--iterations", "7", "--warmup", "1", "--trace", dir / "t.json"});
  check_ok(r);
  CHECK(contains(r.out, "median_us"));
  CHECK(contains(r.out, "f32_pointwise_relu"));
  const std::string trace = read_file(dir / "t.json");
  CHECK(trace.rfind("{\"traceEvents\": [", 0) == 0);
  // Steps: input reorder, pointwise+relu, depthwise, output reorder.
  std::size_t events = 0;
  for (std::size_t at = trace.find("\"ph\": \"X\""); at != std::string::npos; at = trace.find("\"ph\": \"X\"", at + 1))
    ++events;
  // One event per step per run: the table has one "#<step>" line per step.
  std::size_t steps = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) steps += !line.empty() && line[0] == '#';
  CHECK(steps >= 3);
  CHECK(events == 7 * steps);
  CHECK(contains(trace, "\"kernel\": \"f32_depthwise_k3"));
  CHECK(contains(trace, "\"gflops\": "));
  CHECK(trace.find("]}") != std::string::npos);
}

TEST_CASE("info --dump-kernels: each kernel's bytes and a disassembly with its FMAs") {
  TempDir dir;
  write_file(dir / "m.onnx", conv_model().SerializeAsString());
  CliResult r = run_cli({"info", dir / "m.onnx", "--dump-kernels", dir / "k"});
  check_ok(r);
  CHECK(contains(r.out, "dumped 2 kernels"));
  int with_fma = 0;
  for (const auto& e : fs::directory_iterator(dir.path / "k")) {
    if (e.path().extension() != ".s") continue;
    const std::string s = read_file(e.path().string());
    CHECK(contains(s, "# kernel: f32_"));
    CHECK(contains(s, "# serves: node '"));
    if (contains(s, "vfmadd231ps") && (contains(s, "%ymm") || contains(s, "%zmm"))) ++with_fma;
  }
  CHECK(with_fma == 2);
}

TEST_CASE("NNJIT_PERF_MAP=1: /tmp/perf-<pid>.map names every kernel inside its code") {
  TempDir dir;
  write_file(dir / "m.onnx", conv_model().SerializeAsString());
  ::setenv("NNJIT_PERF_MAP", "1", 1);
  nnjit::Engine engine;
  const std::string bytes = conv_model().SerializeAsString();
  auto model = engine.load_bytes(bytes.data(), bytes.size(), "m.onnx", ".");
  ::unsetenv("NNJIT_PERF_MAP");
  const std::string map = read_file("/tmp/perf-" + std::to_string(::getpid()) + ".map");
  for (const nnjit::StepInfo& s : model->steps()) {
    if (s.code == nullptr) continue;
    std::ostringstream start;
    start << std::hex << reinterpret_cast<std::uintptr_t>(s.code) << " ";
    CHECK_MESSAGE(contains(map, start.str()), "no perf map line starts at " << s.kernel);
    CHECK(contains(map, "nnjit:" + s.kernel + ":"));
  }
  std::remove(("/tmp/perf-" + std::to_string(::getpid()) + ".map").c_str());
}

TEST_CASE("NNJIT_JITDUMP=1: /tmp/jit-<pid>.dump holds a JiTD header and each kernel's name and code") {
  ::setenv("NNJIT_JITDUMP", "1", 1);
  nnjit::Engine engine;
  const std::string bytes = conv_model().SerializeAsString();
  auto model = engine.load_bytes(bytes.data(), bytes.size(), "m.onnx", ".");
  ::unsetenv("NNJIT_JITDUMP");
  const std::string path = "/tmp/jit-" + std::to_string(::getpid()) + ".dump";
  const std::string dump = read_file(path);
  REQUIRE(dump.size() > 40);
  CHECK(dump.compare(0, 4, std::string("DTiJ", 4)) == 0);  // 0x4A695444, little-endian
  for (const nnjit::StepInfo& s : model->steps()) {
    if (s.code == nullptr) continue;
    CHECK_MESSAGE(contains(dump, "nnjit:" + s.kernel + ":"), s.kernel);
    // The record carries the code bytes themselves.
    CHECK(contains(dump, std::string(static_cast<const char*>(s.code), std::min<std::size_t>(s.code_size, 64))));
  }
  std::remove(path.c_str());
}

}  // TEST_SUITE("cli")
