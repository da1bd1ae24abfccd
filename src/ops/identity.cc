// Identity: y = x, for tensors of any dtype.
#include <cstring>

#include "ops/op.h"

namespace anvil::ops {
namespace {

class Identity final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.set_output(0, ctx.input(0).dtype, ctx.input(0).shape);
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    if (x.byte_size() > 0) std::memcpy(ctx.outputs[0].bytes(), x.bytes(), x.byte_size());
  }
};

ANVIL_REGISTER_OP(Identity, "Identity", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
