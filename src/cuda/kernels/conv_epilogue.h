// The epilogue of a convolution that cuDNN ran unfused (the conv alone):
// y = act(y + bias[c] + residual) in place over its NHWC output, for graphs
// whose fused form has no engine with the layer's numerics (FP32 without
// TF32). The activation math is activation.h's.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/kernels/activation.h"
#include "cuda/kernels/storage.h"

namespace anvil::cuda::kernels {

// y[i] = act(y[i] + bias[i % channels] + residual[i]) for i < n, where y is an
// NHWC tensor of n elements whose innermost dimension is `channels` (the
// padded K). bias ([channels]) and residual (like y) may each be null; all
// buffers hold `type`, the sum is formed in float. Uses 16-byte accesses when
// every pointer is 16-byte aligned and channels is a multiple of the vector
// width. Enqueues on `stream` only (no allocation, no synchronization), so it
// can be captured into a CUDA graph.
void conv_epilogue(void* y, const void* bias, const void* residual, std::int64_t n,
                   std::int64_t channels, StorageType type, Activation act,
                   const ActivationParams& params, cudaStream_t stream);

}  // namespace anvil::cuda::kernels
