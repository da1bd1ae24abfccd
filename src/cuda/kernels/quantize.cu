// Each thread moves 8-element vectors (16 bytes of FP16, 8 of INT8), so a
// warp's loads and stores are whole contiguous 512- and 256-byte runs, and
// loads kUnroll vectors before converting any, to keep enough bytes in
// flight to reach DRAM bandwidth. Elements before the first aligned vector
// and after the last go one by one, as do all of a buffer pair whose
// alignments disagree.
//
// INT8 rounding (and why x * fl(1 / scale) may replace the division):
// cuda/kernels/int8_math.cuh, shared with the stem kernel's INT8 output.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cmath>
#include <cstdint>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/int8_math.cuh"
#include "cuda/kernels/quantize.h"
#include "cuda/kernels/storage_io.cuh"

namespace anvil::cuda::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int kVector = 8;  // elements per vector
constexpr int kUnroll = 4;  // vectors per thread and tile
constexpr long long kTileVectors = static_cast<long long>(kThreads) * kUnroll;

__device__ __forceinline__ float dequantize_one(std::int8_t q, float scale) {
  return __fmul_rn(static_cast<float>(q), scale);
}

// FP8 E4M3: e4m3(fl(x / scale)), nearest-even and saturating to +-448, as
// quant::encode_e4m3 on the host. The division stays IEEE: the reciprocal
// shortcut's proof is about integer rounding boundaries, not E4M3's.
__device__ __forceinline__ std::int8_t quantize_fp8_one(float x, float scale, float) {
  return static_cast<std::int8_t>(
      __nv_cvt_float_to_fp8(__fdiv_rn(x, scale), __NV_SATFINITE, __NV_E4M3));
}

__device__ __forceinline__ float dequantize_fp8_one(std::int8_t q, float scale) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(q), __NV_E4M3);
  return __fmul_rn(__half2float(__half(h)), scale);  // E4M3 -> FP16 is exact
}

struct Int8Codec {
  __device__ static std::int8_t to_q(float x, float scale, float inv) {
    return quantize_to_int8(x, scale, inv);
  }
  __device__ static float from_q(std::int8_t q, float scale) { return dequantize_one(q, scale); }
};

struct Fp8Codec {
  __device__ static std::int8_t to_q(float x, float scale, float inv) {
    return quantize_fp8_one(x, scale, inv);
  }
  __device__ static float from_q(std::int8_t q, float scale) {
    return dequantize_fp8_one(q, scale);
  }
};

__device__ __forceinline__ std::int8_t byte_of(unsigned word, int i) {
  return static_cast<std::int8_t>(static_cast<std::uint8_t>(word >> (8 * i)));
}
__device__ __forceinline__ unsigned byte_in(std::int8_t q, int i) {
  return static_cast<unsigned>(static_cast<std::uint8_t>(q)) << (8 * i);
}

// Where the vectors are: elements [0, head) and [head + vectors * 8,
// elements) go one by one, [head, head + vectors * 8) as vectors.
struct Split {
  long long elements = 0;
  long long head = 0;
  long long vectors = 0;
};

// The element index of the i-th scalar element (i < elements - vectors * 8).
__device__ __forceinline__ long long scalar_index(const Split& s, long long i) {
  return i < s.head ? i : i + s.vectors * kVector;
}

template <typename Codec>
__global__ void quantize_kernel(const __half* __restrict__ x, std::int8_t* __restrict__ q, Split s,
                                float scale, float inv) {
  const uint4* xv = reinterpret_cast<const uint4*>(x + s.head);
  uint2* qv = reinterpret_cast<uint2*>(q + s.head);
  for (long long tile = blockIdx.x; tile * kTileVectors < s.vectors; tile += gridDim.x) {
    const long long first = tile * kTileVectors + threadIdx.x;
    uint4 in[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k)
      if (first + k * kThreads < s.vectors) in[k] = __ldg(xv + first + k * kThreads);
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      if (first + k * kThreads >= s.vectors) break;
      const __half2* h = reinterpret_cast<const __half2*>(&in[k]);
      unsigned words[2] = {0, 0};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float2 f = __half22float2(h[i]);
        words[i / 2] |= byte_in(Codec::to_q(f.x, scale, inv), (2 * i) % 4) |
                        byte_in(Codec::to_q(f.y, scale, inv), (2 * i + 1) % 4);
      }
      qv[first + k * kThreads] = make_uint2(words[0], words[1]);
    }
  }
  const long long scalars = s.elements - s.vectors * kVector;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < scalars;
       i += stride) {
    const long long e = scalar_index(s, i);
    q[e] = Codec::to_q(__half2float(x[e]), scale, inv);
  }
}

