// The stem as an implicit GEMM on mma.sync tensor cores: the kernel for any
// GPU since Ampere and any input size. On Hopper, 224-wide inputs go to the
// row kernel (stem_conv_pool_rows.cu, wgmma), twice as fast; stem_conv_pool()
// at the end of this file picks. A block owns a tile
// of kPoolRows x kPoolCols pooled pixels of one image at a time (7 x 8 for
// full waves, 4 x 4 for small batches; persistent blocks loop over tiles):
//  1. the input pixels the tile needs are in shared memory (zeros outside the
//     image: the conv's padding), loaded with cp.async while the block still
//     computes the previous tile (two input buffers). The network's own FP32
//     NCHW input (StemInput::kFloat32Nchw) is staged as its three planes'
//     rows instead and converted to the FP16 tile at the tile's start;
//  2. the conv outputs under the tile's pool windows, (2 kPoolRows + 1) x
//     (2 kPoolCols + 1) of them, are a GEMM of M = those pixels, N = 64
//     channels, K = 7 filter rows x 8 taps x 4 channels = 224 (the 8th tap
//     has zero weight, so that each filter row's K slice is 32 contiguous
//     halves of one input row: ldmatrix reads the im2col matrix straight from
//     the input tile). Each warp owns two m-tiles of 16 rows, all 64 columns;
//  3. bias and activation, FP16, into a shared conv tile;
//  4. the 3 x 3 stride-2 max over it, skipping taps outside the conv output
//     (the pool's padding), written as 16-byte vectors: 8 FP16 channels, or
//     16 INT8 ones quantized from exactly the FP16 maxima the FP16 variant
//     stores (so the INT8 variant equals it followed by the quantize layer).
//
// Why 7 x 8: its 15 x 17 = 255 conv pixels fill 16 m-tiles (one row spare),
// eight warps with no idle half; 56 x 56 pooled outputs split into whole
// tiles; two blocks (16 warps) fit an SM. On an H100 at batch 128 this took
// 0.186 ms against 0.272 ms for the 8 x 8 tiles (5 warps, no prefetch) it
// replaced, which the profiler showed latency-bound (0.37 eligible warps per
// scheduler, tensor pipe 33% busy); docs/PERFORMANCE.md has the variants.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/int8_math.cuh"
#include "cuda/kernels/stem_conv_pool.h"
#include "cuda/kernels/stem_conv_pool_rows.h"
#include "cuda/kernels/stem_output.cuh"
#include "cuda/kernels/tensor_core.cuh"

