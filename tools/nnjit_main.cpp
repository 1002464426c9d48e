// nnjit — the command-line tool: probe, info, run, bench. The contract (flags, exit codes,
// JSON fields) is in tools/README.md; scripts rely on it, so change it only additively.
//
// Every failure ends in a normal exit with a message on stderr, never a signal:
// nnjit::Error exits with its code (2 invalid input, 3 unsupported, 1 internal), anything
// else with 1.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <new>
#include <string>

#include "cli_args.hpp"
#include "cli_commands.hpp"
#include "nnjit/error.hpp"

#ifndef NNJIT_VERSION
#define NNJIT_VERSION "unknown"
#endif

namespace {

int fail(int code, const std::string& message) {
  std::cout.flush();
  std::cerr << "nnjit: error: " << message << std::endl;
  return code;
}

int dispatch(int argc, char** argv) {
  using namespace nnjit::cli;
  CliArgs a = parse_args(argc, argv);
  if (a.command == "help") {
    std::cout << usage(a.model);
    return 0;
  }
  if (a.command == "version") {
    std::cout << "nnjit " << NNJIT_VERSION << "\n";
    return 0;
  }
  if (a.help) {
    std::cout << usage(a.command);
    return 0;
  }
  if (a.command == "probe") return cmd_probe(a);
  if (a.command == "info") return cmd_info(a);
  if (a.command == "run") return cmd_run(a);
  if (a.command == "bench") return cmd_bench(a);
  if (a.command == "profile") return cmd_profile(a);
  return fail(2, "unknown command '" + a.command + "'");
}

}  // namespace

int main(int argc, char** argv) {
  // A closed pipe on stdout (nnjit bench | head -1) must not kill us with SIGPIPE; the
  // failed write is noticed below instead.
  std::signal(SIGPIPE, SIG_IGN);
  int rc;
  try {
    rc = dispatch(argc, argv);
  } catch (const nnjit::Error& e) {
    int code = static_cast<int>(e.code());
    if (code < 1 || code > 3) code = 1;
    rc = fail(code, e.what());
  } catch (const std::bad_alloc&) {
    rc = fail(1, "out of memory");
  } catch (const std::exception& e) {
    rc = fail(1, e.what());
  } catch (...) {
    rc = fail(1, "unknown internal error");
  }
  std::cout.flush();
  if (rc == 0 && !std::cout) return fail(1, "cannot write to standard output");
  return rc;
}
