#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nvtx3/nvtx3.hpp>

#include "anvil/error.h"
#include "builder/lower.h"
#include "builder/preformat_input.h"
#include "cuda/check.h"
#include "cuda/graph.h"
#include "plan/profiles.h"
#include "runtime/engine_impl.h"

namespace anvil {

namespace {

// The NVTX domain of every range the runtime opens, so Nsight Systems groups them.
struct NvtxDomain {
  static constexpr const char* name{"anvil"};
};

const plan::IoBinding& find_io(const plan::Plan& p, std::string_view name) {
  for (const plan::IoBinding& b : p.io)
    if (b.name == name) return b;
  std::string names;
  for (const plan::IoBinding& b : p.io)
    names += (names.empty() ? "" : ", ") + b.name;
  fail(ErrorKind::kInvalidArgument, "the engine has no input or output '", name,
       "'; its tensors are: ", names);
}

const std::string& io_name(const plan::Plan& p, int tensor_id) {
  for (const plan::IoBinding& b : p.io)
    if (b.tensor_id == tensor_id) return b.name;
  return p.tensors.at(static_cast<std::size_t>(tensor_id)).name;
}

std::size_t align_up(std::size_t bytes) {
  return (bytes + builder::kAlignment - 1) / builder::kAlignment * builder::kAlignment;
}

std::string dims_string(std::span<const std::int64_t> dims) {
  std::string out = "[";
  for (std::size_t i = 0; i < dims.size(); ++i)
    out += (i ? "," : "") + std::to_string(dims[i]);
  return out + "]";
}

}  // namespace

std::unique_ptr<ExecutionContext> Engine::create_context() const {
  auto impl = std::make_unique<ExecutionContext::Impl>();
  impl->engine = shared_from_this();
  impl->owned_memory = cuda::DeviceBuffer(std::max(context_memory_bytes(), builder::kAlignment));
  impl->memory = impl->owned_memory.data();
  impl->memory_bytes = impl->owned_memory.bytes();
  impl->make_streams();
  impl->consumed_after = impl_->last_input_reader;
  impl->skipped.assign(plan().layers.size(), false);
  return std::unique_ptr<ExecutionContext>(new ExecutionContext(std::move(impl)));
}

std::unique_ptr<ExecutionContext> Engine::create_context_without_memory() const {
  auto impl = std::make_unique<ExecutionContext::Impl>();
  impl->engine = shared_from_this();
  impl->make_streams();
  impl->consumed_after = impl_->last_input_reader;
  impl->skipped.assign(plan().layers.size(), false);
  return std::unique_ptr<ExecutionContext>(new ExecutionContext(std::move(impl)));
}

ExecutionContext::ExecutionContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutionContext::~ExecutionContext() = default;

const plan::Plan& ExecutionContext::Impl::plan() const {
  return engine->plan();
}

void ExecutionContext::Impl::make_streams() {
  const plan::StreamSchedule& schedule = engine->impl().schedule;
  if (schedule.aux_streams == 0) return;
  aux_streams = std::vector<cuda::Stream>(static_cast<std::size_t>(schedule.aux_streams));
  for (std::size_t k = 0; k < aux_streams.size(); ++k)
    joins.emplace_back(false);
  fork.emplace(false);
  layer_signals.resize(schedule.layers.size());
  for (std::size_t i = 0; i < schedule.layers.size(); ++i)
    if (schedule.layers[i].signals) layer_signals[i].emplace(false);
}

std::size_t ExecutionContext::Impl::workspace_region_bytes(std::size_t s) const {
  if (s + 1 < workspace.bytes.size()) return workspace.bytes[s];
  return memory_bytes - workspace_offset - workspace.offset(s);  // the last takes the rest
}

void ExecutionContext::set_input_shape(std::string_view name, std::span<const std::int64_t> dims) {
  const plan::Plan& p = impl_->plan();
  const plan::IoBinding& io = find_io(p, name);
  if (!io.is_input) fail(ErrorKind::kInvalidArgument, "'", name, "' is an output, not an input");
  const plan::TensorDesc& t = p.tensors.at(static_cast<std::size_t>(io.tensor_id));
  const Engine& engine = *impl_->engine;
  if (engine.impl().spatial) return impl_->set_spatial_input_shape(name, dims);
  bool same = dims.size() == t.dims.size();
  for (std::size_t d = 1; same && d < dims.size(); ++d)
    same = dims[d] == t.dims[d];
  if (!same)
    fail(ErrorKind::kInvalidArgument, "input '", name, "' must have shape ", dims_string(t.dims),
         " (-1: any batch in the profile), got ", dims_string(dims));
  const std::int64_t batch = dims[0];
  const BatchRange range = engine.profile_batch_range(impl_->profile);
  if (!range.contains(batch)) {
    const int best = engine.best_profile(batch);
    fail(ErrorKind::kInvalidArgument, "input '", name, "': batch ", batch,
         " is outside optimization profile ", impl_->profile, " (", range.min, "..", range.max,
         "); the plan's profiles: ", plan::describe(engine.impl().profiles),
         best >= 0 ? cat("; select profile ", best, " with set_optimization_profile")
                   : std::string("; rebuild with a profile covering it"));
  }
  impl_->ready = false;                                  // until the launches match the new batch
  if (batch != impl_->batch) impl_->prepare(batch, {});  // also after a profile change (batch 0)
  impl_->place_workspace();
  impl_->refresh_launches();
}

void ExecutionContext::Impl::set_spatial_input_shape(std::string_view name,
                                                     std::span<const std::int64_t> dims) {
  const plan::Plan& p = plan();
  const plan::Profile& ranges = p.profiles.at(static_cast<std::size_t>(profile));
  if (!plan::holds(ranges, name, dims)) {
    const int best = plan::best_profile(p, name, dims);
    fail(ErrorKind::kInvalidArgument, "input '", name, "': shape ", dims_string(dims),
         " is outside optimization profile ", profile, "; the plan's profiles for '", name,
         "': ", plan::describe_shapes(p, name),
         best >= 0 ? cat("; select profile ", best, " with set_optimization_profile")
                   : std::string("; rebuild with a profile covering it"));
  }
  input_dims[std::string(name)] = {dims.begin(), dims.end()};
  const GeometryKey new_geometry = engine->impl().geometry_of(profile, input_dims);
  ready = false;
  // A new height and width builds that geometry's runners (once per engine)
  // and prepares them, like a new batch.
  if (dims[0] != batch || new_geometry != geometry) prepare(dims[0], new_geometry);
  place_workspace();
  refresh_launches();
}

std::vector<std::int64_t> ExecutionContext::tensor_shape(std::string_view name) const {
  const plan::IoBinding& io = find_io(impl_->plan(), name);
  // Before any shape is set: the engine's view, -1 where dims vary.
  if (impl_->batch == 0) {
    for (const IoTensorInfo& info : impl_->engine->io_tensors())
      if (info.name == name) return info.dims;
  }
  const plan::Plan& shapes = impl_->specialization ? *impl_->specialization->plan : impl_->plan();
  std::vector<std::int64_t> dims = shapes.tensors.at(static_cast<std::size_t>(io.tensor_id)).dims;
  if (!dims.empty() && dims[0] < 0) dims[0] = impl_->batch;
  return dims;
}

void ExecutionContext::set_tensor_address(std::string_view name, void* device_pointer) {
  const plan::IoBinding& io = find_io(impl_->plan(), name);
  if (!device_pointer)
    fail(ErrorKind::kInvalidArgument, "tensor '", name, "': the device address is null");
  if (reinterpret_cast<std::uintptr_t>(device_pointer) % builder::kIoAlignment != 0)
    fail(ErrorKind::kInvalidArgument, "tensor '", name, "': the device address ", device_pointer,
         " is not ", builder::kIoAlignment, "-byte aligned (cudaMalloc's addresses are)");
  impl_->io_addresses[io.tensor_id] = device_pointer;
  impl_->refresh_launches();
}

void ExecutionContext::set_device_memory(void* memory, std::size_t bytes) {
  const std::size_t needed = impl_->engine->context_memory_bytes();
  if (!memory)
    fail(ErrorKind::kInvalidArgument,
         "set_device_memory: the memory is null; the context needs a device block of ", needed,
         " bytes (Engine::context_memory_bytes())");
  if (reinterpret_cast<std::uintptr_t>(memory) % builder::kAlignment != 0)
    fail(ErrorKind::kInvalidArgument, "set_device_memory: the memory ", memory, " is not ",
         builder::kAlignment, "-byte aligned (cudaMalloc's addresses are); the context needs ",
         needed, " bytes");
  if (bytes < needed)
    fail(ErrorKind::kInvalidArgument, "set_device_memory: the block holds ", bytes,
         " bytes; the context needs ", needed, " (Engine::context_memory_bytes())");
  impl_->ready = false;
  impl_->owned_memory = cuda::DeviceBuffer();
  impl_->memory = memory;
  impl_->memory_bytes = bytes;
  if (impl_->batch > 0) impl_->place_workspace();
  impl_->refresh_launches();
}

std::size_t ExecutionContext::device_memory_bytes() const {
  return impl_->memory_bytes;
}

std::size_t ExecutionContext::device_memory_needed() const {
  return impl_->memory_needed();
}

bool ExecutionContext::owns_device_memory() const {
  return impl_->owned_memory.data() != nullptr;
}

void ExecutionContext::set_input_consumed_event(cudaEvent_t event) {
  if (event) {
    const cudaError_t status = cudaEventQuery(event);
    if (status != cudaSuccess && status != cudaErrorNotReady) {
      cudaGetLastError();  // not sticky: keep it from failing the next launch check
      fail(ErrorKind::kInvalidArgument, "set_input_consumed_event: CUDA does not accept event ",
           static_cast<const void*>(event), " (", cudaGetErrorName(status), ")");
    }
  }
  impl_->input_consumed = event;
  impl_->refresh_launches();  // a graph bakes the event in
}

void ExecutionContext::enqueue(cudaStream_t stream) {
  if (!impl_->preformat_problem.empty())
    fail(ErrorKind::kUnsupported, "enqueue: ", impl_->preformat_problem);
  if (!impl_->ready) fail(ErrorKind::kInvalidArgument, "enqueue: ", impl_->missing());
  impl_->last_used_graph = false;
  if (impl_->profiler) return impl_->enqueue_profiled(stream);
  if (impl_->graphs_enabled && impl_->graph_failure.empty()) return impl_->enqueue_graph(stream);
  const nvtx3::scoped_range_in<NvtxDomain> enqueue_range{"enqueue"};
  impl_->launch_layers(stream, impl_->input_consumed && cuda::is_capturing(stream));
}

void ExecutionContext::set_profiler(Profiler* profiler) {
  impl_->profiler = profiler;
  if (profiler && impl_->layer_events.size() != impl_->plan().layers.size() + 1)
    impl_->layer_events = std::vector<cuda::Event>(impl_->plan().layers.size() + 1);
}

void ExecutionContext::set_optimization_profile(int profile) {
  impl_->engine->profile_batch_range(profile);  // kInvalidArgument if it does not exist
  if (profile == impl_->profile) return;
  impl_->profile = profile;
  impl_->batch = 0;
  impl_->geometry.clear();
  impl_->specialization = nullptr;
  impl_->input_dims.clear();
  impl_->ready = false;
  impl_->preformat_problem.clear();  // of the old shape; set_input_shape checks again
}

int ExecutionContext::optimization_profile() const {
  return impl_->profile;
}

void ExecutionContext::set_cuda_graph(bool enabled) {
  impl_->graphs_enabled = enabled;
  impl_->graph_failure.clear();
  if (enabled) return;
  for (auto& [shape, graph] : impl_->graphs) {
    graph.exec = cuda::GraphExec();
    graph.warmed_up = false;
  }
}

bool ExecutionContext::cuda_graph_active() const {
  return impl_->graphs_enabled && impl_->graph_failure.empty();
}

const std::string& ExecutionContext::cuda_graph_failure() const {
  return impl_->graph_failure;
}

bool ExecutionContext::last_enqueue_used_graph() const {
  return impl_->last_used_graph;
}

void ExecutionContext::Impl::prepare(std::int64_t new_batch, const GeometryKey& new_geometry) {
  const runtime::Handles handles{cudnn.get(), cublaslt.get()};
  const Specialization& runners = engine->impl().specialization(profile, new_geometry);
  auto& layers = prepared[{profile, new_geometry, new_batch}];
  if (layers.empty())
    layers = runtime::prepare_layers(runners.runners, new_batch, handles, workers);
  const plan::StreamSchedule& schedule = engine->impl().schedule;
  workspace.bytes.assign(1 + static_cast<std::size_t>(schedule.aux_streams), 0);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    std::size_t& bytes = workspace.bytes[static_cast<std::size_t>(schedule.layers[i].stream)];
    bytes = std::max(bytes, layers[i]->workspace_bytes());
  }
  const builder::MemoryPlan arena = builder::plan_arena(*runners.plan, new_batch);
  offsets = arena.offsets;
  workspace_offset = align_up(arena.arena_bytes);
  batch = new_batch;
  geometry = new_geometry;
  specialization = &runners;
}

