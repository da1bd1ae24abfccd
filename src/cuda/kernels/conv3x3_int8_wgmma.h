// The Hopper kernels of conv3x3_int8.h (wgmma): internal to conv3x3_int8.cu,
// which checks arguments and picks one (Conv3x3Int8Kernel). Both take the
// same launch description; conv3x3_int8_wgmma.cu reads both operands from
// shared memory, conv3x3_int8_wgmma_rs.cu keeps the filter in registers.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/kernels/conv3x3_int8.h"

namespace anvil::cuda::kernels {

// Whether this build holds the kernels (compiled for sm_90a).
bool conv3x3_int8_wgmma_compiled();

// Its launch for one shape: `parts` x 64 output slots a block's step.
struct Conv3x3Int8WgmmaLaunch {
  int parts = 2;
  int units_per_image = 0;
  long long units = 0;
  int blocks = 0, smem_bytes = 0;
};

// kUnsupported where a block would need more than `smem_limit` bytes of
// shared memory. Sets the kernel's shared-memory attribute.
Conv3x3Int8WgmmaLaunch plan_conv3x3_int8_wgmma(const Conv3x3Int8Shape& shape, int parts, int sms,
                                               int smem_limit);

// y = conv(x) as conv3x3_int8.h documents it, on an sm_90 device; pointers
// checked by the caller.
void conv3x3_int8_wgmma(const Conv3x3Int8WgmmaLaunch& launch, const Conv3x3Int8Shape& shape,
                        const void* x, const void* filter, const float* scale, const float* bias,
                        const void* residual, void* y, cudaStream_t stream);

// The same for the filter-in-registers kernel (conv3x3_int8_wgmma_rs.cu).
Conv3x3Int8WgmmaLaunch plan_conv3x3_int8_wgmma_rs(const Conv3x3Int8Shape& shape, int parts, int sms,
                                                  int smem_limit);
void conv3x3_int8_wgmma_rs(const Conv3x3Int8WgmmaLaunch& launch, const Conv3x3Int8Shape& shape,
                           const void* x, const void* filter, const float* scale, const float* bias,
                           const void* residual, void* y, cudaStream_t stream);

}  // namespace anvil::cuda::kernels
