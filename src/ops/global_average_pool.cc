// GlobalAveragePool: the mean over all spatial positions of each (N, C) plane;
// Y has X's rank with every spatial extent 1.
#include "ops/op.h"
#include "ops/window.h"

namespace anvil::ops {
namespace {

class GlobalAveragePool final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32});
    const ir::Shape& x = ctx.input(0).shape;
    if (x.rank() < 2)
      ctx.fail("input X must have rank >= 2 (N, C, spatial...), got ", to_string(x));
    ctx.set_output(0, DType::kFloat32, global_pooled_shape(x));
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const std::int64_t planes = x.extents()[0] * x.extents()[1];
    const std::int64_t inner = planes == 0 ? 0 : x.element_count() / planes;
    const float* in = x.data<float>();
    float* out = ctx.outputs[0].data<float>();
    for (std::int64_t p = 0; p < planes; ++p, in += inner) {
      // Summed in double: planes can hold many thousands of positions.
      double sum = 0.0;
      for (std::int64_t i = 0; i < inner; ++i)
        sum += in[i];
      out[p] = inner > 0 ? static_cast<float>(sum / static_cast<double>(inner)) : 0.0f;
    }
  }
};

ANVIL_REGISTER_OP(GlobalAveragePool, "GlobalAveragePool", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
