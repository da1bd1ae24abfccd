// GlobalMaxPool: the maximum over all spatial positions of each (N, C) plane;
// Y has X's rank with every spatial extent 1.
#include <algorithm>
#include <limits>

#include "ops/op.h"
#include "ops/window.h"

namespace anvil::ops {
namespace {

class GlobalMaxPool final : public Op {
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
      float best = -std::numeric_limits<float>::infinity();
      for (std::int64_t i = 0; i < inner; ++i)
        best = std::max(best, in[i]);
      out[p] = best;
    }
  }
};

ANVIL_REGISTER_OP(GlobalMaxPool, "GlobalMaxPool", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
