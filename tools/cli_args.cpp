#include "cli_args.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>

#include "nnjit/error.hpp"

namespace nnjit::cli {
namespace {

const char* const kOverview =
    "usage: nnjit <command> [options]\n"
    "\n"
    "commands:\n"
    "  probe                 what the host offers (ISA, caches, cores) and where each figure came from\n"
    "  info MODEL            inputs, outputs, op counts, memory, load times and the execution plan\n"
    "  run MODEL             run once on given or seeded inputs; write outputs as .npy\n"
    "  bench MODEL           time repeated runs (latency percentiles, throughput)\n"
    "  profile MODEL         time every step: kernel, GFLOP/s, roofline; --trace FILE for Perfetto\n"
    "\n"
    "common options:\n"
    "  --threads N           worker threads per run (default 1)\n"
    "  --isa auto|avx512|avx2|reference\n"
    "                        instruction set the kernels may use (default auto)\n"
    "  --dim NAME=VALUE      value for a symbolic input dimension (repeatable)\n"
    "  --max-arena-bytes N   fail (exit 2) unless activations fit in N bytes; smaller tiles are tried\n"
    "  --help                this text, or a command's: nnjit <command> --help\n"
    "  --version             print the version\n"
    "\n"
    "exit codes: 0 success, 1 other failure, 2 invalid input or arguments,\n"
    "            3 the model needs something nnjit does not support\n";

const char* const kLoadOptions =
    "  --threads N           worker threads per run (default 1)\n"
    "  --isa auto|avx512|avx2|reference\n"
    "  --dim NAME=VALUE      value for a symbolic input dimension (repeatable)\n"
    "  --max-arena-bytes N   fail (exit 2) unless activations fit in N bytes\n";

// Flags that take a value, and boolean flags, per command.
struct CommandFlags {
  std::set<std::string> valued;
  std::set<std::string> boolean;
  bool takes_model;
};

const std::map<std::string, CommandFlags>& command_flags() {
  static const std::map<std::string, CommandFlags> flags = {
      {"probe", {{}, {"--help"}, false}},
      {"info", {{"--threads", "--isa", "--dim", "--max-arena-bytes", "--dump-kernels"}, {"--help"}, true}},
      {"profile",
       {{"--threads", "--isa", "--dim", "--max-arena-bytes", "--input", "--iterations", "--warmup", "--trace"},
        {"--help"},
        true}},
      {"run",
       {{"--threads", "--isa", "--dim", "--max-arena-bytes", "--input", "--output-dir", "--expect", "--tolerance"}, {"--help"}, true}},
      {"bench",
       {{"--threads", "--isa", "--dim", "--max-arena-bytes", "--input", "--iterations", "--warmup", "--scenario",
         "--min-queries", "--min-duration", "--streams", "--gap-ms"},
        {"--help", "--json"},
        true}},
  };
  return flags;
}

int64_t parse_int(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end)
    throw_invalid(flag + " expects an integer, got '" + text + "'");
  if (v < lo || v > hi)
    throw_invalid(flag + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + text);
  return v;
}

double parse_double(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < 0)
    throw_invalid(flag + " expects a non-negative number, got '" + text + "'");
  return v;
}

