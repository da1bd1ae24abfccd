// The internals of Engine and ExecutionContext (include/anvil/engine.h),
// shared by engine.cc and execution_context.cc.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "anvil/engine.h"
#include "cuda/graph.h"
#include "cuda/handles.h"
#include "plan/plan.h"
#include "plan/streams.h"
#include "runtime/layer_runner.h"

namespace anvil {

// The workspace of each stream, laid out one region after another after the
// activations: layers on different streams may run at once, so each stream
// has its own. The last region also takes whatever memory is left.
struct WorkspaceLayout {
  std::vector<std::size_t> bytes;  // needed per stream

  // Bytes the regions span: all but the last aligned up.
  std::size_t total() const;
  // Where stream `s`'s region starts, from the start of the workspace.
  std::size_t offset(std::size_t s) const;
};

struct Engine::Impl {
  plan::Plan plan;
  cuda::DeviceBuffer weights;  // the plan's weights blob, uploaded once
  // runners[profile][layer]: a profile's tactics are its runners'.
  std::vector<std::vector<std::unique_ptr<runtime::LayerRunner>>> runners;
  std::vector<BatchRange> profiles;  // the batch range of each
  std::vector<IoTensorInfo> io;
  std::int64_t min_batch = 1;  // over all profiles
  std::int64_t max_batch = 1;
  std::size_t arena_bytes = 0;  // activations at max_batch
  // Per stream: the largest layer workspace of any profile at its max.
  WorkspaceLayout workspace;
  // Index of the last layer reading a user input: the input-consumed event
  // is recorded after it (-1: no layer reads one).
  std::ptrdiff_t last_input_reader = -1;
  plan::StreamSchedule schedule;  // each layer's stream and events
};

// A CUDA graph of the whole enqueue at one batch size and address set.
struct CapturedEnqueue {
  std::vector<const void*> addresses;  // what the graph baked in
  bool warmed_up = false;              // a plain enqueue with these addresses ran
  cuda::GraphExec exec;
};

struct ExecutionContext::Impl {
  std::shared_ptr<const Engine> engine;
  cuda::CudnnHandle cudnn;
  cuda::CublasLtHandle cublaslt;

  // Activations at offsets[] from `memory`, then the workspace at
  // workspace_offset: the owned block or the caller's.
  cuda::DeviceBuffer owned_memory;
  void* memory = nullptr;
  std::size_t memory_bytes = 0;
  std::size_t workspace_offset = 0;  // at `batch`
  WorkspaceLayout workspace;         // the largest layer workspace per stream at `batch`

  int profile = 0;         // the selected optimization profile
  std::int64_t batch = 0;  // 0 until set_input_shape
  // Prepared layers per (profile, batch size) seen, so switching back is free.
  using ShapeKey = std::pair<int, std::int64_t>;
  std::map<ShapeKey, std::vector<std::unique_ptr<runtime::PreparedLayer>>> prepared;
  std::vector<std::size_t> offsets;   // arena offset per tensor id at `batch`
  std::map<int, void*> io_addresses;  // by tensor id
  // Launch arguments of every layer, rebuilt whenever a shape or address
  // changes, so enqueue() allocates nothing.
  std::vector<runtime::LaunchArgs> launches;
  bool ready = false;
  Profiler* profiler = nullptr;
  std::vector<cuda::Event> layer_events;  // one before each layer, one after the last
  cudaEvent_t input_consumed = nullptr;

  // Auxiliary streams (plan/streams.h): the streams, the event each
  // signalling layer records, the fork event on stream 0 and each auxiliary
  // stream's join event.
  std::vector<cuda::Stream> aux_streams;
  std::vector<std::optional<cuda::Event>> layer_signals;  // by layer
  std::optional<cuda::Event> fork;
  std::vector<cuda::Event> joins;

  std::vector<const void*> bound_addresses;  // what a graph of `launches` bakes in
  bool graphs_enabled = false;
  std::string graph_failure;  // why graphs fell back to plain launches
  bool last_used_graph = false;
  std::map<ShapeKey, CapturedEnqueue> graphs;  // by (profile, batch size)

  const plan::Plan& plan() const;
  // Creates the auxiliary streams and events the engine's schedule uses.
  void make_streams();
  // Bytes of stream `s`'s workspace region in the context's memory.
  std::size_t workspace_region_bytes(std::size_t s) const;
  void prepare(std::int64_t new_batch);
  // Places the workspace after the current batch's activations; grows an
  // owned block, rejects a borrowed one that is too small.
  void place_workspace();
  void refresh_launches();
  // What enqueue() still lacks, or "".
  std::string missing() const;
  // Every layer in order, on `stream` or, with auxiliary streams and no
  // profiler, on its scheduled stream, forked from and joined back to
  // `stream`; the input-consumed event after the last input reader;
  // `capturing` makes that record an external graph node.
  void launch_layers(cudaStream_t stream, bool capturing);
  void enqueue_profiled(cudaStream_t stream);
  void enqueue_graph(cudaStream_t stream);
};

}  // namespace anvil
