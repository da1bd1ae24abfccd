#include "passes/pass_manager.h"

#include <algorithm>

#include "anvil/error.h"
#include "passes/graph_edit.h"
#include "passes/passes.h"

namespace anvil::passes {

namespace {

std::vector<std::unique_ptr<Pass>> default_pipeline() {
  std::vector<std::unique_ptr<Pass>> passes;
  // Identities and constants first so the fusions see the bare patterns; BN
  // folding before epilogue fusion so Conv -> BN -> Relu becomes one node.
  // A BN that cannot fold becomes a depthwise Conv after folding had its try
  // (folding removes the node, the rewrite keeps one), and before epilogue
  // fusion so that its Relu fuses too.
  passes.push_back(make_remove_identity());
  passes.push_back(make_fold_constants());
  passes.push_back(make_fold_batch_norm());
  passes.push_back(make_batch_norm_to_conv());
  passes.push_back(make_fuse_conv_epilogue());
  passes.push_back(make_fuse_gemm_activation());
  return passes;
}

}  // namespace

PassManager::PassManager() : PassManager(default_pipeline()) {}

PassManager::PassManager(std::vector<std::unique_ptr<Pass>> passes) : passes_(std::move(passes)) {}

std::vector<std::string> PassManager::pass_names() const {
  std::vector<std::string> names;
  for (const auto& pass : passes_)
    names.emplace_back(pass->name());
  return names;
}

void PassManager::disable(std::string_view name) {
  const std::vector<std::string> names = pass_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string valid;
    for (const std::string& n : names)
      valid += (valid.empty() ? "" : ", ") + n;
    fail(ErrorKind::kInvalidArgument, "there is no pass named '", name,
         "'; the passes are: ", valid);
  }
  disabled_.emplace(name);
}

bool PassManager::is_disabled(std::string_view name) const {
  return disabled_.find(name) != disabled_.end();
}

std::vector<PassResult> PassManager::run(ir::Graph& graph) const {
  std::vector<PassResult> results;
  for (const auto& pass : passes_) {
    PassResult result{std::string(pass->name()), 0, is_disabled(pass->name())};
    if (!result.disabled) {
      result.rewrites = pass->run(graph);
      if (result.rewrites > 0) refresh(graph);
    }
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace anvil::passes