void apply(CliArgs& a, const std::string& flag, const std::string& value) {
  constexpr int64_t kMaxThreads = 4096;
  constexpr int64_t kMaxIterations = 100'000'000;
  if (flag == "--threads") {
    a.threads = static_cast<int>(parse_int(flag, value, 1, kMaxThreads));
  } else if (flag == "--isa") {
    if (value != "auto" && value != "avx512" && value != "avx2" && value != "reference")
      throw_invalid("--isa expects auto, avx512, avx2 or reference, got '" + value + "'");
    a.isa = value;
  } else if (flag == "--trace") {
    if (value.empty()) throw_invalid("--trace expects a file");
    a.trace = value;
  } else if (flag == "--dump-kernels") {
    if (value.empty()) throw_invalid("--dump-kernels expects a directory");
    a.dump_kernels = value;
  } else if (flag == "--max-arena-bytes") {
    a.max_arena_bytes = static_cast<std::size_t>(parse_int(flag, value, 1, INT64_MAX));
  } else if (flag == "--dim") {
    auto eq = value.rfind('=');
    if (eq == std::string::npos || eq == 0) throw_invalid("--dim expects NAME=VALUE, got '" + value + "'");
    std::string name = value.substr(0, eq);
    if (a.dims.count(name)) throw_invalid("--dim " + name + " given twice");
    a.dims[name] = parse_int("--dim " + name, value.substr(eq + 1), 0, INT64_MAX);
  } else if (flag == "--input") {
    if (value.empty()) throw_invalid("--input expects NAME=FILE or FILE");
    a.inputs.push_back(value);
  } else if (flag == "--expect") {
    if (value.empty()) throw_invalid("--expect expects NAME=FILE or FILE");
    a.expects.push_back(value);
  } else if (flag == "--output-dir") {
    if (value.empty()) throw_invalid("--output-dir expects a directory");
    a.output_dir = value;
  } else if (flag == "--tolerance") {
    a.tolerance = parse_double(flag, value);
  } else if (flag == "--iterations") {
    a.iterations = static_cast<int>(parse_int(flag, value, 1, kMaxIterations));
  } else if (flag == "--warmup") {
    a.warmup = static_cast<int>(parse_int(flag, value, 0, kMaxIterations));
  } else if (flag == "--scenario") {
    if (value != "single-stream" && value != "offline")
      throw_invalid("--scenario expects single-stream or offline, got '" + value + "'");
    a.scenario = value;
  } else if (flag == "--min-queries") {
    a.min_queries = parse_int(flag, value, 1, kMaxIterations);
  } else if (flag == "--min-duration") {
    a.min_duration_s = parse_double(flag, value);
  } else if (flag == "--streams") {
    a.streams = static_cast<int>(parse_int(flag, value, 1, kMaxThreads));
  } else if (flag == "--gap-ms") {
    a.gap_ms = parse_double(flag, value);
    if (a.gap_ms > 60'000) throw_invalid("--gap-ms must be at most 60000, got " + value);
  } else if (flag == "--json") {
    a.json = true;
  } else if (flag == "--help") {
    a.help = true;
  }
}

}  // namespace

CliArgs parse_args(int argc, char** argv) {
  CliArgs a;
  if (argc < 2) throw_invalid("no command given (try: nnjit --help)");
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    a.command = "help";
    if (argc > 2) a.model = argv[2];  // "nnjit help run" shows run's usage
    return a;
  }
  if (cmd == "--version") {
    if (argc > 2) throw_invalid("--version takes no arguments");
    a.command = "version";
    return a;
  }
  auto it = command_flags().find(cmd);
  if (it == command_flags().end()) throw_invalid("unknown command '" + cmd + "' (commands: probe, info, run, bench, profile)");
  a.command = cmd;
  const CommandFlags& flags = it->second;

  std::vector<std::string> positional;
  bool flags_done = false;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h") arg = "--help";
    // --flag=value and --flag value are both accepted.
    std::string flag = arg, value;
    bool inline_value = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    if (flags.valued.count(flag)) {
      if (!inline_value) {
        if (i + 1 >= argc) throw_invalid(flag + " expects a value");
        value = argv[++i];
      }
      apply(a, flag, value);
    } else if (flags.boolean.count(flag)) {
      if (inline_value) throw_invalid(flag + " takes no value");
      apply(a, flag, "");
    } else {
      throw_invalid("unknown option '" + flag + "' for 'nnjit " + cmd + "' (see nnjit " + cmd + " --help)");
    }
  }
  if (a.help) return a;
  if (a.gap_ms > 0 && a.scenario == "offline")
    throw_invalid("--gap-ms applies to one stream (the plain loop or single-stream), not to offline");
  if (flags.takes_model) {
    if (positional.empty()) throw_invalid("nnjit " + cmd + ": missing MODEL");
    if (positional.size() > 1) throw_invalid("nnjit " + cmd + ": unexpected argument '" + positional[1] + "'");
    a.model = positional[0];
  } else if (!positional.empty()) {
    throw_invalid("nnjit " + cmd + ": unexpected argument '" + positional[0] + "'");
  }
  return a;
}

