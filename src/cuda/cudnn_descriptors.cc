#include "cuda/cudnn_descriptors.h"

#include "cuda/check.h"

namespace anvil::cuda {

BackendDescriptor::BackendDescriptor(cudnnBackendDescriptorType_t type) {
  ANVIL_GPU_CHECK(cudnnBackendCreateDescriptor(type, &desc_));
}

BackendDescriptor& BackendDescriptor::operator=(BackendDescriptor&& other) noexcept {
  if (this != &other) {
    if (desc_) cudnnBackendDestroyDescriptor(desc_);
    desc_ = std::exchange(other.desc_, nullptr);
  }
  return *this;
}

BackendDescriptor::~BackendDescriptor() {
  if (desc_) cudnnBackendDestroyDescriptor(desc_);
}

void BackendDescriptor::set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                            std::int64_t count, const void* values) {
  ANVIL_GPU_CHECK(cudnnBackendSetAttribute(desc_, name, type, count, values));
}

void BackendDescriptor::set_int64(cudnnBackendAttributeName_t name, std::int64_t value) {
  set(name, CUDNN_TYPE_INT64, 1, &value);
}

void BackendDescriptor::set_int64s(cudnnBackendAttributeName_t name,
                                   const std::vector<std::int64_t>& values) {
  set(name, CUDNN_TYPE_INT64, static_cast<std::int64_t>(values.size()), values.data());
}

void BackendDescriptor::set_descriptor(cudnnBackendAttributeName_t name,
                                       const BackendDescriptor& value) {
  cudnnBackendDescriptor_t d = value.get();
  set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
}

void BackendDescriptor::finalize() {
  ANVIL_GPU_CHECK(cudnnBackendFinalize(desc_));
}

cudnnStatus_t BackendDescriptor::try_finalize() {
  return cudnnBackendFinalize(desc_);
}

std::int64_t BackendDescriptor::get_int64(cudnnBackendAttributeName_t name) const {
  std::int64_t value = 0;
  std::int64_t count = 0;
  ANVIL_GPU_CHECK(cudnnBackendGetAttribute(desc_, name, CUDNN_TYPE_INT64, 1, &count, &value));
  return value;
}

}  // namespace anvil::cuda
