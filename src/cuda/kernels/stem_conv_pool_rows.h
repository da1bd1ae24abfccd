// The stem's row kernel (Hopper, wgmma): internal to stem_conv_pool.cu,
// which checks arguments and picks it (StemKernel).
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/kernels/stem_conv_pool.h"
#include "cuda/kernels/stem_output.cuh"

namespace anvil::cuda::kernels {

// The input width the row kernel takes: its GEMM's N is one conv row of 112.
inline constexpr int kStemRowsWidth = 224;

// Whether this build holds the row kernel (compiled for sm_90a).
bool stem_rows_compiled();

// y = the stem of x as stem_conv_pool() documents it, for shape.in_w ==
// kStemRowsWidth on an sm_90 device; `out` and `int8_inv` as that computed them.
void stem_conv_pool_rows(const void* x, const void* filter, const float* bias, void* y,
                         const StemShape& shape, StemOutput out, float int8_inv, int sms,
                         cudaStream_t stream);

}  // namespace anvil::cuda::kernels
