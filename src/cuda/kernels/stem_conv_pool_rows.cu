// The stem on Hopper's warpgroup MMA, one conv row at a time. A block (one
// warpgroup, 128 threads) owns a band of pooled rows of one image and walks
// down the conv rows under it:
//  1. the GEMM of a conv row is D (64 channels x 112 conv columns) = W (64 x
//     K) x im2col (K x 112), K = 7 filter rows x 8 taps x 4 channels = 224
//     (the 8th tap has zero weight). W is the A operand and stays in
//     registers for the block's life (each warp's 16 channels: 14 k-steps x
//     4 registers). im2col is the B operand, read by the tensor cores from
//     the input rows in shared memory through a descriptor, with no copy: a
//     conv column's 8 K-values of one filter row and tap pair are 16
//     contiguous bytes of the FP16 NHWC4 input row, the next column's are
//     16 bytes on (stride 2 x 8-byte pixels), so 8 columns are one 128-byte
//     "core matrix" (the no-swizzle K-major layout, SBO 128 B) and the next
//     tap pair is 16 bytes on (LBO 16 B: the core matrices overlap, which
//     the layout's address arithmetic allows);
//  2. the input rows live in a ring of 16 slots; a conv row reads 7 (stride
//     2: 2 new ones a row), the next row's 2 are stored while the tensor
//     cores work, and the row after's are loaded from global memory into
//     registers then (the network's FP32 NCHW planes, converted to FP16 as
//     reformat_in rounds, FP16 NHWC4 pixels, or uint8 RGB pixels normalized
//     as images_to_engine_storage normalizes them);
//  3. the pool stays in registers: each thread holds 2 channels x 28 conv
//     column pairs of D; the 3-wide max takes the left neighbour column from
//     the next lane over (a shuffle), the 3-tall one keeps a running max
//     over conv rows. Bias and activation come after the max (both are
//     monotonic, so the FP16 result is the same bits as max(act(conv +
//     bias)), NaN included: fmaxf drops NaN as the tiled kernel's __hmax2
//     does). A finished pooled row goes through shared memory to global as
//     16-byte vectors.
// Against the tiled kernel (stem_conv_pool.cu): no overlap between tiles (a
// conv row is computed once, plus one row per band), no filter reloads from
// shared memory, no conv tile in shared memory for the pool.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cuda/check.h"
#include "cuda/kernels/stem_conv_pool_rows.h"

