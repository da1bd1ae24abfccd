// fold_batch_norm: BatchNormalization(Conv(x, W, B)) with constant weights and
// statistics, where the Conv's output has no other reader, becomes one Conv:
//   a[m] = scale[m] / sqrt(var[m] + epsilon)
//   W'[m, ...] = W[m, ...] * a[m],  B'[m] = (B[m] - mean[m]) * a[m] + bias[m]
// computed in double and rounded once. The results differ from the unfused
// graph by float rounding only.
//
// A BatchNormalization with no Conv to fold into is left to the next pass,
// batch_norm_to_conv.
#include <optional>

#include "passes/batch_norm_affine.h"
#include "passes/graph_edit.h"
#include "passes/passes.h"

namespace anvil::passes {
namespace {

// The Conv that BatchNormalization `bn` can fold into, or null.
ir::Node* foldable_conv(const ir::Graph& graph, const ir::Node& bn) {
  if (!is_onnx_op(bn, "BatchNormalization") || bn.outputs.size() != 1 || !bn.input(0))
    return nullptr;
  ir::Node* conv = bn.input(0)->producer;
  if (!conv || !is_onnx_op(*conv, "Conv") || sole_reader(graph, bn.input(0)) != &bn) return nullptr;
  const Tensor* w = float_constant(conv->input(1));
  if (!w || w->rank() < 3) return nullptr;
  if (conv->input(2) && !float_constant(conv->input(2))) return nullptr;
  return conv;
}

class FoldBatchNorm final : public Pass {
 public:
  std::string_view name() const override { return "fold_batch_norm"; }

  int run(ir::Graph& graph) const override {
    int rewrites = 0;
    for (const auto& node : graph.nodes()) {
      ir::Node* conv = foldable_conv(graph, *node);
      if (!conv) continue;
      const Tensor& w = *conv->input(1)->constant;
      auto affine = batch_norm_affine(*node, w.extents()[0]);
      if (!affine) continue;
      fold(graph, *conv, *affine);
      set_output(*conv, 0, node->outputs[0]);
      detach(*node);
      ++rewrites;
    }
    return rewrites;
  }

 private:
  // New constants, so weights shared with another node stay untouched.
  static void fold(ir::Graph& graph, ir::Node& conv, const ChannelAffine& affine) {
    const Tensor& w = *conv.input(1)->constant;
    const std::int64_t maps = w.extents()[0];
    const std::int64_t per_map = maps == 0 ? 0 : w.element_count() / maps;
    Tensor folded_w(DType::kFloat32, w.extents());
    Tensor folded_b(DType::kFloat32, {maps});
    const float* bias = conv.input(2) ? conv.input(2)->constant->data<float>() : nullptr;
    for (std::int64_t m = 0; m < maps; ++m) {
      const double a = affine.scale[static_cast<std::size_t>(m)];
      for (std::int64_t i = 0; i < per_map; ++i)
        folded_w.data<float>()[m * per_map + i] =
            static_cast<float>(w.data<float>()[m * per_map + i] * a);
      const double b = bias ? bias[m] : 0.0;
      folded_b.data<float>()[m] =
          static_cast<float>(b * a + affine.shift[static_cast<std::size_t>(m)]);
    }
    const std::string hint = conv.name.empty() ? "conv" : conv.name;
    conv.inputs.resize(3, nullptr);
    conv.inputs[1] = graph.add_constant(hint + ".weight_bn_folded", std::move(folded_w));
    conv.inputs[2] = graph.add_constant(hint + ".bias_bn_folded", std::move(folded_b));
  }
};

}  // namespace

std::unique_ptr<Pass> make_fold_batch_norm() {
  return std::make_unique<FoldBatchNorm>();
}

}  // namespace anvil::passes
