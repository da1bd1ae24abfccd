// Conversions between the engine's FP16 storage and INT8 or FP8 E4M3 tensors with one
// scale per tensor (real value = scale * q), where INT8 layers meet FP16 ones
// (the "quantize" and "dequantize" plan layers, builder/lower.h).
//
// Launchers only enqueue work on `stream`: they never allocate or
// synchronize. Bad arguments are an anvil::Error of kind kInvalidArgument,
// raised before any CUDA call; a failed launch is one of kind kGpu. Elements
// move 8 at a time (16-byte FP16 and 8-byte INT8 accesses) from the first one
// whose FP16 address is 16-byte aligned; those before it and the last few go
// one by one, as does every element when the INT8 pointer is then not 8-byte
// aligned (the two pointers' offsets disagree). Results never depend on which
// path an element took.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "anvil/types.h"

namespace anvil::cuda::kernels {

// q[i] = sat(rint(x[i] / scale)) for i < elements: x is FP16, converted to
// float; the division is IEEE (round to nearest), rint rounds halves to even,
// sat clamps to [-128, 127] (infinities saturate). NaN becomes 0.
// scale must be finite and > 0. The kernel multiplies by fl(1 / scale) where
// that provably gives the same integer and divides where it might not (near
// a half-integer quotient): the results are those of the division.
void quantize_int8(const void* x_fp16, std::int8_t* q, std::int64_t elements, float scale,
                   cudaStream_t stream);

// y[i] = half(float(q[i]) * scale), the product rounded once to float and
// then to FP16 (to nearest, ties to even). scale must be finite and > 0.
void dequantize_int8(const std::int8_t* q, void* y_fp16, std::int64_t elements, float scale,
                     cudaStream_t stream);

// The same for `element` kInt8 (quantize_int8 / dequantize_int8) or
// kFloat8E4M3: q[i] = e4m3(fl(x[i] / scale)), rounded to nearest even and
// saturated to +-448 (infinities too), a NaN stays NaN; y[i] =
// half(float(q[i]) * scale) (quant/fp8_e4m3.h computes the same on the host).
// Another element type is kInvalidArgument.
void quantize(const void* x_fp16, void* q, std::int64_t elements, float scale, DType element,
              cudaStream_t stream);
void dequantize(const void* q, void* y_fp16, std::int64_t elements, float scale, DType element,
                cudaStream_t stream);

}  // namespace anvil::cuda::kernels