std::string ExecutionContext::Impl::shape_text() const {
  if (geometry.empty()) return cat("batch ", batch);
  std::string dims;
  for (std::size_t i = 0; i < geometry.size(); ++i)
    dims += (i ? "x" : "") + std::to_string(geometry[i]);
  return cat("batch ", batch, " at input ", dims);
}

void ExecutionContext::Impl::place_workspace() {
  const std::size_t needed = workspace_offset + workspace.total();
  if (!memory || needed <= memory_bytes) return;
  if (owned_memory.data()) {
    // A batch below the maximum whose tactics need more workspace than at
    // max_batch (rare): the owned block grows; the launches are rebound next.
    owned_memory = cuda::DeviceBuffer();
    owned_memory = cuda::DeviceBuffer(needed);
    memory = owned_memory.data();
    memory_bytes = needed;
  }
  // A borrowed block stays: the context is not ready until it gets a larger
  // one (device_memory_needed() says how large; enqueue() names the gap).
}

std::size_t ExecutionContext::Impl::memory_needed() const {
  return batch > 0 ? workspace_offset + workspace.total() : engine->context_memory_bytes();
}

std::string ExecutionContext::Impl::missing() const {
  if (!memory)
    return cat("the context has no device memory: give it ", engine->context_memory_bytes(),
               " bytes (Engine::context_memory_bytes()) with set_device_memory()");
  if (batch == 0) return "no input shape is set (set_input_shape)";
  std::string names;
  for (const plan::IoBinding& io : plan().io)
    if (!input_bound(io.tensor_id)) names += " '" + io.name + "'";
  if (!names.empty()) return cat("no device address is set (set_tensor_address) for:", names);
  if (memory_needed() > memory_bytes)
    return cat(shape_text(), " needs ", memory_needed(), " bytes of context memory (activations ",
               workspace_offset, " + workspace ", workspace.total(), "), more than the ",
               memory_bytes,
               " bytes given to set_device_memory; give it a block of device_memory_needed()");
  return cat(shape_text(), " is not ready to run");
}

