#include "passes/activation_match.h"

#include "ops/fused_epilogue.h"
#include "passes/graph_edit.h"

namespace anvil::passes {

bool absorb_activation(const ir::Node& node, const ir::Value* value, ir::Attributes& attributes) {
  const bool default_domain = node.domain.empty() || node.domain == "ai.onnx";
  if (!default_domain || !ops::is_fusable_activation(node.op_type)) return false;
  if (node.outputs.size() != 1 || node.input(0) != value) return false;
  ir::Attributes added;
  added.set("activation", node.op_type);
  if (node.op_type == "Clip") {
    if (node.attributes.has("min") || node.attributes.has("max")) return false;
    const char* keys[] = {"clip_min", "clip_max"};
    for (std::size_t i = 1; i < 3; ++i) {
      if (!node.input(i)) continue;
      const auto bound = constant_scalar(node.input(i));
      if (!bound) return false;
      added.set(keys[i - 1], *bound);
    }
  } else if (node.inputs.size() != 1) {
    return false;
  }
  for (const char* name : {"alpha", "beta"})
    if (node.attributes.has(name))
      added.set(cat("activation_", name), node.attributes.get_float(name, 0.0f));
  for (const auto& [key, attribute] : added.all())
    attributes.set(key, attribute);
  return true;
}

}  // namespace anvil::passes
