#include <algorithm>
#include <nlohmann/json.hpp>

#include "anvil/error.h"
#include "builder/gpu/autotune.h"
#include "builder/lower.h"
#include "builder/memory_plan.h"
#include "cuda/check.h"
#include "cuda/device.h"
#include "plan/profiles.h"
#include "runtime/engine_impl.h"

namespace anvil {

namespace {

std::vector<IoTensorInfo> io_of(const plan::Plan& p) {
  std::vector<IoTensorInfo> io;
  for (const plan::IoBinding& b : p.io) {
    const plan::TensorDesc& t = p.tensors.at(static_cast<std::size_t>(b.tensor_id));
    io.push_back({b.name, b.is_input, t.dtype, t.dims});
  }
  return io;
}

// The workspace each layer of `profile` needs at its max batch, from plans
// prepared with handles of their own (contexts prepare again with theirs).
std::vector<std::size_t> layer_workspaces(const Engine::Impl& impl, std::size_t profile) {
  const cuda::CudnnHandle cudnn;
  const cuda::CublasLtHandle cublaslt;
  const runtime::Handles handles{cudnn.get(), cublaslt.get()};
  std::vector<std::size_t> bytes;
  for (const auto& runner : impl.runners[profile])
    bytes.push_back(runner->prepare(impl.profiles[profile].max, handles)->workspace_bytes());
  return bytes;
}

// The largest workspace any layer of each stream needs in any profile.
WorkspaceLayout largest_workspace(const Engine::Impl& impl) {
  WorkspaceLayout layout;
  layout.bytes.assign(1 + static_cast<std::size_t>(impl.schedule.aux_streams), 0);
  for (std::size_t profile = 0; profile < impl.runners.size(); ++profile) {
    const std::vector<std::size_t> layers = layer_workspaces(impl, profile);
    for (std::size_t i = 0; i < layers.size(); ++i) {
      std::size_t& bytes = layout.bytes[static_cast<std::size_t>(impl.schedule.layers[i].stream)];
      bytes = std::max(bytes, layers[i]);
    }
  }
  return layout;
}

std::ptrdiff_t last_input_reader(const plan::Plan& p) {
  std::ptrdiff_t last = -1;
  for (std::size_t i = 0; i < p.layers.size(); ++i)
    for (int id : p.layers[i].inputs)
      for (const plan::IoBinding& io : p.io)
        if (io.is_input && io.tensor_id == id) last = static_cast<std::ptrdiff_t>(i);
  return last;
}

std::size_t align_up(std::size_t bytes) {
  return (bytes + builder::kAlignment - 1) / builder::kAlignment * builder::kAlignment;
}

}  // namespace

std::size_t WorkspaceLayout::total() const {
  return bytes.empty() ? 0 : offset(bytes.size() - 1) + bytes.back();
}

std::size_t WorkspaceLayout::offset(std::size_t s) const {
  std::size_t at = 0;
  for (std::size_t t = 0; t < s; ++t)
    at += align_up(bytes[t]);
  return at;
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

std::shared_ptr<const Engine> Engine::load(const std::filesystem::path& path) {
  return from_plan(plan::read_plan_file(path), path.string());
}

std::shared_ptr<const Engine> Engine::deserialize(std::span<const std::byte> bytes,
                                                  std::string_view label) {
  return from_plan(plan::deserialize_plan(bytes, label), label);
}

std::shared_ptr<const Engine> Engine::from_plan(plan::Plan loaded, std::string_view label) {
  plan::check_compatible(loaded, builder::current_target(), label);
  auto impl = std::make_unique<Impl>();
  impl->plan = std::move(loaded);
  const plan::Plan& p = impl->plan;  // runners may keep references into it
  impl->profiles = plan::batch_ranges(p, label);
  impl->min_batch = impl->profiles[0].min;
  impl->max_batch = impl->profiles[0].max;
  for (const BatchRange& r : impl->profiles) {
    impl->min_batch = std::min(impl->min_batch, r.min);
    impl->max_batch = std::max(impl->max_batch, r.max);
  }
  impl->io = io_of(p);
  impl->arena_bytes = builder::plan_arena(p, impl->max_batch).arena_bytes;

  impl->weights = cuda::DeviceBuffer(std::max<std::size_t>(p.weights.size(), 1));
  cuda::copy_to_device(impl->weights.data(), p.weights.data(), p.weights.size());
  const auto* base = static_cast<const std::byte*>(impl->weights.data());
  impl->runners.resize(impl->profiles.size());
  for (const plan::LayerDesc& layer : p.layers) {
    runtime::RunnerFactory factory = runtime::find_runner(layer.kind);
    if (!factory)
      fail(ErrorKind::kIncompatible, label, ": layer '", layer.name, "' is of kind '", layer.kind,
           "', which this runtime does not know; rebuild the plan with this version of anvil");
    runtime::LayerSetup setup{p, layer, nlohmann::json::parse(layer.params), {}, p.options.fp16};
    for (const plan::WeightRef& w : layer.weights)
      setup.weights.push_back(base + w.offset);
    for (std::size_t profile = 0; profile < impl->profiles.size(); ++profile) {
      setup.profile = static_cast<int>(profile);
      impl->runners[profile].push_back(factory(setup));
    }
  }
  impl->schedule = plan::schedule_streams(p);
  impl->workspace = largest_workspace(*impl);
  impl->last_input_reader = last_input_reader(p);
  return std::shared_ptr<const Engine>(new Engine(std::move(impl)));
}

const std::vector<IoTensorInfo>& Engine::io_tensors() const {
  return impl_->io;
}
std::int64_t Engine::min_batch() const {
  return impl_->min_batch;
}
std::int64_t Engine::max_batch() const {
  return impl_->max_batch;
}
int Engine::profile_count() const {
  return static_cast<int>(impl_->profiles.size());
}
BatchRange Engine::profile_batch_range(int profile) const {
  if (profile < 0 || profile >= profile_count())
    fail(ErrorKind::kInvalidArgument, "optimization profile ", profile,
         " does not exist; the plan has ", profile_count());
  return impl_->profiles[static_cast<std::size_t>(profile)];
}
int Engine::best_profile(std::int64_t batch) const {
  return plan::best_profile(impl_->profiles, batch);
}
std::size_t Engine::weight_bytes() const {
  return impl_->weights.bytes();
}
std::size_t Engine::context_memory_bytes() const {
  return align_up(impl_->arena_bytes) + impl_->workspace.total();
}
const plan::Plan& Engine::plan() const {
  return impl_->plan;
}

std::vector<std::size_t> Engine::layer_workspace_bytes(int profile) const {
  profile_batch_range(profile);  // kInvalidArgument if it does not exist
  return layer_workspaces(*impl_, static_cast<std::size_t>(profile));
}

}  // namespace anvil