namespace anvil::cuda::kernels {
namespace {

constexpr int kConvCols = kStemRowsWidth / 2;  // 112: the GEMM's N
constexpr int kPoolCols = kConvCols / 2;       // 56
constexpr int kGroups = kConvCols / 8;         // 14 accumulator groups of 8 columns
constexpr int kAcc = kGroups * 4;              // 56 FP32 accumulators a thread
constexpr int kKSteps = kStemKernel * 2;       // 14 wgmma steps of K = 16 (a filter row is 2)
constexpr int kSlotBytes = (kStemRowsWidth + 6) * 8;  // input columns -3 .. 226, 8 bytes each
constexpr int kSlots = 16;                            // a power of 2 > 7 read + 2 written
constexpr int kThreads = 128;                         // one warpgroup
constexpr int kChunks = kStemRowsWidth / 4;           // 4-pixel chunks of an input row
static_assert(2 * kChunks <= kThreads, "a pair of input rows is one chunk a thread");

template <StemOutput kOut>
using Out = StemOutType<kOut>;
// The staged pooled row: 64 channels a pixel plus padding that spreads a
// warp's stores over the banks.
template <StemOutput kOut>
constexpr int kStagePitch = kOut == StemOutput::kFloat16 ? 72 : 80;  // elements
template <StemOutput kOut>
constexpr int kSmemBytes = kSlots* kSlotBytes + kPoolCols* kStagePitch<kOut> * sizeof(Out<kOut>);

struct Dims {
  int in_h, conv_h, out_h;
  int band_rows, bands;  // pooled rows a block, blocks an image
  bool relu;
  float int8_scale, int8_inv;
  ImageAffine affine;  // StemInput::kUint8Nhwc's normalization
};

// The 4 pixels of one input row chunk a thread carries from global memory
// to its slot: three FP32 planes' float4s, two 16-byte FP16 NHWC4 vectors,
// or 12 bytes of uint8 RGB in x, y and z, with w = 1 where they are pixels
// of the image (else the padding, which is 0 after normalization, not
// the normalization of byte 0).
template <StemInput kIn>
struct Chunk {
  static constexpr int kVectors =
      kIn == StemInput::kFloat32Nchw ? 3 : (kIn == StemInput::kFloat16Nhwc4 ? 2 : 1);
  uint4 v[kVectors];
};

// Thread t < 2 kChunks loads chunk t % kChunks of input row iy0 + t / kChunks
// (zeros outside the image: the conv's padding).
template <StemInput kIn>
__device__ __forceinline__ void load_pair(const void* x, const Dims& d, long long image, int iy0,
                                          Chunk<kIn>& c) {
  const int t = threadIdx.x, iy = iy0 + t / kChunks, chunk = t % kChunks;
  for (uint4& v : c.v)
    v = make_uint4(0, 0, 0, 0);
  if (t >= 2 * kChunks || iy < 0 || iy >= d.in_h) return;
  const long long plane = static_cast<long long>(d.in_h) * kStemRowsWidth;
  if constexpr (kIn == StemInput::kFloat32Nchw) {
    const float* p = static_cast<const float*>(x) + image * 3 * plane +
                     static_cast<long long>(iy) * kStemRowsWidth + 4 * chunk;
    for (int ch = 0; ch < 3; ++ch)
      c.v[ch] = __ldg(reinterpret_cast<const uint4*>(p + ch * plane));
  } else if constexpr (kIn == StemInput::kUint8Nhwc) {
    // 12 bytes at a multiple of 12 from a 16-byte aligned image: 3 words.
    const auto* p =
        reinterpret_cast<const unsigned*>(static_cast<const unsigned char*>(x) +
                                          ((image * d.in_h + iy) * kStemRowsWidth + 4 * chunk) * 3);
    c.v[0] = make_uint4(__ldg(p), __ldg(p + 1), __ldg(p + 2), 1u);
  } else {
    const uint4* p = reinterpret_cast<const uint4*>(
        static_cast<const __half*>(x) +
        ((image * d.in_h + iy) * kStemRowsWidth + 4 * chunk) * kStemInChannels);
    c.v[0] = __ldg(p);
    c.v[1] = __ldg(p + 1);
  }
}

// ...and stores it as FP16 NHWC4 pixels into the slot of its row.
template <StemInput kIn>
__device__ __forceinline__ void store_pair(unsigned char* ring, int iy0, const Chunk<kIn>& c,
                                           const Dims& d) {
  const int t = threadIdx.x;
  if (t >= 2 * kChunks) return;
  unsigned char* slot = ring + ((iy0 + t / kChunks) & (kSlots - 1)) * kSlotBytes;
  uint2* pixel = reinterpret_cast<uint2*>(slot + (4 * (t % kChunks) + 3) * 8);
  if constexpr (kIn == StemInput::kFloat32Nchw) {
    const float* r = reinterpret_cast<const float*>(&c.v[0]);
    const float* g = reinterpret_cast<const float*>(&c.v[1]);
    const float* b = reinterpret_cast<const float*>(&c.v[2]);
    for (int i = 0; i < 4; ++i) {
      const __half2 rg = __floats2half2_rn(r[i], g[i]), b0 = __floats2half2_rn(b[i], 0.0f);
      pixel[i] = make_uint2(*reinterpret_cast<const unsigned*>(&rg),
                            *reinterpret_cast<const unsigned*>(&b0));
    }
  } else if constexpr (kIn == StemInput::kUint8Nhwc) {
    const unsigned words[3] = {c.v[0].x, c.v[0].y, c.v[0].z};
    const bool inside = c.v[0].w != 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float v[3];
#pragma unroll
      for (int ch = 0; ch < 3; ++ch) {
        const int byte = 3 * i + ch;  // little-endian: byte 0 of a word first
        const unsigned b = (words[byte / 4] >> (8 * (byte % 4))) & 0xffu;
        v[ch] = inside ? fmaf(static_cast<float>(b), d.affine.scale[ch], d.affine.bias[ch]) : 0.0f;
      }
      const __half2 rg = __floats2half2_rn(v[0], v[1]), b0 = __floats2half2_rn(v[2], 0.0f);
      pixel[i] = make_uint2(*reinterpret_cast<const unsigned*>(&rg),
                            *reinterpret_cast<const unsigned*>(&b0));
    }
  } else {
    const uint2* p = reinterpret_cast<const uint2*>(c.v);
    for (int i = 0; i < 4; ++i)
      pixel[i] = p[i];
  }
}

// The warp's 16 channels of W as wgmma A fragments (mma.m16n8k16's layout:
// rows g and g + 8, K pairs 2q and 2q + 8 of each 16-wide step).
__device__ __forceinline__ void load_filter(const __half* filter, unsigned (&a)[kKSteps][4]) {
  const int lane = threadIdx.x % 32, row0 = threadIdx.x / 32 * 16 + lane / 4;
#pragma unroll
  for (int ks = 0; ks < kKSteps; ++ks)
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int row = row0 + (r & 1) * 8, k = 16 * ks + lane % 4 * 2 + (r >> 1) * 8;
      const int ky = k / 32, kx = k % 32 / 4, ch = k % 4;
      a[ks][r] =
          kx < kStemKernel
              ? *reinterpret_cast<const unsigned*>(
                    filter + ((row * kStemKernel + ky) * kStemKernel + kx) * kStemInChannels + ch)
              : 0u;
    }
}