std::string usage(const std::string& command) {
  if (command == "probe")
    return "usage: nnjit probe\n"
           "  Prints each figure the host probe found (ISA flags, cache sizes, cores)\n"
           "  with its source: cpuinfo, cpuid, sysfs, cgroup, override or default.\n";
  if (command == "info")
    return std::string("usage: nnjit info MODEL [options]\n"
                       "  Loads MODEL and prints its inputs, outputs, bound symbolic dims, op counts,\n"
                       "  weight and arena bytes, load times and the execution plan.\n\noptions:\n") +
           kLoadOptions +
           "  --dump-kernels DIR    write each generated kernel as DIR/<n>_<name>.bin and .s (objdump)\n";
  if (command == "profile")
    return std::string("usage: nnjit profile MODEL [options]\n"
                       "  Runs MODEL --iterations times (default 100) and prints every step sorted by its\n"
                       "  median time: share, GFLOP/s, bytes moved, % of the roofline (measured FMA peak\n"
                       "  or memory bandwidth, whichever bounds the step), op, shape, kernel and nodes.\n\n"
                       "options:\n") +
           kLoadOptions +
           "  --input NAME=FILE|FILE  as for nnjit run (default: seeded random data)\n"
           "  --iterations N        profiled runs (default 100)\n"
           "  --warmup N            unprofiled runs first (default 10)\n"
           "  --trace FILE          write a Chrome trace (one event per step per run)\n";
  if (command == "run")
    return std::string(
               "usage: nnjit run MODEL [options]\n"
               "  Runs MODEL once and writes each output to DIR/<name>.npy (characters outside\n"
               "  [A-Za-z0-9_.-] in <name> become '_').\n\noptions:\n") +
           kLoadOptions +
           "  --input NAME=FILE     bind input NAME to a .npy or TensorProto .pb file (repeatable)\n"
           "  --input FILE          bind the next input not named elsewhere, in model order\n"
           "                        inputs not given get seeded random data (see tools/README.md)\n"
           "  --output-dir DIR      where to write outputs (default: .)\n"
           "  --expect NAME=FILE    compare output NAME with a reference .npy (repeatable)\n"
           "  --expect FILE         the same for the next output not named elsewhere\n"
           "  --tolerance T         largest accepted max|out-ref| / max|ref| (default 1e-4)\n";
  if (command == "bench")
    return std::string("usage: nnjit bench MODEL [options]\n"
                       "  Loads MODEL, runs it --warmup times untimed, then --iterations times timed.\n\n"
                       "options:\n") +
           kLoadOptions +
           "  --input NAME=FILE|FILE  as for nnjit run (default: seeded random data)\n"
           "  --iterations N        timed runs (default 100)\n"
           "  --warmup N            untimed runs first (default 10)\n"
           "  --scenario single-stream|offline\n"
           "                        MLPerf's scenarios instead of the plain loop: single-stream issues one\n"
           "                        query after another and reports p90 latency; offline keeps every\n"
           "                        stream busy and reports throughput. Both run until --min-queries\n"
           "                        queries and --min-duration seconds (both minimums, as MLPerf)\n"
           "  --min-queries N       (scenarios) at least N queries (default 1024)\n"
           "  --min-duration S      (scenarios) at least S seconds (default 60)\n"
           "  --streams N           (offline) concurrent sessions, one thread each running --threads\n"
           "                        workers (default: one stream per core available)\n"
           "  --gap-ms G            (loop, single-stream) idle G ms before each timed run, as a\n"
           "                        service whose requests come spaced out (default 0: back to back)\n"
           "  --json                end stdout with one JSON line (fields in tools/README.md)\n";
  return kOverview;
}

}  // namespace nnjit::cli
