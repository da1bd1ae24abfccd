// The elementwise kernel works on packs of V elements (one 16-byte load per
// operand when the buffers are aligned, else V = 1); the n % V tail is done
// element by element by the first threads of the grid.
#include <cuda_fp16.h>

#include <cstdint>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/kernels/activation.h"
#include "cuda/kernels/storage_io.cuh"

namespace anvil::cuda::kernels {
namespace {

// V elements of T moved as one aligned unit.
template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <typename T, int V>
__global__ void add_activation_kernel(const T* a, const T* b, T* y, long long n, Activation act,
                                      ActivationParams p) {
  const long long packs = n / V;
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  const long long first = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  for (long long i = first; i < packs; i += stride) {
    const Pack<T, V> pa = reinterpret_cast<const Pack<T, V>*>(a)[i];
    Pack<T, V> out;
    if (b != nullptr) {
      const Pack<T, V> pb = reinterpret_cast<const Pack<T, V>*>(b)[i];
#pragma unroll
      for (int k = 0; k < V; ++k)
        out.v[k] = from_float<T>(apply_activation(to_float(pa.v[k]) + to_float(pb.v[k]), act, p));
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k)
        out.v[k] = from_float<T>(apply_activation(to_float(pa.v[k]), act, p));
    }
    reinterpret_cast<Pack<T, V>*>(y)[i] = out;
  }
  const long long tail = packs * V + first;
  if (tail < n) {
    const float x = to_float(a[tail]) + (b != nullptr ? to_float(b[tail]) : 0.0f);
    y[tail] = from_float<T>(apply_activation(x, act, p));
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

template <typename T>
void launch(const void* a, const void* b, void* y, long long n, Activation act,
            const ActivationParams& p, cudaStream_t stream) {
  constexpr int kVector = 16 / sizeof(T);
  constexpr int kThreads = 256;
  const T* ta = static_cast<const T*>(a);
  const T* tb = static_cast<const T*>(b);
  T* ty = static_cast<T*>(y);
  // No __restrict__: y may be a or b (each element is read, then written, by
  // the same thread); partial overlap is not supported.
  if (aligned16(a) && aligned16(y) && (b == nullptr || aligned16(b))) {
    const unsigned grid = grid_for(n / kVector > 0 ? n / kVector : 1, kThreads);
    add_activation_kernel<T, kVector><<<grid, kThreads, 0, stream>>>(ta, tb, ty, n, act, p);
  } else {
    add_activation_kernel<T, 1>
        <<<grid_for(n, kThreads), kThreads, 0, stream>>>(ta, tb, ty, n, act, p);
  }
}

}  // namespace

void add_activation(const void* a, const void* b, void* y, std::int64_t n, StorageType type,
                    Activation act, const ActivationParams& params, cudaStream_t stream) {
  if (n < 0) fail(ErrorKind::kInvalidArgument, "add_activation: negative element count ", n);
  if (n == 0) return;
  switch (type) {
    case StorageType::kFloat32:
      launch<float>(a, b, y, n, act, params, stream);
      break;
    case StorageType::kFloat16:
      launch<__half>(a, b, y, n, act, params, stream);
      break;
  }
  ANVIL_GPU_CHECK(cudaGetLastError());
}

}  // namespace anvil::cuda::kernels