void ExecutionContext::Impl::refresh_launches() {
  ready = false;
  check_preformatted();
  if (batch == 0 || !memory || workspace_offset + workspace.total() > memory_bytes) return;
  const plan::Plan& p = plan();
  for (const plan::IoBinding& io : p.io)
    if (!input_bound(io.tensor_id)) return;
  auto* base = static_cast<std::byte*>(memory);
  auto address = [&](int id) -> void* {
    // A stem that reads the input itself takes a null one as "read the
    // storage" (builder/fuse_conv_max_pool.h). (A preformatted input's
    // reformat_in keeps its address: it is skipped, and set_input_preformatted
    // does not rebind launches for it.) So does one given images.
    if (const builder::PreformatSite* site = preformatted_site(id); site && !site->skip_layer)
      return nullptr;
    if (image_input(id)) return nullptr;
    if (auto it = io_addresses.find(id); it != io_addresses.end()) return it->second;
    return base + offsets.at(static_cast<std::size_t>(id));
  };
  const runtime::Handles handles{cudnn.get(), cublaslt.get()};
  auto& layers = prepared.at({profile, geometry, batch});
  launches.assign(p.layers.size(), {});
  std::vector<const void*> bound;  // every address a graph would bake in
  for (std::size_t i = 0; i < p.layers.size(); ++i) {
    runtime::LaunchArgs& args = launches[i];
    for (int id : p.layers[i].inputs)
      args.inputs.push_back(address(id));
    for (int id : p.layers[i].outputs)
      args.outputs.push_back(address(id));
    // Each stream's own region: layers on different streams may run at once.
    const auto stream = static_cast<std::size_t>(p.layers[i].stream);
    args.workspace_bytes = workspace_region_bytes(stream);
    args.workspace =
        args.workspace_bytes ? base + workspace_offset + workspace.offset(stream) : nullptr;
    args.handles = handles;
    args.images = {};
    for (const ImageInput& in : images)
      if (in.site.layer == static_cast<int>(i)) args.images = in.images;
    if (args.images.pixels) bound.push_back(args.images.pixels);
    layers[i]->bind(args);
    bound.insert(bound.end(), args.inputs.begin(), args.inputs.end());
    bound.insert(bound.end(), args.outputs.begin(), args.outputs.end());
    bound.push_back(args.workspace);
  }
  bound.push_back(input_consumed);
  bound_addresses = std::move(bound);
  ready = true;
}

