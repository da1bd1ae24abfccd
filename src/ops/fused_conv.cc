// FusedConv (domain "anvil"): Conv, plus an optional residual added to its
// output, then an optional activation. Created by the fuse_conv_epilogue pass.
//
// Inputs X, W, B? (as Conv), Residual? (the output's shape); attributes: the
// Conv's, plus the epilogue's (ops/fused_epilogue.h). The convolution itself
// is the registered Conv op, so both always agree.
#include "ops/fused_epilogue.h"
#include "ops/op.h"

namespace anvil::ops {
namespace {

constexpr std::size_t kResidual = 3;

// The Conv op of the same library: its registrar ran before any node can run.
const Op& conv() {
  const OpEntry* entry = find_op("Conv");
  ANVIL_CHECK(entry != nullptr);
  return *entry->op;
}

class FusedConv final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    conv().infer(ctx);
    infer_epilogue(ctx, kResidual, ctx.outputs()[0].shape);
  }

  void run(RunContext& ctx) const override {
    conv().run(ctx);
    run_epilogue(ctx, kResidual, ctx.outputs[0]);
  }

  std::int64_t macs(const InferContext& ctx) const override { return conv().macs(ctx); }
};

ANVIL_REGISTER_OP(FusedConv, "anvil::FusedConv", {.min_inputs = 2, .max_inputs = 4});

}  // namespace
}  // namespace anvil::ops
