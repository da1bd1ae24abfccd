// The Hopper kernel of conv3x3_int8.h with the filter in registers: the
// convolution as D (64 output channels x pixels) = W (64 x 576) x im2col^T
// (576 x pixels) on warpgroup MMA, A from registers, B from shared memory,
// kStep output slots (128 or 256) a step and an instruction.
//
// Why the roles are the other way round from conv3x3_int8_wgmma.cu: there,
// m64n64k32 with both operands in shared memory reads 4 KB of shared memory
// per 131,072 MACs, which at 128 bytes a clock is as long as the tensor cores
// take (32 clocks): any other shared-memory traffic (the loads, the staging)
// slows the MMAs. Here the filter (64 x 576 bytes: 72 registers a thread) is
// loaded into registers once per block, and an m64n256k32 reads 8 KB per
// 524,288 MACs: half the shared-memory rate. A variant
// (Conv3x3Int8Kernel::kWgmmaFilterInShared, kFilterInShared) reads A from a
// copy of the filter in shared memory instead: 10 KB per m64n256k32, 80
// bytes a clock of the 128, and 72 registers a thread freed.
//
//  - The input is conv3x3_int8_slots.cuh's slots and planes (as B: K-major,
//    8 slots a core matrix, LBO a plane, SBO 128), double-buffered with
//    cp.async; a block is one warpgroup, persistent, two an SM at steps of
//    256 (242 registers a thread: 128 accumulators, 72 of filter).
//  - A row i of warp w's 16 is output channel 16 w + 2 i for i < 8 and
//    16 w + 2 (i - 8) + 1 for i >= 8, so that each thread's accumulator rows
//    g and g + 8 are a channel pair: accumulators 4 j + 0..3 are channels
//    (c, c + 1) of pixels 8 j + 2 t and 8 j + 2 t + 1, c = 16 w + 2 g.
//  - Epilogue: each pair through epilogue_pair (the contract, as the other
//    kernels compute it), two pixels' pairs in one 32-bit register: the
//    fragment of an 8 x 8 matrix of 16-bit pairs (rows channel pairs,
//    columns pixels), which stmatrix .trans writes to the staging buffer
//    pixel-major (the input buffer just consumed, 16-byte chunks swizzled by
//    pixel_chunk); then 16-byte stores of whole output pixels. The residual
//    comes the same way back: cp.async of its pixels into shared memory
//    while the tensor cores work, ldmatrix .trans into the same fragments.
//
// Measured (H100, seventeenth session, bench/conv3x3_int8.sh): steps of 256
// take 0.0415 ms at batch 128 (cuDNN's best 0.0534) and 0.0533 with the
// residual (cuDNN 0.0845, the mma.sync kernel 0.0638); 0.021 and 0.024 ms
// at batch 32, level with cuDNN and the mma.sync kernel. The autotuner gives
// it layer1's four convs (runtime::kConv3x3Int8WgmmaIdentity). Nsight
// Compute (batch 128, no residual, clocks locked at 1.43 GHz): tensor pipe
// 41.5% busy, 1.95 warps a scheduler of which 0.43 eligible: latency-bound,
// a block's MMAs and then its epilogue one after the other, two blocks an
// SM overlapping them only loosely. Tried, each exact, none faster:
//  - two accumulator sets, a step's epilogue under the next step's MMAs
//    (steps of 64: 0.0545 ms; of 128, ptxas serialized every wgmma, C7514,
//    where one stayed in flight across the loop's back edge: 0.31 ms);
//  - a step's 256 slots as two MMA groups of 128, the first group's
//    epilogue under the second's MMAs (separate staging): 0.0421 and 0.0579
//    ms against 0.0417 and 0.0542 in the same run.
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

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// The accumulators of an m64nN s32 wgmma as asm operands (N / 2 a thread):
// their "+r" list and their names %0 .. %(N / 2 - 1), which the RS and SS
// forms below share.
#define ANVIL_D8(d, b)                                                                            \
  "+r"(d[b + 0]), "+r"(d[b + 1]), "+r"(d[b + 2]), "+r"(d[b + 3]), "+r"(d[b + 4]), "+r"(d[b + 5]), \
      "+r"(d[b + 6]), "+r"(d[b + 7])
#define ANVIL_D64(d)                                                                 \
  ANVIL_D8(d, 0), ANVIL_D8(d, 8), ANVIL_D8(d, 16), ANVIL_D8(d, 24), ANVIL_D8(d, 32), \
      ANVIL_D8(d, 40), ANVIL_D8(d, 48), ANVIL_D8(d, 56)