template <typename Codec>
__global__ void dequantize_kernel(const std::int8_t* __restrict__ q, __half* __restrict__ y,
                                  Split s, float scale) {
  const uint2* qv = reinterpret_cast<const uint2*>(q + s.head);
  uint4* yv = reinterpret_cast<uint4*>(y + s.head);
  for (long long tile = blockIdx.x; tile * kTileVectors < s.vectors; tile += gridDim.x) {
    const long long first = tile * kTileVectors + threadIdx.x;
    uint2 in[kUnroll];
#pragma unroll
    for (int k = 0; k < kUnroll; ++k)
      if (first + k * kThreads < s.vectors) in[k] = __ldg(qv + first + k * kThreads);
#pragma unroll
    for (int k = 0; k < kUnroll; ++k) {
      if (first + k * kThreads >= s.vectors) break;
      const unsigned words[2] = {in[k].x, in[k].y};
      uint4 out;
      __half2* h = reinterpret_cast<__half2*>(&out);
#pragma unroll
      for (int i = 0; i < 4; ++i)
        h[i] = __floats2half2_rn(Codec::from_q(byte_of(words[i / 2], (2 * i) % 4), scale),
                                 Codec::from_q(byte_of(words[i / 2], (2 * i + 1) % 4), scale));
      yv[first + k * kThreads] = out;
    }
  }
  const long long scalars = s.elements - s.vectors * kVector;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < scalars;
       i += stride) {
    const long long e = scalar_index(s, i);
    y[e] = __float2half_rn(Codec::from_q(q[e], scale));
  }
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

// Vectors start where the FP16 pointer reaches a 16-byte boundary; the INT8
// pointer must then be at an 8-byte one, or every element goes one by one.
Split split(const void* fp16, const void* int8, std::int64_t elements) {
  Split s;
  s.elements = elements;
  const auto h = reinterpret_cast<std::uintptr_t>(fp16);
  const auto b = reinterpret_cast<std::uintptr_t>(int8);
  if (h % 2 != 0) return s;
  const long long head = static_cast<long long>((16 - h % 16) % 16 / 2);
  if (head >= elements || (b + static_cast<std::uintptr_t>(head)) % 8 != 0) return s;
  s.head = head;
  s.vectors = (elements - head) / kVector;
  return s;
}

unsigned blocks_for(const Split& s) {
  const long long tiles = (s.vectors + kTileVectors - 1) / kTileVectors;
  const long long scalar_blocks = (s.elements - s.vectors * kVector + kThreads - 1) / kThreads;
  return grid_for((tiles > scalar_blocks ? tiles : scalar_blocks) * kThreads, kThreads);
}

// Whether `element` is FP8 E4M3 (else INT8); kInvalidArgument for any other
// type, naming `call`.
bool is_fp8(const char* call, DType element) {
  if (element != DType::kInt8 && element != DType::kFloat8E4M3)
    fail(ErrorKind::kInvalidArgument, call, ": element type ", to_string(element),
         " (expected int8 or float8e4m3fn)");
  return element == DType::kFloat8E4M3;
}

}  // namespace

void quantize(const void* x_fp16, void* q, std::int64_t elements, float scale, DType element,
              cudaStream_t stream) {
  const bool fp8 = is_fp8("quantize", element);
  check_args(fp8 ? "quantize_fp8" : "quantize_int8", x_fp16, q, elements, scale);
  if (elements == 0) return;
  const Split s = split(x_fp16, q, elements);
  const auto* x = static_cast<const __half*>(x_fp16);
  auto* out = static_cast<std::int8_t*>(q);
  if (fp8)
    quantize_kernel<Fp8Codec><<<blocks_for(s), kThreads, 0, stream>>>(x, out, s, scale, 0.0f);
  else
    quantize_kernel<Int8Codec>
        <<<blocks_for(s), kThreads, 0, stream>>>(x, out, s, scale, int8_reciprocal(scale));
  ANVIL_GPU_CHECK(cudaGetLastError());
}

void dequantize(const void* q, void* y_fp16, std::int64_t elements, float scale, DType element,
                cudaStream_t stream) {
  const bool fp8 = is_fp8("dequantize", element);
  check_args(fp8 ? "dequantize_fp8" : "dequantize_int8", q, y_fp16, elements, scale);
  if (elements == 0) return;
  const Split s = split(y_fp16, q, elements);
  const auto* in = static_cast<const std::int8_t*>(q);
  auto* y = static_cast<__half*>(y_fp16);
  if (fp8)
    dequantize_kernel<Fp8Codec><<<blocks_for(s), kThreads, 0, stream>>>(in, y, s, scale);
  else
    dequantize_kernel<Int8Codec><<<blocks_for(s), kThreads, 0, stream>>>(in, y, s, scale);
  ANVIL_GPU_CHECK(cudaGetLastError());
}

void quantize_int8(const void* x_fp16, std::int8_t* q, std::int64_t elements, float scale,
                   cudaStream_t stream) {
  quantize(x_fp16, q, elements, scale, DType::kInt8, stream);
}

void dequantize_int8(const std::int8_t* q, void* y_fp16, std::int64_t elements, float scale,
                     cudaStream_t stream) {
  dequantize(q, y_fp16, elements, scale, DType::kInt8, stream);
}

}  // namespace anvil::cuda::kernels
