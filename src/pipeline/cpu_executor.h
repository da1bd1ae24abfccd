// Pipeline executors over the CPU reference runtime: how `anvil` serves a
// model where there is no GPU, and how CI tests the pipeline's ordering,
// backpressure, shutdown and error paths.
#pragma once

#include <cstdint>
#include <memory>

#include "anvil/pipeline.h"
#include "ir/graph.h"

namespace anvil::pipeline {

// Executors running `graph` (shared by all of them, never modified) with one
// slot each. The graph must have one FP32 input [N, ...] and one FP32 output
// [N, ...], N the batch, every other dim known; kUnsupported otherwise. A
// symbolic N accepts batches of 1..max_batch, a fixed one only itself.
// kUint8Nhwc and kUint8Nchw batches are normalized on the host, softmax and
// top-k too.
ExecutorFactory cpu_executor_factory(std::shared_ptr<const ir::Graph> graph,
                                     std::int64_t max_batch = 1024);

}  // namespace anvil::pipeline