#define ANVIL_D128(d)                                                               \
  ANVIL_D64(d), ANVIL_D8(d, 64), ANVIL_D8(d, 72), ANVIL_D8(d, 80), ANVIL_D8(d, 88), \
      ANVIL_D8(d, 96), ANVIL_D8(d, 104), ANVIL_D8(d, 112), ANVIL_D8(d, 120)
#define ANVIL_D64_NAMES                                                              \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, " \
  "%18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, " \
  "%34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, " \
  "%50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define ANVIL_D128_NAMES                                                                     \
  ANVIL_D64_NAMES                                                                            \
      ", "                                                                                   \
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "     \
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "     \
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, "     \
      "%110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, " \
      "%124, %125, %126, %127"

// d (+)= a (64 x 32, registers) x b (32 x 128, shared memory), INT8 in, INT32 out.
__device__ __forceinline__ void wgmma_64x128x32(int (&d)[64], const unsigned (&a)[4],
                                                unsigned long long b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {" ANVIL_D64_NAMES
      "}, {%64, %65, %66, %67}, %68, p;\n}\n"
      : ANVIL_D64(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(static_cast<int>(accumulate)));
}

// d (+)= a (64 x 32, registers) x b (32 x 256, shared memory), INT8 in, INT32 out.
__device__ __forceinline__ void wgmma_64x256x32(int (&d)[128], const unsigned (&a)[4],
                                                unsigned long long b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 {" ANVIL_D128_NAMES
      "}, {%128, %129, %130, %131}, %132, p;\n}\n"
      : ANVIL_D128(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(static_cast<int>(accumulate)));
}

// d (+)= a (64 x 32, shared memory) x b (32 x 128, shared memory), INT8 in, INT32 out.
__device__ __forceinline__ void wgmma_ss_64x128x32(int (&d)[64], unsigned long long a,
                                                   unsigned long long b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {" ANVIL_D64_NAMES "}, %64, %65, p;\n}\n"
      : ANVIL_D64(d)
      : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
}

// d (+)= a (64 x 32, shared memory) x b (32 x 256, shared memory), INT8 in, INT32 out.
__device__ __forceinline__ void wgmma_ss_64x256x32(int (&d)[128], unsigned long long a,
                                                   unsigned long long b, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 {" ANVIL_D128_NAMES
      "}, %128, %129, p;\n}\n"
      : ANVIL_D128(d)
      : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
}

#undef ANVIL_D128_NAMES
#undef ANVIL_D64_NAMES
#undef ANVIL_D128
#undef ANVIL_D64
#undef ANVIL_D8

template <int kStep>
__device__ __forceinline__ void wgmma_step(int (&d)[kStep / 2], const unsigned (&a)[4],
                                           unsigned long long b, bool accumulate) {
  if constexpr (kStep == 128)
    wgmma_64x128x32(d, a, b, accumulate);
  else
    wgmma_64x256x32(d, a, b, accumulate);
}

template <int kStep>
__device__ __forceinline__ void wgmma_step(int (&d)[kStep / 2], unsigned long long a,
                                           unsigned long long b, bool accumulate) {
  if constexpr (kStep == 128)
    wgmma_ss_64x128x32(d, a, b, accumulate);
  else
    wgmma_ss_64x256x32(d, a, b, accumulate);
}

// Four 8 x 8 matrices of 16-bit elements, transposed, registers -> shared
// memory: lanes 8i .. 8i + 7 give the addresses of matrix i's rows, which
// receive its columns.
__device__ __forceinline__ void stmatrix_x4_trans(unsigned address, const unsigned (&r)[4]) {
  asm volatile(
      "stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(address),
      "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
      : "memory");
}
#endif

// The other way: shared memory -> registers, transposed.
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned address, unsigned (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// Starts loading the residual of step `unit`'s output slots into `buffer`
// (kStep pixels of 64 bytes, chunks swizzled by pixel_chunk); zeros where a
// slot is no output pixel.
template <int kStep>
__device__ void load_residual(unsigned char* buffer, const std::int8_t* residual, const Dims& d,
                              long long image, int j0) {
  for (int i = threadIdx.x; i < kStep * 4; i += kThreads) {
    const int p = i >> 2, c = i & 3;
    const Slot s(j0 + p, d);
    const bool inside = s.output(d);
    cp_async<16>(shared_address(buffer + pixel_chunk(p, c)),
                 inside ? residual + pixel_offset(image, s, d) + c * 16 : residual, inside);
  }
}

// Shared memory after the input buffers and the residual's pixels: the
// filter as A (kFilterInShared), k-step ks, 8-row block m and 16-byte k
// chunk kc at ks x 2048 + m x 256 + kc x 128 (LBO 128, SBO 256), its rows
// in the order of the accumulators' channel pairs (the file's comment).
constexpr int kFilterBytes = kC * kRowBytes;
constexpr int kKStepBytes = kFilterBytes / kKSteps;  // 2048

// Starts loading the filter into `s_filter` as A, rows permuted: row r of
// warp w's 16 is channel 16 w + 2 (r % 8) + r / 8.
__device__ void load_filter_as_a(unsigned char* s_filter, const std::int8_t* filter) {
  for (int i = threadIdx.x; i < kFilterBytes / 16; i += kThreads) {
    const int row = i / (kRowBytes / 16), j = i % (kRowBytes / 16);  // A row, 16-byte chunk
    const int r = row % 16, channel = row - r + 2 * (r % 8) + r / 8;
    const int to = j / 2 * kKStepBytes + row / 8 * 256 + j % 2 * 128 + row % 8 * 16;
    cp_async<16>(shared_address(s_filter + to), filter + channel * kRowBytes + j * 16, true);
  }
}

// kFilterInShared: A from shared memory (both operands: the filter read
// again every step, 72 registers a thread freed for the epilogue); else
// from registers, loaded once.
template <int kStep, bool kResidual, bool kFilterInShared>
__global__ void __launch_bounds__(kThreads, kStep == 128 ? 3 : 2)
    conv3x3_int8_wgmma_rs_kernel(const std::int8_t* __restrict__ x,
                                 const std::int8_t* __restrict__ filter,
                                 const float* __restrict__ scale, const float* __restrict__ bias,
                                 const std::int8_t* __restrict__ residual,
                                 std::int8_t* __restrict__ y, Dims d) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kAcc = kStep / 2;  // 64 channels x kStep pixels over 128 threads
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* const buffers = smem;  // two of 4 planes
  unsigned char* const s_residual = smem + 2 * 4 * d.plane_bytes;
  unsigned char* const s_filter = s_residual + kStep * kC;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  long long unit = blockIdx.x;
  if constexpr (kFilterInShared) load_filter_as_a(s_filter, filter);
  if (unit < d.units) load_step<kStep, kThreads>(buffers, x, d, unit);
  cp_async_commit();

  // This thread's channel pair and its A fragments: rows g and g + 8 of the
  // warp's 16 are channels c and c + 1; k bytes 4 t .. 4 t + 3 and 16 more.
  const int c = 16 * warp + 2 * g;
  const float2 sc = make_float2(scale[c], scale[c + 1]);
  const float2 bi = bias ? make_float2(bias[c], bias[c + 1]) : make_float2(0, 0);
  const float low = d.relu ? 0.0f : -128.0f;
  unsigned a[kFilterInShared ? 1 : kKSteps][4];
#pragma unroll
  for (int ks = 0; ks < (kFilterInShared ? 0 : kKSteps); ++ks) {
    const std::int8_t* const row = filter + c * kRowBytes + ks * 32 + 4 * t;
    a[ks][0] = *reinterpret_cast<const unsigned*>(row);
    a[ks][1] = *reinterpret_cast<const unsigned*>(row + kRowBytes);
    a[ks][2] = *reinterpret_cast<const unsigned*>(row + 16);
    a[ks][3] = *reinterpret_cast<const unsigned*>(row + kRowBytes + 16);
  }
  for (int buffer = 0; unit < d.units; unit += gridDim.x, buffer ^= 1) {
    const long long image = unit / d.units_per_image;
    const int j0 = static_cast<int>(unit % d.units_per_image) * kStep;
    cp_async_wait<0>();
    fence_proxy_async();
    __syncthreads();  // this step's input is in; the last step's stores are done

    unsigned char* const in = buffers + buffer * 4 * d.plane_bytes;
    int acc[kAcc];
    wgmma_fence();
    // B of tap (r, s), k half h: input slots from j0 + r pitch + s, channels
    // from 32 h (planes 2 h and 2 h + 1): one start-address add each.
    const unsigned long long b0 = descriptor(in, d.plane_bytes, 128);
    const unsigned long long a0 = descriptor(s_filter, 128, 256);
    const int plane16 = d.plane_bytes / 16;
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      const int tap = ks / 2, r = tap / 3, s = tap % 3, half = ks % 2;
      const unsigned long long b = b0 + (2 * half * plane16 + r * d.pitch + s);
      if constexpr (kFilterInShared)
        wgmma_step<kStep>(acc, a0 + ks * (kKStepBytes / 16), b, ks > 0);
      else
        wgmma_step<kStep>(acc, a[ks], b, ks > 0);
    }
    wgmma_commit();
    // While the tensor cores work: this step's residual, then the next
    // step's input (waited for only at the next step).
    if constexpr (kResidual) {
      load_residual<kStep>(s_residual, residual, d, image, j0);
      cp_async_commit();
    }
    if (unit + gridDim.x < d.units)
      load_step<kStep, kThreads>(buffers + (buffer ^ 1) * 4 * d.plane_bytes, x, d,
                                 unit + gridDim.x);
    cp_async_commit();
    if constexpr (kResidual) cp_async_wait<1>();
    wgmma_wait_all();
    pin(acc);
    __syncthreads();  // every warp's MMAs are done reading `in`; the residual is in

    unsigned char* const stage = in;
#pragma unroll
    for (int q = 0; q < kStep / 32; ++q) {
      // Matrices 4 q .. 4 q + 3 (pixels 32 q .. 32 q + 31); in ldmatrix and
      // stmatrix, lane l addresses row l % 8 of matrix l / 8: pixel 32 q + l.
      const int pixel = 32 * q + lane;
      unsigned res[4] = {0, 0, 0, 0};
      if constexpr (kResidual)
        ldmatrix_x4_trans(shared_address(s_residual + pixel_chunk(pixel, warp)), res);
      unsigned pairs[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int j = 4 * q + i;
        const unsigned even = epilogue_pair<kResidual>(acc[4 * j], acc[4 * j + 2], sc, bi, res[i],
                                                       d.residual_scale, low);
        const unsigned odd = epilogue_pair<kResidual>(acc[4 * j + 1], acc[4 * j + 3], sc, bi,
                                                      res[i] >> 16, d.residual_scale, low);
        pairs[i] = even | odd << 16;
      }
      stmatrix_x4_trans(shared_address(stage + pixel_chunk(pixel, warp)), pairs);
    }
    __syncthreads();
    store_step<kStep, kThreads>(stage, y, d, image, j0);
  }
  cp_async_wait<0>();  // nothing left in flight when the block exits
#else
  (void)x, (void)filter, (void)scale, (void)bias, (void)residual, (void)y, (void)d;
  __trap();  // never launched: conv3x3_int8_wgmma_compiled() is false without sm_90a code
#endif
}

// The kernel for a step of kStep slots, the residual or not, A from shared
// memory or registers.
template <int kStep, bool kFilterInShared>
auto kernel_of(bool residual) {
  return residual ? conv3x3_int8_wgmma_rs_kernel<kStep, true, kFilterInShared>
                  : conv3x3_int8_wgmma_rs_kernel<kStep, false, kFilterInShared>;
}

template <bool kFilterInShared>
auto kernel_of(int parts, bool residual) {
  return parts == 2 ? kernel_of<128, kFilterInShared>(residual)
                    : kernel_of<256, kFilterInShared>(residual);
}

auto kernel_of(const Conv3x3Int8Shape& shape, int parts, bool residual) {
  return shape.kernel == Conv3x3Int8Kernel::kWgmmaFilterInShared
             ? kernel_of<true>(parts, residual)
             : kernel_of<false>(parts, residual);
}

}  // namespace

