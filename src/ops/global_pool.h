// Base class of GlobalAveragePool and GlobalMaxPool: each (N, C) plane of X
// reduces to one value; Y has X's rank with every spatial extent 1.
#pragma once

#include "ops/op.h"
#include "ops/window.h"

namespace anvil::ops {

class GlobalPool : public Op {
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
    for (std::int64_t p = 0; p < planes; ++p, in += inner)
      out[p] = reduce(in, inner);
  }

 protected:
  // The pooled value of one plane of `count` contiguous values.
  virtual float reduce(const float* plane, std::int64_t count) const = 0;
};

}  // namespace anvil::ops
