// fuse_gemm_activation: a fully connected layer and its activation become one
// FusedGemm node of domain "anvil" (ops/fused_gemm.cc), which the GPU lowers
// to one cuBLASLt GEMM with a bias and activation epilogue:
//  - Gemm [+ activation]: exact (FusedGemm runs Gemm, then the activation);
//  - MatMul(A, B) + Add(bias) [+ activation], with A and B of rank 2 and the
//    bias a float32 constant of shape [N] or [1, N]: FusedGemm(A, B, bias).
//    Gemm adds the bias before the products rather than after, so this form
//    differs from the unfused graph by float rounding.
// A Gemm without activation is left alone (nothing to fuse). Intermediate
// values must have no other reader and not be graph outputs.
#include "ops/op.h"
#include "passes/activation_match.h"
#include "passes/graph_edit.h"
#include "passes/passes.h"

namespace anvil::passes {
namespace {

// The bias operand of Add `add` reading MatMul output `y` of shape [M, N], or null.
ir::Value* bias_of(const ir::Node& add, const ir::Value* y) {
  if (!is_onnx_op(add, "Add") || add.inputs.size() != 2 || add.outputs.size() != 1) return nullptr;
  ir::Value* bias = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
  if (!bias || bias == y || !bias->is_constant() || bias->dtype != DType::kFloat32) return nullptr;
  const Extents& b = bias->constant->extents();
  const ir::Dim& n = y->shape[1];
  const bool row = b.size() == 1 || (b.size() == 2 && b[0] == 1);
  return row && n.is_known() && b.back() == n.size ? bias : nullptr;
}

bool is_rank2(const ir::Value* v) {
  return v && v->shape.rank() == 2;
}

class FuseGemmActivation final : public Pass {
 public:
  std::string_view name() const override { return "fuse_gemm_activation"; }

  int run(ir::Graph& graph) const override {
    int rewrites = 0;
    for (const auto& node : graph.nodes()) {
      if (node->outputs.size() != 1) continue;
      if (is_onnx_op(*node, "Gemm") && fuse_gemm(graph, *node)) ++rewrites;
      if (is_onnx_op(*node, "MatMul") && fuse_matmul(graph, *node)) ++rewrites;
    }
    return rewrites;
  }

 private:
  static bool fuse_gemm(ir::Graph& graph, ir::Node& gemm) {
    ir::Node* act = sole_reader(graph, gemm.outputs[0]);
    ir::Attributes epilogue;
    if (!act || !absorb_activation(*act, gemm.outputs[0], epilogue)) return false;
    become_fused(gemm, epilogue);
    set_output(gemm, 0, act->outputs[0]);
    detach(*act);
    return true;
  }

  static bool fuse_matmul(ir::Graph& graph, ir::Node& matmul) {
    ir::Value* y = matmul.outputs[0];
    if (matmul.inputs.size() != 2 || !is_rank2(matmul.input(0)) || !is_rank2(matmul.input(1)) ||
        !is_rank2(y))
      return false;
    ir::Node* add = sole_reader(graph, y);
    ir::Value* bias = add ? bias_of(*add, y) : nullptr;
    if (!bias) return false;
    ir::Value* result = add->outputs[0];
    ir::Attributes epilogue;
    ir::Node* act = sole_reader(graph, result);
    if (act && absorb_activation(*act, result, epilogue)) {
      result = act->outputs[0];
      detach(*act);
    }
    become_fused(matmul, epilogue);
    matmul.inputs.push_back(bias);
    set_output(matmul, 0, result);
    detach(*add);
    return true;
  }

  static void become_fused(ir::Node& node, const ir::Attributes& epilogue) {
    node.op_type = "FusedGemm";
    node.domain = std::string(ops::kAnvilDomain);
    for (const auto& [key, value] : epilogue.all())
      node.attributes.set(key, value);
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_gemm_activation() {
  return std::make_unique<FuseGemmActivation>();
}

}  // namespace anvil::passes
