// The library shapes of a plan's conv and gemm layers, read from their
// params: shared by the runtime's runners and the builder's autotuner, so
// both time and run exactly the same problem.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "cuda/cublaslt_gemm.h"
#include "cuda/cudnn_conv.h"
#include "cuda/kernels/activation.h"

namespace anvil::runtime {

struct ConvLayerShape {
  cuda::ConvShape shape;  // n = 1; set the batch before use
  // An activation cuDNN cannot fuse (HardSigmoid, HardSwish), run after the
  // convolution by the eltwise kernel; kNone when everything is fused.
  cuda::kernels::Activation post_activation = cuda::kernels::Activation::kNone;
  cuda::kernels::ActivationParams activation_params;
};

ConvLayerShape conv_layer_shape(const nlohmann::json& params, const std::string& layer, bool fp16,
                                bool allow_tf32);

// n = 1 (m, the batch, set before use).
cuda::GemmShape gemm_layer_shape(const nlohmann::json& params, const std::string& layer, bool fp16,
                                 bool allow_tf32);

}  // namespace anvil::runtime