void ExecutionContext::Impl::launch_layers(cudaStream_t stream, bool capturing) {
  const plan::Plan& p = plan();
  const auto& layers = prepared.at({profile, geometry, batch});
  const plan::StreamSchedule& schedule = engine->impl().schedule;
  // The profiler times layers one after another on `stream`: a serial order
  // is valid too, as the plan lists layers in dependency order.
  const bool timing = profiler != nullptr;
  const bool parallel = !aux_streams.empty() && !timing;
  const std::ptrdiff_t record_after = input_consumed ? consumed_after : -2;
  auto record_consumed = [&] {
    ANVIL_GPU_CHECK(cudaEventRecordWithFlags(
        input_consumed, stream, capturing ? cudaEventRecordExternal : cudaEventRecordDefault));
  };
  if (record_after == -1) record_consumed();  // no layer reads an input
  if (parallel) {
    // Fork: the auxiliary streams start after what the caller queued before
    // (under capture this also brings them into the caller's capture).
    fork->record(stream);
    for (const cuda::Stream& aux : aux_streams)
      ANVIL_GPU_CHECK(cudaStreamWaitEvent(aux.get(), fork->get(), 0));
  }
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const nvtx3::scoped_range_in<NvtxDomain> layer_range{p.layers[i].name.c_str()};
    const plan::LayerSchedule& s = schedule.layers[i];
    cudaStream_t on = stream;
    if (parallel && s.stream > 0) on = aux_streams[static_cast<std::size_t>(s.stream - 1)].get();
    if (parallel)
      for (const int producer : s.waits)
        ANVIL_GPU_CHECK(
            cudaStreamWaitEvent(on, layer_signals[static_cast<std::size_t>(producer)]->get(), 0));
    runtime::LaunchArgs& args = launches[i];
    args.stream = on;
    if (timing) layer_events[i].record(stream);
    // A skipped layer still signals: its readers on other streams wait for
    // an event of this enqueue (the fork covers the caller's write).
    if (!skipped[i]) layers[i]->enqueue(args);
    if (parallel && s.signals) layer_signals[i]->record(on);
    // On `stream`: input readers run on stream 0 (plan validation); a
    // storage reader elsewhere moves the record after the join.
    if (static_cast<std::ptrdiff_t>(i) == record_after) record_consumed();
  }
  if (timing) layer_events.back().record(stream);
  if (parallel)
    // Join: the caller's stream, and so the next enqueue, waits for every stream.
    for (std::size_t k = 0; k < aux_streams.size(); ++k) {
      joins[k].record(aux_streams[k].get());
      ANVIL_GPU_CHECK(cudaStreamWaitEvent(stream, joins[k].get(), 0));
    }
  if (record_after == static_cast<std::ptrdiff_t>(layers.size())) record_consumed();
}

