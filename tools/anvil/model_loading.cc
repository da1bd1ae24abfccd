#include "model_loading.h"

#include <cstdio>

#include "onnx/importer.h"
#include "passes/pass_manager.h"

namespace anvil::cli {

void add_model_options(CLI::App& cmd, ModelOptions& options) {
  auto* optimize =
      cmd.add_flag("--optimize", options.optimize,
                   "Run the optimization passes (BN folding, fusion, ...) after import");
  cmd.add_option("--disable-pass", options.disabled_passes,
                 "With --optimize: skip this pass (repeatable)")
      ->needs(optimize);
}

ir::Graph load_model(const ModelOptions& options) {
  ir::Graph graph = onnx::import_model(options.path);
  if (!options.optimize) return graph;
  passes::PassManager manager;
  for (const std::string& name : options.disabled_passes)
    manager.disable(name);
  for (const passes::PassResult& result : manager.run(graph))
    std::printf("pass %-22s %s\n", result.name.c_str(),
                result.disabled ? "disabled" : cat(result.rewrites, " rewrite(s)").c_str());
  return graph;
}

}  // namespace anvil::cli
