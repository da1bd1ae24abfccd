#include "cuda/device.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <string>

namespace anvil::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" status
    return 0;
  }
  return count;
}

namespace {

// /sys/bus/pci/devices/<bus id, lower case>/numa_node, or -1.
int numa_node_of(int ordinal) {
  char bus[32] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof bus, ordinal) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  std::string id(bus);
  std::transform(id.begin(), id.end(), id.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::ifstream in("/sys/bus/pci/devices/" + id + "/numa_node");
  int node = -1;
  return in >> node ? node : -1;
}

}  // namespace

std::optional<DeviceInfo> device_info(int ordinal) {
  if (ordinal < 0 || ordinal >= device_count()) return std::nullopt;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, ordinal) != cudaSuccess) return std::nullopt;
  DeviceInfo info{ordinal,    prop.name,           prop.major,
                  prop.minor, prop.totalGlobalMem, prop.multiProcessorCount};
  int clock_khz = 0, bus_bits = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, ordinal) == cudaSuccess &&
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, ordinal) == cudaSuccess)
    info.memory_bandwidth_gb_per_s = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  info.numa_node = numa_node_of(ordinal);
  return info;
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