void ExecutionContext::Impl::enqueue_profiled(cudaStream_t stream) {
  {
    const nvtx3::scoped_range_in<NvtxDomain> enqueue_range{"enqueue (profiled)"};
    launch_layers(stream, input_consumed && cuda::is_capturing(stream));
  }
  layer_events.back().synchronize();
  const plan::Plan& p = plan();
  for (std::size_t i = 0; i + 1 < layer_events.size(); ++i)
    profiler->report_layer_time(p.layers[i].name, p.layers[i].kind,
                                cuda::Event::elapsed_ms(layer_events[i], layer_events[i + 1]));
}

void ExecutionContext::Impl::enqueue_graph(cudaStream_t stream) {
  const nvtx3::scoped_range_in<NvtxDomain> enqueue_range{"enqueue (graph)"};
  // Compared here, not when an address is set: binding a new shape and then
  // new addresses one by one passes through states no graph should be dropped for.
  CapturedEnqueue& graph = graphs[{profile, geometry, batch, skip_set}];
  if (graph.addresses != bound_addresses) graph = CapturedEnqueue{bound_addresses, false, {}};
  // The caller's own capture takes our launches in; nested capture is illegal.
  if (cuda::is_capturing(stream)) return launch_layers(stream, input_consumed != nullptr);
  if (!graph.warmed_up) {
    // cuDNN and cuBLASLt may initialize lazily (module loading, allocations)
    // on their first launches, which a capture must not see.
    launch_layers(stream, false);
    graph.warmed_up = true;
    return;
  }
  if (!graph.exec) {
    cuda::CaptureResult captured =
        cuda::capture_graph(stream, [&] { launch_layers(stream, true); });
    if (!captured.failure.empty()) {
      graph_failure = std::move(captured.failure);
      std::fprintf(stderr, "anvil: CUDA graph off for this context, plain launches instead: %s\n",
                   graph_failure.c_str());
      return launch_layers(stream, false);
    }
    graph.exec = std::move(captured.exec);
  }
  cuda::launch_graph(graph.exec, stream);
  last_used_graph = true;
}

