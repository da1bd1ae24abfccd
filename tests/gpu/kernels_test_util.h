// Shared by the kernel tests (tests/gpu/kernels_*_test.cc): random tensors,
// host <-> device copies and a comparison that, on failure, names the case,
// the worst element and its got / want values.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/storage.h"
#include "gpu_test.h"

namespace anvil::testing {

// Uniform values in [lo, hi): never all zeros, reproducible per seed.
inline Tensor random_tensor(Extents extents, std::uint32_t seed, float lo = -2.0f,
                            float hi = 2.0f) {
  Tensor t(DType::kFloat32, std::move(extents));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (std::int64_t i = 0; i < t.element_count(); ++i)
    t.data<float>()[i] = dist(rng);
  return t;
}

// A device copy of `values` (synchronous: tests only).
inline cuda::DeviceBuffer upload(const float* values, std::size_t count) {
  cuda::DeviceBuffer buffer(std::max<std::size_t>(count, 1) * sizeof(float));
  cuda::copy_to_device(buffer.data(), values, count * sizeof(float));
  return buffer;
}
inline cuda::DeviceBuffer upload(const Tensor& t) {
  return upload(t.data<float>(), static_cast<std::size_t>(t.element_count()));
}

// Device memory for `count` elements of `type`, filled with 0xff bytes (NaN in
// both types) so that an element a kernel forgets to write shows up.
inline cuda::DeviceBuffer poisoned(std::size_t count, cuda::kernels::StorageType type) {
  cuda::DeviceBuffer buffer(std::max<std::size_t>(count, 1) * cuda::kernels::storage_bytes(type));
  test::poison(buffer.data(), buffer.bytes());
  return buffer;
}

// Waits for `stream`, then copies `count` floats back.
inline std::vector<float> download(const cuda::DeviceBuffer& buffer, std::size_t count,
                                   const cuda::Stream& stream) {
  stream.synchronize();
  std::vector<float> out(count);
  ANVIL_GPU_CHECK(
      cudaMemcpy(out.data(), buffer.data(), count * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

inline const char* type_name(cuda::kernels::StorageType type) {
  return cuda::kernels::storage_name(type);
}

// The error bound the tests hold each storage type to: max|got - want| <=
// tolerance * max(1, max|want|) for FP32 (1e-6 unless a case asks for more),
// and <= 1e-2 * max|want| for FP16.
inline float bound(cuda::kernels::StorageType type, float fp32_tolerance, float max_want) {
  return type == cuda::kernels::StorageType::kFloat32 ? fp32_tolerance * std::max(1.0f, max_want)
                                                      : 1e-2f * std::max(max_want, 1e-6f);
}

// Compares element by element; the failure message names `what` (the case:
// shapes and attributes), the worst element, got vs want, and the bound.
inline ::testing::AssertionResult close(const std::vector<float>& got, const Tensor& want,
                                        cuda::kernels::StorageType type, const std::string& what,
                                        float fp32_tolerance = 1e-6f) {
  const auto w = want.values<float>();
  if (got.size() != w.size())
    return ::testing::AssertionFailure()
           << what << ": " << got.size() << " elements, want " << w.size();
  float max_want = 0.0f, worst = -1.0f;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    max_want = std::max(max_want, std::fabs(w[i]));
    // A NaN (an unwritten element) is the worst of all.
    const float err = std::isnan(got[i]) ? INFINITY : std::fabs(got[i] - w[i]);
    if (err > worst) worst = err, worst_at = i;
  }
  const float limit = bound(type, fp32_tolerance, max_want);
  if (worst <= limit) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << " [" << type_name(type) << ", want shape " << to_string(want.extents())
         << "]: worst element " << worst_at << " got " << got[worst_at] << " want " << w[worst_at]
         << " (|err| " << worst << " > bound " << limit << ", max|want| " << max_want << ")";
}

}  // namespace anvil::testing

namespace anvil::cuda::kernels {

// The ctest names show a StorageType parameter (in a tuple) by name, not its
// bytes; beside the enum's namespace for argument-dependent lookup.
inline void PrintTo(StorageType type, std::ostream* os) {
  *os << storage_name(type);
}

}  // namespace anvil::cuda::kernels