namespace anvil::cuda::kernels {
namespace {

constexpr int kPixelBytes = kStemInChannels * 2;         // 8
constexpr int kKPerRow = 8 * kStemInChannels;            // 32
constexpr int kKSteps = kStemKernel * kKPerRow / 16;     // 14 mma steps of K = 16
constexpr int kWRowHalves = kStemKernel * kKPerRow + 8;  // 232: rows 464 B apart,
                                                         // so ldmatrix has no conflicts
constexpr int kOutRowHalves = kStemOutChannels + 8;      // 72: conflict-free stores
constexpr int kNTiles = kStemOutChannels / 8;            // 8 mma tiles of 8 columns
constexpr int kWBytes = kStemOutChannels * kWRowHalves * 2;

// Shared memory an SM gives its blocks (227 KB on Hopper, less 1 KB a
// block that the runtime keeps).
constexpr int kSmemPerSm = 227 * 1024;

// The geometry of a tile of kPoolRows x kPoolCols pooled pixels, reading an
// input stored as `kIn`.
template <int kPoolRows, int kPoolCols, StemInput kIn>
struct Tile {
  static constexpr int kPoolRowsV = kPoolRows, kPoolColsV = kPoolCols;
  static constexpr int kConvRows = 2 * kPoolRows + 1, kConvCols = 2 * kPoolCols + 1;
  static constexpr int kConvPixels = kConvRows * kConvCols;  // the GEMM's M
  static constexpr int kMTiles = (kConvPixels + 15) / 16;    // mma tiles of 16 rows
  static constexpr int kWarps = (kMTiles + 1) / 2;           // two m-tiles each
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kInRows = 2 * (kConvRows - 1) + kStemKernel;
  static constexpr int kInCols = 2 * (kConvCols - 1) + 8;  // 8 taps per filter row
  static constexpr int kInRowBytes = kInCols * kPixelBytes;
  static constexpr int kInBytes = kInRows * kInRowBytes;
  static constexpr int kOutBytes = kConvPixels * kOutRowHalves * 2;
  // FP32 NCHW input: the three planes' rows as they are in memory, each from
  // the 16-byte chunk that holds its first pixel (3 floats before it, as
  // the input tile starts at 4 px0 - 5) to the chunk that holds its last.
  static constexpr bool kPlanar = kIn == StemInput::kFloat32Nchw;
  static constexpr int kStageCols = (kInCols + 3 + 3) / 4 * 4;
  static constexpr int kStageBytes = kPlanar ? 3 * kInRows * kStageCols * 4 : 0;
  // Shared memory: the filter, two input buffers (FP32 NCHW: two staging
  // buffers and the one FP16 tile converted from them), the conv tile.
  static constexpr int kSmemBytes =
      kWBytes + (kPlanar ? 2 * kStageBytes + kInBytes : 2 * kInBytes) + kOutBytes;
  // Resident blocks per SM, which shared memory and 119 registers a thread allow.
  static constexpr int kBlocksPerSm = std::min(kThreads > 128 ? 2 : 4, kSmemPerSm / kSmemBytes);
  static_assert(kInBytes % 16 == 0 && kStageBytes % 16 == 0 && kBlocksPerSm >= 1);
};
template <StemInput kIn>
using BigTile = Tile<7, 8, kIn>;
template <StemInput kIn>
using SmallTile = Tile<4, 4, kIn>;

struct Dims {
  int in_h, in_w, conv_h, conv_w, out_h, out_w, tiles_y, tiles_x;
  long long tiles;
  bool relu;
  bool whole_chunks;           // FP32 NCHW: rows of whole 16-byte chunks (in_w % 4 == 0)
  float int8_scale, int8_inv;  // the INT8 variants' (int8_math.cuh)
};

using Output = StemOutput;
template <Output kOut>
using OutType = StemOutType<kOut>;

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

// Where tile `tile` is: its image and its first pooled pixel.
struct TileOrigin {
  long long image;
  int py0, px0;
};

template <typename T>
__device__ TileOrigin tile_origin(const Dims& d, long long tile) {
  const int per_image = d.tiles_y * d.tiles_x;
  const int within = static_cast<int>(tile % per_image);
  return {tile / per_image, within / d.tiles_x * T::kPoolRowsV, within % d.tiles_x * T::kPoolColsV};
}

// Starts loading the input of tile `tile`'s conv tile (one cp.async group
// per thread): FP16 NHWC pixels into the FP16 tile `buffer`, or FP32 NCHW
// rows into the staging `buffer` (convert_staged makes the FP16 tile).
template <typename T>
__device__ void load_input_async(const void* x, const Dims& d, long long tile,
                                 unsigned char* buffer) {
  const TileOrigin o = tile_origin<T>(d, tile);
  // The conv tile's first pixel is (2 py0 - 1, 2 px0 - 1); its input's 3 before that.
  const int iy0 = 4 * o.py0 - 5, ix0 = 4 * o.px0 - 5;
  const long long plane = static_cast<long long>(d.in_h) * d.in_w;
  if constexpr (!T::kPlanar) {
    const __half* image = static_cast<const __half*>(x) + o.image * plane * kStemInChannels;
    for (int i = threadIdx.x; i < T::kInRows * T::kInCols; i += T::kThreads) {
      const int r = i / T::kInCols, col = i % T::kInCols;
      const int iy = iy0 + r, ix = ix0 + col;
      const bool inside = iy >= 0 && iy < d.in_h && ix >= 0 && ix < d.in_w;
      const __half* src = inside ? image + (static_cast<long long>(iy) * d.in_w + ix) * 4 : image;
      cp_async<8>(shared_address(buffer + r * T::kInRowBytes + col * kPixelBytes), src, inside);
    }
  } else {
    const float* image = static_cast<const float*>(x) + o.image * plane * 3;
    const int gx0 = ix0 - 3;  // a multiple of 4
    if (d.whole_chunks) {     // 16-byte chunks, each wholly inside the row or outside
      constexpr int kChunks = T::kStageCols / 4;
      for (int i = threadIdx.x; i < 3 * T::kInRows * kChunks; i += T::kThreads) {
        const int row = i / kChunks, chunk = i % kChunks;  // row: plane * kInRows + r
        const int iy = iy0 + row % T::kInRows, gx = gx0 + 4 * chunk;
        const bool inside = iy >= 0 && iy < d.in_h && gx >= 0 && gx < d.in_w;
        const float* src =
            inside ? image + row / T::kInRows * plane + static_cast<long long>(iy) * d.in_w + gx
                   : image;
        cp_async<16>(shared_address(buffer + (row * T::kStageCols + 4 * chunk) * 4), src, inside);
      }
    } else {
      for (int i = threadIdx.x; i < 3 * T::kInRows * T::kStageCols; i += T::kThreads) {
        const int row = i / T::kStageCols, col = i % T::kStageCols;
        const int iy = iy0 + row % T::kInRows, gx = gx0 + col;
        const bool inside = iy >= 0 && iy < d.in_h && gx >= 0 && gx < d.in_w;
        const float* src =
            inside ? image + row / T::kInRows * plane + static_cast<long long>(iy) * d.in_w + gx
                   : image;
        cp_async<4>(shared_address(buffer + (row * T::kStageCols + col) * 4), src, inside);
      }
    }
  }
  cp_async_commit();
}

// The staged FP32 planes -> the FP16 input tile, 3 channels and a zero one
// per pixel, rounded to nearest even as reformat_in rounds.
template <typename T>
__device__ void convert_staged(const float* stage, unsigned char* s_in) {
  constexpr int kPlane = T::kInRows * T::kStageCols;
  for (int i = threadIdx.x; i < T::kInRows * T::kInCols; i += T::kThreads) {
    const int r = i / T::kInCols, col = i % T::kInCols;
    const float* p = stage + r * T::kStageCols + col + 3;
    const __half2 rg = __floats2half2_rn(p[0], p[kPlane]);
    const __half2 b0 = __floats2half2_rn(p[2 * kPlane], 0.0f);
    uint2 v;
    v.x = *reinterpret_cast<const unsigned*>(&rg);
    v.y = *reinterpret_cast<const unsigned*>(&b0);
    *reinterpret_cast<uint2*>(s_in + r * T::kInRowBytes + col * kPixelBytes) = v;
  }
}

// The warp's two m-tiles (warp * 2, + 1) of the conv tile -> s_out, with bias
// and activation. Each lane addresses one ldmatrix row of A and of B.
template <typename T>
__device__ void conv_tiles(const unsigned char* s_in, const __half* s_w,
                           const float (&bias)[kNTiles][2], bool relu, __half* s_out) {
  const int lane = threadIdx.x % 32, mt0 = threadIdx.x / 32 * 2;
  const bool two = mt0 + 1 < T::kMTiles;
  unsigned a_base[2];
  for (int t = 0; t < 2; ++t) {
    // Rows (lane / 8 % 2) * 8 + lane % 8 of the tile; K offset 8 for lanes 16-31.
    const int m = min((mt0 + t) * 16 + (lane / 8 % 2) * 8 + lane % 8, T::kConvPixels - 1);
    const int ty = m / T::kConvCols, tx = m % T::kConvCols;
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

// 16 bytes of output from the maxima `best` (channels 2j, 2j + 1 in best[j]):
// FP16 as they are, INT8 quantized (4 codes per word, little-endian).
template <Output kOut>
__device__ __forceinline__ void store_group(const __half2 (&best)[8 / sizeof(OutType<kOut>)],
                                            const Dims& d, OutType<kOut>* out) {
  if constexpr (kOut == Output::kFloat16) {
    *reinterpret_cast<uint4*>(out) = *reinterpret_cast<const uint4*>(best);
  } else {
    auto byte = [&d](float x) { return stem_quantize_byte<kOut>(x, d.int8_scale, d.int8_inv); };
    unsigned words[4];
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const float2 a = __half22float2(best[2 * w]), b = __half22float2(best[2 * w + 1]);
      words[w] = byte(a.x) | byte(a.y) << 8 | byte(b.x) << 16 | byte(b.y) << 24;
    }
    *reinterpret_cast<uint4*>(out) = make_uint4(words[0], words[1], words[2], words[3]);
  }
}

// The 3 x 3 stride-2 max pool of the conv tile of `o`, 16 output bytes per
// item (8 FP16 or 16 INT8 channels).
template <typename T, Output kOut>
__device__ void pool_tile(const __half* s_out, const Dims& d, const TileOrigin& o,
                          OutType<kOut>* y) {
  using Out = OutType<kOut>;
  constexpr int kGroup = 16 / sizeof(Out);  // channels per item
  constexpr int kGroups = kStemOutChannels / kGroup;
  constexpr int kVectors = kGroup / 8;                 // 16-byte reads of s_out per tap
  const int cy0 = 2 * o.py0 - 1, cx0 = 2 * o.px0 - 1;  // the conv tile's first pixel
  Out* out_image = y + o.image * d.out_h * d.out_w * static_cast<long long>(kStemOutChannels);
  for (int i = threadIdx.x; i < T::kPoolRowsV * T::kPoolColsV * kGroups; i += T::kThreads) {
    const int g = i % kGroups, py = i / kGroups / T::kPoolColsV, px = i / kGroups % T::kPoolColsV;
    const int oy = o.py0 + py, ox = o.px0 + px;
    if (oy >= d.out_h || ox >= d.out_w) continue;
    __half2 best[4 * kVectors];
    for (int j = 0; j < 4 * kVectors; ++j)
      best[j] = __float2half2_rn(-INFINITY);
    for (int dy = 0; dy < 3; ++dy) {
      const int ty = 2 * py + dy, cy = cy0 + ty;
      if (cy < 0 || cy >= d.conv_h) continue;
      for (int dx = 0; dx < 3; ++dx) {
        const int tx = 2 * px + dx, cx = cx0 + tx;
        if (cx < 0 || cx >= d.conv_w) continue;
        for (int k = 0; k < kVectors; ++k) {
          const uint4 v = *reinterpret_cast<const uint4*>(
              s_out + (ty * T::kConvCols + tx) * kOutRowHalves + g * kGroup + k * 8);
          const __half2* h = reinterpret_cast<const __half2*>(&v);
          for (int j = 0; j < 4; ++j)
            best[4 * k + j] = __hmax2(best[4 * k + j], h[j]);
        }
      }
    }
    store_group<kOut>(best, d,
                      out_image + (static_cast<long long>(oy) * d.out_w + ox) * 64 + g * kGroup);
  }
}

// The loop over tiles. The next tile's input loads while this one computes:
// into the other FP16 buffer, or (FP32 NCHW) the other staging buffer, the
// one FP16 tile being converted from this tile's staging buffer first.
template <typename T, Output kOut>
__global__ void __launch_bounds__(T::kThreads, T::kBlocksPerSm)
    stem_conv_pool_kernel(const void* __restrict__ x, const __half* __restrict__ filter,
                          const float* __restrict__ bias, OutType<kOut>* __restrict__ y, Dims d) {
  extern __shared__ __align__(16) unsigned char smem[];
  __half* s_w = reinterpret_cast<__half*>(smem);
  // FP16 input: two tiles of kInBytes. FP32: two staging buffers, one tile.
  unsigned char* s_load = smem + kWBytes;
  constexpr int kLoadBytes = T::kPlanar ? T::kStageBytes : T::kInBytes;
  unsigned char* s_tile = s_load + 2 * kLoadBytes;  // FP32 input only
  __half* s_out = reinterpret_cast<__half*>(
      s_load + (T::kPlanar ? 2 * T::kStageBytes + T::kInBytes : 2 * T::kInBytes));
  const int lane = threadIdx.x % 32;

  if (blockIdx.x < d.tiles) load_input_async<T>(x, d, blockIdx.x, s_load);
  load_filter<T::kThreads>(filter, s_w);
  float lane_bias[kNTiles][2];  // columns nt * 8 + (lane % 4) * 2 + {0, 1}
  for (int nt = 0; nt < kNTiles; ++nt)
    for (int j = 0; j < 2; ++j)
      lane_bias[nt][j] = bias[nt * 8 + lane % 4 * 2 + j];

  int buffer = 0;
  for (long long tile = blockIdx.x; tile < d.tiles; tile += gridDim.x, buffer ^= 1) {
    cp_async_wait<0>();
    // This tile's input (and the filter) is in; every warp is done with the
    // other load buffer, the FP16 tile and s_out (the previous tile's pool).
    __syncthreads();
    if constexpr (T::kPlanar)
      convert_staged<T>(reinterpret_cast<const float*>(s_load + buffer * kLoadBytes), s_tile);
    if (tile + gridDim.x < d.tiles)
      load_input_async<T>(x, d, tile + gridDim.x, s_load + (buffer ^ 1) * kLoadBytes);
    if constexpr (T::kPlanar) __syncthreads();  // the FP16 tile is whole
    conv_tiles<T>(T::kPlanar ? s_tile : s_load + buffer * kLoadBytes, s_w, lane_bias, d.relu,
                  s_out);
    __syncthreads();
    pool_tile<T, kOut>(s_out, d, tile_origin<T>(d, tile), y);
  }
}

template <typename T, Output kOut>
void launch(const void* x, const void* filter, const float* bias, void* y, Dims d, int sms,
            cudaStream_t stream) {
  d.tiles_y = (d.out_h + T::kPoolRowsV - 1) / T::kPoolRowsV;
  d.tiles_x = (d.out_w + T::kPoolColsV - 1) / T::kPoolColsV;
  d.tiles *= static_cast<long long>(d.tiles_y) * d.tiles_x;
  ANVIL_GPU_CHECK(cudaFuncSetAttribute(stem_conv_pool_kernel<T, kOut>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, T::kSmemBytes));
  const long long blocks =
      std::min<long long>(d.tiles, static_cast<long long>(sms) * T::kBlocksPerSm);
  stem_conv_pool_kernel<T, kOut>
      <<<static_cast<unsigned>(blocks), T::kThreads, T::kSmemBytes, stream>>>(
          x, static_cast<const __half*>(filter), bias, static_cast<OutType<kOut>*>(y), d);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

template <StemInput kIn>
void launch_output(Output out, bool big, const void* x, const void* filter, const float* bias,
                   void* y, const Dims& d, int sms, cudaStream_t stream) {
  switch (out) {
    case Output::kFloat16:
      (big ? launch<BigTile<kIn>, Output::kFloat16>
           : launch<SmallTile<kIn>, Output::kFloat16>)(x, filter, bias, y, d, sms, stream);
      break;
    case Output::kInt8Checked:
      (big ? launch<BigTile<kIn>, Output::kInt8Checked>
           : launch<SmallTile<kIn>, Output::kInt8Checked>)(x, filter, bias, y, d, sms, stream);
      break;
    case Output::kInt8ByReciprocal:
      (big ? launch<BigTile<kIn>, Output::kInt8ByReciprocal>
           : launch<SmallTile<kIn>, Output::kInt8ByReciprocal>)(x, filter, bias, y, d, sms, stream);
      break;
  }
}

}  // namespace

void stem_conv_pool(const void* x, const void* filter, const float* bias, void* y,
                    const StemShape& s, cudaStream_t stream) {
  if (s.n < 0 || s.in_h < 1 || s.in_w < 1 || s.in_h > (1 << 20) || s.in_w > (1 << 20))
    fail(ErrorKind::kInvalidArgument, "stem_conv_pool: bad shape n=", s.n, " in=", s.in_h, "x",
         s.in_w);
  if (s.band_rows < 0)
    fail(ErrorKind::kInvalidArgument, "stem_conv_pool: band_rows ", s.band_rows,
         " must be >= 0 (0: chosen by the batch size)");
  if (!std::isfinite(s.int8_scale) || s.int8_scale < 0.0f)
    fail(ErrorKind::kInvalidArgument, "stem_conv_pool: INT8 scale ", s.int8_scale,
         " must be finite and > 0 (or 0 for FP16 output)");
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
  d.whole_chunks = s.in_w % 4 == 0;
  d.int8_scale = s.int8_scale;
  d.int8_inv = s.int8_scale > 0.0f ? int8_reciprocal(s.int8_scale) : 0.0f;
  int device = 0, sms = 0;
  ANVIL_GPU_CHECK(cudaGetDevice(&device));
  ANVIL_GPU_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const Output out = s.int8_scale == 0.0f
                         ? Output::kFloat16
                         : (s.int8_by_reciprocal && d.int8_inv > 0.0f ? Output::kInt8ByReciprocal
                                                                      : Output::kInt8Checked);
  const bool rows_apply = stem_rows_applies(s);
  if (s.input == StemInput::kUint8Nhwc) {
    if (!rows_apply || s.kernel == StemKernel::kTiles)
      fail(ErrorKind::kUnsupported,
           "stem_conv_pool: uint8 images are read by the row kernel only (a build for sm_90a, "
           "an sm_90 GPU, inputs ",
           kStemRowsWidth, " wide; got ", s.in_w,
           "): normalize them first (images_to_engine_storage) and pass the FP16 input");
    for (int c = 0; c < 3; ++c)
      if (!std::isfinite(s.image_affine.scale[c]) || !std::isfinite(s.image_affine.bias[c]))
        fail(ErrorKind::kInvalidArgument, "stem_conv_pool: channel ", c,
             "'s image normalization (scale ", s.image_affine.scale[c], ", bias ",
             s.image_affine.bias[c], ") is not finite");
  }
  if (s.kernel == StemKernel::kRows && !rows_apply)
    fail(ErrorKind::kInvalidArgument, "stem_conv_pool: the row kernel needs a build for sm_90a (",
         stem_rows_compiled() ? "this is one" : "this is not", "), an sm_90 GPU and inputs ",
         kStemRowsWidth, " wide (got ", s.in_w, ")");
  if (rows_apply && s.kernel != StemKernel::kTiles)
    return stem_conv_pool_rows(x, filter, bias, y, s, out, d.int8_inv, sms, stream);
  // Big tiles waste less work on overlapping windows; small ones keep every
  // SM busy when a small batch has fewer big tiles than two per SM.
  using Big = BigTile<StemInput::kFloat16Nhwc4>;
  const long long big_tiles = s.n * ((s.out_h() + Big::kPoolRowsV - 1) / Big::kPoolRowsV) *
                              ((s.out_w() + Big::kPoolColsV - 1) / Big::kPoolColsV);
  const bool big = big_tiles >= 2LL * sms;
  if (s.input == StemInput::kFloat32Nchw)
    launch_output<StemInput::kFloat32Nchw>(out, big, x, filter, bias, y, d, sms, stream);
  else
    launch_output<StemInput::kFloat16Nhwc4>(out, big, x, filter, bias, y, d, sms, stream);
}

bool stem_rows_applies(const StemShape& s) {
  if (!stem_rows_compiled() || s.in_w != kStemRowsWidth) return false;
  int device = 0, major = 0, minor = 0;
  ANVIL_GPU_CHECK(cudaGetDevice(&device));
  ANVIL_GPU_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  ANVIL_GPU_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major == 9 && minor == 0;
}

bool stem_int8_rounds_by_reciprocal(float scale) {
  const float inv = int8_reciprocal(scale);
  if (!std::isfinite(scale) || !(scale > 0.0f) || inv == 0.0f) return false;
  auto saturate = [](float r) { return std::clamp(r, -128.0f, 127.0f); };
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    __half_raw raw;
    raw.x = static_cast<unsigned short>(bits);
    const float x = __half2float(__half(raw));
    if (std::isnan(x)) continue;  // 0 both ways
    if (saturate(std::nearbyint(x * inv)) != saturate(std::nearbyint(x / scale))) return false;
  }
  return true;
}

}  // namespace anvil::cuda::kernels