InputStorage ExecutionContext::input_storage(std::string_view input) const {
  const builder::PreformatSite site = builder::preformat_site(impl_->plan(), input);
  if (impl_->batch == 0)
    fail(ErrorKind::kInvalidArgument, "input_storage('", input,
         "'): no input shape is set; call set_input_shape first (the storage's place depends "
         "on the shape)");
  if (!impl_->memory)
    fail(ErrorKind::kInvalidArgument, "input_storage('", input,
         "'): the context has no device memory; give it ", impl_->engine->context_memory_bytes(),
         " bytes with set_device_memory() first");
  const plan::TensorDesc& t =
      impl_->specialization->plan->tensors.at(static_cast<std::size_t>(site.storage));
  InputStorage storage;
  storage.address = static_cast<std::byte*>(impl_->memory) +
                    impl_->offsets.at(static_cast<std::size_t>(site.storage));
  storage.dtype = t.dtype;
  storage.layout = t.layout;
  storage.dims = t.dims;
  if (!storage.dims.empty() && storage.dims[0] < 0) storage.dims[0] = impl_->batch;
  const std::size_t channel_axis = t.layout == "NHWC" ? 3 : 1;
  storage.channels = storage.dims.at(channel_axis);
  storage.c_pad = t.channel_padding_to.value_or(storage.channels);
  storage.dims[channel_axis] = storage.c_pad;
  storage.bytes = builder::tensor_bytes(t, impl_->batch);
  return storage;
}

