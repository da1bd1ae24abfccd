// batch_norm_to_conv: a BatchNormalization left over by fold_batch_norm (no
// foldable Conv before it: after the graph input, a pool, an Add, or a Conv
// whose output has other readers) becomes a depthwise 1x1 Conv, the one
// per-channel multiply-add the GPU already runs (lowering and the cuDNN conv
// layer), and which fuse_conv_epilogue can then merge with an activation:
//   a[c] = scale[c] / sqrt(var[c] + epsilon)
//   Conv(x, W, B), group = C, kernel 1x1, W[c, 0, 0, 0] = a[c],
//   B[c] = bias[c] - mean[c] * a[c]
// computed in double and rounded once. The results differ from the
// BatchNormalization by float rounding only.
//
// Only rank-4 (NCHW) inputs are rewritten: a Conv of another rank is not one
// the GPU runs either. Such a BatchNormalization stays as it is; the CPU
// reference runs it, and lowering reports it as unsupported.
#include <optional>

#include "passes/batch_norm_affine.h"
#include "passes/graph_edit.h"
#include "passes/passes.h"

namespace anvil::passes {
namespace {

// The channel count C of an inference BatchNormalization over a rank-4 float
// input with a known channel dim; nullopt when the node is not one.
std::optional<std::int64_t> nchw_channels(const ir::Node& bn) {
  if (!is_onnx_op(bn, "BatchNormalization") || bn.outputs.size() != 1 || bn.inputs.size() != 5)
    return std::nullopt;
  // Opset 14+ training mode normalizes with batch statistics: not an affine map.
  if (bn.opset >= 14 && bn.attributes.get_int("training_mode", 0) != 0) return std::nullopt;
  const ir::Value* x = bn.input(0);
  if (!x || x->dtype != DType::kFloat32 || x->shape.rank() != 4 || !x->shape[1].is_known() ||
      x->shape[1].size < 1)
    return std::nullopt;
  return x->shape[1].size;
}

// W [C, 1, 1, 1] and B [C] of the depthwise Conv equal to `bn`, when all its
// parameters are float constants of `channels` entries.
std::optional<std::pair<Tensor, Tensor>> depthwise_params(const ir::Node& bn,
                                                          std::int64_t channels) {
  const std::optional<ChannelAffine> affine = batch_norm_affine(bn, channels);
  if (!affine) return std::nullopt;
  Tensor w(DType::kFloat32, {channels, 1, 1, 1});
  Tensor b(DType::kFloat32, {channels});
  for (std::int64_t c = 0; c < channels; ++c) {
    w.data<float>()[c] = static_cast<float>(affine->scale[static_cast<std::size_t>(c)]);
    b.data<float>()[c] = static_cast<float>(affine->shift[static_cast<std::size_t>(c)]);
  }
  return std::pair{std::move(w), std::move(b)};
}

class BatchNormToConv final : public Pass {
 public:
  std::string_view name() const override { return "batch_norm_to_conv"; }

  int run(ir::Graph& graph) const override {
    int rewrites = 0;
    for (const auto& node : graph.nodes()) {
      const std::optional<std::int64_t> channels = nchw_channels(*node);
      if (!channels) continue;
      auto params = depthwise_params(*node, *channels);
      if (!params) continue;
      rewrite(graph, *node, *channels, std::move(params->first), std::move(params->second));
      ++rewrites;
    }
    return rewrites;
  }

 private:
  // In place: the node keeps its name and output value, so graph outputs and
  // readers stay linked.
  static void rewrite(ir::Graph& graph, ir::Node& bn, std::int64_t channels, Tensor w, Tensor b) {
    const std::string hint = bn.name.empty() ? "batch_norm" : bn.name;
    ir::Value* x = bn.inputs[0];
    bn.op_type = "Conv";
    bn.domain.clear();
    bn.inputs = {x, graph.add_constant(hint + ".weight_as_conv", std::move(w)),
                 graph.add_constant(hint + ".bias_as_conv", std::move(b))};
    bn.attributes = ir::Attributes{};
    bn.attributes.set("kernel_shape", std::vector<std::int64_t>{1, 1});
    bn.attributes.set("group", channels);
  }
};

}  // namespace

std::unique_ptr<Pass> make_batch_norm_to_conv() {
  return std::make_unique<BatchNormToConv>();
}

}  // namespace anvil::passes
