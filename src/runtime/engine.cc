#include <algorithm>
#include <nlohmann/json.hpp>

#include "anvil/error.h"
#include "builder/gpu/autotune.h"
#include "builder/lower.h"
#include "builder/memory_plan.h"
#include "builder/respecialize.h"
#include "cuda/check.h"
#include "cuda/device.h"
#include "plan/profiles.h"
#include "runtime/engine_impl.h"

namespace anvil {

namespace {

// The user's tensors: -1 for the batch and, in spatial plans, for every dim
// that differs at some profile's min or max shape (height and width, and
// what follows from them).
std::vector<IoTensorInfo> io_of(const plan::Plan& p, bool spatial) {
  std::vector<plan::Plan> extremes;
  if (spatial)
    for (std::size_t i = 0; i < p.profiles.size(); ++i)
      for (const char* which : {"min", "max"})
        extremes.push_back(
            builder::respecialize(p, builder::profile_dims(p, static_cast<int>(i), which)));
  std::vector<IoTensorInfo> io;
  for (const plan::IoBinding& b : p.io) {
    const plan::TensorDesc& t = p.tensors.at(static_cast<std::size_t>(b.tensor_id));
    std::vector<std::int64_t> dims = t.dims;
    for (const plan::Plan& e : extremes)
      for (std::size_t d = 1; d < dims.size(); ++d)
        if (e.tensors.at(static_cast<std::size_t>(b.tensor_id)).dims[d] != t.dims[d]) dims[d] = -1;
    io.push_back({b.name, b.is_input, t.dtype, std::move(dims)});
  }
  return io;
}

// The workspace each layer of `profile` needs at its max shape, from plans
// prepared with handles of their own (contexts prepare again with theirs).
std::vector<std::size_t> layer_workspaces(const Engine::Impl& impl, std::size_t profile) {
  const cuda::CudnnHandle cudnn;
  const cuda::CublasLtHandle cublaslt;
  const runtime::Handles handles{cudnn.get(), cublaslt.get()};
  const int index = static_cast<int>(profile);
  std::vector<std::size_t> bytes;
  for (const auto& runner : impl.specialization(index, impl.max_geometry(index)).runners)
    bytes.push_back(runner->prepare(impl.profiles[profile].max, handles)->workspace_bytes());
  return bytes;
}

// The largest workspace any layer of each stream needs in any profile.
WorkspaceLayout largest_workspace(const Engine::Impl& impl) {
  WorkspaceLayout layout;
  layout.bytes.assign(1 + static_cast<std::size_t>(impl.schedule.aux_streams), 0);
  for (std::size_t profile = 0; profile < impl.profiles.size(); ++profile) {
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

const Specialization& Engine::Impl::specialization(int profile, const GeometryKey& geometry) const {
  const std::lock_guard<std::mutex> lock(specializations_mutex);
  std::unique_ptr<Specialization>& entry = specializations[{profile, geometry}];
  if (entry) return *entry;
  auto made = std::make_unique<Specialization>();
  made->plan = &plan;
  if (!geometry.empty()) {
    builder::InputDims dims;
    std::size_t at = 0;
    for (const plan::IoBinding& binding : plan.io) {
      if (!binding.is_input) continue;
      const std::size_t rank =
          plan.tensors.at(static_cast<std::size_t>(binding.tensor_id)).dims.size();
      std::vector<std::int64_t> d{-1};
      d.insert(d.end(), geometry.begin() + static_cast<std::ptrdiff_t>(at),
               geometry.begin() + static_cast<std::ptrdiff_t>(at + rank - 1));
      at += rank - 1;
      dims[binding.name] = std::move(d);
    }
    made->respecialized = builder::respecialize(plan, dims);
    made->plan = &made->respecialized;
  }
  const plan::Plan& p = *made->plan;
  const auto* base = static_cast<const std::byte*>(weights.data());
  for (const plan::LayerDesc& layer : p.layers) {
    runtime::LayerSetup setup{p,
                              layer,
                              nlohmann::json::parse(layer.params),
                              {},
                              plan.options.fp16,
                              profile,
                              plan.weights.data()};
    for (const plan::WeightRef& w : layer.weights)
      setup.weights.push_back(base + w.offset);
    made->runners.push_back(runtime::find_runner(layer.kind)(setup));
  }
  entry = std::move(made);
  return *entry;
}

GeometryKey Engine::Impl::geometry_of(
    int profile, const std::map<std::string, std::vector<std::int64_t>>& inputs) const {
  if (!spatial) return {};
  GeometryKey key;
  const plan::Profile& ranges = plan.profiles.at(static_cast<std::size_t>(profile));
  for (const plan::IoBinding& binding : plan.io) {
    if (!binding.is_input) continue;
    std::vector<std::int64_t> dims =
        plan.tensors.at(static_cast<std::size_t>(binding.tensor_id)).dims;
    if (const auto it = ranges.inputs.find(binding.name); it != ranges.inputs.end())
      dims = it->second.opt;
    if (const auto it = inputs.find(binding.name); it != inputs.end()) dims = it->second;
    key.insert(key.end(), dims.begin() + 1, dims.end());
  }
  return key == geometry_of_plan() ? GeometryKey{} : key;
}

GeometryKey Engine::Impl::geometry_of_plan() const {
  GeometryKey key;
  for (const plan::IoBinding& binding : plan.io)
    if (binding.is_input) {
      const auto& dims = plan.tensors.at(static_cast<std::size_t>(binding.tensor_id)).dims;
      key.insert(key.end(), dims.begin() + 1, dims.end());
    }
  return key;
}

GeometryKey Engine::Impl::max_geometry(int profile) const {
  if (!spatial) return {};
  std::map<std::string, std::vector<std::int64_t>> max;
  for (const auto& [name, range] : plan.profiles.at(static_cast<std::size_t>(profile)).inputs)
    max[name] = range.max;
  return geometry_of(profile, max);
}

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
  for (const plan::LayerDesc& layer : p.layers)
    if (!runtime::find_runner(layer.kind))
      fail(ErrorKind::kIncompatible, label, ": layer '", layer.name, "' is of kind '", layer.kind,
           "', which this runtime does not know; rebuild the plan with this version of anvil");
  impl->spatial = builder::has_spatial_ranges(p);
  impl->io = io_of(p, impl->spatial);
  impl->arena_bytes = impl->spatial ? builder::largest_arena_bytes(p)
                                    : builder::plan_arena(p, impl->max_batch).arena_bytes;

  impl->weights = cuda::DeviceBuffer(std::max<std::size_t>(p.weights.size(), 1));
  cuda::copy_to_device(impl->weights.data(), p.weights.data(), p.weights.size());
  // Each profile's runners at its opt shape (the tuned one) now; other
  // heights and widths when a context first meets them.
  for (std::size_t profile = 0; profile < impl->profiles.size(); ++profile) {
    const int index = static_cast<int>(profile);
    impl->specialization(index, impl->geometry_of(index, {}));
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
int Engine::best_profile(std::string_view input, std::span<const std::int64_t> dims) const {
  return plan::best_profile(impl_->plan, input, dims);
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
