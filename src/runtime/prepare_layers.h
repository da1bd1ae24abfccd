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

// runners[i]->prepare(batch, ...) for every i, in order. With two or more
// compiling layers, they are prepared on up to kMaxPrepareWorkers threads
// (no more than the machine's cores: the compiles are CPU work). An error
// of any layer is thrown after every worker has stopped: the first in
// layer order. On the H100 machine (16 cores) 8 workers took ResNet-18's 19
// INT8 convs at batch 37 from 8.97 to 2.91 s.
inline constexpr std::size_t kMaxPrepareWorkers = 16;
std::vector<std::unique_ptr<PreparedLayer>> prepare_layers(
    std::span<const std::unique_ptr<LayerRunner>> runners, std::int64_t batch,
    const Handles& handles, WorkerHandles& workers);

}  // namespace anvil::runtime
