// How the engine stores an activation tensor on the GPU: FP32, or FP16 with
// FP32 arithmetic inside the kernels. Shared by every kernel launcher.
#pragma once

#include <cstddef>

namespace anvil::cuda::kernels {

enum class StorageType { kFloat32, kFloat16 };

// Bytes of one element stored as `type`.
constexpr std::size_t storage_bytes(StorageType type) {
  switch (type) {
    case StorageType::kFloat32:
      return 4;
    case StorageType::kFloat16:
      return 2;
  }
  return 0;
}

// "float32" or "float16", for error messages and logs.
constexpr const char* storage_name(StorageType type) {
  switch (type) {
    case StorageType::kFloat32:
      return "float32";
    case StorageType::kFloat16:
      return "float16";
  }
  return "?";
}

}  // namespace anvil::cuda::kernels
