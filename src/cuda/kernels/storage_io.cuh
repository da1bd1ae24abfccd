// Device-side loads and stores of either storage type as float, so each
// kernel is written once as a template over float and __half.
#pragma once

#include <cuda_fp16.h>

namespace anvil::cuda::kernels {

__device__ __forceinline__ float to_float(float v) {
  return v;
}
__device__ __forceinline__ float to_float(__half v) {
  return __half2float(v);
}

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}

// Blocks for `count` items of `threads` threads each, capped so the grid's x
// extent stays legal; kernels loop (grid-stride) over what the cap leaves.
inline unsigned grid_for(long long count, int threads) {
  const long long blocks = (count + threads - 1) / threads;
  constexpr long long kMaxBlocks = 1 << 20;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

}  // namespace anvil::cuda::kernels