// The compiler must not move reads or writes of the accumulators across
// the asynchronous wgmma; this ties them to the asm statement's position.
__device__ __forceinline__ void pin(float (&d)[kAcc]) {
#pragma unroll
  for (float& v : d)
    asm volatile("" : "+f"(v)::"memory");
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// B's descriptor: no swizzle, K-major core matrices 16 bytes apart along K
// (LBO) and 128 apart along N (SBO), fields in 16-byte units.
__device__ __forceinline__ unsigned long long b_descriptor(const void* p) {
  const auto address = static_cast<unsigned>(__cvta_generic_to_shared(p));
  return ((address & 0x3FFFFu) >> 4) | (1ull << 16) | (8ull << 32);
}

// d (+)= a (64 x 16, registers) x b (16 x 112, shared memory).
template <bool kAccumulate>
__device__ __forceinline__ void wgmma_64x112x16(float (&d)[kAcc], const unsigned (&a)[4],
                                                unsigned long long b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %61, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n112k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, "
      "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, "
      "%37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, "
      "%55}, {%56, %57, %58, %59}, %60, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
        "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
        "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
        "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
        "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
        "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
        "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "n"(kAccumulate ? 1 : 0));
}
#endif

// The conv row r's GEMM, from the ring slots of input rows 2r - 3 .. 2r + 3.
__device__ __forceinline__ void issue_row(float (&d)[kAcc], const unsigned (&a)[kKSteps][4],
                                          const unsigned char* ring, int r) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
  for (int ks = 0; ks < kKSteps; ++ks) {
    const unsigned char* slot = ring + ((2 * r - 3 + ks / 2) & (kSlots - 1)) * kSlotBytes;
    const unsigned long long b = b_descriptor(slot + ks % 2 * 32);
    if (ks == 0)
      wgmma_64x112x16<false>(d, a[ks], b);
    else
      wgmma_64x112x16<true>(d, a[ks], b);
  }
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#else
  (void)d, (void)a, (void)ring, (void)r;
  __trap();  // never launched: stem_rows_compiled() is false without sm_90a code
#endif
}

// Orders this thread's shared-memory stores before the tensor cores' reads.
__device__ __forceinline__ void fence_async_proxy() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void wait_row() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}

// The 3-wide max of the conv row in d, per pooled column px = 4j + q (q the
// lane's place in its quad) and channel half: max of columns 2px - 1 (the
// previous lane's, or the quad's last lane's previous group's), 2px, 2px + 1.
__device__ __forceinline__ void pool_across(const float (&d)[kAcc], float (&h)[kGroups][2]) {
  const int lane = threadIdx.x % 32, q = lane % 4;
  const int from = q == 0 ? lane + 3 : lane - 1;
#pragma unroll
  for (int j = 0; j < kGroups; ++j)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const float left_of_next = j > 0 ? d[4 * (j - 1) + 2 * half + 1] : -INFINITY;
      const float send = q == 3 ? left_of_next : d[4 * j + 2 * half + 1];
      const float left = __shfl_sync(0xffffffffu, send, from);
      h[j][half] = fmaxf(fmaxf(d[4 * j + 2 * half], d[4 * j + 2 * half + 1]), left);
    }
}

