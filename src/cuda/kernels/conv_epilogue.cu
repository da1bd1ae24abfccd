// One thread per 16-byte vector of y (V elements of one pixel, since channels
// is a multiple of V on that path), grid-stride; the scalar path takes one
// element per thread.
#include <cuda_fp16.h>

#include <cstdint>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/conv_epilogue.h"
#include "cuda/kernels/storage_io.cuh"

namespace anvil::cuda::kernels {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void conv_epilogue_vector(T* y, const T* bias, const T* residual, long long vectors,
                                     long long channels, Activation act, ActivationParams p) {
  constexpr int V = kVec16<T>;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < vectors;
       i += stride) {
    const long long e = i * V;
    float v[V];
    load16(y + e, v);
    if (bias != nullptr) {
      float b[V];
      load16(bias + e % channels, b);
#pragma unroll
      for (int k = 0; k < V; ++k)
        v[k] += b[k];
    }
    if (residual != nullptr) {
      float r[V];
      load16(residual + e, r);
#pragma unroll
      for (int k = 0; k < V; ++k)
        v[k] += r[k];
    }
#pragma unroll
    for (int k = 0; k < V; ++k)
      v[k] = apply_activation(v[k], act, p);
    store16(y + e, v);
  }
}

template <typename T>
__global__ void conv_epilogue_scalar(T* y, const T* bias, const T* residual, long long n,
                                     long long channels, Activation act, ActivationParams p) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += stride) {
    float v = to_float(y[i]);
    if (bias != nullptr) v += to_float(bias[i % channels]);
    if (residual != nullptr) v += to_float(residual[i]);
    y[i] = from_float<T>(apply_activation(v, act, p));
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

template <typename T>
void launch(void* y, const void* bias, const void* residual, long long n, long long channels,
            Activation act, const ActivationParams& p, cudaStream_t stream) {
  constexpr int V = kVec16<T>;
  T* ty = static_cast<T*>(y);
  const T* tb = static_cast<const T*>(bias);
  const T* tr = static_cast<const T*>(residual);
  const bool vector = channels % V == 0 && aligned16(y) && (bias == nullptr || aligned16(bias)) &&
                      (residual == nullptr || aligned16(residual));
  if (vector) {
    const long long vectors = n / V;  // n is a multiple of channels, so of V
    conv_epilogue_vector<T><<<grid_for(vectors, kThreads), kThreads, 0, stream>>>(
        ty, tb, tr, vectors, channels, act, p);
  } else {
    conv_epilogue_scalar<T>
        <<<grid_for(n, kThreads), kThreads, 0, stream>>>(ty, tb, tr, n, channels, act, p);
  }
}

}  // namespace

void conv_epilogue(void* y, const void* bias, const void* residual, std::int64_t n,
                   std::int64_t channels, StorageType type, Activation act,
                   const ActivationParams& params, cudaStream_t stream) {
  if (n < 0 || channels < 1 || n % channels != 0)
    fail(ErrorKind::kInvalidArgument, "conv_epilogue: ", n, " elements are not whole pixels of ",
         channels, " channels");
  if (n == 0) return;
  if (y == nullptr) fail(ErrorKind::kInvalidArgument, "conv_epilogue: null output");
  switch (type) {
    case StorageType::kFloat32:
      launch<float>(y, bias, residual, n, channels, act, params, stream);
      break;
    case StorageType::kFloat16:
      launch<__half>(y, bias, residual, n, channels, act, params, stream);
      break;
  }
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
