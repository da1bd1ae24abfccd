// cuDNN's kernel cache (CUDNN_BACKEND_KERNEL_CACHE_DESCRIPTOR, cuDNN >= 9.5):
// an execution plan finalized with a cache stores the kernel cuDNN compiled
// for it, and a later plan of a same-topology operation graph (another batch
// size, another execution context) may bind that kernel instead of compiling
// it again. It applies only to operation graphs built with
// CUDNN_ATTR_OPERATIONGRAPH_IS_DYNAMIC_SHAPE_ENABLED (cuDNN's "dynamic shape"
// graphs); QuantizedConv builds those when it is given a cache.
//
// cuDNN ties a cache to the operation graph it is finalized with (its
// topology): the first plan built with the cache supplies it. Sharing one
// cache across layers of different topology is not documented; keep one per
// layer topology (the layer's shape without the batch size).
//
// Thread safety: cuDNN documents its functions as thread-safe when threads do
// not share a handle, and says nothing about a kernel cache used by several
// threads or handles at once (cudnn-frontend guards only its own
// finalization). So every use of the cache, including the finalization of a
// plan that reads or fills it, runs under one mutex here: concurrent plan
// builds through one cache are serialized, which also lets a second builder
// bind the kernel the first one just compiled.
#pragma once

#include <cudnn.h>

#include <mutex>
#include <string>

#include "cuda/cudnn_descriptors.h"

namespace anvil::cuda {

class CudnnKernelCache {
 public:
  // Creates the (not yet finalized) cache; kGpu when this cuDNN has none.
  CudnnKernelCache();
  CudnnKernelCache(const CudnnKernelCache&) = delete;
  CudnnKernelCache& operator=(const CudnnKernelCache&) = delete;

  // Attaches the cache to `plan` (handle and engine config already set, not
  // finalized) and finalizes it; finalizes the cache first, with `op_graph`,
  // when this is its first plan. Returns the plan's finalize status. `report`
  // says what cuDNN said about `config` before and after: "hit" (its kernel
  // was cached before), "stored" (compiled now and cached), "not stored", each
  // with the raw query results for diagnosis. The cache is logically const:
  // cuDNN fills it behind the descriptor.
  cudnnStatus_t finalize_plan(const BackendDescriptor& op_graph, const BackendDescriptor& config,
                              BackendDescriptor& plan, std::string& report) const;

  // Whether cuDNN reports (CUDNN_ATTR_KERNEL_CACHE_IS_ENGINECFG_KERNEL_CACHED)
  // that the kernel of the finalized engine `config` is cached; false before
  // the first plan. `detail` gets the query's raw status and count.
  bool holds(const BackendDescriptor& config, std::string* detail = nullptr) const;

 private:
  bool holds_locked(const BackendDescriptor& config, std::string* detail) const;

  mutable std::mutex mutex_;
  mutable BackendDescriptor cache_;
  mutable bool finalized_ = false;
};

}  // namespace anvil::cuda
