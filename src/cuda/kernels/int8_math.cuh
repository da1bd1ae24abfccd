// The one FP32 -> INT8 rounding every kernel that writes INT8 uses (the
// quantize layer, the stem's INT8 output), so that a fused kernel writes the
// bits the unfused pair would: q = sat(rint(x / scale)) with an IEEE division
// (no compiler flag changes it), half to even, NaN -> 0.
#pragma once

#include <cstdint>

namespace anvil::cuda::kernels {

__device__ __forceinline__ std::int8_t quantize_to_int8(float x, float scale) {
  const float r = rintf(__fdiv_rn(x, scale));
  // Comparisons rather than fminf/fmaxf, which would turn NaN into a bound.
  if (r >= 127.0f) return 127;
  if (r <= -128.0f) return -128;
  return r == r ? static_cast<std::int8_t>(static_cast<int>(r)) : std::int8_t{0};
}

}  // namespace anvil::cuda::kernels
