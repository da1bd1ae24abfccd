// Window pools: one thread per output element, channels fastest, so a warp
// reads 32 consecutive channels of one input pixel per tap (coalesced in NHWC).
// GlobalAveragePool: a block of 32 channels x 8 pixel lanes, reduced in shared memory.
#include <cuda_fp16.h>

#include <cfloat>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/pooling.h"
#include "cuda/kernels/storage_io.cuh"

namespace anvil::cuda::kernels {
namespace {

constexpr int kThreads = 256;

// The kernel taps [first, last) of output index o whose input index
// start + tap * dilation lies in [low, high); mirrors AxisWindow::taps_within.
struct Taps {
  int first;
  int last;
};
__device__ __forceinline__ Taps taps_within(long long start, int kernel, int dilation,
                                            long long low, long long high) {
  long long first = start >= low ? 0 : (low - start + dilation - 1) / dilation;
  long long last = start >= high ? 0 : (high - 1 - start) / dilation + 1;
  if (last > kernel) last = kernel;
  if (first > kernel) first = kernel;
  if (last < first) last = first;
  return {static_cast<int>(first), static_cast<int>(last)};
}

enum class PoolKind { kMax, kAverage };

template <typename T, PoolKind kKind>
__global__ void pool_2d_kernel(const T* __restrict__ x, T* __restrict__ y, Pool2d p) {
  const long long total = p.n * p.out_h * p.out_w * p.c;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long ch = i % p.c;
    long long rest = i / p.c;
    const long long ow = rest % p.out_w;
    rest /= p.out_w;
    const long long oh = rest % p.out_h;
    const long long img = rest / p.out_h;
    const long long h0 = oh * p.stride_h - p.pad_top, w0 = ow * p.stride_w - p.pad_left;
    const Taps th = taps_within(h0, p.kernel_h, p.dilation_h, 0, p.in_h);
    const Taps tw = taps_within(w0, p.kernel_w, p.dilation_w, 0, p.in_w);
    const T* plane = x + img * p.in_h * p.in_w * p.c + ch;
    float acc = kKind == PoolKind::kMax ? -FLT_MAX : 0.0f;
    for (int kh = th.first; kh < th.last; ++kh) {
      const T* row = plane + (h0 + static_cast<long long>(kh) * p.dilation_h) * p.in_w * p.c;
      for (int kw = tw.first; kw < tw.last; ++kw) {
        const float v = to_float(row[(w0 + static_cast<long long>(kw) * p.dilation_w) * p.c]);
        if constexpr (kKind == PoolKind::kMax)
          acc = v > acc ? v : acc;
        else
          acc += v;
      }
    }
    if constexpr (kKind == PoolKind::kAverage) {
      long long count = static_cast<long long>(th.last - th.first) * (tw.last - tw.first);
      if (p.count_include_pad) {
        const Taps ph =
            taps_within(h0, p.kernel_h, p.dilation_h, -p.pad_top, p.in_h + p.pad_bottom);
        const Taps pw =
            taps_within(w0, p.kernel_w, p.dilation_w, -p.pad_left, p.in_w + p.pad_right);
        count = static_cast<long long>(ph.last - ph.first) * (pw.last - pw.first);
      }
      acc = count > 0 ? acc / static_cast<float>(count) : 0.0f;
    }
    y[i] = from_float<T>(acc);
  }
}

constexpr int kGapChannels = 32;
constexpr int kGapLanes = 8;

// Block (x, y) averages channels [x * 32, +32) of image y: lane threadIdx.y
// sums pixels threadIdx.y, +8, ...; the 8 partial sums are added in shared memory.
template <typename T>
__global__ void global_average_pool_kernel(const T* __restrict__ x, T* __restrict__ y, long long hw,
                                           long long c) {
  __shared__ float partial[kGapLanes][kGapChannels];
  const long long ch = static_cast<long long>(blockIdx.x) * kGapChannels + threadIdx.x;
  const T* image = x + static_cast<long long>(blockIdx.y) * hw * c;
  float sum = 0.0f;
  if (ch < c)
    for (long long p = threadIdx.y; p < hw; p += kGapLanes)
      sum += to_float(image[p * c + ch]);
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || ch >= c) return;
  float total = 0.0f;
#pragma unroll
  for (int lane = 0; lane < kGapLanes; ++lane)
    total += partial[lane][threadIdx.x];
  y[static_cast<long long>(blockIdx.y) * c + ch] = from_float<T>(total / static_cast<float>(hw));
}

