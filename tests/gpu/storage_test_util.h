// Values in the engine's storage types (FP32 or FP16), shared by the GPU
// tests of conv and GEMM tactics: random values that FP16 holds exactly,
// their bytes, and device buffers of them.
#pragma once

#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cuda/check.h"
#include "cuda/handles.h"

namespace anvil::test {

// `v` as stored: rounded to FP16 when fp16.
inline float rounded(float v, bool fp16) {
  return fp16 ? __half2float(__float2half(v)) : v;
}

// Uniform in [-scale, scale], each value exact in the storage type.
inline std::vector<float> random_stored_values(std::size_t count, std::uint32_t seed, bool fp16,
                                               float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v)
    x = rounded(dist(rng) * scale, fp16);
  return v;
}

inline std::vector<std::byte> to_storage(const std::vector<float>& v, bool fp16) {
  std::vector<std::byte> bytes(v.size() * (fp16 ? 2 : 4));
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (fp16) {
      const __half h = __float2half(v[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    } else {
      std::memcpy(bytes.data() + 4 * i, &v[i], 4);
    }
  }
  return bytes;
}

// A device buffer of `v` in the storage type (at least 16 bytes).
inline cuda::DeviceBuffer upload_stored(const std::vector<float>& v, bool fp16) {
  const std::vector<std::byte> bytes = to_storage(v, fp16);
  cuda::DeviceBuffer buffer(std::max<std::size_t>(bytes.size(), 16));
  cuda::copy_to_device(buffer.data(), bytes.data(), bytes.size());
  return buffer;
}

// `count` stored values at `device`, as floats (the caller has synchronized).
inline std::vector<float> download_stored(const void* device, std::size_t count, bool fp16) {
  std::vector<std::byte> bytes(count * (fp16 ? 2 : 4));
  ANVIL_GPU_CHECK(cudaMemcpy(bytes.data(), device, bytes.size(), cudaMemcpyDeviceToHost));
  std::vector<float> v(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (fp16) {
      __half h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      v[i] = __half2float(h);
    } else {
      std::memcpy(&v[i], bytes.data() + 4 * i, 4);
    }
  }
  return v;
}

// max|got - want| / max|want| over `want` (a NaN in `got` counts as the
// worst possible), and where the largest difference is.
struct Worst {
  double error = 0.0;
  std::size_t index = 0;
};
inline Worst worst_element(const std::vector<float>& got, const std::vector<float>& want) {
  double max_want = 0.0, max_diff = -1.0;
  Worst w;
  for (std::size_t i = 0; i < want.size(); ++i) {
    max_want = std::max(max_want, std::fabs(double{want[i]}));
    const double diff = std::fabs(double{got[i]} - double{want[i]});
    if (!(diff <= max_diff)) {
      max_diff = std::isnan(diff) ? INFINITY : diff;
      w.index = i;
    }
  }
  w.error = max_diff / std::max(max_want, 1e-30);
  return w;
}

}  // namespace anvil::test
