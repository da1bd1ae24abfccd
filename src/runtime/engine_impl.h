// The internals of Engine and ExecutionContext (include/anvil/engine.h),
// shared by engine.cc and execution_context.cc.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "anvil/engine.h"
#include "builder/preformat_input.h"
#include "cuda/graph.h"
#include "cuda/handles.h"
#include "plan/plan.h"
#include "plan/streams.h"
#include "runtime/layer_runner.h"
#include "runtime/prepare_layers.h"

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

// Every input's dims 1.. (not the batch), inputs in IO order: the geometry
// a set of runners is built for. Empty: the plan's own (every plan whose
// profiles vary only the batch uses only this one).
using GeometryKey = std::vector<std::int64_t>;

// The runners of one profile at one input geometry, and the plan they were
// built from: the engine's own, or a builder::respecialize() copy of it.
struct Specialization {
  plan::Plan respecialized;          // without weights; unused for the plan's own geometry
  const plan::Plan* plan = nullptr;  // the engine's plan or `respecialized`
  std::vector<std::unique_ptr<runtime::LayerRunner>> runners;  // one per layer
};

struct Engine::Impl {
  plan::Plan plan;
  cuda::DeviceBuffer weights;        // the plan's weights blob, uploaded once
  bool spatial = false;              // profiles vary an input's height and width
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

  // The runners of `profile` at `geometry`, built on first use. Contexts on
  // several threads share the engine, so the cache is behind a lock;
  // entries are never removed, so references stay valid.
  const Specialization& specialization(int profile, const GeometryKey& geometry) const;
  // The geometry of `inputs` (input name -> dims; inputs not named take
  // `profile`'s opt), or the empty key for a plan without spatial ranges.
  GeometryKey geometry_of(int profile,
                          const std::map<std::string, std::vector<std::int64_t>>& inputs) const;
  // The geometry the stored plan describes (profile 0's opt).
  GeometryKey geometry_of_plan() const;
  // `profile`'s max shape's geometry: the one its memory is sized for.
  GeometryKey max_geometry(int profile) const;

  mutable std::mutex specializations_mutex;
  mutable std::map<std::pair<int, GeometryKey>, std::unique_ptr<Specialization>> specializations;
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
  GeometryKey geometry;    // of the inputs' current dims (empty: the plan's own)
  const Specialization* specialization = nullptr;  // the runners of (profile, geometry)
  // Input dims set under the current profile, by name (spatial plans).
  std::map<std::string, std::vector<std::int64_t>> input_dims;
  // Handles of the threads that prepare compiling layers: declared before
  // `prepared`, so they outlive the plans built with them.
  runtime::WorkerHandles workers;
  // Prepared layers per (profile, geometry, batch size) seen, so switching back is free.
  using ShapeKey = std::tuple<int, GeometryKey, std::int64_t>;
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
  // Where the input-consumed event goes (builder::input_consumed_after).
  std::ptrdiff_t consumed_after = -1;

  // Preformatted inputs (set_input_preformatted): their sites, each input's
  // reformat layer marked in `skipped`, and why the current shape cannot
  // skip them ("" when it can).
  std::vector<builder::PreformatSite> preformatted;
  std::vector<bool> skipped;  // by layer
  // `skipped` as a graph key without copying it per enqueue: 0 when no
  // layer is skipped, else 1 + its index in skip_sets (every one seen).
  int skip_set = 0;
  std::vector<std::vector<bool>> skip_sets;
  std::string preformat_problem;

  // Inputs their stem reads as uint8 images (set_input_images): the stem's
  // site and what its launch gets; and the normalization last set per
  // input, so that a new one drops the graphs that baked the old one in.
  struct ImageInput {
    builder::PreformatSite site;
    runtime::ImagesInput images;
  };
  std::vector<ImageInput> images;
  std::map<int, cuda::kernels::ImageAffine> image_affines;

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
  // By (profile, geometry, batch size) and the layers left out (skip_set),
  // so that a caller alternating preformatted and plain inputs keeps both.
  using GraphKey = std::tuple<int, GeometryKey, std::int64_t, int>;
  std::map<GraphKey, CapturedEnqueue> graphs;

  const plan::Plan& plan() const;
  // Creates the auxiliary streams and events the engine's schedule uses.
  void make_streams();
  // Bytes of stream `s`'s workspace region in the context's memory.
  std::size_t workspace_region_bytes(std::size_t s) const;
  // set_input_shape for plans whose profiles vary height and width.
  void set_spatial_input_shape(std::string_view name, std::span<const std::int64_t> dims);
  void prepare(std::int64_t new_batch, const GeometryKey& new_geometry);
  // "batch 4" or, for spatial plans, "batch 4 at input 3x65x77", for errors.
  std::string shape_text() const;
  // Places the workspace after the current batch's activations; grows an
  // owned block. A borrowed one that is too small stays (not ready).
  void place_workspace();
  // Activations and workspace at the current shape (context_memory_bytes()
  // before one is set).
  std::size_t memory_needed() const;
  void refresh_launches();
  // The site of a preformatted input, or null.
  const builder::PreformatSite* preformatted_site(int input_tensor) const;
  // An input read as images, or null.
  const ImageInput* image_input(int input_tensor) const;
  // Whether an input is bound: an address, preformatted or images.
  bool input_bound(int input_tensor) const;
  // consumed_after from the preformatted and image inputs' sites.
  void place_consumed_event();
  // Why `site`'s storage cannot be written before enqueue at the current
  // shape (builder::storage_clash), or "".
  std::string storage_problem(const builder::PreformatSite& site) const;
  // preformat_problem at the current shape and arena (also where a stem
  // cannot read the images it is given at the current shape).
  void check_preformatted();
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