Conv3x3Int8WgmmaLaunch plan_conv3x3_int8_wgmma_rs(const Conv3x3Int8Shape& shape, int parts, int sms,
                                                  int smem_limit) {
  if (parts != 2 && parts != 4)
    fail(ErrorKind::kInvalidArgument,
         "conv3x3_int8: wgmma (filter as A) steps of 2 or 4 x 64 pixels, not ", parts);
  const int step = parts * 64;
  const Dims d = dims(shape, step);
  // Two input buffers, then the residual's pixels (the staging reuses the
  // input buffer a step consumed: a plane is 16 x span >= 16 x step bytes,
  // four of them hold the step's 64-byte pixels), then the filter when A
  // is read from shared memory.
  const int smem_bytes =
      2 * 4 * d.plane_bytes + step * kC +
      (shape.kernel == Conv3x3Int8Kernel::kWgmmaFilterInShared ? kFilterBytes : 0);
  return plan_launch(shape, parts, d, smem_bytes, kernel_of(shape, parts, false),
                     kernel_of(shape, parts, true), kThreads, sms, smem_limit);
}

void conv3x3_int8_wgmma_rs(const Conv3x3Int8WgmmaLaunch& l, const Conv3x3Int8Shape& shape,
                           const void* x, const void* filter, const float* scale, const float* bias,
                           const void* residual, void* y, cudaStream_t stream) {
  launch(kernel_of(shape, l.parts, shape.has_residual), l, kThreads, dims(shape, l.parts * 64), x,
         filter, scale, bias, residual, y, stream);
}

}  // namespace anvil::cuda::kernels