// Pooled row `py` of the maxima v: bias, activation, FP16 (and INT8), staged
// in shared memory, then stored as 16-byte vectors.
template <StemOutput kOut>
__device__ __forceinline__ void store_pooled_row(const float (&v)[kGroups][2],
                                                 const float (&bias)[2], const Dims& d,
                                                 Out<kOut>* stage, Out<kOut>* row) {
  const int lane = threadIdx.x % 32, channel = threadIdx.x / 32 * 16 + lane / 4;
#pragma unroll
  for (int j = 0; j < kGroups; ++j)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float m = v[j][half] + bias[half];
      if (d.relu) m = fmaxf(m, 0.0f);
      const __half value = __float2half_rn(m);
      Out<kOut>* at = stage + (4 * j + lane % 4) * kStagePitch<kOut> + channel + 8 * half;
      if constexpr (kOut == StemOutput::kFloat16)
        *at = value;
      else
        *at = static_cast<std::int8_t>(
            stem_quantize_byte<kOut>(__half2float(value), d.int8_scale, d.int8_inv));
    }
  __syncthreads();
  constexpr int kVectors = kStemOutChannels * sizeof(Out<kOut>) / 16;  // a pixel's
  for (int i = threadIdx.x; i < kPoolCols * kVectors; i += kThreads) {
    const int px = i / kVectors, part = i % kVectors;
    reinterpret_cast<uint4*>(row + px * kStemOutChannels)[part] =
        reinterpret_cast<const uint4*>(stage + px * kStagePitch<kOut>)[part];
  }
}

template <StemInput kIn, StemOutput kOut>
__global__ void __launch_bounds__(kThreads, 2)
    stem_rows_kernel(const void* __restrict__ x, const __half* __restrict__ filter,
                     const float* __restrict__ bias, Out<kOut>* __restrict__ y, Dims d) {
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* ring = smem;
  Out<kOut>* stage = reinterpret_cast<Out<kOut>*>(smem + kSlots * kSlotBytes);
  const long long image = blockIdx.x / d.bands;
  const int p0 = static_cast<int>(blockIdx.x % d.bands) * d.band_rows;
  const int p1 = min(p0 + d.band_rows, d.out_h);
  const int r0 = max(2 * p0 - 1, 0), r1 = min(2 * p1 - 1, d.conv_h - 1);
  Out<kOut>* y_image = y + image * d.out_h * kPoolCols * kStemOutChannels;

  // The first conv row's 7 input rows (and one more) are loaded at once and
  // arrive while the slots are zeroed (the columns outside the image are
  // never written again) and the filter is loaded: one memory latency a
  // band, where a pair at a time waited for each pair.
  constexpr int kFirstPairs = 4;
  Chunk<kIn> first[kFirstPairs];
#pragma unroll
  for (int i = 0; i < kFirstPairs; ++i)
    load_pair<kIn>(x, d, image, 2 * r0 - 3 + 2 * i, first[i]);
  for (int i = threadIdx.x; i < kSlots * kSlotBytes / 16; i += kThreads)
    reinterpret_cast<uint4*>(ring)[i] = make_uint4(0, 0, 0, 0);
  unsigned a[kKSteps][4];
  load_filter(filter, a);
  const int channel = threadIdx.x / 32 * 16 + threadIdx.x % 32 / 4;
  const float lane_bias[2] = {bias[channel], bias[channel + 8]};
  __syncthreads();  // the zeros are down before the rows land on them
#pragma unroll
  for (int i = 0; i < kFirstPairs; ++i)
    store_pair<kIn>(ring, 2 * r0 - 3 + 2 * i, first[i], d);
  Chunk<kIn> next;  // the next conv row's 2 input rows, stored in the loop
  if (r0 < r1) load_pair<kIn>(x, d, image, 2 * r0 + 4, next);

  float running[kGroups][2];  // the max over the conv rows so far of the pooled row in progress
  for (auto& column : running)
    column[0] = column[1] = -INFINITY;
  for (int r = r0; r <= r1; ++r) {
    // The slots this row reads are written (by generic stores, which the
    // tensor cores' async proxy must be fenced from).
    fence_async_proxy();
    __syncthreads();
    float acc[kAcc];
    for (float& v : acc)
      v = 0.0f;
    pin(acc);
    issue_row(acc, a, ring, r);
    // While the tensor cores work: the next row's 2 input rows into slots
    // this row does not read, and the loads of the row after's.
    if (r < r1) {
      store_pair<kIn>(ring, 2 * r + 4, next, d);
      if (r + 1 < r1) load_pair<kIn>(x, d, image, 2 * r + 6, next);
    }
    wait_row();
    pin(acc);
    float across[kGroups][2];
    pool_across(acc, across);
    if (r % 2 == 0) {  // the middle row of pooled row r / 2
#pragma unroll
      for (int j = 0; j < kGroups; ++j)
        for (int half = 0; half < 2; ++half)
          running[j][half] = fmaxf(running[j][half], across[j][half]);
      if (r == d.conv_h - 1)  // no row below
        store_pooled_row<kOut>(
            running, lane_bias, d, stage,
            y_image + static_cast<long long>(r / 2) * kPoolCols * kStemOutChannels);
    } else {  // the bottom row of pooled row (r - 1) / 2 and the top of (r + 1) / 2
      if ((r - 1) / 2 >= p0) {
#pragma unroll
        for (int j = 0; j < kGroups; ++j)
          for (int half = 0; half < 2; ++half)
            running[j][half] = fmaxf(running[j][half], across[j][half]);
        store_pooled_row<kOut>(
            running, lane_bias, d, stage,
            y_image + static_cast<long long>((r - 1) / 2) * kPoolCols * kStemOutChannels);
      }
#pragma unroll
      for (int j = 0; j < kGroups; ++j)
        for (int half = 0; half < 2; ++half)
          running[j][half] = across[j][half];
    }
  }
}

