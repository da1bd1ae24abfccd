// Layout changes at the engine's edges: the user's NCHW FP32 tensors to the
// engine's NHWC tensors with channels padded (to a tensor-core multiple) and
// back, and classifier outputs [N, Cpad] back to [N, C].
//
// Launchers only enqueue work on `stream`: they never allocate or
// synchronize (so they can be captured in a CUDA graph). Bad sizes are an
// anvil::Error of kind kInvalidArgument; a failed launch one of kind kGpu.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/kernels/storage.h"

namespace anvil::cuda::kernels {

// A 4-D activation: n images of c channels (c_pad >= c stored) and h x w pixels.
struct ImageShape {
  std::int64_t n = 1;
  std::int64_t c = 1;
  std::int64_t h = 1;
  std::int64_t w = 1;
  std::int64_t c_pad = 1;
};

// src: NCHW float32 [n, c, h, w] -> dst: NHWC [n, h, w, c_pad] as dst_type,
// channels c..c_pad-1 written as zeros.
void nchw_to_nhwc(const float* src, void* dst, StorageType dst_type, const ImageShape& shape,
                  cudaStream_t stream);

// src: NHWC [n, h, w, c_pad] as src_type -> dst: NCHW float32 [n, c, h, w];
// the padding channels are dropped.
void nhwc_to_nchw(const void* src, StorageType src_type, float* dst, const ImageShape& shape,
                  cudaStream_t stream);

// src: [rows, c_pad] as src_type -> dst: [rows, c] float32 (classifier
// outputs, e.g. a GlobalAveragePool + Gemm head).
void unpad_rows(const void* src, StorageType src_type, float* dst, std::int64_t rows,
                std::int64_t c, std::int64_t c_pad, cudaStream_t stream);

}  // namespace anvil::cuda::kernels
