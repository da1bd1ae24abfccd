// What conv3x3_int8.h's two warpgroup-MMA kernels share (Hopper): the
// padded image's "slots", their loading into shared memory as four planes of
// 16 channels, and the shared-memory matrix descriptors and fences of wgmma.
//
//  - Slots: the image padded with a zero row above and below and a zero
//    column left and right, pitch = w + 2, numbered row-major. Output pixel
//    (p, q) is output slot p x pitch + q (slots q = w, w + 1 of each row are
//    computed and dropped: 2 of 58 at w = 56), and tap (r, s) of output slot
//    j reads input slot j + r x pitch + s. So one tap's im2col rows for
//    consecutive output slots are consecutive input slots: one descriptor,
//    no gather.
//  - A step: `step` consecutive output slots of one image. Its input slots
//    (step + 2 pitch + 2 of them) sit in shared memory as four planes of 16
//    channels x 16 bytes a slot: 8 consecutive slots of a plane are one
//    128-byte core matrix of wgmma's K-major, unswizzled layout (8 slots
//    apart: 128 bytes), and the second 16 channels of a 32-channel k-step are
//    the next plane.
// Device code, except dims() and the launch helpers at the end.
#pragma once

#include <algorithm>
#include <cstdint>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/conv3x3_int8.h"
#include "cuda/kernels/conv3x3_int8_common.cuh"
#include "cuda/kernels/conv3x3_int8_wgmma.h"
#include "cuda/kernels/tensor_core.cuh"

