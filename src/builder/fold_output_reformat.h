// A plan-level fold run at the end of lowering: a "gemm" (a classifier's FC
// layer) whose output only the graph output's "reformat_out" reads writes
// the user's FP32 tensor itself, as a "gemm_output" layer, and the reformat
// goes. The GEMM then accumulates in FP32 and stores FP32 (in an FP16 plan
// it stored FP16, which the reformat widened), so the logits are the
// reformat's or closer to the exact ones, and a launch and the FP16 tensor's
// round trip go (ResNet-18's head, builder/lower.h).
//
// Only where the reformat drops no padding (the GEMM's n equals its n_pad:
// the rows of the user's tensor are the GEMM's rows) and the output is NC or
// NCHW of 1 x 1. "gemm_output" is a kind of its own so that a runtime
// without it refuses the plan rather than writing FP16 into FP32.
#pragma once

#include "plan/plan.h"

namespace anvil::builder {

// Folds every such reformat_out into its gemm; returns how many.
int fold_output_reformat(plan::Plan& plan);

}  // namespace anvil::builder
