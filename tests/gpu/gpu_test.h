// Shared by the GPU tests (ctest label `gpu`): skip, with a message, where
// this machine has no CUDA device, so CI on CPU machines stays meaningful.
#pragma once

#include <gtest/gtest.h>

#include "cuda/device.h"

#define ANVIL_REQUIRE_GPU()                                                  \
  do {                                                                       \
    if (::anvil::cuda::device_count() == 0)                                  \
      GTEST_SKIP() << "no CUDA GPU on this machine: GPU test skipped (runs " \
                      "on the GPU machine through scripts/gpu-check.sh)";    \
  } while (false)
