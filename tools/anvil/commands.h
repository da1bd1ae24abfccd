// The verbs of the `anvil` command line, one file each.
#pragma once

#include <CLI/CLI.hpp>

namespace anvil::cli {

void add_bench_command(CLI::App& app);
void add_build_command(CLI::App& app);
void add_calibrate_command(CLI::App& app);
void add_classify_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_run_command(CLI::App& app);

}  // namespace anvil::cli
