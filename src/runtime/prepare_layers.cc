#include "runtime/prepare_layers.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
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

std::size_t worker_count(std::size_t tasks) {
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::min({tasks, cores, kMaxPrepareWorkers});
}

std::vector<std::exception_ptr> run_on_workers(
    std::size_t tasks, WorkerHandles& workers,
    const std::function<void(std::size_t, const Handles&)>& task) {
  std::vector<std::exception_ptr> errors(tasks);
  const std::size_t threads = worker_count(tasks);
  if (threads == 0) return errors;
  int device = 0;
  ANVIL_GPU_CHECK(cudaGetDevice(&device));
  const std::span<const Handles> handles = workers.at_least(threads);
  std::atomic<std::size_t> next{0};
  auto work = [&](std::size_t w) {
    // A worker that cannot work leaves its share to the others (or, where
    // none can, to the caller: the tasks it skipped are reported as such).
    if (cudaSetDevice(device) != cudaSuccess) return;
    for (std::size_t k = next++; k < tasks; k = next++) {
      try {
        task(k, handles[w]);
      } catch (...) {
        errors[k] = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t w = 0; w < threads; ++w)
    pool.emplace_back(work, w);
  for (std::thread& t : pool)
    t.join();
  return errors;
}

std::vector<std::unique_ptr<PreparedLayer>> prepare_layers(
    std::span<const std::unique_ptr<LayerRunner>> runners, std::int64_t batch,
    const Handles& handles, WorkerHandles& workers) {
  std::vector<std::unique_ptr<PreparedLayer>> layers(runners.size());
  std::vector<std::size_t> compiling;
  for (std::size_t i = 0; i < runners.size(); ++i)
    if (runners[i]->compiles(batch)) compiling.push_back(i);
  if (worker_count(compiling.size()) >= 2) {
    const std::vector<std::exception_ptr> errors =
        run_on_workers(compiling.size(), workers, [&](std::size_t k, const Handles& h) {
          layers[compiling[k]] = runners[compiling[k]]->prepare(batch, h);
        });
    for (const std::exception_ptr& error : errors)  // in layer order
      if (error) std::rethrow_exception(error);
  }
  for (std::size_t i = 0; i < runners.size(); ++i)
    if (!layers[i]) layers[i] = runners[i]->prepare(batch, handles);
  return layers;
}

}  // namespace anvil::runtime
