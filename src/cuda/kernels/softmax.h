// Softmax over the last axis of a row-major [rows, cols] FP32 matrix
// (classifier heads), numerically stable (the row maximum is subtracted
// before exp), summed in FP32.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace anvil::cuda::kernels {

// y[r, :] = softmax(x[r, :]); y may be x. One warp per row. Enqueues on
// `stream` only (no allocation, no synchronization).
void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t cols,
                  cudaStream_t stream);

}  // namespace anvil::cuda::kernels