void ExecutionContext::set_input_preformatted(std::string_view input, bool preformatted) {
  const plan::Plan& p = impl_->plan();
  const int tensor = find_io(p, input).tensor_id;
  std::vector<builder::PreformatSite> sites;
  // A stem that reads the input itself gets a null input 0 while the input
  // is preformatted (its launch changes); a skipped reformat_in does not.
  bool stem_site = false;
  for (const builder::PreformatSite& site : impl_->preformatted) {
    if (site.input_tensor != tensor)
      sites.push_back(site);
    else
      stem_site = !site.skip_layer;
  }
  if (preformatted) {
    if (impl_->image_input(tensor))
      fail(ErrorKind::kInvalidArgument, "set_input_preformatted('", input,
           "'): the input is given as images (set_input_images); turn that off first "
           "(null pixels)");
    sites.push_back(builder::preformat_site(p, input));  // kUnsupported if it cannot be
    if (impl_->batch > 0) {
      const std::string problem = impl_->storage_problem(sites.back());
      if (!problem.empty()) fail(ErrorKind::kUnsupported, problem);
    }
    stem_site = stem_site || !sites.back().skip_layer;
  }
  impl_->preformatted = std::move(sites);
  impl_->skipped.assign(p.layers.size(), false);
  for (const builder::PreformatSite& site : impl_->preformatted)
    if (site.skip_layer) impl_->skipped[static_cast<std::size_t>(site.layer)] = true;
  auto& sets = impl_->skip_sets;
  auto known = std::find(sets.begin(), sets.end(), impl_->skipped);
  if (!impl_->preformatted.empty() && known == sets.end())
    known = sets.insert(sets.end(), impl_->skipped);
  impl_->skip_set = impl_->preformatted.empty() ? 0 : 1 + static_cast<int>(known - sets.begin());
  impl_->place_consumed_event();
  // Otherwise the launches do not change: rebinding every layer (as
  // refresh_launches does) is needed only where the input's address decides
  // readiness.
  if (!stem_site && impl_->ready && impl_->io_addresses.count(tensor))
    impl_->check_preformatted();
  else
    impl_->refresh_launches();
}

bool ExecutionContext::input_preformatted(std::string_view input) const {
  return impl_->preformatted_site(find_io(impl_->plan(), input).tensor_id) != nullptr;
}

const builder::PreformatSite* ExecutionContext::Impl::preformatted_site(int input_tensor) const {
  for (const builder::PreformatSite& site : preformatted)
    if (site.input_tensor == input_tensor) return &site;
  return nullptr;
}

std::string ExecutionContext::Impl::storage_problem(const builder::PreformatSite& site) const {
  const plan::Plan& shapes = *specialization->plan;
  const int clash = builder::storage_clash(shapes, site, offsets, batch);
  if (clash < 0) return "";
  const auto& layers = plan().layers;
  return cat("input '", io_name(plan(), site.input_tensor), "' cannot be preformatted at ",
             shape_text(), ": its storage shares memory with '",
             shapes.tensors.at(static_cast<std::size_t>(clash)).name, "', which a layer before '",
             layers.at(static_cast<std::size_t>(site.layer)).name, "' (the storage's ",
             site.skip_layer ? "writer" : "reader",
             ") uses; bind it with set_tensor_address instead");
}

void ExecutionContext::Impl::check_preformatted() {
  preformat_problem.clear();
  if (batch == 0) return;
  for (const builder::PreformatSite& site : preformatted) {
    preformat_problem = storage_problem(site);
    if (!preformat_problem.empty()) return;
  }
  for (const ImageInput& in : images)
    if (!specialization->runners.at(static_cast<std::size_t>(in.site.layer))->reads_images()) {
      preformat_problem =
          cat("input '", io_name(plan(), in.site.input_tensor),
              "' is given as images (set_input_images), which layer '",
              plan().layers.at(static_cast<std::size_t>(in.site.layer)).name, "' cannot read at ",
              shape_text(), " on this GPU; bind the input instead");
      return;
    }
}

