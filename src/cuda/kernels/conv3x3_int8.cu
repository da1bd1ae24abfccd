// The INT8 3x3 convolution of conv3x3_int8.h as an implicit GEMM on
// mma.sync m16n8k32 (sm_80 and later): D (output pixels x 64 channels) =
// im2col(x) (pixels x K) * W^T, K = 3 x 3 taps x 64 channels = 576.
//
//  - Persistent blocks of 8 warps, two a SM. The filter (64 x 576 bytes) and
//    the scale and bias vectors are loaded into shared memory once per block.
//  - A block takes bands of `rows` whole output rows of one image (rows x w
//    <= 256 pixels, 16-pixel m-tiles, two a warp). The band's input rows and
//    the one above and below (zeros outside the image, and a zero column on
//    each side) sit in shared memory; the next band's are loaded with cp.async
//    while this one is computed (two buffers).
//  - im2col is never built: the A fragment of tap (r, s) for 16 output
//    pixels is 16 input pixels of the band buffer, each lane giving ldmatrix
//    its pixel's address; a k-step of 32 is half a pixel's 64 channels. B
//    (the filter, KRSC: one output channel's 576 bytes are its K) is read
//    with ldmatrix too. So that ldmatrix's 8 rows of 16 bytes hit 32 banks,
//    band pixels are 80 bytes apart, and the filter's 16-byte chunks are
//    XOR-swizzled by (row / 2) % 4.
//  - The epilogue applies the contract to the INT32 accumulators, packs the
//    INT8 results into the warp's 32 pixels x 64 bytes of shared memory
//    (where the residual was loaded before) and stores them as 16-byte
//    vectors: a band's output is one contiguous span of y.
//
// On an H100 (thirteenth session, bench/conv3x3_int8.sh) it takes 0.061 ms
// for ResNet-18's layer1 conv at batch 128 (cuDNN's best 0.053) and 0.067 ms
// with the residual (cuDNN 0.085): 4x its floors. Nsight Compute finds it
// latency-bound, not bound by memory (14% of DRAM) or by shared memory (43%):
// 8 cycles a warp instruction, mostly fixed-latency waits, barriers and the
// tensor pipe. The warpgroup-MMA kernel (conv3x3_int8_wgmma.cu) is a few
// percent faster at batch 128 and much slower at 32; 64 x 64 warp tiles
// with prefetched fragments were slower. docs/INT8.md has the numbers.
#include <algorithm>
#include <cstdint>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/conv3x3_int8.h"
#include "cuda/kernels/conv3x3_int8_common.cuh"
#include "cuda/kernels/conv3x3_int8_wgmma.h"
#include "cuda/kernels/tensor_core.cuh"