namespace anvil::cuda::kernels::conv3x3 {

struct Dims {
  int h, w, pitch;         // pitch = w + 2
  unsigned pitch_inverse;  // floor(2^32 / pitch) + 1: j / pitch = umulhi(j, it) for j < 2^24
  int units_per_image;     // steps an image
  long long units;         // steps in all
  int span;                // input slots a step reads: step + 2 pitch + 2
  int plane_bytes;         // 16 x span
  bool relu;
  float residual_scale;
};

inline Dims dims(const Conv3x3Int8Shape& s, int step) {
  Dims d{};
  d.h = static_cast<int>(s.h);
  d.w = static_cast<int>(s.w);
  d.pitch = d.w + 2;
  d.pitch_inverse = static_cast<unsigned>((1ull << 32) / static_cast<unsigned>(d.pitch) + 1);
  d.units_per_image = (d.h * d.pitch + step - 1) / step;
  d.units = s.n * d.units_per_image;
  d.span = step + 2 * d.pitch + 2;
  d.plane_bytes = 16 * d.span;
  d.relu = s.relu;
  d.residual_scale = s.residual_scale;
  return d;
}

// Whether Dims::pitch_inverse divides every slot of the image's steps exactly.
inline bool slots_divide_exactly(const Dims& d) {
  return (static_cast<long long>(d.h) + 2) * d.pitch + d.span < (1LL << 32) / d.pitch;
}

// The high 32 bits of a x b.
__device__ __forceinline__ unsigned mul_high(unsigned a, unsigned b) {
  unsigned high;
  asm("mul.hi.u32 %0, %1, %2;" : "=r"(high) : "r"(a), "r"(b));
  return high;
}

// Where slot j of an image is: row and column of the padded image (input
// slots) or of the output (output slots).
struct Slot {
  int row, col;
  __device__ Slot(int j, const Dims& d)
      : row(static_cast<int>(mul_high(static_cast<unsigned>(j), d.pitch_inverse))),
        col(j - row * d.pitch) {}
  __device__ bool output(const Dims& d) const { return row < d.h && col < d.w; }
};

// Byte offset of output slot `s` of `image` in an NHWC INT8 tensor.
__device__ __forceinline__ long long pixel_offset(long long image, const Slot& s, const Dims& d) {
  return ((image * d.h + s.row) * d.w + s.col) * kC;
}

// Starts loading step `unit`'s input slots into `buffer` (four planes), as
// cp.async by the block's kThreads threads; zeros outside the image.
template <int kStep, int kThreads>
__device__ void load_step(unsigned char* buffer, const std::int8_t* x, const Dims& d,
                          long long unit) {
  const long long image = unit / d.units_per_image;
  const int j0 = static_cast<int>(unit % d.units_per_image) * kStep;
  for (int i = threadIdx.x; i < d.span; i += kThreads) {
    const Slot s(j0 + i, d);  // a slot of the padded image
    const bool inside = s.row >= 1 && s.row <= d.h && s.col >= 1 && s.col <= d.w;
    const std::int8_t* src = inside ? x + ((image * d.h + s.row - 1) * d.w + s.col - 1) * kC : x;
#pragma unroll
    for (int c = 0; c < 4; ++c)
      cp_async<16>(shared_address(buffer + c * d.plane_bytes + i * 16), src + c * 16, inside);
  }
}

// The staged step's kPixels output pixels (64 bytes each, 16-byte chunks
// swizzled by pixel_chunk) to y, 16 bytes a thread at a time; slots that
// are no output pixel are dropped.
template <int kPixels, int kThreads>
__device__ void store_step(const unsigned char* stage, std::int8_t* y, const Dims& d,
                           long long image, int j0) {
  for (int i = threadIdx.x; i < kPixels * 4; i += kThreads) {
    const int p = i >> 2, chunk = i & 3;
    const Slot s(j0 + p, d);
    if (s.output(d))
      *reinterpret_cast<uint4*>(y + pixel_offset(image, s, d) + chunk * 16) =
          *reinterpret_cast<const uint4*>(stage + pixel_chunk(p, chunk));
  }
}

// The compiler must not move reads or writes of the accumulators across
// the asynchronous wgmma; this ties them to the asm statement's position.
template <int kCount>
__device__ __forceinline__ void pin(int (&d)[kCount]) {
#pragma unroll
  for (int& v : d)
    asm volatile("" : "+r"(v)::"memory");
}

// A shared-memory matrix descriptor, no swizzle: start, LBO (between the k
// step's two 16-byte core-matrix columns) and SBO (between 8-row groups).
// It advances by its start address field (16-byte units, the low bits).
__device__ __forceinline__ unsigned long long descriptor(const void* p, int lbo, int sbo) {
  return ((shared_address(p) & 0x3FFFFu) >> 4) | (static_cast<unsigned long long>(lbo >> 4) << 16) |
         (static_cast<unsigned long long>(sbo >> 4) << 32);
}

// cp.async writes shared memory through the generic proxy; the tensor cores
// read it through the async one.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_wait_all() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
#endif

// The launch of a wgmma kernel whose two variants (`plain`, and `residual`
// with the residual) take `smem_bytes` of shared memory a block and
// `threads` threads: sets their shared-memory attribute, and takes as many
// blocks as the SMs hold (at most one a step, and shape.max_blocks).
// kUnsupported for images too tall for the slot arithmetic or more shared
// memory than the device gives a block.
template <typename Kernel>
Conv3x3Int8WgmmaLaunch plan_launch(const Conv3x3Int8Shape& shape, int parts, const Dims& d,
                                   int smem_bytes, Kernel plain, Kernel residual, int threads,
                                   int sms, int smem_limit) {
  if (!slots_divide_exactly(d))
    fail(ErrorKind::kUnsupported, "conv3x3_int8: images of ", d.h, " x ", d.w,
         " are too tall for the wgmma kernels");
  if (smem_bytes > smem_limit)
    fail(ErrorKind::kUnsupported, "conv3x3_int8: ", smem_bytes,
         " bytes of shared memory a block; this GPU gives ", smem_limit);
  int per_sm = 0;
  for (const Kernel kernel : {plain, residual}) {
    ANVIL_GPU_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
    ANVIL_GPU_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &per_sm, kernel, threads, static_cast<std::size_t>(smem_bytes)));
  }
  Conv3x3Int8WgmmaLaunch l;
  l.parts = parts;
  l.units_per_image = d.units_per_image;
  l.units = d.units;
  l.smem_bytes = smem_bytes;
  long long blocks = std::min<long long>(l.units, 1LL * std::max(per_sm, 1) * sms);
  if (shape.max_blocks > 0) blocks = std::min<long long>(blocks, shape.max_blocks);
  l.blocks = static_cast<int>(blocks);
  return l;
}

// Enqueues `kernel` (one of a plan_launch's variants) on `stream`.
template <typename Kernel>
void launch(Kernel kernel, const Conv3x3Int8WgmmaLaunch& l, int threads, const Dims& d,
            const void* x, const void* filter, const float* scale, const float* bias,
            const void* residual, void* y, cudaStream_t stream) {
  kernel<<<l.blocks, threads, l.smem_bytes, stream>>>(
      static_cast<const std::int8_t*>(x), static_cast<const std::int8_t*>(filter), scale, bias,
      static_cast<const std::int8_t*>(residual), static_cast<std::int8_t*>(y), d);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels::conv3x3
