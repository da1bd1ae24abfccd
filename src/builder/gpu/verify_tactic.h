// The autotuner's numerical check of a winning tactic: the layer's GPU
// output, computed on its real weights and random activations, against a
// plain CPU reference of the same layer in the engine's layout (NHWC, padded
// channels, KRSC filter), so that a fast but wrong library configuration
// never reaches a plan.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda/cublaslt_gemm.h"
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

}  // namespace anvil::builder