namespace anvil::cuda::kernels {
namespace {

using conv3x3::epilogue_pair;
using conv3x3::kC;
using conv3x3::kKSteps;
using conv3x3::kRowBytes;
using conv3x3::pixel_chunk;
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kWarpPixels = 32;  // two m-tiles
constexpr int kMaxBandPixels = kWarps * kWarpPixels;
constexpr int kFilterBytes = kC * kRowBytes;
// A band buffer's pixel: 64 bytes and 16 of padding. 8 consecutive pixels'
// 16-byte chunk c then fall in distinct banks (80 bytes is 20 words: the
// rows start at words 0, 20, 8, 28, 16, 4, 24, 12 modulo 32) with no
// swizzle, so a tap's address is its pixel's plus a constant.
constexpr int kBandPitch = kC + 16;
constexpr int kStageBytes = kWarps * kWarpPixels * kC;
// Shared memory: filter, scale, bias, the warps' staging, two band buffers.
constexpr int kScaleOffset = kFilterBytes;
constexpr int kBiasOffset = kScaleOffset + kC * 4;
constexpr int kStageOffset = kBiasOffset + kC * 4;
constexpr int kBandOffset = kStageOffset + kStageBytes;
constexpr int kBlocksPerSm = 2;
// Bands are numbered in 32 bits: a 64-bit division per band cost more
// instructions than the band's cp.async address math.
constexpr long long kMaxUnits = 1LL << 30;

struct Dims {
  int h, w;         // input = output
  int rows, bands;  // output rows a band, bands an image
  int band_bytes;   // (rows + 2) x (w + 2) pixels of kBandPitch bytes
  int units;        // n x bands, at most kMaxUnits
  bool relu;
  float residual_scale;
};

// Byte offset of 16-byte chunk j (0..35) of filter row n, XOR-swizzled by
// (n / 2) % 4 within each group of 4 chunks (576 bytes a row: rows n and
// n + 1 are 64 bytes apart modulo 128, so rows' parity and the XOR
// separate 8 rows).
__device__ __forceinline__ int filter_chunk(int n, int j) {
  return n * kRowBytes + ((j & ~3) | ((j ^ (n >> 1)) & 3)) * 16;
}

// Starts loading band `unit`'s input rows (p0 - 1 .. p0 + rows) into `band`,
// zeros for rows outside the image. The zero columns are written once.
// Thread t copies 16-byte chunk t % 4 of band pixels t / 4, t / 4 + 64, ...:
// its row and column advance 64 pixels a step, with no division.
__device__ void load_band(unsigned char* band, const std::int8_t* x, const Dims& d, int unit) {
  const int image = unit / d.bands;
  const int p0 = (unit - image * d.bands) * d.rows;
  const std::int8_t* const image_x = x + static_cast<long long>(image) * d.h * d.w * kC;
  const int chunks = (d.rows + 2) * d.w * 4, c = threadIdx.x & 3;
  int rr = (threadIdx.x >> 2) / d.w, q = (threadIdx.x >> 2) - rr * d.w;
  for (int i = threadIdx.x; i < chunks; i += kThreads) {
    const int iy = p0 - 1 + rr;
    const bool inside = iy >= 0 && iy < d.h;
    const std::int8_t* src =
        inside ? image_x + static_cast<long long>(iy * d.w + q) * kC + c * 16 : x;
    cp_async<16>(shared_address(band + (rr * (d.w + 2) + q + 1) * kBandPitch + c * 16), src,
                 inside);
    for (q += kThreads / 4; q >= d.w; q -= d.w)
      ++rr;
  }
}

template <bool kResidual>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    conv3x3_int8_kernel(const std::int8_t* __restrict__ x, const std::int8_t* __restrict__ filter,
                        const float* __restrict__ scale, const float* __restrict__ bias,
                        const std::int8_t* __restrict__ residual, std::int8_t* __restrict__ y,
                        Dims d) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* const s_filter = smem;
  float* const s_scale = reinterpret_cast<float*>(smem + kScaleOffset);
  float* const s_bias = reinterpret_cast<float*>(smem + kBiasOffset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  unsigned char* const stage = smem + kStageOffset + warp * kWarpPixels * kC;
  unsigned char* const bands = smem + kBandOffset;  // two of d.band_bytes

  for (int i = threadIdx.x; i < kFilterBytes / 16; i += kThreads) {
    const int n = i / (kRowBytes / 16), j = i % (kRowBytes / 16);
    cp_async<16>(shared_address(s_filter + filter_chunk(n, j)), filter + i * 16, true);
  }
  if (threadIdx.x < kC) {
    s_scale[threadIdx.x] = scale[threadIdx.x];
    s_bias[threadIdx.x] = bias ? bias[threadIdx.x] : 0.0f;
  }
  // The zero columns left and right of every band row, in both buffers.
  for (int i = threadIdx.x; i < 2 * (d.rows + 2) * 2 * 4; i += kThreads) {
    const int c = i & 3, side = (i >> 2) & 1, rr = (i >> 3) % (d.rows + 2);
    const int buffer = i / (8 * (d.rows + 2)), slot = rr * (d.w + 2) + (side ? d.w + 1 : 0);
    *reinterpret_cast<uint4*>(bands + buffer * d.band_bytes + slot * kBandPitch + c * 16) =
        make_uint4(0, 0, 0, 0);
  }
  int unit = static_cast<int>(blockIdx.x);
  if (unit < d.units) load_band(bands, x, d, unit);
  cp_async_commit();

  // Per lane, loop-invariant: where it points ldmatrix in the filter. B x4
  // j covers n-tiles 2j and 2j + 1, as matrices (2j, k 0-15), (2j, k
  // 16-31), (2j + 1, k 0-15), (2j + 1, k 16-31); lane l addresses row n = 16j
  // + b_row of matrix l / 8. Its chunk 2 ks + b_hi lies at filter_chunk(n,
  // 2 ks + b_hi) = filter_b[ks % 2] + 64 (ks / 2) + 16 j x 576 (the swizzle
  // takes n / 2 % 4 = b_row / 2 % 4 and the chunk's low bits).
  const int b_row = (lane >> 4) * 8 + (lane & 7), b_hi = (lane >> 3) & 1;
  const unsigned filter_b[2] = {shared_address(s_filter + filter_chunk(b_row, b_hi)),
                                shared_address(s_filter + filter_chunk(b_row, 2 + b_hi))};
  const int g = lane >> 2, t = lane & 3;  // the accumulators' row and column pair

  for (int buffer = 0; unit < d.units; unit += static_cast<int>(gridDim.x), buffer ^= 1) {
    const int image = unit / d.bands;
    const int p0 = (unit - image * d.bands) * d.rows;
    const int pixels = min(d.rows, d.h - p0) * d.w;
    const int first = warp * kWarpPixels;  // the warp's first pixel of the band
    const long long out0 = ((static_cast<long long>(image) * d.h + p0) * d.w + first) * kC;
    cp_async_wait<0>();
    __syncthreads();  // this band is in; every warp is done with the other buffer
    // Group 1: this warp's residual pixels into its staging; group 2: the
    // next band. The epilogue waits for the first only.
    if (kResidual && first < pixels)
      for (int i = lane; i < kWarpPixels * 4; i += 32) {
        const int pixel = i >> 2, c = i & 3;
        const bool inside = first + pixel < pixels;
        cp_async<16>(shared_address(stage + pixel_chunk(pixel, c)),
                     inside ? residual + out0 + pixel * kC + c * 16 : residual, inside);
      }
    cp_async_commit();
    if (unit + static_cast<int>(gridDim.x) < d.units)
      load_band(bands + (buffer ^ 1) * d.band_bytes, x, d, unit + static_cast<int>(gridDim.x));
    cp_async_commit();
    if (first >= pixels) continue;  // a short band: this warp has no pixels

    // The pixel each lane addresses for ldmatrix in m-tile mt (row lane % 16
    // of the tile, k half lane / 16), as the slot of its top-left tap; lanes
    // past the band's end read pixel 0 and their results are dropped.
    const unsigned char* const band = bands + buffer * d.band_bytes;
    unsigned tap0[2];  // shared-memory addresses, this lane's k half included
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
      int u = first + mt * 16 + (lane & 15);
      if (u >= pixels) u = 0;
      const int pr = u / d.w;
      tap0[mt] =
          shared_address(band + (pr * (d.w + 2) + (u - pr * d.w)) * kBandPitch + (lane >> 4) * 16);
    }
    const unsigned row_bytes = (d.w + 2) * kBandPitch;

    int acc[2][8][4] = {};
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      const int tap = ks / 2, r = tap / 3, s = tap % 3, half = ks % 2;
      unsigned a[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        ldmatrix_x4(tap0[mt] + r * row_bytes + s * kBandPitch + half * 32, a[mt]);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        unsigned b[4];
        ldmatrix_x4(filter_b[ks % 2] + 64 * (ks / 2) + 16 * j * kRowBytes, b);
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
          mma_16x8x32_s8(acc[mt][2 * j], a[mt], b[0], b[1]);
          mma_16x8x32_s8(acc[mt][2 * j + 1], a[mt], b[2], b[3]);
        }
      }
    }

