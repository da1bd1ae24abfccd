#include "runtime/prepare_layers.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>

#include "cuda/check.h"

namespace anvil::runtime {

std::span<const Handles> WorkerHandles::at_least(std::size_t count) {
  while (handles_.size() < count) {
    cudnn_.emplace_back();
    cublaslt_.emplace_back();
    handles_.push_back({cudnn_.back().get(), cublaslt_.back().get()});
  }
  return handles_;
}

std::vector<std::unique_ptr<PreparedLayer>> prepare_layers(
    std::span<const std::unique_ptr<LayerRunner>> runners, std::int64_t batch,
    const Handles& handles, WorkerHandles& workers) {
  std::vector<std::unique_ptr<PreparedLayer>> layers(runners.size());
  std::vector<std::size_t> compiling;
  for (std::size_t i = 0; i < runners.size(); ++i)
    if (runners[i]->compiles(batch)) compiling.push_back(i);
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t threads = std::min({compiling.size(), cores, kMaxPrepareWorkers});
  if (threads >= 2) {
    int device = 0;
    ANVIL_GPU_CHECK(cudaGetDevice(&device));
    const std::span<const Handles> worker_handles = workers.at_least(threads);
    std::vector<std::exception_ptr> errors(runners.size());
    std::atomic<std::size_t> next{0};
    auto work = [&](std::size_t w) {
      // A worker that cannot work leaves its share to the others, or to the
      // caller's thread below.
      if (cudaSetDevice(device) != cudaSuccess) return;
      for (std::size_t k = next++; k < compiling.size(); k = next++) {
        const std::size_t i = compiling[k];
        try {
          layers[i] = runners[i]->prepare(batch, worker_handles[w]);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      }
    };
    std::vector<std::thread> pool;
    for (std::size_t w = 0; w < threads; ++w)
      pool.emplace_back(work, w);
    for (std::thread& t : pool)
      t.join();
    for (const std::exception_ptr& error : errors)
      if (error) std::rethrow_exception(error);
  }
  for (std::size_t i = 0; i < runners.size(); ++i)
    if (!layers[i]) layers[i] = runners[i]->prepare(batch, handles);
  return layers;
}

}  // namespace anvil::runtime
