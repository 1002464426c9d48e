// The nnjit tool's commands. Each returns the process exit code for a normal finish and
// throws nnjit::Error (or anything else) on failure; main() turns exceptions into exit
// codes (tools/README.md).
#pragma once

#include "cli_args.hpp"

namespace nnjit::cli {

int cmd_probe(const CliArgs& args);
int cmd_info(const CliArgs& args);
int cmd_run(const CliArgs& args);
int cmd_bench(const CliArgs& args);
int cmd_profile(const CliArgs& args);

}  // namespace nnjit::cli
