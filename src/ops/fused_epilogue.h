// The epilogue of Anvil's fused ops (FusedConv, FusedGemm): an optional
// residual tensor added to the result, then an optional activation.
//
// The activation is named by its ONNX op type in the fused node's
// "activation" attribute, with its parameters as attributes:
// "activation_alpha" and "activation_beta" (the op's alpha and beta, for
// LeakyRelu and HardSigmoid; absent means the op's default), "clip_min" and
// "clip_max" (Clip's constant bounds; absent means unbounded). It runs through the registered ONNX
// op itself, so a fused node computes bit for bit what the unfused nodes compute.
#pragma once

#include <array>
#include <memory>
#include <string_view>

#include "ops/op.h"

namespace anvil::ops {

// The activations a FusedConv or FusedGemm may end with.
inline constexpr std::array<std::string_view, 6> kFusableActivations = {
    "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish"};

// True for an op type listed in kFusableActivations.
bool is_fusable_activation(std::string_view op_type);

// Checks the residual input `i` (when present) against the output shape, and
// the activation attributes; errors name the fused node.
void infer_epilogue(const InferContext& ctx, std::size_t residual_input, const ir::Shape& output);

// Adds the residual input `i` (when present) to y, then applies the activation.
void run_epilogue(const RunContext& ctx, std::size_t residual_input, Tensor& y);

}  // namespace anvil::ops
