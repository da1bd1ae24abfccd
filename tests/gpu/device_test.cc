#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "gpu_test.h"

namespace anvil {
namespace {

TEST(Device, ReportsAGpuAndItsLibraries) {
  ANVIL_REQUIRE_GPU();
  auto info = cuda::device_info(0);
  ASSERT_TRUE(info.has_value());
  EXPECT_FALSE(info->name.empty());
  EXPECT_GE(info->cc_major, 7);
  const cuda::LibraryVersions v = cuda::library_versions();
  EXPECT_GE(v.cudnn / 10000, 9) << "cuDNN " << v.cudnn;
  EXPECT_GT(v.cublaslt, 0);
  std::printf("GPU: %s (cc %d.%d, %zu MiB), CUDA runtime %d, driver %d, cuDNN %d, cuBLASLt %d\n",
              info->name.c_str(), info->cc_major, info->cc_minor, info->total_memory >> 20,
              v.cuda_runtime, v.cuda_driver, v.cudnn, v.cublaslt);
}

TEST(Device, CopiesRoundTripThroughPinnedAndDeviceBuffers) {
  ANVIL_REQUIRE_GPU();
  constexpr std::size_t kCount = 1 << 20;
  cuda::PinnedBuffer host(kCount * sizeof(float)), back(kCount * sizeof(float));
  cuda::DeviceBuffer device(kCount * sizeof(float));
  for (std::size_t i = 0; i < kCount; ++i)
    host.as<float>()[i] = static_cast<float>(i) * 0.5f;
  cuda::Stream stream;
  ANVIL_GPU_CHECK(cudaMemcpyAsync(device.data(), host.data(), host.bytes(), cudaMemcpyHostToDevice,
                                  stream.get()));
  ANVIL_GPU_CHECK(cudaMemcpyAsync(back.data(), device.data(), back.bytes(), cudaMemcpyDeviceToHost,
                                  stream.get()));
  stream.synchronize();
  for (std::size_t i = 0; i < kCount; i += 4099)
    ASSERT_EQ(back.as<float>()[i], host.as<float>()[i]);
}

TEST(Device, FailedCallsBecomeErrorsNamingTheCall) {
  ANVIL_REQUIRE_GPU();
  try {
    ANVIL_GPU_CHECK(cudaMemcpy(nullptr, reinterpret_cast<void*>(16), 64, cudaMemcpyDeviceToHost));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kGpu);
    EXPECT_NE(std::string(e.what()).find("cudaMemcpy"), std::string::npos) << e.what();
  }
  cudaGetLastError();
}

}  // namespace
}  // namespace anvil
