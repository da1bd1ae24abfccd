// What conv3x3_int8.h's two kernels share (conv3x3_int8.cu, mma.sync;
// conv3x3_int8_wgmma.cu, Hopper): sizes, the 16-byte chunk swizzle of a
// 64-byte pixel, and the contract's epilogue on a pair of accumulators,
// computed on the FP32 pipe. Device code only.
#pragma once

#include <cstdint>

#include "cuda/kernels/conv3x3_int8.h"

namespace anvil::cuda::kernels::conv3x3 {

constexpr int kC = kConv3x3Int8Channels;  // channels in and out; a pixel's bytes
constexpr int kRowBytes = 9 * kC;         // 576: one output channel's filter, its K
constexpr int kKSteps = kRowBytes / 32;   // 18 k-steps of 32

// Byte offset of 16-byte chunk c (0..3) of pixel `slot` in a staging buffer
// of 64-byte pixels: chunk c ^ (slot / 2) % 4, so that the epilogue's stores
// (4 lanes' channel pairs for each of 8 pixels) and the 16-byte reads of
// consecutive pixels fall in distinct banks.
__device__ __forceinline__ int pixel_chunk(int slot, int c) {
  return slot * kC + ((c ^ (slot >> 1)) & 3) * 16;
}

// The conversions run on the FP32 pipe: F2I, I2F and integer clamps run on
// the conversion unit at a quarter of its rate, and the epilogue converts
// every output element (twice with a residual).
constexpr float kRoundMagic = 12582912.0f;  // 1.5 x 2^23
constexpr unsigned kRoundMagicBits = 0x4B400000u;

// sat(rint(v)) in the low byte of the result, with the bounds [low, 127]
// (low -128, or 0 for ReLU: max(v, 0) then saturating is the same): v +
// 1.5 x 2^23 rounds v to an integer half to even, which then sits in the low
// mantissa bits, two's complement (|v| <= 128, far below 2^22).
__device__ __forceinline__ unsigned rounded_byte(float v, float low) {
  return __float_as_uint(__fadd_rn(fminf(fmaxf(v, low), 127.0f), kRoundMagic));
}

// Byte kByte of `pair` as an INT8 value, exactly: prmt sign-extends it
// (selector nibbles with the top bit set replicate the byte's sign), the
// magic turns it into a float.
template <int kByte>
__device__ __forceinline__ float byte_value(unsigned pair) {
  constexpr unsigned kSelect = kByte | (8u + kByte) << 4 | (8u + kByte) << 8 | (8u + kByte) << 12;
  unsigned extended;
  asm("prmt.b32 %0, %1, 0, %2;" : "=r"(extended) : "r"(pair), "n"(kSelect));
  return __fsub_rn(__uint_as_float(kRoundMagicBits + extended), kRoundMagic);
}

// The contract (conv3x3_int8.h) for two channels of one pixel: accumulators
// a0, a1, their scales and biases, the residual's two bytes in `residual`
// (read only with kResidual); the two INT8 results packed in 16 bits. low
// is 0 with ReLU, else -128.
template <bool kResidual>
__device__ __forceinline__ unsigned short epilogue_pair(int a0, int a1, float2 scale, float2 bias,
                                                        unsigned residual, float residual_scale,
                                                        float low) {
  float v0 = __fadd_rn(__fmul_rn(static_cast<float>(a0), scale.x), bias.x);
  float v1 = __fadd_rn(__fmul_rn(static_cast<float>(a1), scale.y), bias.y);
  if constexpr (kResidual) {
    v0 = __fadd_rn(v0, __fmul_rn(byte_value<0>(residual), residual_scale));
    v1 = __fadd_rn(v1, __fmul_rn(byte_value<1>(residual), residual_scale));
  }
  return static_cast<unsigned short>(
      __byte_perm(rounded_byte(v0, low), rounded_byte(v1, low), 0x0040));
}

}  // namespace anvil::cuda::kernels::conv3x3
