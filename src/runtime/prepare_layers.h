// Preparing a context's layers for a batch size (LayerRunner::prepare), the
// ones that compile kernels in parallel.
//
// cuDNN's runtime-fusion INT8 engines compile every execution plan for its
// batch size: 0.5-0.9 s per layer on an H100, so a ResNet-18 INT8 context
// spent ~9 s in set_input_shape at a batch size whose compiled plans the
// plan file does not hold (docs/INT8.md, start-up). Layers whose runner
// says it compiles (LayerRunner::compiles) are prepared on worker threads,
// each with cuDNN and cuBLASLt handles of its own (cuDNN is thread-safe
// across handles); the others on the caller's thread and handles.
//
// The layers prepared on a worker run later with the context's handles.
// cuDNN allows that: a probe on an H100 with cuDNN 9.14 (ninth session,
// docs/INT8.md) ran plans compiled on worker handles with another handle and
// got the bytes of that handle's own plans, and PyTorch runs cached cuDNN
// plans on whichever thread's handle asks. The worker handles live as long
// as the context, so no plan outlives the handle it was built with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "cuda/handles.h"
#include "runtime/layer_runner.h"

namespace anvil::runtime {

// Handles for prepare_layers' workers, created on first need and kept.
class WorkerHandles {
 public:
  // At least `count` pairs (created on the calling thread, as cuDNN
  // recommends: one synchronous cudnnCreate before threads use them).
  std::span<const Handles> at_least(std::size_t count);

 private:
  std::vector<cuda::CudnnHandle> cudnn_;
  std::vector<cuda::CublasLtHandle> cublaslt_;
  std::vector<Handles> handles_;
};

// Threads for `tasks` tasks: no more than the tasks, the machine's cores
// (compiles are CPU work) or kMaxPrepareWorkers.
inline constexpr std::size_t kMaxPrepareWorkers = 16;
std::size_t worker_count(std::size_t tasks);

// task(k, handles) for every k < tasks on worker_count(tasks) threads, each
// with handles of its own from `workers`; returns once all have stopped,
// with each task's exception (null where it returned). A worker that cannot
// select the caller's device takes no task: the others take its share.
std::vector<std::exception_ptr> run_on_workers(
    std::size_t tasks, WorkerHandles& workers,
    const std::function<void(std::size_t, const Handles&)>& task);

// runners[i]->prepare(batch, ...) for every i, in order. Where two or more
// compiling layers get two or more workers, they are prepared on those
// (run_on_workers), the rest on the caller's thread and handles. An error
// of any layer is thrown after every worker has stopped: the first in
// layer order. On the H100 machine (16 cores) 8 workers took ResNet-18's 19
// INT8 convs at batch 37 from 8.97 to 2.91 s.
std::vector<std::unique_ptr<PreparedLayer>> prepare_layers(
    std::span<const std::unique_ptr<LayerRunner>> runners, std::int64_t batch,
    const Handles& handles, WorkerHandles& workers);

}  // namespace anvil::runtime
