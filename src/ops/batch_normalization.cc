// BatchNormalization, inference form: per channel c,
// Y = (X - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + B[c].
// Training (batch statistics and running-stat outputs) is not supported.
#include <cmath>

#include "ops/op.h"

namespace anvil::ops {
namespace {

class BatchNormalization final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    reject_training(ctx);
    for (std::size_t i = 0; i < 5; ++i)
      ctx.expect_dtype(i, {DType::kFloat32});
    const ir::Shape& x = ctx.input(0).shape;
    if (x.rank() < 2) ctx.fail("input X must have rank >= 2 (N, C, ...), got ", to_string(x));
    static constexpr const char* kNames[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (std::size_t i = 1; i < 5; ++i) {
      const ir::Shape& s = ctx.input(i).shape;
      if (s.rank() != 1 || (s[0].is_known() && x[1].is_known() && s[0].size != x[1].size))
        ctx.fail(kNames[i], " ", to_string(s), " must have one entry per channel of X ",
                 to_string(x));
    }
    ctx.set_output(0, DType::kFloat32, x);
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const std::int64_t batch = x.extents()[0];
    const std::int64_t channels = x.extents()[1];
    const std::int64_t inner = channels == 0 ? 0 : x.element_count() / (batch * channels);
    const float epsilon = ctx.attributes().get_float("epsilon", 1e-5f);
    const float* scale = ctx.input(1).data<float>();
    const float* bias = ctx.input(2).data<float>();
    const float* mean = ctx.input(3).data<float>();
    const float* var = ctx.input(4).data<float>();
    const float* in = x.data<float>();
    float* out = ctx.outputs[0].data<float>();
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t c = 0; c < channels; ++c) {
        // Folded into one multiply-add per element.
        const float a = static_cast<float>(scale[c] / std::sqrt(double{var[c]} + epsilon));
        const float b = bias[c] - mean[c] * a;
        const std::int64_t offset = (n * channels + c) * inner;
        for (std::int64_t i = 0; i < inner; ++i)
          out[offset + i] = in[offset + i] * a + b;
      }
  }

 private:
  // Opset 14 made training an attribute (with optional running-stat
  // outputs); before, asking for more than Y meant training.
  static void reject_training(const InferContext& ctx) {
    const bool training_attribute =
        ctx.opset() >= 14 && ctx.attributes().get_int("training_mode", 0) != 0;
    if (training_attribute)
      ctx.unsupported("training_mode=1 (normalizing with batch statistics) is not supported; ",
                      "export the model in inference mode");
    if (ctx.node().outputs.size() > 1)
      ctx.unsupported("the running mean/variance outputs of training mode are not supported; ",
                      "only Y can be computed");
  }
};

ANVIL_REGISTER_OP(BatchNormalization, "BatchNormalization",
                  {.min_inputs = 5, .max_inputs = 5, .min_outputs = 1, .max_outputs = 5});

}  // namespace
}  // namespace anvil::ops
