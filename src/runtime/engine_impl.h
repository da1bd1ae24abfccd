// The internals of Engine and ExecutionContext (include/anvil/engine.h),
// shared by engine.cc and execution_context.cc.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "anvil/engine.h"
#include "cuda/handles.h"
#include "plan/plan.h"
#include "runtime/layer_runner.h"

namespace anvil {

struct Engine::Impl {
  plan::Plan plan;
  cuda::DeviceBuffer weights;  // the plan's weights blob, uploaded once
  std::vector<std::unique_ptr<runtime::LayerRunner>> runners;  // one per layer
  std::vector<IoTensorInfo> io;
  std::int64_t min_batch = 1;
  std::int64_t max_batch = 1;
  std::size_t arena_bytes = 0;  // activations at max_batch
};

struct ExecutionContext::Impl {
  std::shared_ptr<const Engine> engine;
  cuda::CudnnHandle cudnn;
  cuda::CublasLtHandle cublaslt;
  cuda::DeviceBuffer arena;  // sized for max_batch
  cuda::DeviceBuffer workspace;

  std::int64_t batch = 0;  // 0 until set_input_shape
  // Prepared layers per batch size seen, so switching back is free.
  std::map<std::int64_t, std::vector<std::unique_ptr<runtime::PreparedLayer>>> prepared;
  std::vector<std::size_t> offsets;   // arena offset per tensor id at `batch`
  std::map<int, void*> io_addresses;  // by tensor id
  // Launch arguments of every layer, rebuilt whenever a shape or address
  // changes, so enqueue() allocates nothing.
  std::vector<runtime::LaunchArgs> launches;
  bool ready = false;
  Profiler* profiler = nullptr;
  std::vector<cuda::Event> layer_events;  // one before each layer, one after the last

  const plan::Plan& plan() const;
  void prepare(std::int64_t new_batch);
  void refresh_launches();
};

}  // namespace anvil
