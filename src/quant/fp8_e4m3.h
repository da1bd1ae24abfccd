// FP8 E4M3 ("float8e4m3fn", OCP FP8) on the host: the element of FP8 plans
// (--fp8). Bias 7, 3 mantissa bits, no infinities; S.1111.111 is NaN, the
// largest finite value is 448 and the smallest subnormal 2^-9.
//
// Encoding is what CUDA's __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3)
// does on the GPU, so that the CPU references the builder and the tests check
// cuDNN against compute the same bytes: round to nearest, ties to even, and
// saturate to +-448 (infinities included); a NaN of either sign encodes as
// 0x7F. Decoding is exact (every E4M3 value is a float).
#pragma once

#include <cstdint>

namespace anvil::quant {

inline constexpr float kE4M3Max = 448.0f;
inline constexpr std::uint8_t kE4M3NaN = 0x7f;

std::uint8_t encode_e4m3(float x);
float decode_e4m3(std::uint8_t code);

// decode_e4m3(encode_e4m3(x)): x rounded to the nearest E4M3 value.
float round_to_e4m3(float x);

// How many E4M3 steps apart two finite codes are (0: equal, 1: neighbours;
// +0 and -0 count as equal), for comparing GPU results within 1 ulp. A NaN
// code on either side gives a large number (1000).
int e4m3_ulp_distance(std::uint8_t a, std::uint8_t b);

}  // namespace anvil::quant
