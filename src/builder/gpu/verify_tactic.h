// The autotuner's numerical check of a winning tactic: the layer's GPU
// output, computed on its real weights and random activations, against a
// plain CPU reference of the same layer in the engine's layout (NHWC, padded
// channels, KRSC filter), so that a fast but wrong library configuration
// never reaches a plan. INT8 layers (conv_int8) are checked exactly, in INT8
// steps, against the plan contract's arithmetic (builder/lower.h).
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda/cublaslt_gemm.h"
#include "cuda/cudnn_quantized_conv.h"
#include "cuda/handles.h"
#include "plan/plan.h"
#include "runtime/layers/layer_shapes.h"

namespace anvil::builder {

// Values on the host, as the GPU sees them (rounded to FP16 where stored in
// FP16), and their device copy in the storage type.
struct HostDeviceValues {
  std::vector<float> host;
  cuda::DeviceBuffer device;
};

// `count` values drawn from N(0, 1): tuning and checking run on random data,
// never on zeros.
HostDeviceValues random_values(std::int64_t count, bool fp16, std::mt19937& rng);

// INT8 values on the host and their device copy.
struct HostDeviceInt8 {
  std::vector<std::int8_t> host;
  cuda::DeviceBuffer device;
};

// `count` INT8 values of a tensor storing `channels` channels per pixel:
// uniform integers in [-127, 127] in the first `real` channels, 0 in the
// padded ones (as the engine guarantees for an INT8 tensor).
HostDeviceInt8 random_int8_values(std::int64_t count, std::int64_t channels, std::int64_t real,
                                  std::mt19937& rng);

// The same for `element` kFloat8E4M3: E4M3 codes of N(0, 2^2) values
// (quant::encode_e4m3) in the real channels, 0 in the padded ones; kInt8
// gives random_int8_values.
HostDeviceInt8 random_quantized_values(std::int64_t count, std::int64_t channels, std::int64_t real,
                                       DType element, std::mt19937& rng);

// The largest max|got - want| / max|want| a tactic may show: 1e-4 for FP32
// without TF32, 1e-2 for FP16 storage or TF32.
double tactic_tolerance(bool fp16, bool tf32);

// Checks the last image of a conv layer's output `y` (device, NHWC, conv.shape.n
// images, storage type) against act(conv(x, W) + bias [+ residual]) computed
// on the CPU from the plan's weights. Nothing when within tolerance, else why
// (shape, worst element, got vs want). residual is null when the layer has none.
std::optional<std::string> check_conv_output(const plan::Plan& plan, const plan::LayerDesc& layer,
                                             const runtime::ConvLayerShape& conv,
                                             const HostDeviceValues& x,
                                             const HostDeviceValues* residual, const void* y);

// The same for the last row of a gemm layer's output y [m, n]:
// act(X · W^T + bias).
std::optional<std::string> check_gemm_output(const plan::Plan& plan, const plan::LayerDesc& layer,
                                             const cuda::GemmShape& gemm, const HostDeviceValues& x,
                                             const void* y);

// Checks the last image of a conv_int8 layer's INT8 output `y` (device, NHWC,
// shape.n images, shape.k channels) against the plan contract computed on the
// CPU from the plan's INT8 filter (weights[0]), scale (weights[1]) and bias
// (weights[2]): acc exact, then v = float(acc) * scale[k] + bias[k]
// [+ residual] in FP32 in that order, ReLU, rint half to even, saturate to
// [-128, 127]. x and residual are the host INT8 inputs of all shape.n images
// (residual null when the layer has none). Passes when no element is off by
// more than 1 and fewer than 1% are off at all (cuDNN was measured exact; 1
// allows an FMA in its epilogue); else says why (shape, worst element
// n/p/q/k, got vs want, how many differ). An FP8 shape (element
// kFloat8E4M3): x, residual, filter and y hold E4M3 codes, acc is the sum of
// the exact products in double, the conversion quant::encode_e4m3, and
// "off by 1" means one E4M3 step (quant::e4m3_ulp_distance): cuDNN sums in
// FP32 in its own order.
std::optional<std::string> check_int8_conv_output(
    const plan::Plan& plan, const plan::LayerDesc& layer, const cuda::QuantizedConvShape& shape,
    const std::vector<std::int8_t>& x, const std::vector<std::int8_t>* residual, const void* y);

}  // namespace anvil::builder
