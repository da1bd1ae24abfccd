#include "cuda/device.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

namespace anvil::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" status
    return 0;
  }
  return count;
}

std::optional<DeviceInfo> device_info(int ordinal) {
  if (ordinal < 0 || ordinal >= device_count()) return std::nullopt;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, ordinal) != cudaSuccess) return std::nullopt;
  return DeviceInfo{ordinal,    prop.name,           prop.major,
                    prop.minor, prop.totalGlobalMem, prop.multiProcessorCount};
}

LibraryVersions library_versions() {
  LibraryVersions v;
  cudaRuntimeGetVersion(&v.cuda_runtime);
  if (cudaDriverGetVersion(&v.cuda_driver) != cudaSuccess) v.cuda_driver = 0;
  v.cudnn = static_cast<int>(cudnnGetVersion());
  v.cublaslt = static_cast<int>(cublasLtGetVersion());
  return v;
}

}  // namespace anvil::cuda
