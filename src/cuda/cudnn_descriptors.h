// A move-only owner of one cuDNN backend descriptor (cudnnBackendDescriptor_t),
// with checked setters and getters, for building operation graphs and plans.
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace anvil::cuda {

class BackendDescriptor {
 public:
  BackendDescriptor() = default;
  // Creates a descriptor of `type`; an anvil::Error (kGpu) if cuDNN refuses.
  explicit BackendDescriptor(cudnnBackendDescriptorType_t type);
  BackendDescriptor(const BackendDescriptor&) = delete;
  BackendDescriptor& operator=(const BackendDescriptor&) = delete;
  BackendDescriptor(BackendDescriptor&& other) noexcept
      : desc_(std::exchange(other.desc_, nullptr)) {}
  BackendDescriptor& operator=(BackendDescriptor&& other) noexcept;
  ~BackendDescriptor();

  cudnnBackendDescriptor_t get() const { return desc_; }

  // cudnnBackendSetAttribute, checked.
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, std::int64_t count,
           const void* values);
  void set_int64(cudnnBackendAttributeName_t name, std::int64_t value);
  void set_int64s(cudnnBackendAttributeName_t name, const std::vector<std::int64_t>& values);
  void set_descriptor(cudnnBackendAttributeName_t name, const BackendDescriptor& value);

  // Finalizes or throws (kGpu, with cuDNN's last error string).
  void finalize();
  // Finalizes and returns cuDNN's status, for configurations that may
  // legitimately be unsupported (engine configs, plans).
  cudnnStatus_t try_finalize();

  // cudnnBackendGetAttribute of one int64, checked.
  std::int64_t get_int64(cudnnBackendAttributeName_t name) const;

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
};

}  // namespace anvil::cuda
