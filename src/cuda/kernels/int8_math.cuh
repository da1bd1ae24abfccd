// The one FP32 -> INT8 rounding every kernel that writes INT8 uses (the
// quantize layer, the stem's INT8 output), so that a fused kernel writes the
// bits the unfused pair would: q = sat(rint(x / scale)), half to even,
// saturated to [-128, 127], NaN -> 0.
//
// x / scale costs an IEEE division (a reciprocal, refinement and a slow-path
// branch per element), which would make these kernels compute-bound. It is
// replaced by t = x * fl(1 / scale) wherever that provably rounds to the same
// integer; see int8_quotient(). The arithmetic goes through the _rn
// intrinsics so that no compiler flag (fast math, contraction) changes a
// result: the CPU runtime and the tests compute the same bits.
#pragma once

#include <cstdint>

namespace anvil::cuda::kernels {

// fl(1 / scale) where the bound in int8_quotient() holds (1 / scale a normal
// float), else 0: divide every element. Computed once per launch, on the host.
inline float int8_reciprocal(float scale) {
  return scale >= 0x1p-125f && scale <= 0x1p125f ? 1.0f / scale : 0.0f;
}

// Why t = x * inv (inv = fl(1 / scale), a normal float) may stand in for
// fl(x / scale), with u = 2^-24: inv = (1/scale)(1 + e1), t = (x/scale)(1 +
// e1)(1 + e2) and fl(x/scale) = (x/scale)(1 + e3) with |e_i| <= u, so
// |t - fl(x/scale)| < 4u|t| = 2^-22 |t| (t subnormal: both are 0 after rint).
// rint is constant between consecutive half-integers, so the two round alike
// unless a half-integer lies within 2^-22 |t| of t. The check uses twice that
// margin; a = |t| - floor(|t|) is exact for |t| < 256 and |a - 0.5| too where
// it can be small (Sterbenz), so the distance tested is the true one. Beyond
// |t| >= 256 both saturate the same way; NaN and infinities pass through.
__device__ __forceinline__ float int8_quotient(float x, float scale, float inv) {
  if (inv == 0.0f) return __fdiv_rn(x, scale);
  const float t = __fmul_rn(x, inv);
  const float a = fabsf(t);
  if (a < 256.0f && fabsf(__fsub_rn(__fsub_rn(a, floorf(a)), 0.5f)) <= a * 0x1p-21f)
    return __fdiv_rn(x, scale);
  return t;
}

// sat(rint(x / scale)); `inv` is int8_reciprocal(scale).
__device__ __forceinline__ std::int8_t quantize_to_int8(float x, float scale, float inv) {
  const float r = rintf(int8_quotient(x, scale, inv));
  // Comparisons rather than fminf/fmaxf, which would turn NaN into a bound.
  if (r >= 127.0f) return 127;
  if (r <= -128.0f) return -128;
  return r == r ? static_cast<std::int8_t>(static_cast<int>(r)) : std::int8_t{0};
}

}  // namespace anvil::cuda::kernels
