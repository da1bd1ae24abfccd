// The passes of the default pipeline, one per file, in the order they run.
#pragma once

#include <memory>

#include "passes/pass.h"

namespace anvil::passes {

// Removes Identity and inference Dropout nodes; a graph output keeps its name.
std::unique_ptr<Pass> make_remove_identity();
// Evaluates nodes whose inputs are all constant and stores their outputs as constants.
std::unique_ptr<Pass> make_fold_constants();
// Folds a BatchNormalization that follows a Conv into the Conv's weights and bias.
std::unique_ptr<Pass> make_fold_batch_norm();
// A BatchNormalization left unfolded (rank-4 input) -> depthwise 1x1 Conv.
std::unique_ptr<Pass> make_batch_norm_to_conv();
// Conv [+ residual Add] [+ activation] -> FusedConv (domain "anvil").
std::unique_ptr<Pass> make_fuse_conv_epilogue();
// Gemm or MatMul + bias Add, [+ activation] -> FusedGemm (domain "anvil").
std::unique_ptr<Pass> make_fuse_gemm_activation();

}  // namespace anvil::passes
