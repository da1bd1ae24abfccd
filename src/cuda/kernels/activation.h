// Activations with the ONNX semantics of the CPU reference ops (src/ops/relu.cc,
// clip.cc, leaky_relu.cc, sigmoid.cc, hard_sigmoid.cc, hard_swish.cc), as an
// inline function other kernels apply in their epilogues, and an elementwise
// kernel y = act(a + b) over NHWC buffers.
#pragma once

#include <cuda_runtime_api.h>  // __host__ / __device__ for host compilers too

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "cuda/kernels/storage.h"

namespace anvil::cuda::kernels {

enum class Activation { kNone, kRelu, kClip, kLeakyRelu, kSigmoid, kHardSigmoid, kHardSwish };

// alpha: LeakyRelu's and HardSigmoid's alpha; beta: HardSigmoid's beta;
// clip_min / clip_max: Clip's bounds (the defaults leave it unbounded). The
// ONNX defaults of alpha/beta differ per op: the caller fills them in.
struct ActivationParams {
  float alpha = 0.0f;
  float beta = 0.0f;
  float clip_min = -FLT_MAX;
  float clip_max = FLT_MAX;
};

// act(x). Comparisons rather than fminf/fmaxf so that NaN propagates as in
// the CPU reference.
__host__ __device__ inline float apply_activation(float x, Activation act,
                                                  const ActivationParams& p) {
  switch (act) {
    case Activation::kNone:
      return x;
    case Activation::kRelu:
      return x > 0.0f ? x : 0.0f;
    case Activation::kClip: {
      const float v = x < p.clip_min ? p.clip_min : x;
      return v > p.clip_max ? p.clip_max : v;
    }
    case Activation::kLeakyRelu:
      return x < 0.0f ? p.alpha * x : x;
    case Activation::kSigmoid: {
      // Only a non-positive number is exponentiated: no overflow for large |x|.
      const float e = expf(x >= 0.0f ? -x : x);
      return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
    case Activation::kHardSigmoid: {
      const float v = p.alpha * x + p.beta;
      return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    }
    case Activation::kHardSwish: {
      const float v = x * (1.0f / 6.0f) + 0.5f;
      return x * (v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v));
    }
  }
  return x;
}

// y[i] = act(a[i] + b[i]) for i < n, or act(a[i]) when b is null; y may
// alias a or b. All three buffers hold `type`; FP16 is computed in float.
// Uses 16-byte loads when every pointer is 16-byte aligned. Enqueues on
// `stream` only (no allocation, no synchronization).
void add_activation(const void* a, const void* b, void* y, std::int64_t n, StorageType type,
                    Activation act, const ActivationParams& params, cudaStream_t stream);

}  // namespace anvil::cuda::kernels
