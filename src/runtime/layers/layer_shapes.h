// The library shapes of a plan's conv and gemm layers, read from their
// params: shared by the runtime's runners and the builder's autotuner, so
// both time and run exactly the same problem.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cuda/cublaslt_gemm.h"
#include "cuda/cudnn_conv.h"
#include "cuda/cudnn_quantized_conv.h"
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

// A conv layer that is a GEMM in NHWC: 1x1 kernel, stride 1, no padding,
// dilation 1, one group. Then X [N*H*W, c_pad] and the KRSC filter
// [k_pad, 1, 1, c_pad] are GemmShape's X [m, k] and W [n, k], and the output
// and residual [N*H*W, k_pad] its Y [m, n].
struct ConvAsGemm {
  cuda::GemmShape gemm;  // m = N*H*W at the conv shape's batch
  // The activation cuBLASLt does not fuse (everything but ReLU), run after the
  // GEMM by the eltwise kernel with ConvLayerShape::activation_params.
  cuda::kernels::Activation post_activation = cuda::kernels::Activation::kNone;
};

// The GEMM form of `conv` at the batch conv.shape.n, or nothing when the
// layer is not such a convolution.
std::optional<ConvAsGemm> conv_as_gemm(const ConvLayerShape& conv);

// A conv layer run unfused: cuDNN executes the convolution alone, then
// kernels::conv_epilogue adds the bias and the residual and applies the
// activation in place on the output. For graphs whose fused form has no cuDNN
// engine with the layer's numerics (FP32 without TF32: the runtime-fusion
// engines use TF32), as TensorRT falls back to an unfused kernel sequence.
struct UnfusedConv {
  cuda::ConvShape conv;  // the layer's shape without bias, residual and activation
  // The layer's whole activation (fusable by cuDNN or not), applied with
  // ConvLayerShape::activation_params.
  cuda::kernels::Activation act = cuda::kernels::Activation::kNone;
};

// The unfused form of `conv` at the batch conv.shape.n.
UnfusedConv unfused_conv(const ConvLayerShape& conv);

// A "conv_int8" layer's cuDNN shape (n = 1; set the batch before use): INT8
// output, bias and residual as the params say, ReLU or no activation.
// kInvalidArgument (a corrupt plan) for asymmetric pads or another activation.
cuda::QuantizedConvShape int8_conv_layer_shape(const nlohmann::json& params,
                                               const std::string& layer);

// A "gemm" or "gemm_output" layer's GEMM, m = 1 (set the batch before use).
// A "gemm_output" writes the graph's FP32 output itself: FP32 out of an FP16
// plan, at the alignment a user's buffer has (builder/lower.h).
cuda::GemmShape gemm_layer_shape(const nlohmann::json& params, const std::string& layer,
                                 const std::string& kind, bool fp16, bool allow_tf32);

}  // namespace anvil::runtime
