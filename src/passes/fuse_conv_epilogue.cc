// fuse_conv_epilogue: Conv, then optionally Add of a residual tensor of the
// same shape, then optionally an activation (Relu, Clip with constant bounds
// such as Relu6, LeakyRelu, Sigmoid, HardSigmoid, HardSwish) becomes one
// FusedConv node of domain "anvil" (ops/fused_conv.cc), which the GPU lowers
// to one convolution with an epilogue. Every intermediate value must have no
// other reader and not be a graph output. The fused node keeps the Conv's
// name and produces the last fused node's output, so graph outputs keep their
// names. Exact: FusedConv computes what the nodes it replaces compute.
#include <algorithm>

#include "ops/op.h"
#include "passes/activation_match.h"
#include "passes/graph_edit.h"
#include "passes/passes.h"

namespace anvil::passes {
namespace {

// Every dimension known or named: equal shapes then mean equal extents.
bool is_determinate(const ir::Shape& shape) {
  return std::all_of(shape.dims().begin(), shape.dims().end(),
                     [](const ir::Dim& d) { return d.is_known() || !d.symbol.empty(); });
}

bool is_plain_conv_into(const ir::Graph& graph, const ir::Value* value, const ir::Node& add) {
  return value && value->producer && is_onnx_op(*value->producer, "Conv") &&
         sole_reader(graph, value) == &add;
}

// The residual that Add `add` (reading conv output `y`) adds to it, when the
// Add can fuse into that Conv; else null. When both Add operands are Convs
// that could take it, the first operand's Conv does: exporters write the main
// path first (torchvision's `out += identity`).
ir::Value* residual_of(const ir::Graph& graph, const ir::Node& add, const ir::Value* y) {
  if (!is_onnx_op(add, "Add") || add.inputs.size() != 2 || add.outputs.size() != 1) return nullptr;
  ir::Value* other = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
  if (!other || other == y || other->dtype != DType::kFloat32) return nullptr;
  if (other->shape != y->shape || !is_determinate(y->shape)) return nullptr;
  if (add.inputs[1] == y && is_plain_conv_into(graph, other, add)) return nullptr;
  return other;
}

class FuseConvEpilogue final : public Pass {
 public:
  std::string_view name() const override { return "fuse_conv_epilogue"; }

  int run(ir::Graph& graph) const override {
    int rewrites = 0;
    for (const auto& node : graph.nodes())
      if (is_onnx_op(*node, "Conv") && node->outputs.size() == 1 && fuse(graph, *node)) ++rewrites;
    return rewrites;
  }

 private:
  static bool fuse(ir::Graph& graph, ir::Node& conv) {
    ir::Value* result = conv.outputs[0];
    ir::Value* residual = nullptr;
    ir::Attributes epilogue;
    std::vector<ir::Node*> absorbed;
    ir::Node* next = sole_reader(graph, result);
    if (next && (residual = residual_of(graph, *next, result))) {
      absorbed.push_back(next);
      result = next->outputs[0];
      next = sole_reader(graph, result);
    }
    if (next && absorb_activation(*next, result, epilogue)) {
      absorbed.push_back(next);
      result = next->outputs[0];
    }
    if (absorbed.empty()) return false;

    conv.op_type = "FusedConv";
    conv.domain = std::string(ops::kAnvilDomain);
    if (residual) {
      conv.inputs.resize(3, nullptr);
      conv.inputs.push_back(residual);
    }
    for (const auto& [key, value] : epilogue.all())
      conv.attributes.set(key, value);
    for (ir::Node* node : absorbed)
      detach(*node);
    set_output(conv, 0, result);
    return true;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_conv_epilogue() {
  return std::make_unique<FuseConvEpilogue>();
}

}  // namespace anvil::passes
