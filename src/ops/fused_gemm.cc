// FusedGemm (domain "anvil"): Gemm, then an optional activation. Created by
// the fuse_gemm_activation pass (from Gemm, or MatMul + bias Add, + activation).
//
// Inputs A, B, C? and attributes as Gemm, plus the epilogue's activation
// attributes (ops/fused_epilogue.h); no residual input. The product itself
// is the registered Gemm op, so both always agree.
#include "ops/fused_epilogue.h"
#include "ops/op.h"

namespace anvil::ops {
namespace {

// Past the last input: FusedGemm takes no residual.
constexpr std::size_t kNoResidual = 3;

const Op& gemm_op() {
  const OpEntry* entry = find_op("Gemm");
  ANVIL_CHECK(entry != nullptr);
  return *entry->op;
}

class FusedGemm final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    gemm_op().infer(ctx);
    infer_epilogue(ctx, kNoResidual, ctx.outputs()[0].shape);
  }

  void run(RunContext& ctx) const override {
    gemm_op().run(ctx);
    run_epilogue(ctx, kNoResidual, ctx.outputs[0]);
  }

  std::int64_t macs(const InferContext& ctx) const override { return gemm_op().macs(ctx); }
};

ANVIL_REGISTER_OP(FusedGemm, "anvil::FusedGemm", {.min_inputs = 2, .max_inputs = 3});

}  // namespace
}  // namespace anvil::ops
