// The stem as an implicit GEMM on mma.sync tensor cores. A block owns 8 x 8
// pooled pixels of one image at a time (4 x 4 for small batches; persistent
// blocks loop over tiles):
//  1. the 39 x 40 input pixels they need go to shared memory (zeros outside
//     the image: the conv's padding);
//  2. the 17 x 17 conv outputs under the pool windows are a GEMM of
//     M = 289 pixels, N = 64 channels, K = 7 filter rows x 8 taps x 4
//     channels = 224 (the 8th tap has zero weight, so that each filter row's
//     K slice is 32 contiguous halves of one input row: ldmatrix reads the
//     im2col matrix straight from the input tile);
//  3. bias and activation, FP16, into a shared conv tile;
//  4. the 3 x 3 stride-2 max over it, skipping taps outside the conv output
//     (the pool's padding), written as 16-byte vectors.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/stem_conv_pool.h"

namespace anvil::cuda::kernels {
namespace {

// The tile geometry for kPoolTile x kPoolTile pooled pixels per block tile:
// 8 (M = 289 conv pixels, 5 warps) for full waves, 4 (M = 81, 3 warps) when
// the batch is too small to fill the GPU with 8 x 8 tiles.
template <int kPoolTile>
struct Tile {
  static constexpr int kConvSide = 2 * kPoolTile + 1;        // conv pixels per side
  static constexpr int kConvPixels = kConvSide * kConvSide;  // the GEMM's M
  static constexpr int kMTiles = (kConvPixels + 15) / 16;    // mma tiles of 16 rows
  static constexpr int kInRows = 2 * (kConvSide - 1) + kStemKernel;
  static constexpr int kInCols = 2 * (kConvSide - 1) + 8;  // 8 taps per filter row
  static constexpr int kInRowBytes = kInCols * 8;          // 4 halves per pixel
  static constexpr int kPairs = (kMTiles + 1) / 2;         // a warp's unit of work
  static constexpr int kWarps = kPairs > 5 ? (kPairs + 1) / 2 : kPairs;
  static constexpr int kThreads = kWarps * 32;
  // Resident blocks per SM (shared memory bounds it: 84 KB or 46 KB a block).
  static constexpr int kBlocksPerSm = kPoolTile == 8 ? 2 : 4;
  static constexpr int kInBytes = kInRows * kInRowBytes;
  static constexpr int kOutBytes = kConvPixels * (kStemOutChannels + 8) * 2;
};

constexpr int kPixelBytes = kStemInChannels * 2;         // 8
constexpr int kKPerRow = 8 * kStemInChannels;            // 32
constexpr int kKSteps = kStemKernel * kKPerRow / 16;     // 14 mma steps of K = 16
constexpr int kWRowHalves = kStemKernel * kKPerRow + 8;  // 232: rows 464 B apart,
                                                         // so ldmatrix has no conflicts
constexpr int kOutRowHalves = kStemOutChannels + 8;      // 72: conflict-free stores
constexpr int kNTiles = kStemOutChannels / 8;            // 8 mma tiles of 8 columns
constexpr int kWBytes = kStemOutChannels * kWRowHalves * 2;

template <int kPoolTile>
constexpr int smem_bytes() {
  return Tile<kPoolTile>::kInBytes + kWBytes + Tile<kPoolTile>::kOutBytes;
}

struct Dims {
  int in_h, in_w, conv_h, conv_w, out_h, out_w, tiles_y, tiles_x;
  long long tiles;
  bool relu;
};

__device__ __forceinline__ unsigned shared_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(unsigned address, unsigned (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// d += a (16 x 16, row-major) * b (16 x 8, column-major), FP16 in, FP32 out.
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const unsigned (&a)[4], unsigned b0,
                                            unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Filter [64, 7, 7, 4] -> s_w[n][ky * 32 + kx * 4 + c], tap kx = 7 zero.
// The loops stride by the block size as a constant (kThreads), so the
// compiler can unroll them.
template <int kThreads>
__device__ void load_filter(const __half* filter, __half* s_w) {
  for (int i = threadIdx.x; i < kStemOutChannels * kStemKernel * 8; i += kThreads) {
    const int n = i / (kStemKernel * 8), ky = i / 8 % kStemKernel, kx = i % 8;
    uint2 v = make_uint2(0, 0);
    if (kx < kStemKernel)
      v = *reinterpret_cast<const uint2*>(filter + ((n * kStemKernel + ky) * kStemKernel + kx) * 4);
    *reinterpret_cast<uint2*>(s_w + n * kWRowHalves + ky * kKPerRow + kx * 4) = v;
  }
}

// The input pixels of the conv tile at (cy0, cx0), zeros outside the image.
template <int kPoolTile>
__device__ void load_input(const __half* image, const Dims& d, int cy0, int cx0,
                           unsigned char* s_in) {
  using T = Tile<kPoolTile>;
  const int iy0 = 2 * cy0 - 3, ix0 = 2 * cx0 - 3;
  for (int i = threadIdx.x; i < T::kInRows * T::kInCols; i += T::kThreads) {
    const int r = i / T::kInCols, col = i % T::kInCols;
    const int iy = iy0 + r, ix = ix0 + col;
    uint2 v = make_uint2(0, 0);
    if (iy >= 0 && iy < d.in_h && ix >= 0 && ix < d.in_w)
      v = *reinterpret_cast<const uint2*>(image + (static_cast<long long>(iy) * d.in_w + ix) * 4);
    *reinterpret_cast<uint2*>(s_in + r * T::kInRowBytes + col * kPixelBytes) = v;
  }
}

// Conv outputs of m-tiles mt0 and mt0 + 1 (if `two`) -> s_out, with bias and
// activation. Each lane addresses one ldmatrix row of A and of B.
template <int kPoolTile>
__device__ void conv_tiles(int mt0, bool two, const unsigned char* s_in, const __half* s_w,
                           const float (&bias)[kNTiles][2], bool relu, __half* s_out) {
  using T = Tile<kPoolTile>;
  const int lane = threadIdx.x % 32;
  unsigned a_base[2];
  for (int t = 0; t < 2; ++t) {
    // Rows (lane / 8 % 2) * 8 + lane % 8 of the tile; K offset 8 for lanes 16-31.
    const int m = min((mt0 + t) * 16 + (lane / 8 % 2) * 8 + lane % 8, T::kConvPixels - 1);
    const int ty = m / T::kConvSide, tx = m % T::kConvSide;
    a_base[t] =
        shared_address(s_in + 2 * ty * T::kInRowBytes + 2 * tx * kPixelBytes + lane / 16 * 16);
  }
  // Rows n = (lane / 16) * 8 + lane % 8 of an n-tile pair; K offset 8 for lanes 8-15, 24-31.
  const unsigned b_base =
      shared_address(s_w + (lane / 16 * 8 + lane % 8) * kWRowHalves + lane / 8 % 2 * 8);
  float acc[2][kNTiles][4] = {};
#pragma unroll
  for (int ks = 0; ks < kKSteps; ++ks) {
    const unsigned a_offset = ks / 2 * T::kInRowBytes + ks % 2 * 32;
    unsigned a[2][4];
    ldmatrix_x4(a_base[0] + a_offset, a[0]);
    if (two) ldmatrix_x4(a_base[1] + a_offset, a[1]);
#pragma unroll
    for (int np = 0; np < kNTiles / 2; ++np) {
      unsigned b[4];
      ldmatrix_x4(b_base + (np * 16 * kWRowHalves + ks * 16) * 2, b);
      mma_16x8x16(acc[0][2 * np], a[0], b[0], b[1]);
      mma_16x8x16(acc[0][2 * np + 1], a[0], b[2], b[3]);
      if (two) {
        mma_16x8x16(acc[1][2 * np], a[1], b[0], b[1]);
        mma_16x8x16(acc[1][2 * np + 1], a[1], b[2], b[3]);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < 2; ++t) {
    if (t == 1 && !two) break;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int m = (mt0 + t) * 16 + lane / 4 + half * 8;
      if (m >= T::kConvPixels) continue;
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt) {
        float v0 = acc[t][nt][2 * half] + bias[nt][0];
        float v1 = acc[t][nt][2 * half + 1] + bias[nt][1];
        if (relu) v0 = fmaxf(v0, 0.0f), v1 = fmaxf(v1, 0.0f);
        *reinterpret_cast<__half2*>(s_out + m * kOutRowHalves + nt * 8 + lane % 4 * 2) =
            __floats2half2_rn(v0, v1);
      }
    }
  }
}

// The 3 x 3 stride-2 max pool of the conv tile at (cy0, cx0): pooled pixels
// (py0, px0) + [0, kPoolTile)^2, 8 channels (16 bytes) per item.
template <int kPoolTile>
__device__ void pool_tile(const __half* s_out, const Dims& d, int py0, int px0, int cy0, int cx0,
                          __half* out_image) {
  for (int i = threadIdx.x; i < kPoolTile * kPoolTile * 8; i += Tile<kPoolTile>::kThreads) {
    const int g = i % 8, py = i / 8 / kPoolTile, px = i / 8 % kPoolTile;
    const int oy = py0 + py, ox = px0 + px;
    if (oy >= d.out_h || ox >= d.out_w) continue;
    __half2 best[4];
    for (int j = 0; j < 4; ++j)
      best[j] = __float2half2_rn(-INFINITY);
    for (int dy = 0; dy < 3; ++dy) {
      const int ty = 2 * py + dy, cy = cy0 + ty;
      if (cy < 0 || cy >= d.conv_h) continue;
      for (int dx = 0; dx < 3; ++dx) {
        const int tx = 2 * px + dx, cx = cx0 + tx;
        if (cx < 0 || cx >= d.conv_w) continue;
        const uint4 v = *reinterpret_cast<const uint4*>(
            s_out + (ty * Tile<kPoolTile>::kConvSide + tx) * kOutRowHalves + g * 8);
        const __half2* h = reinterpret_cast<const __half2*>(&v);
        for (int j = 0; j < 4; ++j)
          best[j] = __hmax2(best[j], h[j]);
      }
    }
    *reinterpret_cast<uint4*>(out_image + (static_cast<long long>(oy) * d.out_w + ox) * 64 +
                              g * 8) = *reinterpret_cast<const uint4*>(best);
  }
}

template <int kPoolTile>
__global__ void __launch_bounds__(Tile<kPoolTile>::kThreads, Tile<kPoolTile>::kBlocksPerSm)
    stem_conv_pool_kernel(const __half* __restrict__ x, const __half* __restrict__ filter,
                          const float* __restrict__ bias, __half* __restrict__ y, Dims d) {
  extern __shared__ __align__(16) unsigned char smem[];
  unsigned char* s_in = smem;
  using T = Tile<kPoolTile>;
  __half* s_w = reinterpret_cast<__half*>(smem + T::kInBytes);
  __half* s_out = reinterpret_cast<__half*>(smem + T::kInBytes + kWBytes);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  load_filter<T::kThreads>(filter, s_w);
  float lane_bias[kNTiles][2];  // columns nt * 8 + (lane % 4) * 2 + {0, 1}
  for (int nt = 0; nt < kNTiles; ++nt)
    for (int j = 0; j < 2; ++j)
      lane_bias[nt][j] = bias[nt * 8 + lane % 4 * 2 + j];

  const int tiles_per_image = d.tiles_y * d.tiles_x;
  for (long long tile = blockIdx.x; tile < d.tiles; tile += gridDim.x) {
    const long long image = tile / tiles_per_image;
    const int within = static_cast<int>(tile % tiles_per_image);
    const int py0 = within / d.tiles_x * kPoolTile, px0 = within % d.tiles_x * kPoolTile;
    const int cy0 = 2 * py0 - 1, cx0 = 2 * px0 - 1;  // the conv tile's first pixel
    __syncthreads();  // the previous tile is done with s_in and s_out (and s_w is loaded)
    load_input<kPoolTile>(x + image * d.in_h * d.in_w * kStemInChannels, d, cy0, cx0, s_in);
    __syncthreads();
    for (int pair = warp; pair < T::kPairs; pair += T::kWarps)
      conv_tiles<kPoolTile>(2 * pair, 2 * pair + 1 < T::kMTiles, s_in, s_w, lane_bias, d.relu,
                            s_out);
    __syncthreads();
    pool_tile<kPoolTile>(s_out, d, py0, px0, cy0, cx0,
                         y + image * d.out_h * d.out_w * static_cast<long long>(kStemOutChannels));
  }
}

template <int kPoolTile>
void launch(const void* x, const void* filter, const float* bias, void* y, Dims d, int sms,
            cudaStream_t stream) {
  using T = Tile<kPoolTile>;
  d.tiles_y = (d.out_h + kPoolTile - 1) / kPoolTile;
  d.tiles_x = (d.out_w + kPoolTile - 1) / kPoolTile;
  d.tiles *= static_cast<long long>(d.tiles_y) * d.tiles_x;
  constexpr int kSmem = smem_bytes<kPoolTile>();
  ANVIL_GPU_CHECK(cudaFuncSetAttribute(stem_conv_pool_kernel<kPoolTile>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  const long long blocks =
      std::min<long long>(d.tiles, static_cast<long long>(sms) * T::kBlocksPerSm);
  stem_conv_pool_kernel<kPoolTile><<<static_cast<unsigned>(blocks), T::kThreads, kSmem, stream>>>(
      static_cast<const __half*>(x), static_cast<const __half*>(filter), bias,
      static_cast<__half*>(y), d);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace

void stem_conv_pool(const void* x, const void* filter, const float* bias, void* y,
                    const StemShape& s, cudaStream_t stream) {
  if (s.n < 0 || s.in_h < 1 || s.in_w < 1 || s.in_h > (1 << 20) || s.in_w > (1 << 20))
    fail(ErrorKind::kInvalidArgument, "stem_conv_pool: bad shape n=", s.n, " in=", s.in_h, "x",
         s.in_w);
  for (const void* p : {x, filter, static_cast<const void*>(bias), static_cast<const void*>(y)})
    if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0)
      fail(ErrorKind::kInvalidArgument, "stem_conv_pool: pointer ", p, " is not 16-byte aligned");
  if (s.n == 0) return;
  Dims d{};
  d.in_h = static_cast<int>(s.in_h);
  d.in_w = static_cast<int>(s.in_w);
  d.conv_h = static_cast<int>(s.conv_h());
  d.conv_w = static_cast<int>(s.conv_w());
  d.out_h = static_cast<int>(s.out_h());
  d.out_w = static_cast<int>(s.out_w());
  d.tiles = s.n;  // times the tiles per image, in launch()
  d.relu = s.relu;
  int device = 0, sms = 0;
  ANVIL_GPU_CHECK(cudaGetDevice(&device));
  ANVIL_GPU_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  // 8 x 8 tiles waste less work on overlapping windows; 4 x 4 ones keep every
  // SM busy when a small batch has fewer 8 x 8 tiles than two per SM.
  const long long big_tiles = s.n * ((s.out_h() + 7) / 8) * ((s.out_w() + 7) / 8);
  if (big_tiles >= 2LL * sms)
    launch<8>(x, filter, bias, y, d, sms, stream);
  else
    launch<4>(x, filter, bias, y, d, sms, stream);
}

}  // namespace anvil::cuda::kernels
