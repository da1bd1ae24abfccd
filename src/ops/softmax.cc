// Softmax, numerically stable (the row maximum is subtracted before exp).
//
// Opsets 11-12 flatten the input to 2-D at `axis` (default 1) and normalize
// over everything from `axis` on; from opset 13 the normalization is over the
// single dimension `axis` (default -1). Both agree when axis is the last one.
#include <algorithm>
#include <cmath>

#include "ops/op.h"

namespace anvil::ops {
namespace {

// The input viewed as [outer, n, inner], normalized over n.
struct SoftmaxLayout {
  std::int64_t outer = 1, n = 1, inner = 1;
};

class Softmax final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32});
    axis(ctx.node(), ctx.input(0).shape.rank());
    ctx.set_output(0, DType::kFloat32, ctx.input(0).shape);
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const SoftmaxLayout l = layout(ctx.node, x.extents());
    const float* in = x.data<float>();
    float* out = ctx.outputs[0].data<float>();
    for (std::int64_t o = 0; o < l.outer; ++o)
      for (std::int64_t i = 0; i < l.inner; ++i) {
        const std::int64_t base = o * l.n * l.inner + i;
        normalize(in + base, out + base, l.n, l.inner);
      }
  }

 private:
  // The axis in [0, rank), after checking it against the node's opset.
  static std::size_t axis(const ir::Node& node, std::size_t rank) {
    const std::int64_t r = static_cast<std::int64_t>(rank);
    const std::int64_t a = node.attributes.get_int("axis", node.opset < 13 ? 1 : -1);
    if (rank == 0)
      fail(ErrorKind::kInvalidModel, node.describe(), ": the input must have rank >= 1");
    if (a < -r || a >= r)
      fail(ErrorKind::kInvalidModel, node.describe(), ": axis ", a, " is out of range for rank ",
           rank);
    return static_cast<std::size_t>(a < 0 ? a + r : a);
  }

  static SoftmaxLayout layout(const ir::Node& node, const Extents& e) {
    const std::size_t a = axis(node, e.size());
    SoftmaxLayout l;
    for (std::size_t d = 0; d < a; ++d)
      l.outer *= e[d];
    if (node.opset < 13) {  // 2-D coercion: the normalized row is all of e[a:]
      for (std::size_t d = a; d < e.size(); ++d)
        l.n *= e[d];
      return l;
    }
    l.n = e[a];
    for (std::size_t d = a + 1; d < e.size(); ++d)
      l.inner *= e[d];
    return l;
  }

  // Softmax of the n elements in[0], in[stride], ... into out.
  static void normalize(const float* in, float* out, std::int64_t n, std::int64_t stride) {
    if (n == 0) return;
    float max = in[0];
    for (std::int64_t k = 1; k < n; ++k)
      max = std::max(max, in[k * stride]);
    double sum = 0.0;
    for (std::int64_t k = 0; k < n; ++k) {
      out[k * stride] = std::exp(in[k * stride] - max);
      sum += out[k * stride];
    }
    const float scale = static_cast<float>(1.0 / sum);
    for (std::int64_t k = 0; k < n; ++k)
      out[k * stride] *= scale;
  }
};

ANVIL_REGISTER_OP(Softmax, "Softmax", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
