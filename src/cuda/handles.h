// RAII owners of CUDA, cuDNN and cuBLASLt objects: move-only, released in
// their destructors, failures reported as anvil::Error (kind kGpu).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <utility>

namespace anvil::cuda {

// Owns one resource of type T, released by Release::operator()(T).
template <typename T, typename Release>
class Owned {
 public:
  Owned() = default;
  explicit Owned(T value) : value_(value) {}
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  Owned(Owned&& other) noexcept : value_(std::exchange(other.value_, T{})) {}
  Owned& operator=(Owned&& other) noexcept {
    if (this != &other) {
      reset();
      value_ = std::exchange(other.value_, T{});
    }
    return *this;
  }
  ~Owned() { reset(); }

  T get() const { return value_; }
  explicit operator bool() const { return value_ != T{}; }

 private:
  void reset() {
    if (value_ != T{}) Release{}(value_);
    value_ = T{};
  }
  T value_{};
};

struct StreamRelease {
  void operator()(cudaStream_t s) const { cudaStreamDestroy(s); }
};
struct EventRelease {
  void operator()(cudaEvent_t e) const { cudaEventDestroy(e); }
};
// Device memory (cudaMalloc) and page-locked host memory (cudaMallocHost,
// for fast asynchronous copies): how each is allocated and released.
struct DeviceMemory {
  static void* allocate(std::size_t bytes);
  void operator()(void* p) const { cudaFree(p); }
};
struct PinnedMemory {
  static void* allocate(std::size_t bytes);
  void operator()(void* p) const { cudaFreeHost(p); }
};
struct CudnnRelease {
  void operator()(cudnnHandle_t h) const { cudnnDestroy(h); }
};
struct CublasLtRelease {
  void operator()(cublasLtHandle_t h) const { cublasLtDestroy(h); }
};

class Stream {
 public:
  // A stream that does not synchronize with the legacy default stream.
  Stream();
  cudaStream_t get() const { return stream_.get(); }
  void synchronize() const;

 private:
  Owned<cudaStream_t, StreamRelease> stream_;
};

class Event {
 public:
  // timing=false makes a lighter event for pure synchronization.
  explicit Event(bool timing = true);
  cudaEvent_t get() const { return event_.get(); }
  void record(cudaStream_t stream) const;
  void synchronize() const;
  // Milliseconds between two recorded, completed events.
  static float elapsed_ms(const Event& start, const Event& end);

 private:
  Owned<cudaEvent_t, EventRelease> event_;
};

// An owned allocation of `Memory` (DeviceMemory or PinnedMemory).
template <typename Memory>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t bytes)
      : ptr_(bytes ? Memory::allocate(bytes) : nullptr), bytes_(bytes) {}
  void* data() const { return ptr_.get(); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_.get());
  }
  std::size_t bytes() const { return bytes_; }

 private:
  Owned<void*, Memory> ptr_;
  std::size_t bytes_ = 0;
};

using DeviceBuffer = Buffer<DeviceMemory>;
using PinnedBuffer = Buffer<PinnedMemory>;

// Copies host memory (pageable or pinned) to the device and returns once the
// device holds it, so work on any stream may read it next. A plain
// cudaMemcpy does not promise that: from pageable memory it may return once
// the bytes are staged, with the DMA still queued on the legacy default
// stream, which our non-blocking streams do not wait for.
void copy_to_device(void* dst, const void* src, std::size_t bytes);

// Whether host memory [p, p + bytes) is page-locked (cudaHostAlloc,
// cudaHostRegister), so that a DMA reads it in place, asynchronously.
bool is_page_locked(const void* p, std::size_t bytes);

class CudnnHandle {
 public:
  CudnnHandle();
  cudnnHandle_t get() const { return handle_.get(); }

 private:
  Owned<cudnnHandle_t, CudnnRelease> handle_;
};

class CublasLtHandle {
 public:
  CublasLtHandle();
  cublasLtHandle_t get() const { return handle_.get(); }

 private:
  Owned<cublasLtHandle_t, CublasLtRelease> handle_;
};

}  // namespace anvil::cuda
