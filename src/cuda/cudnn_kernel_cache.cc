#include "cuda/cudnn_kernel_cache.h"

#include <cstdint>

#include "anvil/error.h"
#include "cuda/cudnn_engine.h"

namespace anvil::cuda {

CudnnKernelCache::CudnnKernelCache() : cache_(CUDNN_BACKEND_KERNEL_CACHE_DESCRIPTOR) {}

bool CudnnKernelCache::holds(const BackendDescriptor& config, std::string* detail) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return holds_locked(config, detail);
}

bool CudnnKernelCache::holds_locked(const BackendDescriptor& config, std::string* detail) const {
  if (!finalized_) {
    if (detail) *detail = "cache not finalized yet";
    return false;
  }
  // The engine config goes in as the query's one element and cuDNN answers
  // through the status. Whether it also writes the count is not documented:
  // -1 tells "left alone" from an explicit 0 (not cached). `detail` carries
  // both so a GPU run shows what this cuDNN actually does.
  cudnnBackendDescriptor_t raw = config.get();
  std::int64_t count = -1;
  const cudnnStatus_t status =
      cudnnBackendGetAttribute(cache_.get(), CUDNN_ATTR_KERNEL_CACHE_IS_ENGINECFG_KERNEL_CACHED,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count, &raw);
  const bool cached = status == CUDNN_STATUS_SUCCESS && count != 0;
  if (detail)
    *detail = cat("query ", status == CUDNN_STATUS_SUCCESS ? "SUCCESS" : cudnn_status_text(status),
                  " count ", count);
  return cached;
}

cudnnStatus_t CudnnKernelCache::finalize_plan(const BackendDescriptor& op_graph,
                                              const BackendDescriptor& config,
                                              BackendDescriptor& plan, std::string& report) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (!finalized_) {
    cache_.set_descriptor(CUDNN_ATTR_KERNEL_CACHE_OPERATION_GRAPH, op_graph);
    cache_.finalize();
    finalized_ = true;
  }
  std::string before_detail, after_detail;
  const bool before = holds_locked(config, &before_detail);
  plan.set_descriptor(CUDNN_ATTR_EXECUTION_PLAN_KERNEL_CACHE, cache_);
  const cudnnStatus_t status = plan.try_finalize();
  const bool after = status == CUDNN_STATUS_SUCCESS && holds_locked(config, &after_detail);
  report = cat(before  ? "hit"
               : after ? "stored"
                       : "not stored",
               " (before: ", before_detail, "; after: ", after_detail, ")");
  return status;
}

}  // namespace anvil::cuda