template <StemInput kIn, StemOutput kOut>
void launch(const void* x, const void* filter, const float* bias, void* y, const Dims& d,
            long long blocks, cudaStream_t stream) {
  stem_rows_kernel<kIn, kOut>
      <<<static_cast<unsigned>(blocks), kThreads, kSmemBytes<kOut>, stream>>>(
          x, static_cast<const __half*>(filter), bias, static_cast<Out<kOut>*>(y), d);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

template <StemInput kIn>
void launch_output(StemOutput out, const void* x, const void* filter, const float* bias, void* y,
                   const Dims& d, long long blocks, cudaStream_t stream) {
  switch (out) {
    case StemOutput::kFloat16:
      return launch<kIn, StemOutput::kFloat16>(x, filter, bias, y, d, blocks, stream);
    case StemOutput::kInt8Checked:
      return launch<kIn, StemOutput::kInt8Checked>(x, filter, bias, y, d, blocks, stream);
    case StemOutput::kInt8ByReciprocal:
      return launch<kIn, StemOutput::kInt8ByReciprocal>(x, filter, bias, y, d, blocks, stream);
  }
}

}  // namespace

bool stem_rows_compiled() {
#ifdef ANVIL_HAVE_SM90A
  return true;
#else
  return false;
#endif
}

void stem_conv_pool_rows(const void* x, const void* filter, const float* bias, void* y,
                         const StemShape& s, StemOutput out, float int8_inv, int sms,
                         cudaStream_t stream) {
  Dims d{};
  d.in_h = static_cast<int>(s.in_h);
  d.conv_h = static_cast<int>(s.conv_h());
  d.out_h = static_cast<int>(s.out_h());
  d.relu = s.relu;
  d.int8_scale = s.int8_scale;
  d.int8_inv = int8_inv;
  d.affine = s.image_affine;
  // The tallest band that still gives about one full wave of blocks (two a
  // SM): a band re-computes one conv row and waits for its first 7 input
  // rows, so taller is cheaper until SMs go idle. bench/stem.sh's sweep
  // (H100, twelfth session, docs/PERFORMANCE.md) found one wave best at
  // batch 128 (bands of 28: 0.088 ms, 8: 0.110), 32 (7: 0.031, 2: 0.047)
  // and 8 (2: 0.016). StemShape::band_rows overrides it.
  const long long wave = 2LL * sms;
  d.band_rows = 2;
  for (const int rows : {28, 14, 8, 7, 4})
    if (10 * s.n * ((d.out_h + rows - 1) / rows) >= 9 * wave) {
      d.band_rows = rows;
      break;
    }
  if (s.band_rows > 0) d.band_rows = static_cast<int>(std::min<std::int64_t>(s.band_rows, d.out_h));
  d.bands = (d.out_h + d.band_rows - 1) / d.band_rows;
  const long long blocks = s.n * d.bands;
  switch (s.input) {
    case StemInput::kFloat32Nchw:
      return launch_output<StemInput::kFloat32Nchw>(out, x, filter, bias, y, d, blocks, stream);
    case StemInput::kFloat16Nhwc4:
      return launch_output<StemInput::kFloat16Nhwc4>(out, x, filter, bias, y, d, blocks, stream);
    case StemInput::kUint8Nhwc:
      return launch_output<StemInput::kUint8Nhwc>(out, x, filter, bias, y, d, blocks, stream);
  }
}

}  // namespace anvil::cuda::kernels
