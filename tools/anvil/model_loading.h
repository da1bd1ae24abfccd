// Importing a model for a CLI verb, optionally through the optimization
// passes (--optimize, --disable-pass NAME), the same way for every verb.
#pragma once

#include <string>
#include <vector>

#include "commands.h"
#include "ir/graph.h"

namespace anvil::cli {

struct ModelOptions {
  std::string path;
  bool optimize = false;
  std::vector<std::string> disabled_passes;
};

// Adds --optimize and --disable-pass to `cmd`.
void add_model_options(CLI::App& cmd, ModelOptions& options);

// Imports the model and, with --optimize, runs the pass pipeline, printing
// what each pass did.
ir::Graph load_model(const ModelOptions& options);

}  // namespace anvil::cli
