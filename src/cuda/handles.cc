#include "cuda/handles.h"

#include <cstddef>

#include "anvil/error.h"
#include "cuda/check.h"

namespace anvil::cuda {

Stream::Stream() {
  cudaStream_t s = nullptr;
  ANVIL_GPU_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  stream_ = Owned<cudaStream_t, StreamRelease>(s);
}

void copy_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  ANVIL_GPU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cudaStreamLegacy));
  ANVIL_GPU_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
}

bool is_page_locked(const void* p, std::size_t bytes) {
  if (p == nullptr || bytes == 0) return false;
  auto host_registered = [](const void* at) {
    cudaPointerAttributes attributes{};
    if (cudaPointerGetAttributes(&attributes, at) != cudaSuccess) {
      cudaGetLastError();  // not sticky: keep it from failing the next check
      return false;
    }
    return attributes.type == cudaMemoryTypeHost;
  };
  // Both ends: a registered range may cover only part of a buffer.
  return host_registered(p) && host_registered(static_cast<const std::byte*>(p) + bytes - 1);
}

void Stream::synchronize() const {
  ANVIL_GPU_CHECK(cudaStreamSynchronize(get()));
}

Event::Event(bool timing) {
  cudaEvent_t e = nullptr;
  ANVIL_GPU_CHECK(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  event_ = Owned<cudaEvent_t, EventRelease>(e);
}

void Event::record(cudaStream_t stream) const {
  ANVIL_GPU_CHECK(cudaEventRecord(get(), stream));
}

void Event::synchronize() const {
  ANVIL_GPU_CHECK(cudaEventSynchronize(get()));
}

float Event::elapsed_ms(const Event& start, const Event& end) {
  float ms = 0.0f;
  ANVIL_GPU_CHECK(cudaEventElapsedTime(&ms, start.get(), end.get()));
  return ms;
}

void* DeviceMemory::allocate(std::size_t bytes) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status == cudaErrorMemoryAllocation)
    fail(ErrorKind::kGpu, "out of GPU memory allocating ", bytes, " bytes");
  ANVIL_GPU_CHECK(status);
  return p;
}

void* PinnedMemory::allocate(std::size_t bytes) {
  void* p = nullptr;
  ANVIL_GPU_CHECK(cudaMallocHost(&p, bytes));
  return p;
}

CudnnHandle::CudnnHandle() {
  cudnnHandle_t h = nullptr;
  ANVIL_GPU_CHECK(cudnnCreate(&h));
  handle_ = Owned<cudnnHandle_t, CudnnRelease>(h);
}

CublasLtHandle::CublasLtHandle() {
  cublasLtHandle_t h = nullptr;
  ANVIL_GPU_CHECK(cublasLtCreate(&h));
  handle_ = Owned<cublasLtHandle_t, CublasLtRelease>(h);
}

}  // namespace anvil::cuda
