// Window pools: one thread per output pixel and 16-byte group of channels
// (8 halves or 4 floats; channels fastest, so a warp reads 512 consecutive
// bytes per tap in NHWC), with 32-bit index arithmetic. Tensors whose channel
// count is not a multiple of the group, or too large for 32-bit indices,
// take the general kernel: one thread per output element.
// GlobalAveragePool: a block of 32 channels x 8 pixel lanes, reduced in shared memory
// (of an INT8 tensor: 128 channels x 8 lanes, in INT32).
#include <cuda_fp16.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <type_traits>

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
// I: int (the vectorized kernel) or long long; always named at the call.
template <typename I>
__device__ __forceinline__ Taps taps_within(I start, int kernel, int dilation, I low, I high) {
  I first = start >= low ? 0 : (low - start + dilation - 1) / dilation;
  I last = start >= high ? 0 : (high - 1 - start) / dilation + 1;
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
    const Taps th = taps_within<long long>(h0, p.kernel_h, p.dilation_h, 0, p.in_h);
    const Taps tw = taps_within<long long>(w0, p.kernel_w, p.dilation_w, 0, p.in_w);
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
            taps_within<long long>(h0, p.kernel_h, p.dilation_h, -p.pad_top, p.in_h + p.pad_bottom);
        const Taps pw =
            taps_within<long long>(w0, p.kernel_w, p.dilation_w, -p.pad_left, p.in_w + p.pad_right);
        count = static_cast<long long>(ph.last - ph.first) * (pw.last - pw.first);
      }
      acc = count > 0 ? acc / static_cast<float>(count) : 0.0f;
    }
    y[i] = from_float<T>(acc);
  }
}

// Block (x, y) handles output pixels [x * blockDim.x, +blockDim.x) of image
// y, over `groups` 16-byte channel groups (threads: group fastest).
template <typename T, PoolKind kKind>
__global__ void pool_2d_vec_kernel(const T* __restrict__ x, T* __restrict__ y, Pool2d p,
                                   unsigned groups) {
  constexpr int kVec = kVec16<T>;
  const unsigned out_pixels = static_cast<unsigned>(p.out_h * p.out_w);
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= out_pixels * groups) return;
  const unsigned g = i % groups, pixel = i / groups;
  const int ow = static_cast<int>(pixel % static_cast<unsigned>(p.out_w));
  const int oh = static_cast<int>(pixel / static_cast<unsigned>(p.out_w));
  const int in_h = static_cast<int>(p.in_h), in_w = static_cast<int>(p.in_w);
  const int h0 = oh * p.stride_h - p.pad_top, w0 = ow * p.stride_w - p.pad_left;
  const Taps th = taps_within<int>(h0, p.kernel_h, p.dilation_h, 0, in_h);
  const Taps tw = taps_within<int>(w0, p.kernel_w, p.dilation_w, 0, in_w);
  const int c = static_cast<int>(p.c);
  const T* plane = x + static_cast<long long>(blockIdx.y) * in_h * in_w * c + g * kVec;
  float acc[kVec];
#pragma unroll
  for (int v = 0; v < kVec; ++v)
    acc[v] = kKind == PoolKind::kMax ? -FLT_MAX : 0.0f;
  for (int kh = th.first; kh < th.last; ++kh) {
    const T* row = plane + (h0 + kh * p.dilation_h) * in_w * c;
    for (int kw = tw.first; kw < tw.last; ++kw) {
      float tap[kVec];
      load16(row + (w0 + kw * p.dilation_w) * c, tap);
#pragma unroll
      for (int v = 0; v < kVec; ++v)
        acc[v] = kKind == PoolKind::kMax ? fmaxf(acc[v], tap[v]) : acc[v] + tap[v];
    }
  }
  if constexpr (kKind == PoolKind::kAverage) {
    int count = (th.last - th.first) * (tw.last - tw.first);
    if (p.count_include_pad) {
      const Taps ph =
          taps_within<int>(h0, p.kernel_h, p.dilation_h, -p.pad_top, in_h + p.pad_bottom);
      const Taps pw =
          taps_within<int>(w0, p.kernel_w, p.dilation_w, -p.pad_left, in_w + p.pad_right);
      count = (ph.last - ph.first) * (pw.last - pw.first);
    }
#pragma unroll
    for (int v = 0; v < kVec; ++v)
      acc[v] = count > 0 ? acc[v] / static_cast<float>(count) : 0.0f;
  }
  store16(y + (static_cast<long long>(blockIdx.y) * out_pixels + pixel) * c + g * kVec, acc);
}