    // Epilogue: accumulator (mt, nt, e) is pixel 16 mt + g (+ 8 for e >= 2)
    // of the warp's 32, channels 8 nt + 2 t and + 1.
    cp_async_wait<1>();  // this lane's residual copies (group 1)
    __syncwarp();
    const float low = d.relu ? 0.0f : -128.0f;
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int e = 0; e < 4; e += 2) {
        const int pixel = mt * 16 + g + (e ? 8 : 0);
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
          const int ch = nt * 8 + 2 * t;
          const float2 sc = *reinterpret_cast<const float2*>(s_scale + ch);
          const float2 bi = *reinterpret_cast<const float2*>(s_bias + ch);
          auto* const at = reinterpret_cast<unsigned short*>(stage + pixel_chunk(pixel, nt >> 1) +
                                                             (nt & 1) * 8 + 2 * t);
          *at = epilogue_pair<kResidual>(acc[mt][nt][e], acc[mt][nt][e + 1], sc, bi,
                                         kResidual ? *at : 0u, d.residual_scale, low);
        }
      }
    __syncwarp();
    for (int i = lane; i < kWarpPixels * 4; i += 32) {
      const int pixel = i >> 2, c = i & 3;
      if (first + pixel < pixels)
        *reinterpret_cast<uint4*>(y + out0 + pixel * kC + c * 16) =
            *reinterpret_cast<const uint4*>(stage + pixel_chunk(pixel, c));
    }
  }
  cp_async_wait<0>();  // nothing left in flight when the block exits
