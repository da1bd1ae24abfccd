// Base class for ops that map each float32 element independently
// (Relu, Sigmoid, LeakyRelu, ...): shape and dtype pass through.
#pragma once

#include "ops/op.h"

namespace anvil::ops {

class UnaryElementwise : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32});
    validate(ctx);
    params(ctx.attributes());  // a mistyped attribute fails at import, not mid-run
    ctx.set_output(0, DType::kFloat32, ctx.input(0).shape);
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const float* in = x.data<float>();
    float* out = ctx.outputs[0].data<float>();
    const Params p = params(ctx.attributes());
    for (std::int64_t i = 0, n = x.element_count(); i < n; ++i)
      out[i] = apply(in[i], p);
  }

 protected:
  // Attribute values an op reads once per run (alpha, beta, ...); the getters
  // throw on a mistyped attribute.
  struct Params {
    float alpha = 0.0f;
    float beta = 0.0f;
  };
  virtual Params params(const ir::Attributes& /*attributes*/) const { return {}; }
  // Checks attributes; the default accepts any.
  virtual void validate(const InferContext& /*ctx*/) const {}
  virtual float apply(float x, const Params& p) const = 0;
};

}  // namespace anvil::ops
