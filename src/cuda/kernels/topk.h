// Classifier post-processing on the GPU: per row (image) of logits, an
// optional softmax and then the k best classes with their scores, so only
// k pairs per image cross PCIe instead of every class. The order is the
// host reference's (src/pipeline/host_postprocess.h): largest score first,
// ties to the lower index, NaN below every number; softmax is max-subtracted
// and a row holding NaN or with a maximum of +-infinity gives all NaN scores.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace anvil::cuda::kernels {

// The most classes a row may keep (a k per row fits in one pass of warps).
inline constexpr int kMaxTopK = 32;

// x: row-major [rows, cols] FP32. Writes indices[r * k + j] and
// scores[r * k + j], the j-th best of row r, for j < k, scores being
// softmax(x[r, :]) when `softmax`, else x itself. 1 <= k <= min(cols,
// kMaxTopK) and cols < 2^31, else kInvalidArgument. One block per row;
// enqueues on `stream` only (no allocation, no synchronization).
void top_k_rows(const float* x, std::int64_t rows, std::int64_t cols, int k, bool softmax,
                std::int32_t* indices, float* scores, cudaStream_t stream);

}  // namespace anvil::cuda::kernels
