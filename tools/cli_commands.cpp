#include "cli_commands.hpp"

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>
#include <set>
#include <sstream>

#include "cli_tensor.hpp"
#include "nnjit/nnjit.hpp"

namespace nnjit::cli {
namespace {

// Refuse a path that is not a readable regular file before the library sees it, so the
// message (and exit code 2) does not depend on how the loader words I/O failures.
void check_model_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw_invalid("cannot open model '" + path + "': " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw_invalid("cannot open model '" + path + "': it is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw_invalid("cannot open model '" + path + "': " + std::strerror(errno));
}

Options load_options(const CliArgs& a) {
  Options o;
  o.threads = a.threads;
  o.isa = a.isa;
  o.dims = a.dims;
  o.max_arena_bytes = a.max_arena_bytes;
  return o;
}

std::shared_ptr<const Model> load_model(const Engine& engine, const CliArgs& a) {
  check_model_file(a.model);
  try {
    return engine.load(a.model, load_options(a));
  } catch (const Error& e) {
    // Name the file once, whether or not the loader's message already does.
    const std::string what = e.what();
    const std::string base = std::filesystem::path(a.model).filename().string();
    if (what.find(base) != std::string::npos) throw;
    throw Error(e.code(), a.model + ": " + what);
  }
}

// Pads each column of `rows` to its widest cell, two spaces apart.
std::string table(const std::vector<std::vector<std::string>>& rows, const std::string& indent = "") {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      width[c] = std::max(width[c], r[c].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line = indent;
    for (std::size_t c = 0; c < r.size(); ++c) {
      line += r[c];
      if (c + 1 < r.size()) line += std::string(width[c] - r[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string tensor_rows(const std::vector<TensorInfo>& infos) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& i : infos) rows.push_back({i.name, dtype_name(i.dtype), shape_str(i.shape)});
  return rows.empty() ? "  (none)\n" : table(rows, "  ");
}

// Inputs for run and bench: files named on the command line, seeded data for the rest.
std::vector<NamedTensor> gather_inputs(const Model& model, const CliArgs& a, bool announce) {
  const auto& infos = model.inputs();
  std::vector<Tensor> given(infos.size());
  for (const FileBinding& b : bind_files(a.inputs, infos, "input"))
    given[b.index] = read_input(infos[b.index], b.path);
  std::vector<NamedTensor> out;
  for (std::size_t k = 0; k < infos.size(); ++k) {
    if (!given[k].defined()) {
      given[k] = seeded_input(infos[k], static_cast<uint32_t>(k));
      if (announce) {
        const bool floaty = infos[k].dtype == DType::Float32 || infos[k].dtype == DType::Float64 ||
                            infos[k].dtype == DType::Float16 || infos[k].dtype == DType::BFloat16;
        std::cerr << "nnjit: note: input '" << infos[k].name << "' not given; using "
                  << (floaty ? "uniform [-1,1) data, seed " + std::to_string(k) : std::string("zeros")) << "\n";
      }
    }
    out.push_back({infos[k].name, given[k]});
  }
  return out;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// JSON has no NaN or infinity; those become 0 (they can only arise from empty timings).
std::string json_num(double v) {
  if (!std::isfinite(v)) return "0";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Nearest-rank percentile: the smallest sample with at least p% of samples at or below it.
double percentile(const std::vector<double>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// Milliseconds for people: 4 significant digits are plenty (JSON keeps 6).
std::string fmt_ms(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string load_times_line(const LoadTimes& t) {
  return "parse " + fmt_ms(t.parse) + "  optimize " + fmt_ms(t.optimize) + "  plan " + fmt_ms(t.plan) +
         "  compile " + fmt_ms(t.compile) + "  total " + fmt_ms(t.total);
}

}  // namespace

int cmd_probe(const CliArgs&) {
  Engine engine;
  std::vector<std::vector<std::string>> rows = {{"NAME", "VALUE", "SOURCE"}};
  for (const HostFigure& f : engine.host_figures()) rows.push_back({f.name, f.value, f.source});
  std::cout << table(rows);
  return 0;
}

int cmd_info(const CliArgs& a) {
  Engine engine;
  auto model = load_model(engine, a);
  std::ostringstream o;
  o << "model: " << a.model << "\n";
  o << "inputs:\n" << tensor_rows(model->inputs());
  o << "outputs:\n" << tensor_rows(model->outputs());
  o << "bound dims:";
  if (model->bound_dims().empty()) o << " (none)";
  for (const auto& d : model->bound_dims()) o << " " << d;
  o << "\n";
  o << "weights: " << fmt_bytes(model->weights_bytes()) << "\n";
  o << "arena: " << fmt_bytes(model->arena_bytes()) << " per session\n";
  o << "load ms: " << load_times_line(model->load_times()) << "\n";
  o << "threads: " << a.threads << "  isa: " << a.isa << "\n";
  o << "\nops:\n" << model->summary();
  if (!model->summary().empty() && model->summary().back() != '\n') o << "\n";
  o << "\nmemory:\n" << model->memory_report();
  o << "\nplan:\n" << model->plan_report();
  if (!model->plan_report().empty() && model->plan_report().back() != '\n') o << "\n";
  if (!a.dump_kernels.empty())
    o << "\ndumped " << model->dump_kernels(a.dump_kernels) << " kernels (.bin, .s) to " << a.dump_kernels << "\n";
  std::cout << o.str();
  return 0;
}

int cmd_profile(const CliArgs& a) {
  Engine engine;
  auto model = load_model(engine, a);
  std::vector<NamedTensor> inputs = gather_inputs(*model, a, false);
  Session session = model->session();
  const HostPeaks peaks = engine.measure_peaks();
  for (int i = 0; i < a.warmup; ++i) session.run(inputs);
  const std::vector<StepInfo>& steps = model->steps();
  std::vector<std::vector<double>> us(steps.size());
  std::vector<RunProfile> runs(static_cast<std::size_t>(a.iterations));
  // Whole runs with profiling off and on, alternated: what the profiler costs.
  using Clock = std::chrono::steady_clock;
  std::vector<double> off_ms, on_ms;
  for (RunProfile& r : runs) {
    auto t0 = Clock::now();
    session.run(inputs);
    off_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    t0 = Clock::now();
    session.run(inputs, &r);
    on_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    for (const StepTiming& t : r.steps) us[t.step].push_back(t.duration_us);
  }
  std::sort(off_ms.begin(), off_ms.end());
  std::sort(on_ms.begin(), on_ms.end());
  struct Row {
    std::size_t step;
    double median_us;
  };
  std::vector<Row> rows;
  double total = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    std::vector<double> v = us[i];
    std::sort(v.begin(), v.end());
    rows.push_back({i, v.empty() ? 0 : v[v.size() / 2]});
    total += rows.back().median_us;
  }
  std::sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) { return x.median_us > y.median_us; });
  // The roofline: a step can reach at most min(FMA peak x threads, bandwidth x flops/byte).
  const double peak = peaks.fma_gflops * a.threads, bw = peaks.memory_gb_per_s;
  std::printf("model: %s  threads: %d  iterations: %d\n", a.model.c_str(), a.threads, a.iterations);
  std::printf("measured peaks: FMA %.1f GFLOP/s per core, memory %.1f GB/s; sum of step medians %.3f ms\n",
              peaks.fma_gflops, bw, total / 1000);
  const double off = off_ms[off_ms.size() / 2], on = on_ms[on_ms.size() / 2];
  std::printf("run p50: profiling off %.3f ms, on %.3f ms (%+.1f%%)\n\n", off, on, 100 * (on - off) / off);
  std::printf("%-5s %10s %6s %8s %9s %6s  %-28s %-18s %s\n", "step", "median_us", "share", "GFLOP/s", "MB", "roof%",
              "op", "shape", "kernel  [nodes]");
  for (const Row& r : rows) {
    const StepInfo& s = steps[r.step];
    const double sec = r.median_us * 1e-6;
    const double gflops = sec > 0 ? s.flops / sec / 1e9 : 0;
    const double attainable = s.flops > 0 ? std::min(peak, bw * s.flops / std::max(s.bytes, 1.0)) : bw;
    const double achieved = s.flops > 0 ? gflops : (sec > 0 ? s.bytes / sec / 1e9 : 0);
    std::string nodes;
    for (const std::string& n : s.nodes) nodes += (nodes.empty() ? "" : ",") + n;
    if (nodes.size() > 60) nodes = nodes.substr(0, 57) + "...";
    std::printf("#%-4zu %10.1f %5.1f%% %8.1f %9.3f %5.0f%%  %-28.28s %-18s %s  [%s]\n", r.step, r.median_us,
                total > 0 ? 100 * r.median_us / total : 0, gflops, s.bytes / 1e6,
                attainable > 0 ? 100 * achieved / attainable : 0, s.op.c_str(), s.shape.c_str(), s.kernel.c_str(),
                nodes.c_str());
  }
  if (!a.trace.empty()) {
    // Chrome trace: one complete event per executed step per run, runs laid end to end.
    std::ofstream f(a.trace);
    if (!f) throw_invalid("--trace: cannot write '" + a.trace + "'");
    f << "{\"traceEvents\": [";
    bool first = true;
    for (const RunProfile& r : runs)
      for (const StepTiming& t : r.steps) {
        const StepInfo& s = steps[t.step];
        std::string nodes;
        for (const std::string& n : s.nodes) nodes += (nodes.empty() ? "" : ",") + n;
        const double gflops = t.duration_us > 0 ? s.flops / (t.duration_us * 1e3) : 0;
        f << (first ? "\n" : ",\n") << "{\"name\": \"" << json_escape(s.op) << "\", \"cat\": \"step\", \"ph\": \"X\", "
          << "\"ts\": " << json_num(r.start_us + t.start_us) << ", \"dur\": " << json_num(t.duration_us)
          << ", \"pid\": 1, \"tid\": 1, \"args\": {\"step\": " << t.step << ", \"kernel\": \""
          << json_escape(s.kernel) << "\", \"nodes\": \"" << json_escape(nodes) << "\", \"op\": \"" << json_escape(s.op)
          << "\", \"shape\": \"" << json_escape(s.shape) << "\", \"gflops\": " << json_num(gflops) << "}}";
        first = false;
      }
    f << "\n]}\n";
    if (!f) throw_invalid("--trace: cannot write '" + a.trace + "'");
    std::printf("\ntrace: %s (%zu runs x %zu steps; open in https://ui.perfetto.dev)\n", a.trace.c_str(), runs.size(),
                steps.size());
  }
  return 0;
}

int cmd_run(const CliArgs& a) {
  Engine engine;
  auto model = load_model(engine, a);
  const auto& out_infos = model->outputs();
  // Read references before running, so a bad --expect file fails fast.
  std::vector<Tensor> refs(out_infos.size());
  std::vector<std::string> ref_paths(out_infos.size());
  for (const FileBinding& b : bind_files(a.expects, out_infos, "output")) {
    if (!std::filesystem::exists(b.path))
      throw_invalid("cannot read reference '" + b.path + "' for output '" + out_infos[b.index].name +
                    "': no such file");
    refs[b.index] = read_tensor_file(b.path);
    ref_paths[b.index] = b.path;
  }
  std::vector<NamedTensor> inputs = gather_inputs(*model, a, true);

  Session session = model->session();
  std::vector<NamedTensor> outputs = session.run(inputs);

  std::error_code ec;
  std::filesystem::create_directories(a.output_dir, ec);
  if (ec || !std::filesystem::is_directory(a.output_dir))
    throw_internal("cannot create output directory '" + a.output_dir + "': " + ec.message());

  std::vector<std::vector<std::string>> rows;
  std::set<std::string> used;
  for (const NamedTensor& o : outputs) {
    // Two names may sanitize alike ("a/b", "a:b"); later ones get _2, _3, ...
    std::string base = sanitize_name(o.name), file = base;
    for (int k = 2; used.count(file); ++k) file = base + "_" + std::to_string(k);
    used.insert(file);
    const std::string path = (std::filesystem::path(a.output_dir) / (file + ".npy")).string();
    write_npy(path, o.tensor);
    Stats s = stats(o.tensor);
    std::string summary = "min " + fmt(s.min) + "  max " + fmt(s.max) + "  mean " + fmt(s.mean);
    if (o.tensor.numel() == 0) summary = "empty";
    if (s.nan_count) summary += "  nan " + std::to_string(s.nan_count);
    rows.push_back({o.name, dtype_name(o.tensor.dtype()), shape_str(o.tensor.shape()), summary, "-> " + path});
  }
  std::cout << table(rows);

  int mismatches = 0;
  for (std::size_t k = 0; k < outputs.size() && k < refs.size(); ++k) {
    if (!refs[k].defined()) continue;
    Comparison c = compare(outputs[k].tensor, refs[k], a.tolerance);
    std::cout << "expect " << outputs[k].name << ": ";
    if (!c.problem.empty()) {
      std::cout << c.problem << "  MISMATCH\n";
    } else {
      std::cout << "max_abs_err " << fmt(c.max_abs_err) << "  max_ref " << fmt(c.max_ref) << "  rel_err "
                << fmt(c.rel_err) << "  tolerance " << fmt(a.tolerance) << "  " << (c.match ? "match" : "MISMATCH")
                << "\n";
    }
    if (outputs[k].tensor.dtype() != refs[k].dtype())
      std::cerr << "nnjit: note: output '" << outputs[k].name << "' is " << dtype_name(outputs[k].tensor.dtype())
                << ", reference '" << ref_paths[k] << "' is " << dtype_name(refs[k].dtype())
                << "; compared as numbers\n";
    if (!c.match) ++mismatches;
  }
  std::cout.flush();
  if (mismatches) {
    std::cerr << "nnjit: error: " << mismatches << " output(s) do not match the reference within tolerance "
              << fmt(a.tolerance) << "\n";
    return 1;
  }
  return 0;
}

namespace {

// What one bench measured: each query's latency, and the wall time from the first query
// issued to the last one done.
struct BenchRuns {
  std::vector<double> ms;
  double wall_s = 0;
  int streams = 1;
};

using BenchClock = std::chrono::steady_clock;

double seconds_since(BenchClock::time_point t0) {
  return std::chrono::duration<double>(BenchClock::now() - t0).count();
}

// One query after another on one session: the plain loop (exactly --iterations runs), or
// MLPerf's single-stream (until both --min-queries and --min-duration are reached); with
// --gap-ms the session idles that long before each one.
BenchRuns run_one_stream(Session& session, const std::vector<NamedTensor>& inputs, const CliArgs& a) {
  for (int i = 0; i < a.warmup; ++i) session.run(inputs);
  BenchRuns r;
  const bool mlperf = a.scenario == "single-stream";
  r.ms.reserve(static_cast<std::size_t>(mlperf ? a.min_queries : a.iterations));
  const auto start = BenchClock::now();
  const auto gap = std::chrono::duration<double, std::milli>(a.gap_ms);
  for (;;) {
    if (a.gap_ms > 0) std::this_thread::sleep_for(gap);
    const auto t0 = BenchClock::now();
    session.run(inputs);
    r.ms.push_back(std::chrono::duration<double, std::milli>(BenchClock::now() - t0).count());
    const auto n = static_cast<int64_t>(r.ms.size());
    if (mlperf ? n >= a.min_queries && seconds_since(start) >= a.min_duration_s : n >= a.iterations) break;
  }
  r.wall_s = seconds_since(start);
  return r;
}

// The number of streams offline runs: --streams, else one per core the probe found
// available (affinity and cgroup quota included) for --threads workers each.
int offline_streams(const Engine& engine, const CliArgs& a) {
  if (a.streams > 0) return a.streams;
  int cores = 1;
  for (const HostFigure& f : engine.host_figures())
    if (f.name == "threads") cores = std::max(1, std::atoi(f.value.c_str()));
  return std::max(1, cores / a.threads);
}

// MLPerf's offline scenario: every stream (a session on its own thread) takes queries until
// the minimums are reached; throughput is queries done over the wall time.
BenchRuns run_offline(const Model& model, const std::vector<NamedTensor>& inputs, const CliArgs& a, int streams) {
  std::vector<Session> sessions;
  for (int s = 0; s < streams; ++s) {
    sessions.push_back(model.session());
    for (int i = 0; i < a.warmup; ++i) sessions.back().run(inputs);
  }
  std::vector<std::vector<double>> ms(static_cast<std::size_t>(streams));
  std::atomic<int64_t> done{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  const auto start = BenchClock::now();
  auto stream = [&](int s) {
    try {
      while (!failed.load(std::memory_order_relaxed)) {
        if (done.load() >= a.min_queries && seconds_since(start) >= a.min_duration_s) break;
        const auto t0 = BenchClock::now();
        sessions[static_cast<std::size_t>(s)].run(inputs);
        ms[static_cast<std::size_t>(s)].push_back(
            std::chrono::duration<double, std::milli>(BenchClock::now() - t0).count());
        done.fetch_add(1);
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> threads;
  for (int s = 1; s < streams; ++s) threads.emplace_back(stream, s);
  stream(0);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  BenchRuns r;
  r.wall_s = seconds_since(start);
  r.streams = streams;
  for (auto& v : ms) r.ms.insert(r.ms.end(), v.begin(), v.end());
  return r;
}

}  // namespace

int cmd_bench(const CliArgs& a) {
  Engine engine;
  auto model = load_model(engine, a);
  std::vector<NamedTensor> inputs = gather_inputs(*model, a, false);

  BenchRuns r;
  if (a.scenario == "offline") {
    r = run_offline(*model, inputs, a, offline_streams(engine, a));
  } else {
    Session session = model->session();
    r = run_one_stream(session, inputs, a);
  }
  std::vector<double> sorted = r.ms;
  std::sort(sorted.begin(), sorted.end());
  double total = 0;
  for (double v : sorted) total += v;
  const double p50 = percentile(sorted, 50), p90 = percentile(sorted, 90), p99 = percentile(sorted, 99);
  const double mean = total / static_cast<double>(sorted.size()), min = sorted.front();
  // One stream: runs over their summed time. Offline: queries over the wall time.
  const double busy_s = r.streams > 1 || a.scenario == "offline" ? r.wall_s : total / 1000.0;
  const double throughput = busy_s > 0 ? static_cast<double>(sorted.size()) / busy_s : 0;
  const std::string scenario = a.scenario.empty() ? "loop" : a.scenario;

  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  const auto peak_rss = static_cast<unsigned long long>(ru.ru_maxrss) * 1024ull;
  const LoadTimes& lt = model->load_times();

  std::cout << "model: " << a.model << "\n"
            << "scenario: " << scenario << "  streams: " << r.streams << "  threads: " << a.threads
            << (a.gap_ms > 0 ? "  gap ms: " + fmt(a.gap_ms) : "")
            << "  warmup: " << a.warmup << "  queries: " << sorted.size() << "  duration s: " << fmt(r.wall_s) << "\n"
            << "load ms: " << load_times_line(lt) << "\n"
            << "latency ms: p50 " << fmt_ms(p50) << "  p90 " << fmt_ms(p90) << "  p99 " << fmt_ms(p99)
            << "  mean " << fmt_ms(mean) << "  min " << fmt_ms(min) << "\n"
            << "throughput: " << std::to_string(static_cast<long long>(std::llround(throughput))) << " runs/s\n"
            << "arena: " << fmt_bytes(model->arena_bytes()) << (r.streams > 1 ? " per stream" : "") << "\n"
            << "weights: " << fmt_bytes(model->weights_bytes()) << "\n"
            << "peak rss: " << fmt_bytes(peak_rss) << "\n";
  if (a.json) {
    std::cout << "{\"model\": \"" << json_escape(a.model) << "\", \"threads\": " << a.threads
              << ", \"iterations\": " << sorted.size() << ", \"scenario\": \"" << scenario
              << "\", \"streams\": " << r.streams << ", \"gap_ms\": " << json_num(a.gap_ms)
              << ", \"duration_s\": " << json_num(r.wall_s)
              << ", \"load_ms\": {\"parse\": " << json_num(lt.parse)
              << ", \"optimize\": " << json_num(lt.optimize) << ", \"plan\": " << json_num(lt.plan)
              << ", \"compile\": " << json_num(lt.compile) << ", \"total\": " << json_num(lt.total)
              << "}, \"latency_ms\": {\"p50\": " << json_num(p50) << ", \"p90\": " << json_num(p90)
              << ", \"p99\": " << json_num(p99) << ", \"mean\": " << json_num(mean) << ", \"min\": " << json_num(min)
              << "}, \"throughput_per_s\": " << json_num(throughput) << ", \"arena_bytes\": " << model->arena_bytes()
              << ", \"weights_bytes\": " << model->weights_bytes() << ", \"peak_rss_bytes\": " << peak_rss << "}\n";
  }
  std::cout.flush();
  return 0;
}

}  // namespace nnjit::cli
