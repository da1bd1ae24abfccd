// One grid-stride loop over whole 16-element vectors (when every pointer is
// 16-byte aligned: two 16-byte FP16 accesses and one 16-byte INT8 access per
// vector), then one over the elements left. The arithmetic goes through the
// _rn intrinsics so that no compiler flag (fast math, contraction) changes a
// result: the CPU runtime and the tests compute the same bits.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/quantize.h"
#include "cuda/kernels/storage_io.cuh"

namespace anvil::cuda::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kVector = 16;  // elements per vector

__device__ __forceinline__ std::int8_t quantize_one(float x, float scale) {
  const float r = rintf(__fdiv_rn(x, scale));
  // Comparisons rather than fminf/fmaxf, which would turn NaN into a bound.
  if (r >= 127.0f) return 127;
  if (r <= -128.0f) return -128;
  return r == r ? static_cast<std::int8_t>(static_cast<int>(r)) : std::int8_t{0};
}

__device__ __forceinline__ float dequantize_one(std::int8_t q, float scale) {
  return __fmul_rn(static_cast<float>(q), scale);
}

// Four INT8 codes packed little-endian into one word, and back.
__device__ __forceinline__ unsigned pack4(const std::int8_t* q) {
  return static_cast<unsigned>(static_cast<std::uint8_t>(q[0])) |
         static_cast<unsigned>(static_cast<std::uint8_t>(q[1])) << 8 |
         static_cast<unsigned>(static_cast<std::uint8_t>(q[2])) << 16 |
         static_cast<unsigned>(static_cast<std::uint8_t>(q[3])) << 24;
}
__device__ __forceinline__ std::int8_t byte_of(unsigned word, int i) {
  return static_cast<std::int8_t>(static_cast<std::uint8_t>(word >> (8 * i)));
}

// Threads cover `vectors` 16-element vectors, then elements [vectors * 16, elements).
__global__ void quantize_kernel(const __half* __restrict__ x, std::int8_t* __restrict__ q,
                                long long elements, long long vectors, float scale) {
  const long long first = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long v = first; v < vectors; v += stride) {
    float lo[8], hi[8];
    load16(x + v * kVector, lo);
    load16(x + v * kVector + 8, hi);
    std::int8_t codes[kVector];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      codes[i] = quantize_one(lo[i], scale);
      codes[i + 8] = quantize_one(hi[i], scale);
    }
    *reinterpret_cast<uint4*>(q + v * kVector) =
        make_uint4(pack4(codes), pack4(codes + 4), pack4(codes + 8), pack4(codes + 12));
  }
  for (long long i = vectors * kVector + first; i < elements; i += stride)
    q[i] = quantize_one(__half2float(x[i]), scale);
}

__global__ void dequantize_kernel(const std::int8_t* __restrict__ q, __half* __restrict__ y,
                                  long long elements, long long vectors, float scale) {
  const long long first = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long v = first; v < vectors; v += stride) {
    const uint4 packed = *reinterpret_cast<const uint4*>(q + v * kVector);
    const unsigned words[4] = {packed.x, packed.y, packed.z, packed.w};
    float lo[8], hi[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      lo[i] = dequantize_one(byte_of(words[i / 4], i % 4), scale);
      hi[i] = dequantize_one(byte_of(words[2 + i / 4], i % 4), scale);
    }
    store16(y + v * kVector, lo);
    store16(y + v * kVector + 8, hi);
  }
  for (long long i = vectors * kVector + first; i < elements; i += stride)
    y[i] = __float2half_rn(dequantize_one(q[i], scale));
}

void check_args(const char* what, const void* in, const void* out, std::int64_t elements,
                float scale) {
  if (!std::isfinite(scale) || !(scale > 0.0f))
    fail(ErrorKind::kInvalidArgument, what, ": scale ", scale,
         " must be finite and > 0 (a corrupt plan or calibration table?)");
  if (elements < 0) fail(ErrorKind::kInvalidArgument, what, ": negative element count ", elements);
  if (elements > 0 && (in == nullptr || out == nullptr))
    fail(ErrorKind::kInvalidArgument, what, ": null buffer for ", elements, " elements");
}

bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

// Whole vectors the kernels may move at once, and the grid for them plus the rest.
struct Split {
  long long vectors = 0;
  unsigned blocks = 1;
};
Split split(const void* in, const void* out, std::int64_t elements) {
  Split s;
  if (aligned16(in) && aligned16(out)) s.vectors = elements / kVector;
  const long long rest = elements - s.vectors * kVector;
  s.blocks = grid_for(s.vectors > rest ? s.vectors : rest, kThreads);
  return s;
}

}  // namespace

void quantize_int8(const void* x_fp16, std::int8_t* q, std::int64_t elements, float scale,
                   cudaStream_t stream) {
  check_args("quantize_int8", x_fp16, q, elements, scale);
  if (elements == 0) return;
  const Split s = split(x_fp16, q, elements);
  quantize_kernel<<<s.blocks, kThreads, 0, stream>>>(static_cast<const __half*>(x_fp16), q,
                                                     elements, s.vectors, scale);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

void dequantize_int8(const std::int8_t* q, void* y_fp16, std::int64_t elements, float scale,
                     cudaStream_t stream) {
  check_args("dequantize_int8", q, y_fp16, elements, scale);
  if (elements == 0) return;
  const Split s = split(q, y_fp16, elements);
  dequantize_kernel<<<s.blocks, kThreads, 0, stream>>>(q, static_cast<__half*>(y_fp16), elements,
                                                       s.vectors, scale);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
