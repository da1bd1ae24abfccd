// Runs the optimization passes of the builder in order, with an off switch per
// pass (the CLI's --disable-pass NAME), keeping shapes inferred in between.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "passes/pass.h"

namespace anvil::passes {

// What one pass did in a PassManager::run.
struct PassResult {
  std::string name;
  int rewrites = 0;
  bool disabled = false;
};

class PassManager {
 public:
  // The default pipeline: remove_identity, fold_constants, fold_batch_norm,
  // batch_norm_to_conv, fuse_conv_epilogue, fuse_gemm_activation.
  PassManager();
  // A custom pipeline, for tests and experiments.
  explicit PassManager(std::vector<std::unique_ptr<Pass>> passes);

  // The names of the pipeline's passes, in order.
  std::vector<std::string> pass_names() const;

  // Switches a pass off; kInvalidArgument listing the valid names if there is
  // no pass called `name`.
  void disable(std::string_view name);
  bool is_disabled(std::string_view name) const;

  // Runs every enabled pass in order on `graph` (shapes inferred, as the
  // importer leaves it) and returns what each did.
  std::vector<PassResult> run(ir::Graph& graph) const;

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
  std::set<std::string, std::less<>> disabled_;
};

}  // namespace anvil::passes
