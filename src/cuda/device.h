// What GPU and libraries this process runs on: for the plan's compatibility
// header, the CLI's reports and the GPU tests' skip decision.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace anvil::cuda {

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  std::size_t total_memory = 0;
  int multiprocessors = 0;
  // Peak DRAM bandwidth from the memory clock and bus width (2 transfers a
  // clock), in GB/s; 0 when the driver does not say.
  double memory_bandwidth_gb_per_s = 0;
  // The host NUMA node the GPU hangs off (Linux sysfs); -1 where unknown.
  // Page-locked memory on another node may upload slower.
  int numa_node = -1;
};

// Number of usable CUDA devices; 0 (never an error) without a driver or GPU.
int device_count();

// The device's properties, or nothing if it does not exist.
std::optional<DeviceInfo> device_info(int ordinal = 0);

// Versions as the libraries encode them (CUDA 13000 = 13.0, cuDNN 91400 = 9.14.0).
struct LibraryVersions {
  int cuda_runtime = 0;
  int cuda_driver = 0;  // 0 without a driver
  int cudnn = 0;
  int cublaslt = 0;
};
LibraryVersions library_versions();

}  // namespace anvil::cuda
