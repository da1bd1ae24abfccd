// Recognizing an activation node that a fused op can absorb, shared by the
// fuse_conv_epilogue and fuse_gemm_activation passes.
#pragma once

#include "ir/graph.h"

namespace anvil::passes {

// If `node` is an activation of ops::kFusableActivations reading `value` that
// a fused op can take over (Clip only with constant bounds), adds the fused
// op's epilogue attributes for it (ops/fused_epilogue.h) to `attributes` and
// returns true; else returns false and leaves `attributes` alone.
bool absorb_activation(const ir::Node& node, const ir::Value* value, ir::Attributes& attributes);

}  // namespace anvil::passes
