// The GPU engine's runtime API: the concepts TensorRT users know.
//
//   auto engine = anvil::Engine::load("model.plan");      // weights on the GPU, immutable
//   auto context = engine->create_context();               // one per thread
//   context->set_input_shape("input", {32, 3, 224, 224});
//   context->set_tensor_address("input", d_input);          // caller's device memory
//   context->set_tensor_address("output", d_output);
//   context->enqueue(stream);                               // asynchronous
//
// Thread safety: an Engine is immutable and may be shared by any number of
// threads and contexts. An ExecutionContext is used by one thread at a time.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anvil/types.h"

namespace anvil {

namespace plan {
struct Plan;
}

// A user-facing input or output of an engine: NCHW (or NC) FP32.
struct IoTensorInfo {
  std::string name;
  bool is_input = true;
  DType dtype = DType::kFloat32;
  std::vector<std::int64_t> dims;  // -1 for the dynamic batch
};

class ExecutionContext;

// Receives per-layer GPU times from a profiled enqueue (TensorRT's IProfiler).
class Profiler {
 public:
  virtual ~Profiler() = default;
  // Called once per layer, in execution order, after the enqueue's work has
  // finished: `layer` is the plan layer's name (the fused layer), `kind` its
  // kind ("conv", "pool", ...), `ms` its GPU time.
  virtual void report_layer_time(std::string_view layer, std::string_view kind, float ms) = 0;
};

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  // Loads a plan file: checks that it was built for this GPU and these library
  // versions (kIncompatible otherwise, naming each mismatch), then uploads the
  // weights once. Corrupt or truncated files are kInvalidArgument errors.
  static std::shared_ptr<const Engine> load(const std::filesystem::path& path);
  // The same from a plan held in memory; `label` names it in errors.
  static std::shared_ptr<const Engine> deserialize(std::span<const std::byte> bytes,
                                                   std::string_view label);
  ~Engine();

  const std::vector<IoTensorInfo>& io_tensors() const;
  // Batch sizes the plan's optimization profile accepts.
  std::int64_t min_batch() const;
  std::int64_t max_batch() const;
  // Device bytes of the weights (shared by every context).
  std::size_t weight_bytes() const;
  // Device bytes one context needs for activations and workspace at max_batch().
  std::size_t context_memory_bytes() const;
  // The plan this engine runs (layers, tactics), for inspection.
  const plan::Plan& plan() const;

  // A context owning its activation memory (context_memory_bytes()).
  std::unique_ptr<ExecutionContext> create_context() const;

  // Internal: the runtime's own view of the engine (src/runtime/engine_impl.h).
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  static std::shared_ptr<const Engine> from_plan(plan::Plan loaded, std::string_view label);
  std::unique_ptr<Impl> impl_;
};

class ExecutionContext {
 public:
  ~ExecutionContext();

  // Sets an input's shape; dims must match the engine's except the batch,
  // which must lie in the profile's range. Prepares batch-specific library
  // plans here, so enqueue() stays cheap. kInvalidArgument names the input.
  void set_input_shape(std::string_view name, std::span<const std::int64_t> dims);
  // The current shape of an input or output (after set_input_shape).
  std::vector<std::int64_t> tensor_shape(std::string_view name) const;
  // Binds a user tensor to the caller's device memory (no copy). Null or
  // misaligned (not 16-byte) pointers are kInvalidArgument.
  void set_tensor_address(std::string_view name, void* device_pointer);
  // Enqueues the whole network on `stream`: no host synchronization and no
  // allocation. Every input shape and IO address must be set.
  // Every enqueue is an NVTX range ("anvil", one per call, with one per layer
  // inside, named after the plan's layers) for Nsight Systems.
  void enqueue(cudaStream_t stream);
  // With a profiler, enqueue() records a CUDA event around every layer, waits
  // for the stream and reports each layer's time to `profiler`: synchronous
  // and a little slower, for profiling only. Null turns profiling off. The
  // profiler must outlive its use by this context.
  void set_profiler(Profiler* profiler);

  struct Impl;

 private:
  friend class Engine;
  explicit ExecutionContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil
