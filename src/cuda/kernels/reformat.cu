// Transposes go through 32 x 32 shared-memory tiles so that both the NCHW
// side (contiguous along pixels) and the NHWC side (contiguous along
// channels) are read and written by whole warps at consecutive addresses.
// Inputs of at most 8 stored channels (RGB images, the engine's hottest
// reformat) skip the tile, which would leave most of its threads idle: one
// thread per pixel reads its few channels (consecutive threads, consecutive
// addresses) and writes the padded pixel as one vector store.
#include <cuda_fp16.h>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/reformat.h"
#include "cuda/kernels/storage_io.cuh"

namespace anvil::cuda::kernels {
namespace {

constexpr int kTile = 32;
constexpr int kRows = 8;  // a block is kTile x kRows threads; each covers kTile / kRows rows

// One image is a [c, hw] matrix in NCHW and a [hw, c_pad] matrix in NHWC.
// Block (x, y, z) handles pixels [x * 32, +32), channels [y * 32, +32) of image z.
template <typename T>
__global__ void nchw_to_nhwc_kernel(const float* __restrict__ src, T* __restrict__ dst, long long c,
                                    long long hw, long long c_pad) {
  __shared__ float tile[kTile][kTile + 1];  // +1: no bank conflicts on the transposed read
  const long long p0 = static_cast<long long>(blockIdx.x) * kTile;
  const long long c0 = static_cast<long long>(blockIdx.y) * kTile;
  const float* image = src + static_cast<long long>(blockIdx.z) * c * hw;
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const long long ch = c0 + r, p = p0 + threadIdx.x;
    tile[r][threadIdx.x] = ch < c && p < hw ? image[ch * hw + p] : 0.0f;
  }
  __syncthreads();
  T* out = dst + static_cast<long long>(blockIdx.z) * hw * c_pad;
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const long long p = p0 + r, ch = c0 + threadIdx.x;
    if (p < hw && ch < c_pad) out[p * c_pad + ch] = from_float<T>(tile[threadIdx.x][r]);
  }
}

// One stored pixel of kCPad channels, written with a single store.
template <typename T, int kCPad>
struct alignas(sizeof(T) * kCPad) Pixel {
  T v[kCPad];
};

// Block (x, y) handles pixels [x * blockDim.x, +blockDim.x) of image y.
template <typename T, int kCPad>
__global__ void nchw_to_nhwc_narrow_kernel(const float* __restrict__ src, T* __restrict__ dst,
                                           int c, long long hw) {
  const long long p = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= hw) return;
  const long long image = blockIdx.y;
  const float* in = src + image * c * hw + p;
  Pixel<T, kCPad> out;
#pragma unroll
  for (int ch = 0; ch < kCPad; ++ch)
    out.v[ch] = from_float<T>(ch < c ? in[ch * hw] : 0.0f);
  reinterpret_cast<Pixel<T, kCPad>*>(dst)[image * hw + p] = out;
}

template <typename T, int kCPad>
void launch_narrow(const float* src, void* dst, const ImageShape& s, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const long long hw = s.h * s.w;
  const dim3 grid(static_cast<unsigned>((hw + kThreads - 1) / kThreads),
                  static_cast<unsigned>(s.n));
  nchw_to_nhwc_narrow_kernel<T, kCPad>
      <<<grid, kThreads, 0, stream>>>(src, static_cast<T*>(dst), static_cast<int>(s.c), hw);
}

// Block (x, y, z) handles pixels [x * 32, +32), channels [y * 32, +32) of image z.
template <typename T>
__global__ void nhwc_to_nchw_kernel(const T* __restrict__ src, float* __restrict__ dst, long long c,
                                    long long hw, long long c_pad) {
  __shared__ float tile[kTile][kTile + 1];
  const long long p0 = static_cast<long long>(blockIdx.x) * kTile;
  const long long c0 = static_cast<long long>(blockIdx.y) * kTile;
  const T* image = src + static_cast<long long>(blockIdx.z) * hw * c_pad;
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const long long p = p0 + r, ch = c0 + threadIdx.x;
    tile[r][threadIdx.x] = p < hw && ch < c ? to_float(image[p * c_pad + ch]) : 0.0f;
  }
  __syncthreads();
  float* out = dst + static_cast<long long>(blockIdx.z) * c * hw;
  for (int r = threadIdx.y; r < kTile; r += kRows) {
    const long long ch = c0 + r, p = p0 + threadIdx.x;
    if (ch < c && p < hw) out[ch * hw + p] = tile[threadIdx.x][r];
  }
}

template <typename T>
__global__ void unpad_rows_kernel(const T* __restrict__ src, float* __restrict__ dst,
                                  long long rows, long long c, long long c_pad) {
  const long long total = rows * c;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    dst[i] = to_float(src[(i / c) * c_pad + i % c]);
}

void check_shape(const char* what, const ImageShape& s) {
  if (s.n < 0 || s.c < 1 || s.h < 0 || s.w < 0 || s.c_pad < s.c)
    fail(ErrorKind::kInvalidArgument, what, ": bad shape n=", s.n, " c=", s.c, " h=", s.h,
         " w=", s.w, " c_pad=", s.c_pad, " (need c >= 1, c_pad >= c)");
  if (s.n > 65535)
    fail(ErrorKind::kInvalidArgument, what, ": batch ", s.n, " exceeds the 65535 grid limit");
}

// Grid over (pixel tiles, channel tiles, images) of `channels` channels.
dim3 tile_grid(const ImageShape& s, std::int64_t channels) {
  return dim3(static_cast<unsigned>((s.h * s.w + kTile - 1) / kTile),
              static_cast<unsigned>((channels + kTile - 1) / kTile), static_cast<unsigned>(s.n));
}

}  // namespace

void nchw_to_nhwc(const float* src, void* dst, StorageType dst_type, const ImageShape& shape,
                  cudaStream_t stream) {
  check_shape("nchw_to_nhwc", shape);
  if (shape.n == 0 || shape.h * shape.w == 0) return;
  const bool fp16 = dst_type == StorageType::kFloat16;
  if (shape.c_pad == 4 || (fp16 && shape.c_pad == 8)) {
    if (!fp16)
      launch_narrow<float, 4>(src, dst, shape, stream);
    else if (shape.c_pad == 4)
      launch_narrow<__half, 4>(src, dst, shape, stream);
    else
      launch_narrow<__half, 8>(src, dst, shape, stream);
    ANVIL_GPU_CHECK(cudaGetLastError());
    return;
  }
  const dim3 grid = tile_grid(shape, shape.c_pad), block(kTile, kRows);
  const long long hw = shape.h * shape.w;
  switch (dst_type) {
    case StorageType::kFloat32:
      nchw_to_nhwc_kernel<<<grid, block, 0, stream>>>(src, static_cast<float*>(dst), shape.c, hw,
                                                      shape.c_pad);
      break;
    case StorageType::kFloat16:
      nchw_to_nhwc_kernel<<<grid, block, 0, stream>>>(src, static_cast<__half*>(dst), shape.c, hw,
                                                      shape.c_pad);
      break;
  }
  ANVIL_GPU_CHECK(cudaGetLastError());
}

void nhwc_to_nchw(const void* src, StorageType src_type, float* dst, const ImageShape& shape,
                  cudaStream_t stream) {
  check_shape("nhwc_to_nchw", shape);
  if (shape.n == 0 || shape.h * shape.w == 0) return;
  const dim3 grid = tile_grid(shape, shape.c), block(kTile, kRows);
  const long long hw = shape.h * shape.w;
  switch (src_type) {
    case StorageType::kFloat32:
      nhwc_to_nchw_kernel<<<grid, block, 0, stream>>>(static_cast<const float*>(src), dst, shape.c,
                                                      hw, shape.c_pad);
      break;
    case StorageType::kFloat16:
      nhwc_to_nchw_kernel<<<grid, block, 0, stream>>>(static_cast<const __half*>(src), dst, shape.c,
                                                      hw, shape.c_pad);
      break;
  }
  ANVIL_GPU_CHECK(cudaGetLastError());
}

void unpad_rows(const void* src, StorageType src_type, float* dst, std::int64_t rows,
                std::int64_t c, std::int64_t c_pad, cudaStream_t stream) {
  if (rows < 0 || c < 1 || c_pad < c)
    fail(ErrorKind::kInvalidArgument, "unpad_rows: bad shape rows=", rows, " c=", c,
         " c_pad=", c_pad);
  if (rows == 0) return;
  constexpr int kThreads = 256;
  const unsigned grid = grid_for(rows * c, kThreads);
  switch (src_type) {
    case StorageType::kFloat32:
      unpad_rows_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const float*>(src), dst, rows, c,
                                                       c_pad);
      break;
    case StorageType::kFloat16:
      unpad_rows_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const __half*>(src), dst, rows,
                                                       c, c_pad);
      break;
  }
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
