#include <algorithm>
#include <nvtx3/nvtx3.hpp>

#include "anvil/error.h"
#include "builder/lower.h"
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
  impl->arena = cuda::DeviceBuffer(std::max<std::size_t>(impl_->arena_bytes, 1));
  return std::unique_ptr<ExecutionContext>(new ExecutionContext(std::move(impl)));
}

ExecutionContext::ExecutionContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutionContext::~ExecutionContext() = default;

const plan::Plan& ExecutionContext::Impl::plan() const {
  return engine->plan();
}

void ExecutionContext::set_input_shape(std::string_view name, std::span<const std::int64_t> dims) {
  const plan::Plan& p = impl_->plan();
  const plan::IoBinding& io = find_io(p, name);
  if (!io.is_input) fail(ErrorKind::kInvalidArgument, "'", name, "' is an output, not an input");
  const plan::TensorDesc& t = p.tensors.at(static_cast<std::size_t>(io.tensor_id));
  bool same = dims.size() == t.dims.size();
  for (std::size_t d = 1; same && d < dims.size(); ++d)
    same = dims[d] == t.dims[d];
  if (!same)
    fail(ErrorKind::kInvalidArgument, "input '", name, "' must have shape ", dims_string(t.dims),
         " (-1: any batch in the profile), got ", dims_string(dims));
  const std::int64_t batch = dims[0];
  const Engine& engine = *impl_->engine;
  if (batch < engine.min_batch() || batch > engine.max_batch())
    fail(ErrorKind::kInvalidArgument, "input '", name, "': batch ", batch,
         " is outside the plan's optimization profile [", engine.min_batch(), ", ",
         engine.max_batch(), "]; rebuild with --max-shapes covering it");
  if (batch != impl_->batch) impl_->prepare(batch);
  impl_->refresh_launches();
}

std::vector<std::int64_t> ExecutionContext::tensor_shape(std::string_view name) const {
  const plan::IoBinding& io = find_io(impl_->plan(), name);
  std::vector<std::int64_t> dims =
      impl_->plan().tensors.at(static_cast<std::size_t>(io.tensor_id)).dims;
  if (!dims.empty() && dims[0] < 0) dims[0] = impl_->batch > 0 ? impl_->batch : -1;
  return dims;
}

void ExecutionContext::set_tensor_address(std::string_view name, void* device_pointer) {
  const plan::IoBinding& io = find_io(impl_->plan(), name);
  if (!device_pointer)
    fail(ErrorKind::kInvalidArgument, "tensor '", name, "': the device address is null");
  if (reinterpret_cast<std::uintptr_t>(device_pointer) % 16 != 0)
    fail(ErrorKind::kInvalidArgument, "tensor '", name, "': the device address ", device_pointer,
         " is not 16-byte aligned (cudaMalloc's addresses are)");
  impl_->io_addresses[io.tensor_id] = device_pointer;
  impl_->refresh_launches();
}

void ExecutionContext::enqueue(cudaStream_t stream) {
  if (!impl_->ready) {
    std::string missing;
    for (const plan::IoBinding& io : impl_->plan().io)
      if (!impl_->io_addresses.count(io.tensor_id)) missing += " '" + io.name + "'";
    fail(ErrorKind::kInvalidArgument, "enqueue before every input shape and IO address is set",
         missing.empty() ? std::string() : cat("; no address for:", missing));
  }
  const plan::Plan& p = impl_->plan();
  const auto& layers = impl_->prepared.at(impl_->batch);
  const std::vector<cuda::Event>& events = impl_->layer_events;
  const bool profiling = impl_->profiler != nullptr;
  {
    const nvtx3::scoped_range_in<NvtxDomain> enqueue_range{"enqueue"};
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const nvtx3::scoped_range_in<NvtxDomain> layer_range{p.layers[i].name.c_str()};
      runtime::LaunchArgs& args = impl_->launches[i];
      args.stream = stream;
      if (profiling) events[i].record(stream);
      layers[i]->enqueue(args);
    }
  }
  if (!profiling) return;
  events.back().record(stream);
  events.back().synchronize();
  for (std::size_t i = 0; i < layers.size(); ++i)
    impl_->profiler->report_layer_time(p.layers[i].name, p.layers[i].kind,
                                       cuda::Event::elapsed_ms(events[i], events[i + 1]));
}

void ExecutionContext::set_profiler(Profiler* profiler) {
  impl_->profiler = profiler;
  if (profiler && impl_->layer_events.size() != impl_->plan().layers.size() + 1)
    impl_->layer_events = std::vector<cuda::Event>(impl_->plan().layers.size() + 1);
}

void ExecutionContext::Impl::prepare(std::int64_t new_batch) {
  const runtime::Handles handles{cudnn.get(), cublaslt.get()};
  auto& layers = prepared[new_batch];
  if (layers.empty()) {
    for (const auto& runner : engine->impl().runners)
      layers.push_back(runner->prepare(new_batch, handles));
  }
  std::size_t needed = 0;
  for (const auto& layer : layers)
    needed = std::max(needed, layer->workspace_bytes());
  if (needed > workspace.bytes()) workspace = cuda::DeviceBuffer(needed);
  offsets = builder::plan_arena(plan(), new_batch).offsets;
  batch = new_batch;
}

void ExecutionContext::Impl::refresh_launches() {
  ready = false;
  if (batch == 0) return;
  const plan::Plan& p = plan();
  for (const plan::IoBinding& io : p.io)
    if (!io_addresses.count(io.tensor_id)) return;
  auto address = [&](int id) -> void* {
    if (auto it = io_addresses.find(id); it != io_addresses.end()) return it->second;
    return static_cast<std::byte*>(arena.data()) + offsets.at(static_cast<std::size_t>(id));
  };
  const runtime::Handles handles{cudnn.get(), cublaslt.get()};
  auto& layers = prepared.at(batch);
  launches.assign(p.layers.size(), {});
  for (std::size_t i = 0; i < p.layers.size(); ++i) {
    runtime::LaunchArgs& args = launches[i];
    for (int id : p.layers[i].inputs)
      args.inputs.push_back(address(id));
    for (int id : p.layers[i].outputs)
      args.outputs.push_back(address(id));
    args.workspace = workspace.data();
    args.workspace_bytes = workspace.bytes();
    args.handles = handles;
    layers[i]->bind(args);
  }
  ready = true;
}

}  // namespace anvil
