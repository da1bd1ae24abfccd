// One warp per row: each lane strides over the row, and the row maximum and
// sum are combined with warp shuffles, so no shared memory or block barrier
// is needed and short rows (1000 classes) keep every lane busy.
#include <cfloat>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/softmax.h"
#include "cuda/kernels/storage_io.cuh"

namespace anvil::cuda::kernels {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__global__ void softmax_rows_kernel(const float* x, float* y, long long rows, long long cols) {
  const int lane = threadIdx.x % kWarp;
  const long long warps = static_cast<long long>(gridDim.x) * kWarpsPerBlock;
  for (long long r = static_cast<long long>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
       r < rows; r += warps) {
    const float* in = x + r * cols;
    float* out = y + r * cols;
    float max = -FLT_MAX;
    for (long long k = lane; k < cols; k += kWarp)
      max = fmaxf(max, in[k]);
    max = warp_max(max);
    float sum = 0.0f;
    for (long long k = lane; k < cols; k += kWarp)
      sum += expf(in[k] - max);
    const float scale = 1.0f / warp_sum(sum);
    // exp is recomputed rather than stored first: y may alias x.
    for (long long k = lane; k < cols; k += kWarp)
      out[k] = expf(in[k] - max) * scale;
  }
}

}  // namespace

void softmax_rows(const float* x, float* y, std::int64_t rows, std::int64_t cols,
                  cudaStream_t stream) {
  if (rows < 0 || cols < 1)
    fail(ErrorKind::kInvalidArgument, "softmax_rows: bad shape rows=", rows, " cols=", cols);
  if (rows == 0) return;
  const unsigned grid = grid_for(rows, kWarpsPerBlock);
  softmax_rows_kernel<<<grid, kWarpsPerBlock * kWarp, 0, stream>>>(x, y, rows, cols);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
