// Command-line parsing for the nnjit tool (the contract is in tools/README.md).
//
//   CliArgs a = parse_args(argc, argv);   // throws nnjit::Error(InvalidInput) on bad arguments
//   if (a.command == "run") ...
//
// Parsing only checks the form of each argument (a number is a number, a flag is known
// to its command); whether a NAME is an input of the model is decided once the model
// is loaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace nnjit::cli {

struct CliArgs {
  std::string command;  // "probe", "info", "run", "bench", "help", "version"
  std::string model;    // MODEL as given
  bool help = false;    // --help after a command: print that command's usage

  // Load options (info, run, bench).
  int threads = 1;
  std::string isa = "auto";
  std::size_t max_arena_bytes = 0;  // 0 = no limit
  std::map<std::string, int64_t> dims;

  // run / bench
  std::vector<std::string> inputs;   // --input values as written: "NAME=FILE" or "FILE"
  // run
  std::vector<std::string> expects;  // --expect values as written
  std::string output_dir = ".";
  std::string trace;         // profile --trace FILE
  std::string dump_kernels;  // info --dump-kernels DIR
  double tolerance = 1e-4;
  // bench
  int iterations = 100;
  int warmup = 10;
  bool json = false;
  // bench --scenario: "" (the plain loop above), "single-stream" or "offline" (MLPerf's).
  std::string scenario;
  int64_t min_queries = 1024;   // a scenario runs until it has issued this many queries
  double min_duration_s = 60;   // ... and this many seconds have passed (MLPerf's minimums)
  int streams = 0;              // offline: concurrent sessions (0 = one per core available)
  double gap_ms = 0;            // one stream: idle milliseconds before each timed run
};

CliArgs parse_args(int argc, char** argv);

// The usage text for one command, or the overview when `command` is empty or unknown.
std::string usage(const std::string& command);

}  // namespace nnjit::cli
