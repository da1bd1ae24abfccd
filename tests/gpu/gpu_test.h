// Shared by the GPU tests (ctest label `gpu`): skip, with a message, where
// this machine has no CUDA device, so CI on CPU machines stays meaningful.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstddef>

#include "cuda/check.h"
#include "cuda/device.h"

#define ANVIL_REQUIRE_GPU()                                                  \
  do {                                                                       \
    if (::anvil::cuda::device_count() == 0)                                  \
      GTEST_SKIP() << "no CUDA GPU on this machine: GPU test skipped (runs " \
                      "on the GPU machine through scripts/gpu-check.sh)";    \
  } while (false)

namespace anvil::test {

// Fills device memory with 0xff bytes (NaN as floats, so an output left
// unwritten shows) and returns once it is done: a plain cudaMemset runs on
// the legacy default stream, which the engine's non-blocking streams do not
// wait for.
inline void poison(void* device, std::size_t bytes) {
  ANVIL_GPU_CHECK(cudaMemset(device, 0xff, bytes));
  ANVIL_GPU_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
}

}  // namespace anvil::test
