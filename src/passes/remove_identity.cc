// remove_identity: Identity, and Dropout at inference (an identity: the
// runtime rejects training-mode dropout), are removed and their readers read
// the input directly. When the output is a graph output, the input's producer
// is made to produce it instead, so the graph output keeps its name; when that
// is impossible (the input is a graph input, a constant or itself a graph
// output) the node stays.
#include "passes/graph_edit.h"
#include "passes/passes.h"

namespace anvil::passes {
namespace {

bool is_removable(const ir::Graph& graph, const ir::Node& node) {
  if (node.outputs.empty() || !node.input(0)) return false;
  if (is_onnx_op(node, "Identity")) return true;
  if (!is_onnx_op(node, "Dropout")) return false;
  // The mask output must be unused, since removal drops it.
  return node.outputs.size() == 1 || reader_count(graph, node.outputs[1]) == 0;
}

class RemoveIdentity final : public Pass {
 public:
  std::string_view name() const override { return "remove_identity"; }

  int run(ir::Graph& graph) const override {
    int rewrites = 0;
    for (const auto& node : graph.nodes())
      if (is_removable(graph, *node) && remove(graph, *node)) ++rewrites;
    return rewrites;
  }

 private:
  static bool remove(ir::Graph& graph, ir::Node& node) {
    ir::Value* in = node.inputs[0];
    ir::Value* out = node.outputs[0];
    if (!is_graph_output(graph, out)) {
      graph.replace_all_uses(out, in);
      detach(node);
      return true;
    }
    ir::Node* producer = in->producer;
    if (!producer || is_graph_output(graph, in) || is_graph_input(graph, in)) return false;
    graph.replace_all_uses(in, out);
    for (std::size_t i = 0; i < producer->outputs.size(); ++i)
      if (producer->outputs[i] == in) set_output(*producer, i, out);
    detach(node);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_remove_identity() {
  return std::make_unique<RemoveIdentity>();
}

}  // namespace anvil::passes
