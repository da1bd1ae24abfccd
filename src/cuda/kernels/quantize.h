// Conversions between the engine's FP16 storage and INT8 tensors with one
// scale per tensor (real value = scale * q), where INT8 layers meet FP16 ones
// (the "quantize" and "dequantize" plan layers, builder/lower.h).
//
// Launchers only enqueue work on `stream`: they never allocate or
// synchronize. Bad arguments are an anvil::Error of kind kInvalidArgument,
// raised before any CUDA call; a failed launch is one of kind kGpu. Buffers
// whose pointers are 16-byte aligned move 16 elements per thread and access;
// the last elements % 16, and every element of unaligned buffers, go one by one.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace anvil::cuda::kernels {

// q[i] = sat(rint(x[i] / scale)) for i < elements: x is FP16, converted to
// float; the division is IEEE (round to nearest), rint rounds halves to even,
// sat clamps to [-128, 127] (infinities saturate). NaN becomes 0.
// scale must be finite and > 0.
void quantize_int8(const void* x_fp16, std::int8_t* q, std::int64_t elements, float scale,
                   cudaStream_t stream);

// y[i] = half(float(q[i]) * scale), the product rounded once to float and
// then to FP16 (to nearest, ties to even). scale must be finite and > 0.
void dequantize_int8(const std::int8_t* q, void* y_fp16, std::int64_t elements, float scale,
                     cudaStream_t stream);

}  // namespace anvil::cuda::kernels
