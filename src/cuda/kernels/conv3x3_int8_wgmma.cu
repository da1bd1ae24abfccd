// The Hopper kernel of conv3x3_int8.h: the convolution as a GEMM on
// warpgroup MMA, D (pixels x 64 channels) = im2col (pixels x 576) x W^T,
// both operands read by the tensor cores from shared memory, 64 output
// pixels an instruction, kParts of them a step.
//
//  - "Slots": the image padded with a zero row above and below and a zero
//    column left and right, pitch = w + 2, numbered row-major. Output pixel
//    (p, q) is output slot p x pitch + q (slots q = w, w + 1 of each row are
//    computed and dropped: 2 of 58 at w = 56), and tap (r, s) of output slot
//    j reads input slot j + r x pitch + s. So the im2col operand of one tap,
//    for 64 consecutive output slots, is 64 consecutive input slots: one
//    descriptor, no gather.
//  - A block (one warpgroup, persistent, several an SM) takes steps of
//    kParts x 64 consecutive output slots of one image. A step's input slots
//    (that + 2 pitch + 2) sit in shared memory as four planes of 16 channels
//    x 16 bytes a slot: 8 consecutive slots of a plane are one 128-byte core
//    matrix of the K-major, unswizzled layout (SBO 128 bytes), and the k
//    step's second 16 channels are the next plane (LBO = a plane's bytes).
//    The next step's slots load with cp.async while the tensor cores work
//    (two buffers).
//  - The filter is the B operand (K x 64 channels, K-major: a channel's
//    576 bytes), stored once per block as core matrices: k-step ks, 8-channel
//    block m and 16-byte k chunk kc at ks x 2048 + m x 256 + kc x 128 (LBO
//    128 bytes, SBO 256).
//  - Each thread's accumulators are pixel rows g and g + 8 of its warp's 16
//    in each part, channel pairs 8 j + 2 t (mma.sync's layout), so the
//    epilogue is conv3x3_int8.cu's: pairs packed in 16 bits into a staging
//    copy of the step's output (the input buffer just consumed), then
//    16-byte stores. The residual's pairs are loaded into registers while
//    the tensor cores work.
//
// Measured (H100, thirteenth session, bench/conv3x3_int8.sh): steps of 256
// take 0.055 ms at batch 128 (the mma.sync kernel 0.062, cuDNN 0.053) and
// 0.066 with the residual (0.067, cuDNN 0.085), but 0.028-0.032 ms at batch
// 32 against 0.022-0.024: too few steps for the blocks. Plans do not use it
// yet (Conv3x3Int8Kernel). Like the mma.sync kernel it is latency-bound, on
// its non-MMA instructions (steps of 128 at batch 128: 14.8 M warp
// instructions, 0.48 M of them wgmma): the epilogue, the slot arithmetic,
// the staging.
#include <algorithm>
#include <cstdint>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/conv3x3_int8_slots.cuh"
#include "cuda/kernels/conv3x3_int8_wgmma.h"
#include "cuda/kernels/tensor_core.cuh"

namespace anvil::cuda::kernels {
namespace {

using namespace conv3x3;  // NOLINT: the slots, the epilogue and the wgmma helpers

constexpr int kThreads = 128;  // one warpgroup
constexpr int kPartM = 64;     // one wgmma's output pixels
constexpr int kAcc = kPartM * kC / kThreads;
constexpr int kFilterBytes = kC * kRowBytes;
constexpr int kKStepBytes = kFilterBytes / kKSteps;  // 2048
constexpr int kBufferOffset = kFilterBytes;          // shared memory: filter, two input buffers

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// d (+)= a (64 x 32, shared memory) x b (32 x 64, shared memory), INT8 in, INT32 out.
__device__ __forceinline__ void wgmma_64x64x32(int (&d)[kAcc], unsigned long long a,
                                               unsigned long long b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, "
      "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p;\n}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]),
        "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]),
        "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]),
        "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]),
        "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31])
      : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
}
#endif

template <int kParts, bool kResidual>
__global__ void __launch_bounds__(kThreads, kParts <= 2 ? 3 : 2)
    conv3x3_int8_wgmma_kernel(const std::int8_t* __restrict__ x,
                              const std::int8_t* __restrict__ filter,
                              const float* __restrict__ scale, const float* __restrict__ bias,
                              const std::int8_t* __restrict__ residual, std::int8_t* __restrict__ y,
                              Dims d) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* const s_filter = smem;
  unsigned char* const buffers = smem + kBufferOffset;  // two of 4 planes