#else
  __trap();  // never launched: Conv3x3Int8 refuses devices before sm_80
#endif
}

template <bool kResidual>
void set_shared_memory(int bytes) {
  ANVIL_GPU_CHECK(cudaFuncSetAttribute(conv3x3_int8_kernel<kResidual>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
}

bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

}  // namespace

Conv3x3Int8::Conv3x3Int8(const Conv3x3Int8Shape& shape) : shape_(shape) {
  if (shape.n < 1 || shape.h < 1 || shape.w < 1)
    fail(ErrorKind::kInvalidArgument, "conv3x3_int8: sizes must be positive (n ", shape.n, ", h ",
         shape.h, ", w ", shape.w, ")");
  if (shape.w > kMaxBandPixels || shape.h > (1 << 20))
    fail(ErrorKind::kUnsupported, "conv3x3_int8: images of ", shape.h, " x ", shape.w,
         "; the kernel takes at most ", kMaxBandPixels, " pixels wide and ", 1 << 20, " tall");
  int device = 0, major = 0, minor = 0, sms = 0, smem_limit = 0;
  ANVIL_GPU_CHECK(cudaGetDevice(&device));
  ANVIL_GPU_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  ANVIL_GPU_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  ANVIL_GPU_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  ANVIL_GPU_CHECK(
      cudaDeviceGetAttribute(&smem_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  if (shape.kernel != Conv3x3Int8Kernel::kMmaSync) {
    if (major != 9 || minor != 0 || !conv3x3_int8_wgmma_compiled())
      fail(ErrorKind::kUnsupported,
           "conv3x3_int8: the wgmma kernels need an sm_90 GPU and a build with sm_90a code");
    const Conv3x3Int8WgmmaLaunch l =
        shape.kernel == Conv3x3Int8Kernel::kWgmma
            ? plan_conv3x3_int8_wgmma(shape, shape.wgmma_parts, sms, smem_limit)
            : plan_conv3x3_int8_wgmma_rs(shape, shape.wgmma_parts, sms, smem_limit);
    units_per_image_ = l.units_per_image;
    units_ = l.units;
    blocks_ = l.blocks;
    smem_bytes_ = l.smem_bytes;
    return;
  }
  cudaFuncAttributes attributes{};
  if (major < 8 || cudaFuncGetAttributes(&attributes, conv3x3_int8_kernel<false>) != cudaSuccess ||
      attributes.binaryVersion < 80) {
    (void)cudaGetLastError();  // cudaFuncGetAttributes' error, if any: not sticky
    fail(ErrorKind::kUnsupported,
         "conv3x3_int8: needs an sm_80 or later GPU and a build with code for it");
  }
  const int w = static_cast<int>(shape.w), h = static_cast<int>(shape.h);
  band_rows_ = std::min(h, kMaxBandPixels / w);
  bands_ = (h + band_rows_ - 1) / band_rows_;
  units_ = shape.n * bands_;
  if (units_ > kMaxUnits)
    fail(ErrorKind::kUnsupported, "conv3x3_int8: a batch of ", shape.n, " images of ", h,
         " rows is ", units_, " bands of ", band_rows_, " rows; the kernel takes at most ",
         kMaxUnits, ": split the batch");
  smem_bytes_ = kBandOffset + 2 * (band_rows_ + 2) * (w + 2) * kBandPitch;
  if (smem_bytes_ > smem_limit)
    fail(ErrorKind::kUnsupported, "conv3x3_int8: ", smem_bytes_,
         " bytes of shared memory a block; this GPU gives ", smem_limit);
  int per_sm = 0;
  set_shared_memory<false>(smem_bytes_);
  set_shared_memory<true>(smem_bytes_);
  ANVIL_GPU_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &per_sm, conv3x3_int8_kernel<true>, kThreads, static_cast<std::size_t>(smem_bytes_)));
  long long blocks = std::min<long long>(units_, std::max(per_sm, 1) * 1LL * sms);
  if (shape.max_blocks > 0) blocks = std::min<long long>(blocks, shape.max_blocks);
  blocks_ = static_cast<int>(blocks);
}

void Conv3x3Int8::run(const void* x, const void* filter, const float* scale, const float* bias,
                      const void* residual, void* y, cudaStream_t stream) const {
  const bool residual_ok = shape_.has_residual ? residual && aligned16(residual) : !residual;
  const bool bias_ok = shape_.has_bias ? bias != nullptr : bias == nullptr;
  if (!x || !filter || !scale || !y || !aligned16(x) || !aligned16(filter) || !aligned16(y) ||
      !residual_ok || !bias_ok)
    fail(ErrorKind::kInvalidArgument,
         "conv3x3_int8: x, filter, scale and y must be set, x, filter, y and the residual "
         "16-byte aligned, bias and residual set exactly when the shape has them");
  if (shape_.kernel != Conv3x3Int8Kernel::kMmaSync) {
    const Conv3x3Int8WgmmaLaunch l{shape_.wgmma_parts, units_per_image_, units_, blocks_,
                                   smem_bytes_};
    if (shape_.kernel == Conv3x3Int8Kernel::kWgmma)
      return conv3x3_int8_wgmma(l, shape_, x, filter, scale, bias, residual, y, stream);
    return conv3x3_int8_wgmma_rs(l, shape_, x, filter, scale, bias, residual, y, stream);
  }
  Dims d{};
  d.h = static_cast<int>(shape_.h);
  d.w = static_cast<int>(shape_.w);
  d.rows = band_rows_;
  d.bands = bands_;
  d.band_bytes = (band_rows_ + 2) * (d.w + 2) * kBandPitch;
  d.units = static_cast<int>(units_);
  d.relu = shape_.relu;
  d.residual_scale = shape_.residual_scale;
  const auto* xi = static_cast<const std::int8_t*>(x);
  const auto* wi = static_cast<const std::int8_t*>(filter);
  const auto* ri = static_cast<const std::int8_t*>(residual);
  auto* yi = static_cast<std::int8_t*>(y);
  if (shape_.has_residual)
    conv3x3_int8_kernel<true>
        <<<blocks_, kThreads, smem_bytes_, stream>>>(xi, wi, scale, bias, ri, yi, d);
  else
    conv3x3_int8_kernel<false>
        <<<blocks_, kThreads, smem_bytes_, stream>>>(xi, wi, scale, bias, ri, yi, d);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
