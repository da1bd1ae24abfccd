// MaxPool, AveragePool and GlobalAveragePool over NHWC tensors (FP32 or FP16
// storage, FP32 arithmetic; GlobalAveragePool of INT8 too), with the
// semantics of the CPU reference ops (src/ops/max_pool.cc, average_pool.cc,
// global_average_pool.cc).
//
// Launchers only enqueue work on `stream`: no allocation, no synchronization.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/kernels/storage.h"

namespace anvil::cuda::kernels {

// A 2-D pooling window over x = [n, in_h, in_w, c] -> y = [n, out_h, out_w, c],
// c being the stored (padded) channel count. The caller computes out_h and
// out_w (that is where ceil_mode and auto_pad are resolved, see
// ops::resolve_axis); pad_bottom / pad_right are the explicit end pads only.
struct Pool2d {
  std::int64_t n = 1;
  std::int64_t c = 1;
  std::int64_t in_h = 1;
  std::int64_t in_w = 1;
  std::int64_t out_h = 1;
  std::int64_t out_w = 1;
  int kernel_h = 1;
  int kernel_w = 1;
  int stride_h = 1;
  int stride_w = 1;
  int pad_top = 0;
  int pad_left = 0;
  int pad_bottom = 0;
  int pad_right = 0;
  int dilation_h = 1;
  int dilation_w = 1;
  // AveragePool only: divide by the taps inside the input plus its explicit
  // padding (true) or inside the input only (false).
  bool count_include_pad = false;
};

// y = MaxPool(x). Padding never wins; a window entirely in the padding gives
// -FLT_MAX (FP32) or -inf (FP16).
void max_pool_2d(const void* x, void* y, StorageType type, const Pool2d& pool, cudaStream_t stream);

// y = AveragePool(x) (dilations as in opset 19). A window with no counted
// taps gives 0.
void average_pool_2d(const void* x, void* y, StorageType type, const Pool2d& pool,
                     cudaStream_t stream);

// y[n, c] = mean over h, w of x[n, h, w, c] (x = [n, h, w, c], c the stored
// channel count), summed in FP32.
void global_average_pool(const void* x, void* y, StorageType type, std::int64_t n, std::int64_t h,
                         std::int64_t w, std::int64_t c, cudaStream_t stream);

// y[n, c] = half(float(sum over h, w of q[n, h, w, c]) * scale / (h * w)): the
// mean of an INT8 tensor (real values scale * q) into FP16, its sum exact in
// INT32 (h * w up to 2^23). c, the stored channel count, a multiple of 4; x
// 4-byte and y 8-byte aligned; scale positive and finite.
void global_average_pool_int8(const void* x, void* y, std::int64_t n, std::int64_t h,
                              std::int64_t w, std::int64_t c, float scale, cudaStream_t stream);

}  // namespace anvil::cuda::kernels