const ExecutionContext::Impl::ImageInput* ExecutionContext::Impl::image_input(
    int input_tensor) const {
  for (const ImageInput& in : images)
    if (in.site.input_tensor == input_tensor) return &in;
  return nullptr;
}

bool ExecutionContext::Impl::input_bound(int input_tensor) const {
  return io_addresses.count(input_tensor) || preformatted_site(input_tensor) ||
         image_input(input_tensor);
}

void ExecutionContext::Impl::place_consumed_event() {
  std::vector<builder::PreformatSite> sites = preformatted;
  for (const ImageInput& in : images)
    sites.push_back(in.site);
  consumed_after = builder::input_consumed_after(plan(), sites);
}

bool ExecutionContext::input_reads_images(std::string_view input) const {
  const plan::Plan& p = impl_->plan();
  find_io(p, input);  // kInvalidArgument for an unknown name
  builder::PreformatSite site;
  try {
    site = builder::preformat_site(p, input);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kUnsupported) return false;  // not one reader of its kind
    throw;
  }
  if (site.skip_layer) return false;  // a reformat_in, not a stem
  const Specialization& runners =
      impl_->specialization ? *impl_->specialization
                            : impl_->engine->impl().specialization(impl_->profile, impl_->geometry);
  return runners.runners.at(static_cast<std::size_t>(site.layer))->reads_images();
}

void ExecutionContext::set_input_images(std::string_view input, const void* device_pixels,
                                        const ImageNormalization& norm) {
  const plan::Plan& p = impl_->plan();
  const int tensor = find_io(p, input).tensor_id;
  std::vector<Impl::ImageInput> kept;
  for (const Impl::ImageInput& in : impl_->images)
    if (in.site.input_tensor != tensor) kept.push_back(in);
  if (device_pixels) {
    const std::string what = cat("set_input_images('", input, "')");
    if (impl_->preformatted_site(tensor))
      fail(ErrorKind::kInvalidArgument, what,
           ": the input is preformatted; turn that off first (set_input_preformatted(input, "
           "false))");
    if (reinterpret_cast<std::uintptr_t>(device_pixels) % 16 != 0)
      fail(ErrorKind::kInvalidArgument, what, ": pixels at ", device_pixels,
           " are not 16-byte aligned");
    cuda::kernels::Normalization n;
    for (std::size_t c = 0; c < 3; ++c) {
      if (!std::isfinite(norm.mean[c]) || !std::isfinite(norm.stddev[c]) || !(norm.stddev[c] > 0))
        fail(ErrorKind::kInvalidArgument, what, ": channel ", c, " has mean ", norm.mean[c],
             " and stddev ", norm.stddev[c], " (need finite values, stddev > 0)");
      n.mean[c] = norm.mean[c];
      n.std[c] = norm.stddev[c];
    }
    if (!input_reads_images(input))
      fail(ErrorKind::kUnsupported, what,
           ": no layer of this engine reads the input as images here (that takes a ResNet stem "
           "that reads the engine's input, on a Hopper GPU, 224-wide images); write "
           "images_to_engine_storage's output to input_storage() with set_input_preformatted, "
           "or bind an FP32 tensor");
    const cuda::kernels::ImageAffine affine = cuda::kernels::fold_normalization(n);
    kept.push_back({builder::preformat_site(p, input), {device_pixels, affine}});
    // A graph bakes the normalization in with the pointer, which may not change.
    auto last = impl_->image_affines.find(tensor);
    if (last != impl_->image_affines.end() &&
        std::memcmp(&last->second, &affine, sizeof affine) != 0)
      impl_->graphs.clear();
    impl_->image_affines[tensor] = affine;
  }
  impl_->images = std::move(kept);
  impl_->place_consumed_event();
  impl_->refresh_launches();
}

}  // namespace anvil