void check_pool(const char* what, const Pool2d& p) {
  const bool ok = p.n >= 0 && p.c >= 1 && p.in_h >= 1 && p.in_w >= 1 && p.out_h >= 0 &&
                  p.out_w >= 0 && p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 &&
                  p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1 && p.pad_top >= 0 &&
                  p.pad_left >= 0 && p.pad_bottom >= 0 && p.pad_right >= 0;
  if (!ok)
    fail(ErrorKind::kInvalidArgument, what, ": bad window n=", p.n, " c=", p.c, " in=", p.in_h, "x",
         p.in_w, " out=", p.out_h, "x", p.out_w, " kernel=", p.kernel_h, "x", p.kernel_w,
         " strides=", p.stride_h, ",", p.stride_w, " dilations=", p.dilation_h, ",", p.dilation_w,
         " pads=", p.pad_top, ",", p.pad_left, ",", p.pad_bottom, ",", p.pad_right);
}

template <PoolKind kKind>
void launch_pool(const char* what, const void* x, void* y, StorageType type, const Pool2d& p,
                 cudaStream_t stream) {
  check_pool(what, p);
  const long long total = p.n * p.out_h * p.out_w * p.c;
  if (total == 0) return;
  const unsigned grid = grid_for(total, kThreads);
  switch (type) {
    case StorageType::kFloat32:
      pool_2d_kernel<float, kKind>
          <<<grid, kThreads, 0, stream>>>(static_cast<const float*>(x), static_cast<float*>(y), p);
      break;
    case StorageType::kFloat16:
      pool_2d_kernel<__half, kKind><<<grid, kThreads, 0, stream>>>(static_cast<const __half*>(x),
                                                                   static_cast<__half*>(y), p);
      break;
  }
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace

void max_pool_2d(const void* x, void* y, StorageType type, const Pool2d& pool,
                 cudaStream_t stream) {
  launch_pool<PoolKind::kMax>("max_pool_2d", x, y, type, pool, stream);
}

void average_pool_2d(const void* x, void* y, StorageType type, const Pool2d& pool,
                     cudaStream_t stream) {
  launch_pool<PoolKind::kAverage>("average_pool_2d", x, y, type, pool, stream);
}

void global_average_pool(const void* x, void* y, StorageType type, std::int64_t n, std::int64_t h,
                         std::int64_t w, std::int64_t c, cudaStream_t stream) {
  if (n < 0 || h < 1 || w < 1 || c < 1)
    fail(ErrorKind::kInvalidArgument, "global_average_pool: bad shape n=", n, " h=", h, " w=", w,
         " c=", c);
  if (n > 65535)
    fail(ErrorKind::kInvalidArgument, "global_average_pool: batch ", n,
         " exceeds the 65535 grid limit");
  if (n == 0) return;
  const dim3 grid(static_cast<unsigned>((c + kGapChannels - 1) / kGapChannels),
                  static_cast<unsigned>(n));
  const dim3 block(kGapChannels, kGapLanes);
  switch (type) {
    case StorageType::kFloat32:
      global_average_pool_kernel<<<grid, block, 0, stream>>>(static_cast<const float*>(x),
                                                             static_cast<float*>(y), h * w, c);
      break;
    case StorageType::kFloat16:
      global_average_pool_kernel<<<grid, block, 0, stream>>>(static_cast<const __half*>(x),
                                                             static_cast<__half*>(y), h * w, c);
      break;
  }
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
