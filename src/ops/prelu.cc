// PRelu: y = x for x >= 0, slope * x otherwise, with slope broadcast
// unidirectionally to x (typically one slope per channel, shape [C,1,1]).
#include "ops/broadcast.h"
#include "ops/op.h"

namespace anvil::ops {
namespace {

class PRelu final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32});
    if (ctx.input(1).dtype != DType::kFloat32)
      ctx.fail("input 1 (slope) has dtype ", to_string(ctx.input(1).dtype),
               " but input 0 has dtype float32; they must match");
    if (!broadcasts_to(ctx.input(1).shape, ctx.input(0).shape))
      ctx.fail("slope shape ", to_string(ctx.input(1).shape),
               " does not broadcast to the input shape ", to_string(ctx.input(0).shape));
    ctx.set_output(0, DType::kFloat32, ctx.input(0).shape);
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& slope = ctx.input(1);
    const float* in = x.data<float>();
    const float* s = slope.data<float>();
    float* out = ctx.outputs[0].data<float>();
    for_each_broadcast(x.extents(), x.extents(), slope.extents(),
                       [&](std::int64_t o, std::int64_t i, std::int64_t j) {
                         out[o] = in[i] < 0.0f ? s[j] * in[i] : in[i];
                       });
  }
};

ANVIL_REGISTER_OP(PRelu, "PRelu", {.min_inputs = 2, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