  for (int i = threadIdx.x; i < kFilterBytes / 16; i += kThreads) {
    const int n = i / (kRowBytes / 16), j = i % (kRowBytes / 16);
    const int to = j / 2 * kKStepBytes + n / 8 * 256 + j % 2 * 128 + n % 8 * 16;
    cp_async<16>(shared_address(s_filter + to), filter + i * 16, true);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // This thread's channel pairs 8 j + 2 t: their scales and biases.
  float2 sc[8], bi[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    sc[j] = make_float2(scale[8 * j + 2 * t], scale[8 * j + 2 * t + 1]);
    bi[j] = bias ? make_float2(bias[8 * j + 2 * t], bias[8 * j + 2 * t + 1]) : make_float2(0, 0);
  }
  const float low = d.relu ? 0.0f : -128.0f;
  long long unit = blockIdx.x;
  if (unit < d.units) load_step<kParts * kPartM, kThreads>(buffers, x, d, unit);
  cp_async_commit();

  for (int buffer = 0; unit < d.units; unit += gridDim.x, buffer ^= 1) {
    const long long image = unit / d.units_per_image;
    const int j0 = static_cast<int>(unit % d.units_per_image) * kParts * kPartM;
    cp_async_wait<0>();
    fence_proxy_async();
    __syncthreads();  // this step's input is in; the last step's stores are done

    unsigned char* const in = buffers + buffer * 4 * d.plane_bytes;
    int acc[kParts][kAcc];
#pragma unroll
    for (int part = 0; part < kParts; ++part) {
#pragma unroll
      for (int& v : acc[part])
        v = 0;
      pin(acc[part]);
    }
    wgmma_fence();
    // Descriptors advance by their start address field (16-byte units, the
    // low bits): one add each, from the step's and the filter's first.
    const unsigned long long a0 = descriptor(in, d.plane_bytes, 128);
    const unsigned long long b0 = descriptor(s_filter, 128, 256);
    const int row16 = d.pitch, plane16 = d.plane_bytes / 16;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      const int tap = ks / 2, r = tap / 3, s = tap % 3, half = ks % 2;
      const unsigned long long b = b0 + ks * (kKStepBytes / 16);
#pragma unroll
      for (int part = 0; part < kParts; ++part) {
        const unsigned long long a = a0 + (2 * half * plane16 + part * kPartM + r * row16 + s);
        wgmma_64x64x32(acc[part], a, b, ks > 0);
      }
    }
    wgmma_commit();
    // While the tensor cores work: the next step's input, and this step's
    // residual pairs (row g and g + 8 of the warp's 16 in each part).
    if (unit + gridDim.x < d.units)
      load_step<kParts * kPartM, kThreads>(buffers + (buffer ^ 1) * 4 * d.plane_bytes, x, d,
                                           unit + gridDim.x);
    cp_async_commit();
    long long out[kParts][2];  // the pixel's byte offset in y, or -1: not an output pixel
    unsigned short res[kParts][2][8];
#pragma unroll
    for (int part = 0; part < kParts; ++part)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const Slot s(j0 + part * kPartM + 16 * warp + g + 8 * half, d);
        out[part][half] = s.output(d) ? pixel_offset(image, s, d) : -1;
        if constexpr (kResidual)
#pragma unroll
          for (int j = 0; j < 8; ++j)
            res[part][half][j] = out[part][half] < 0
                                     ? 0
                                     : *reinterpret_cast<const unsigned short*>(
                                           residual + out[part][half] + 8 * j + 2 * t);
      }
    wgmma_wait_all();
#pragma unroll
    for (int part = 0; part < kParts; ++part)
      pin(acc[part]);
    __syncthreads();  // every warp's MMAs are done reading `in`: it becomes the staging

    // Accumulator 4 j + e of a part: staged pixel part x 64 + 16 warp + g
    // (+ 8 for e >= 2), channels 8 j + 2 t and + 1.
    unsigned char* const stage = in;
#pragma unroll
    for (int part = 0; part < kParts; ++part)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int p = part * kPartM + 16 * warp + g + 8 * half;
#pragma unroll
        for (int j = 0; j < 8; ++j)
          *reinterpret_cast<unsigned short*>(stage + pixel_chunk(p, j / 2) + j % 2 * 8 + 2 * t) =
              epilogue_pair<kResidual>(acc[part][4 * j + 2 * half], acc[part][4 * j + 2 * half + 1],
                                       sc[j], bi[j], kResidual ? res[part][half][j] : 0u,
                                       d.residual_scale, low);
      }
    __syncthreads();
    store_step<kParts * kPartM, kThreads>(stage, y, d, image, j0);
  }
  cp_async_wait<0>();  // nothing left in flight when the block exits
#else
  (void)x, (void)filter, (void)scale, (void)bias, (void)residual, (void)y, (void)d;
  __trap();  // never launched: conv3x3_int8_wgmma_compiled() is false without sm_90a code
#endif
}

}  // namespace

bool conv3x3_int8_wgmma_compiled() {
#ifdef ANVIL_HAVE_SM90A
  return true;
#else
  return false;
#endif
}

Conv3x3Int8WgmmaLaunch plan_conv3x3_int8_wgmma(const Conv3x3Int8Shape& shape, int parts, int sms,
                                               int smem_limit) {
  if (parts != 2 && parts != 4)
    fail(ErrorKind::kInvalidArgument, "conv3x3_int8: wgmma steps of 2 or 4 x 64 pixels, not ",
         parts);
  const Dims d = dims(shape, parts * kPartM);
  const int smem_bytes = kBufferOffset + 2 * 4 * d.plane_bytes;
  if (parts == 2)
    return plan_launch(shape, parts, d, smem_bytes, conv3x3_int8_wgmma_kernel<2, false>,
                       conv3x3_int8_wgmma_kernel<2, true>, kThreads, sms, smem_limit);
  return plan_launch(shape, parts, d, smem_bytes, conv3x3_int8_wgmma_kernel<4, false>,
                     conv3x3_int8_wgmma_kernel<4, true>, kThreads, sms, smem_limit);
}

void conv3x3_int8_wgmma(const Conv3x3Int8WgmmaLaunch& l, const Conv3x3Int8Shape& shape,
                        const void* x, const void* filter, const float* scale, const float* bias,
                        const void* residual, void* y, cudaStream_t stream) {
  const Dims d = dims(shape, l.parts * kPartM);
  const bool r = shape.has_residual;
  const auto kernel =
      l.parts == 2 ? (r ? conv3x3_int8_wgmma_kernel<2, true> : conv3x3_int8_wgmma_kernel<2, false>)
                   : (r ? conv3x3_int8_wgmma_kernel<4, true> : conv3x3_int8_wgmma_kernel<4, false>);
  launch(kernel, l, kThreads, d, x, filter, scale, bias, residual, y, stream);
}

}  // namespace anvil::cuda::kernels
