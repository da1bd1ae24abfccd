// fold_constants: a node whose inputs are all constant is evaluated once with
// its CPU reference kernel, and its outputs become constants. Nodes producing
// a graph output are left alone so the graph keeps computing its outputs.
#include <algorithm>

#include "ops/op.h"
#include "passes/graph_edit.h"
#include "passes/passes.h"

namespace anvil::passes {
namespace {

bool is_foldable(const ir::Graph& graph, const ir::Node& node) {
  if (node.outputs.empty()) return false;  // already detached
  const bool inputs_constant =
      std::all_of(node.inputs.begin(), node.inputs.end(),
                  [](const ir::Value* v) { return !v || v->is_constant(); });
  const bool feeds_output =
      std::any_of(node.outputs.begin(), node.outputs.end(),
                  [&](const ir::Value* v) { return is_graph_output(graph, v); });
  return inputs_constant && !feeds_output;
}

class FoldConstants final : public Pass {
 public:
  std::string_view name() const override { return "fold_constants"; }

  int run(ir::Graph& graph) const override {
    int rewrites = 0;
    // Topological order: a folded node's readers see constants in the same sweep.
    for (const auto& node : graph.nodes()) {
      if (!is_foldable(graph, *node)) continue;
      fold_to_constants(*node);
      detach(*node);
      ++rewrites;
    }
    return rewrites;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fold_constants() {
  return std::make_unique<FoldConstants>();
}

}  // namespace anvil::passes
