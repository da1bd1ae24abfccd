// What the stem kernels write, shared by the tiled kernel
// (stem_conv_pool.cu) and the row kernel (stem_conv_pool_rows.cu), so that
// both write the same bits: FP16, or INT8 quantized from exactly the FP16
// value the FP16 variant stores.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "cuda/kernels/int8_math.cuh"

namespace anvil::cuda::kernels {

// FP16, or INT8 rounded as int8_math.cuh does (its checked quotient, or the
// bare multiply where stem_int8_rounds_by_reciprocal() proved it rounds alike).
enum class StemOutput { kFloat16, kInt8Checked, kInt8ByReciprocal };

template <StemOutput kOut>
using StemOutType = std::conditional_t<kOut == StemOutput::kFloat16, __half, std::int8_t>;

// One INT8 code in the low byte. The float-to-int conversion saturates and
// turns NaN into 0, as quantize_to_int8 does.
template <StemOutput kOut>
__device__ __forceinline__ unsigned stem_quantize_byte(float x, float scale, float inv) {
  std::int8_t q;
  if constexpr (kOut == StemOutput::kInt8ByReciprocal)
    q = static_cast<std::int8_t>(max(-128, min(127, __float2int_rn(__fmul_rn(x, inv)))));
  else
    q = quantize_to_int8(x, scale, inv);
  return static_cast<unsigned>(static_cast<std::uint8_t>(q));
}

}  // namespace anvil::cuda::kernels