// Whether the vectorized kernel takes `p`: whole 16-byte channel groups, 32-bit
// indices within an image, and a batch that fits the grid's y extent.
template <typename T>
bool vectorizable(const Pool2d& p) {
  constexpr long long kLimit = 1LL << 31;
  return p.c % kVec16<T> == 0 && p.n <= 65535 && p.in_h * p.in_w * p.c < kLimit &&
         p.out_h * p.out_w * p.c < kLimit;
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

constexpr int kGapInt8Groups = 32;  // 4-channel groups a block: 128 channels
constexpr int kGapInt8Lanes = 8;

// The signed bytes of v, lowest first, each as an int.
__device__ __forceinline__ int4 unpack_s8x4(int v) {
  return make_int4((v << 24) >> 24, (v << 16) >> 24, (v << 8) >> 24, v >> 24);
}

// Block (x, y) averages channels [x * 128, +128) of INT8 image y, a thread 4
// channels (one 32-bit load a pixel): lane threadIdx.y sums pixels
// threadIdx.y, +8, ... exactly in INT32; shared memory adds the 8 lanes.
__global__ void global_average_pool_int8_kernel(const int* __restrict__ x, __half* __restrict__ y,
                                                long long hw, long long c, float scale) {
  __shared__ int4 partial[kGapInt8Lanes][kGapInt8Groups];
  const long long groups = c / 4;
  const long long group = static_cast<long long>(blockIdx.x) * kGapInt8Groups + threadIdx.x;
  const int* image = x + static_cast<long long>(blockIdx.y) * hw * groups;
  int4 sum = make_int4(0, 0, 0, 0);
  if (group < groups)
    for (long long p = threadIdx.y; p < hw; p += kGapInt8Lanes) {
      const int4 q = unpack_s8x4(image[p * groups + group]);
      sum.x += q.x;
      sum.y += q.y;
      sum.z += q.z;
      sum.w += q.w;
    }
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || group >= groups) return;
  int total[4] = {0, 0, 0, 0};
#pragma unroll
  for (int lane = 0; lane < kGapInt8Lanes; ++lane) {
    const int4 v = partial[lane][threadIdx.x];
    total[0] += v.x;
    total[1] += v.y;
    total[2] += v.z;
    total[3] += v.w;
  }
  const float count = static_cast<float>(hw);
  __half out[4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
    out[i] = __float2half_rn(static_cast<float>(total[i]) * scale / count);
  *reinterpret_cast<uint2*>(y + static_cast<long long>(blockIdx.y) * c + group * 4) =
      *reinterpret_cast<const uint2*>(out);
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
  auto launch_vec = [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const auto groups = static_cast<unsigned>(p.c / kVec16<T>);
    const long long per_image = p.out_h * p.out_w * groups;
    const dim3 grid(static_cast<unsigned>((per_image + kThreads - 1) / kThreads),
                    static_cast<unsigned>(p.n));
    pool_2d_vec_kernel<T, kKind>
        <<<grid, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), p, groups);
    ANVIL_GPU_CHECK(cudaGetLastError());
  };
  if (type == StorageType::kFloat16 && vectorizable<__half>(p))
    return launch_vec(static_cast<__half*>(nullptr));
  if (type == StorageType::kFloat32 && vectorizable<float>(p))
    return launch_vec(static_cast<float*>(nullptr));
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

void global_average_pool_int8(const void* x, void* y, std::int64_t n, std::int64_t h,
                              std::int64_t w, std::int64_t c, float scale, cudaStream_t stream) {
  if (n < 0 || h < 1 || w < 1 || c < 4 || c % 4 != 0)
    fail(ErrorKind::kInvalidArgument, "global_average_pool_int8: bad shape n=", n, " h=", h,
         " w=", w, " c=", c, " (c a positive multiple of 4)");
  if (!(scale > 0.0f) || !std::isfinite(scale))
    fail(ErrorKind::kInvalidArgument, "global_average_pool_int8: scale ", scale,
         " must be positive and finite");
  if (h * w > (1LL << 23))
    fail(ErrorKind::kInvalidArgument, "global_average_pool_int8: ", h, " x ", w,
         " pixels: an INT32 sum of 2^24 or more bytes could overflow");
  if (n > 65535)
    fail(ErrorKind::kInvalidArgument, "global_average_pool_int8: batch ", n,
         " exceeds the 65535 grid limit");
  if (reinterpret_cast<std::uintptr_t>(x) % 4 != 0 || reinterpret_cast<std::uintptr_t>(y) % 8 != 0)
    fail(ErrorKind::kInvalidArgument, "global_average_pool_int8: x must be 4-byte and y 8-byte ",
         "aligned");
  if (n == 0) return;
  const long long groups = c / 4;
  const dim3 grid(static_cast<unsigned>((groups + kGapInt8Groups - 1) / kGapInt8Groups),
                  static_cast<unsigned>(n));
  const dim3 block(kGapInt8Groups, kGapInt8Lanes);
  global_average_pool_int8_kernel<<<grid, block, 0, stream>>>(
      static_cast<const int*>(x), static_cast<__half*>(y), h * w, c, scale);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
