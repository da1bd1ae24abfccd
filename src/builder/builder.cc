// The public Builder: import, passes, lowering and the profile on the CPU, then
// autotuning on the GPU. Compiled in every configuration, so that a CPU-only
// Anvil links and says why it cannot build a plan.
#include "anvil/builder.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include "anvil/error.h"
#include "builder/int8_config.h"
#include "builder/int8_fallback.h"
#include "builder/lower.h"
#include "builder/respecialize.h"
#include "builder/spatial_dims.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "plan/plan.h"
#include "plan/profiles.h"
#include "plan/streams.h"
#include "quant/qdq_scales.h"

#if ANVIL_HAVE_CUDA
#include "builder/gpu/autotune.h"
#include "cuda/device.h"
#endif

namespace anvil {

namespace {

constexpr const char* kAnvilVersion = "0.1.0";

std::vector<std::int64_t> to_vector(std::span<const std::int64_t> dims) {
  return {dims.begin(), dims.end()};
}

void log_info(const BuilderConfig& config, const std::string& line) {
  if (config.log) config.log(LogSeverity::kInfo, line);
}

void log_warning(const BuilderConfig& config, const std::string& line) {
  if (config.log)
    config.log(LogSeverity::kWarning, line);
  else
    std::fprintf(stderr, "%s\n", line.c_str());
}

void check_config(const BuilderConfig& config) {
  if (config.autotune_iterations < 1)
    fail(ErrorKind::kInvalidArgument, "builder config: autotune_iterations is ",
         config.autotune_iterations, "; it must be at least 1");
  if (config.workspace_bytes < 0)
    fail(ErrorKind::kInvalidArgument, "builder config: workspace_bytes is ", config.workspace_bytes,
         "; it must not be negative");
  if (config.aux_streams < 0 || config.aux_streams > plan::kMaxAuxStreams)
    fail(ErrorKind::kInvalidArgument, "builder config: aux_streams is ", config.aux_streams,
         "; it must be 0..", plan::kMaxAuxStreams);
  if (config.int8 && !config.fp16)
    fail(ErrorKind::kInvalidArgument,
         "builder config: int8 needs fp16 too (layers without an INT8 version run in FP16)");
  if (config.fp8 && !config.fp16)
    fail(ErrorKind::kInvalidArgument,
         "builder config: fp8 needs fp16 too (layers without an FP8 version run in FP16)");
  if (config.int8 && config.fp8)
    fail(ErrorKind::kInvalidArgument,
         "builder config: int8 and fp8 are both set; a plan quantizes to one of them (--int8 or "
         "--fp8)");
}

// The INT8 scales of an --int8 build: the model's own Q/DQ scales (explicit
// quantization, as TensorRT honours them), else the calibration cache's.
std::map<std::string, float> int8_scales(const std::filesystem::path& onnx_path,
                                         const ir::Graph& optimized, const quant::QdqScales& qdq,
                                         const BuilderConfig& config) {
  if (qdq.pairs_removed > 0) {
    if (!config.calibration_cache.empty())
      log_warning(config, cat(onnx_path.string(), " has Q/DQ scales: they are used, and ",
                              config.calibration_cache.string(), " is ignored"));
    return quant::unify_residual_scales(optimized, qdq.scales);
  }
  if (config.calibration_cache.empty())
    fail(ErrorKind::kInvalidArgument, onnx_path.string(),
         ": an INT8 build needs a calibration cache (make one with `anvil calibrate`) or a model ",
         "with QuantizeLinear/DequantizeLinear pairs");
  return builder::int8_scales_for(onnx_path, optimized, config.calibration_cache);
}

// Profile 0 (config.profile), then config.additional_profiles.
std::vector<const OptimizationProfile*> all_profiles(const BuilderConfig& config) {
  std::vector<const OptimizationProfile*> out{&config.profile};
  for (const OptimizationProfile& p : config.additional_profiles)
    out.push_back(&p);
  return out;
}

std::int64_t profiles_max_batch(const BuilderConfig& config) {
  std::int64_t batch = 1;
  for (const OptimizationProfile* profile : all_profiles(config)) {
    for (const auto& [name, range] : profile->inputs())
      batch = std::max(batch, range.max.at(0));
    if (profile->batch_range()) batch = std::max(batch, profile->batch_range()->max);
  }
  return batch;
}

std::vector<PassReport> run_passes(ir::Graph& graph, const BuilderConfig& config) {
  passes::PassManager manager;
  for (const std::string& name : config.disabled_passes)
    manager.disable(name);
  std::vector<PassReport> reports;
  for (const passes::PassResult& result : manager.run(graph)) {
    reports.push_back({result.name, result.rewrites, result.disabled});
    if (!config.log) continue;
    char line[160];
    std::snprintf(line, sizeof line, "pass %-22s %s", result.name.c_str(),
                  result.disabled ? "disabled" : cat(result.rewrites, " rewrite(s)").c_str());
    config.log(LogSeverity::kInfo, line);
  }
  return reports;
}

bool has_fixed_batch(const plan::Plan& p, const std::string& input) {
  for (const plan::IoBinding& io : p.io)
    if (io.is_input && io.name == input)
      return p.tensors.at(static_cast<std::size_t>(io.tensor_id)).dims.at(0) != -1;
  return false;
}

// The non-batch dims each input leaves symbolic in the ONNX model
// (builder::symbolic_dims): only these may take a range.
using DynamicDims = std::map<std::string, std::vector<std::size_t>>;

bool is_dynamic(const DynamicDims& dynamic, const std::string& name, std::size_t d) {
  const auto it = dynamic.find(name);
  return it != dynamic.end() &&
         std::find(it->second.begin(), it->second.end(), d) != it->second.end();
}

// Checks one profile range against the model's input (`model`: its dims, the
// batch as lowered, height and width at profile 0's opt) and stores it.
void apply_range(plan::ProfileDim& model_range, const std::string& name, const ShapeRange& range,
                 bool fixed_batch, const DynamicDims& dynamic) {
  const std::vector<std::int64_t>& model = model_range.max;
  for (const auto* dims : {&range.min, &range.opt, &range.max}) {
    if (dims->size() != model.size())
      fail(ErrorKind::kInvalidArgument, "shape for '", name, "' has ", dims->size(),
           " dimensions; the model's input has ", model.size());
    for (std::size_t d = 1; d < model.size(); ++d) {
      if (is_dynamic(dynamic, name, d)) {
        // Height and width of an image (NCHW): the runtime re-derives the
        // layers' geometry (builder/respecialize.h); other dims cannot vary.
        if (model.size() != 4 || d < 2)
          fail(ErrorKind::kUnsupported, "input '", name, "': dimension ", d,
               " is dynamic in the model, but only the batch, height and width (NCHW ",
               "dimensions 0, 2, 3) may vary; export it with a fixed dimension ", d);
        continue;
      }
      if ((*dims)[d] != model[d])
        fail(ErrorKind::kUnsupported, "shape for '", name, "': dimension ", d, " is fixed at ",
             model[d], " in the model, got ", (*dims)[d],
             d >= 2 && model.size() == 4
                 ? "; export the model with a dynamic height and width (dynamic_axes {2: 'H', "
                   "3: 'W'}) to give them a range"
                 : "");
    }
  }
  if (fixed_batch &&
      (range.min[0] != model[0] || range.opt[0] != model[0] || range.max[0] != model[0]))
    fail(ErrorKind::kUnsupported, "input '", name, "' has a fixed batch of ", model[0],
         " in the model; export it with a dynamic batch (dynamic_axes) to build a profile");
  model_range = {range.min, range.opt, range.max};
}

// Puts the user's profile into the plan's profile `index` (a copy of the
// lowered one). Inputs it does not name take the batch range of those it
// names, or its set_batch_range(): the engine runs one batch.
void apply_profile(plan::Plan& p, std::size_t index, const OptimizationProfile& profile,
                   const DynamicDims& dynamic) {
  auto& inputs = p.profiles.at(index).inputs;
  std::string names;
  for (const auto& [name, range] : inputs)
    names += (names.empty() ? "" : ", ") + name;
  const ShapeRange* first = nullptr;
  for (const auto& [name, range] : profile.inputs()) {
    const auto it = inputs.find(name);
    if (it == inputs.end())
      fail(ErrorKind::kInvalidArgument, "the optimization profile names '", name,
           "', which is not an input of the model (its inputs: ", names, ")");
    const bool fixed = has_fixed_batch(p, name);
    apply_range(it->second, name, range, fixed, dynamic);
    if (!fixed && !first) first = &range;
  }
  std::optional<BatchRange> batch;
  if (first) batch = BatchRange{first->min[0], first->opt[0], first->max[0]};
  if (!batch) batch = profile.batch_range();
  const plan::ProfileDim* batch_of = nullptr;
  std::string batch_name;
  for (auto& [name, range] : inputs) {
    if (profile.dimensions(name)) continue;
    if (dynamic.contains(name))
      fail(ErrorKind::kInvalidArgument, "optimization profile ", index, " does not give input '",
           name, "' a shape range, which it needs as its height and width are dynamic in the ",
           "model (set_dimensions; anvil build --min-shapes/--opt-shapes/--max-shapes)");
    if (has_fixed_batch(p, name) && profile.batch_range() &&
        (batch->min != range.max[0] || batch->max != range.max[0]))
      fail(ErrorKind::kUnsupported, "input '", name, "' has a fixed batch of ", range.max[0],
           " in the model; export it with a dynamic batch (dynamic_axes) to build a profile");
  }
  for (auto& [name, range] : inputs) {
    if (!has_fixed_batch(p, name)) {
      if (batch && !profile.dimensions(name)) {
        range.min[0] = batch->min;
        range.opt[0] = batch->opt;
        range.max[0] = batch->max;
      }
      if (!batch_of) {
        batch_of = &range;
        batch_name = name;
      } else if (range.min[0] != batch_of->min[0] || range.opt[0] != batch_of->opt[0] ||
                 range.max[0] != batch_of->max[0]) {
        fail(ErrorKind::kUnsupported, "inputs '", batch_name, "' and '", name,
             "' have different batch ranges in the optimization profile; this version runs ",
             "one batch for all inputs");
      }
    }
  }
}

// The dims to lower the symbolic inputs at: the model's where known, profile
// 0's opt where not. kInvalidArgument when profile 0 has no range for one.
builder::InputDims lowering_dims(const ir::Graph& graph, const DynamicDims& dynamic,
                                 const OptimizationProfile& profile) {
  builder::InputDims out;
  for (const ir::Value* input : graph.inputs) {
    const auto it = dynamic.find(input->name);
    if (it == dynamic.end()) continue;
    const ShapeRange* range = profile.dimensions(input->name);
    if (!range)
      fail(ErrorKind::kInvalidArgument, "input '", input->name, "' has the shape ",
           ir::to_string(input->shape), " in the model: give its shape range, tuned at the ",
           "opt shape (set_dimensions; anvil build --min-shapes/--opt-shapes/--max-shapes)");
    if (range->opt.size() != input->shape.rank())
      fail(ErrorKind::kInvalidArgument, "shape for '", input->name, "' has ", range->opt.size(),
           " dimensions; the model's input has ", input->shape.rank());
    std::vector<std::int64_t> dims(input->shape.rank(), -1);
    for (std::size_t d = 1; d < dims.size(); ++d)
      dims[d] = input->shape[d].is_known() ? input->shape[d].size : range->opt[d];
    out[input->name] = std::move(dims);
  }
  return out;
}

BuildReport make_report(const plan::Plan& p, std::vector<PassReport> passes) {
  BuildReport r;
  r.gpu_name = p.target.gpu_name;
  r.profiles = plan::batch_ranges(p, "the built plan");
  r.min_batch = r.profiles[0].min;
  r.opt_batch = r.profiles[0].opt;
  r.max_batch = r.profiles[0].max;
  r.passes = std::move(passes);
  for (const plan::LayerDesc& layer : p.layers) {
    r.layer_kinds.push_back(layer.kind);
    r.layer_streams.push_back(layer.stream);
  }
  r.weight_bytes = p.weights.size();
  r.arena_bytes = builder::largest_arena_bytes(p);
  return r;
}

#if ANVIL_HAVE_CUDA

// Tunes `options.profile` at its opt shape. A profile whose opt height and
// width differ from the plan's (lowered at profile 0's opt) is tuned on the
// plan respecialized to them, its tactics then copied back.
std::vector<builder::LayerTactic> tune_profile(plan::Plan& p,
                                               const builder::AutotuneOptions& options) {
  if (!builder::has_spatial_ranges(p)) return builder::autotune(p, options);
  plan::Plan at_opt = builder::respecialize(p, builder::profile_dims(p, options.profile, "opt"));
  at_opt.weights = p.weights;  // the tuner runs the layers with the real weights
  std::vector<builder::LayerTactic> tactics = builder::autotune(at_opt, options);
  for (std::size_t i = 0; i < p.layers.size(); ++i)
    p.layers[i].tactic = at_opt.layers[i].tactic;
  return tactics;
}

// Tunes every profile at its opt shape; progress counts layers of all of them.
std::vector<LayerTacticReport> tune(plan::Plan& p, const BuilderConfig& config,
                                    const std::filesystem::path& timing_cache) {
  p.target = builder::current_target();  // kGpu without a GPU
  const std::vector<BatchRange> ranges = plan::batch_ranges(p, "the plan being built");
  std::vector<LayerTacticReport> out;
  for (std::size_t profile = 0; profile < ranges.size(); ++profile) {
    builder::AutotuneOptions options;
    options.batch = ranges[profile].opt;
    options.profile = static_cast<int>(profile);
    options.iterations = config.autotune_iterations;
    options.timing_cache = timing_cache;
    if (config.progress)
      options.progress = [&config, profile, count = ranges.size()](int done, int total) {
        config.progress(static_cast<int>(profile) * total + done, static_cast<int>(count) * total);
      };
    if (config.log)
      options.log = [&config](const std::string& message) {
        config.log(LogSeverity::kWarning, message);
      };
    for (builder::LayerTactic& t : tune_profile(p, options))
      out.push_back({std::move(t.layer), std::move(t.kind), std::move(t.identity), t.ms,
                     t.candidates, std::move(t.rejected), static_cast<int>(profile)});
  }
  return out;
}

void check_fp8_device() {
  if (const auto info = cuda::device_info(0))
    builder::require_fp8_gpu(info->name, info->cc_major, info->cc_minor);
}

// The GPU's peak memory bandwidth in bytes per ms (0 when unknown).
double device_bytes_per_ms() {
  const auto info = cuda::device_info(0);
  return info ? info->memory_bandwidth_gb_per_s * 1e6 : 0.0;
}

#else

void check_fp8_device() {}  // tune() says a build needs CUDA

double device_bytes_per_ms() {
  return 0.0;
}

std::vector<LayerTacticReport> tune(plan::Plan&, const BuilderConfig&,
                                    const std::filesystem::path&) {
  fail(ErrorKind::kUnsupported, "this anvil was built without CUDA: `anvil build` needs nvcc at ",
       "build time and a GPU to tune on");
}

#endif

}  // namespace

void OptimizationProfile::set_dimensions(std::string_view input, std::span<const std::int64_t> min,
                                         std::span<const std::int64_t> opt,
                                         std::span<const std::int64_t> max) {
  const std::string name(input);
  if (name.empty()) fail(ErrorKind::kInvalidArgument, "optimization profile: empty input name");
  if (min.empty() || opt.size() != min.size() || max.size() != min.size())
    fail(ErrorKind::kInvalidArgument, "profile for input '", name, "': min, opt and max have ",
         min.size(), ", ", opt.size(), " and ", max.size(),
         " dimensions; they need one non-zero rank");
  for (const auto dims : {min, opt, max})
    for (std::size_t d = 0; d < dims.size(); ++d)
      if (dims[d] < 1)
        fail(ErrorKind::kInvalidArgument, "profile for input '", name, "': dimension ", d, " is ",
             dims[d], "; dimensions must be >= 1");
  for (std::size_t d = 0; d < min.size(); ++d)
    if (!(min[d] <= opt[d] && opt[d] <= max[d]))
      fail(ErrorKind::kInvalidArgument, "profile for '", name, "': need min <= opt <= max ",
           d == 0 ? std::string("batch") : cat("in dimension ", d), ", got ", min[d], ", ", opt[d],
           ", ", max[d]);
  inputs_[name] = {to_vector(min), to_vector(opt), to_vector(max)};
}

void OptimizationProfile::set_batch_range(std::int64_t min, std::int64_t opt, std::int64_t max) {
  if (!(1 <= min && min <= opt && opt <= max))
    fail(ErrorKind::kInvalidArgument, "optimization profile batch range: need 1 <= min <= opt ",
         "<= max, got ", min, ", ", opt, ", ", max);
  batch_ = BatchRange{min, opt, max};
}

const ShapeRange* OptimizationProfile::dimensions(std::string_view input) const {
  const auto it = inputs_.find(input);
  return it == inputs_.end() ? nullptr : &it->second;
}

namespace {

// The plan of `graph` lowered with `lower`, its profiles applied and its
// layers tuned.
struct TunedPlan {
  plan::Plan plan;
  std::vector<LayerTacticReport> tactics;
};

TunedPlan lower_and_tune(const ir::Graph& graph, const builder::LowerOptions& lower,
                         const std::filesystem::path& onnx_path, const BuilderConfig& config,
                         const std::filesystem::path& timing_cache, const DynamicDims& dynamic) {
  plan::Plan p = builder::lower_graph(graph, lower);
  if (p.profiles.empty() || p.profiles[0].inputs.empty())
    fail(ErrorKind::kUnsupported, onnx_path.string(),
         ": the model has no image or matrix input to build for");
  const std::vector<const OptimizationProfile*> profiles = all_profiles(config);
  p.profiles.resize(profiles.size(), p.profiles[0]);
  for (std::size_t i = 0; i < profiles.size(); ++i) {
    if (i > 0 && profiles[i]->empty())
      fail(ErrorKind::kInvalidArgument, "optimization profile ", i,
           " is empty: an additional profile must set its inputs' ranges");
    apply_profile(p, i, *profiles[i], dynamic);
  }
  builder::check_spatial_profiles(p);  // before any GPU time is spent
  plan::assign_streams(p, config.aux_streams);
  p.anvil_version = kAnvilVersion;
  p.options = {config.fp16, config.tf32, config.workspace_bytes, config.disabled_passes};
  std::vector<LayerTacticReport> tactics = tune(p, config, timing_cache);
  return {std::move(p), std::move(tactics)};
}

// The INT8 convs of `int8` to keep in FP16 (builder/int8_fallback.h), in
// any profile, with why; `fp16` is the same model's FP16 plan, tuned.
std::map<std::string, std::string> slower_in_int8(const TunedPlan& int8, const TunedPlan& fp16,
                                                  const std::vector<BatchRange>& ranges,
                                                  double bytes_per_ms) {
  std::map<std::string, std::string> slower;
  for (std::size_t profile = 0; profile < ranges.size(); ++profile) {
    std::map<std::string, float> int8_ms, fp16_ms;
    for (const LayerTacticReport& t : int8.tactics)
      if (t.profile == static_cast<int>(profile)) int8_ms[t.layer] = t.ms;
    for (const LayerTacticReport& t : fp16.tactics)
      if (t.profile == static_cast<int>(profile)) fp16_ms[t.layer] = t.ms;
    for (builder::Int8Fallback& f :
         builder::int8_fallbacks(int8.plan, ranges[profile].opt, int8_ms, fp16_ms, bytes_per_ms))
      slower.emplace(std::move(f.layer), std::move(f.why));
  }
  return slower;
}

// A timing cache for the builds of one INT8 build (FP16, INT8, INT8 with
// fallbacks): the user's, or a temporary file removed with this object.
class BuildTimingCache {
 public:
  explicit BuildTimingCache(const std::filesystem::path& user) : path_(user) {
    if (!path_.empty()) return;
    path_ =
        std::filesystem::temp_directory_path() /
        cat("anvil-timing-", std::chrono::steady_clock::now().time_since_epoch().count(), ".json");
    temporary_ = true;
  }
  ~BuildTimingCache() {
    std::error_code ignored;
    if (temporary_) std::filesystem::remove(path_, ignored);
  }
  BuildTimingCache(const BuildTimingCache&) = delete;
  BuildTimingCache& operator=(const BuildTimingCache&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool temporary_ = false;
};

}  // namespace

std::vector<std::byte> Builder::build_serialized(const std::filesystem::path& onnx_path,
                                                 const BuilderConfig& config,
                                                 BuildReport* report) const {
  const auto start = std::chrono::steady_clock::now();
  check_config(config);
  ir::Graph graph = onnx::import_model(onnx_path);
  // Explicit quantization: Q/DQ pairs leave the graph, their scales kept.
  quant::QdqScales qdq;
  if (quant::has_qdq(graph)) {
    qdq = quant::strip_qdq(graph);
    for (const std::string& note : qdq.notes)
      log_warning(config, note);
    if (!config.int8 && !config.fp8 && qdq.pairs_removed > 0)
      log_info(config, cat(onnx_path.string(), ": ", qdq.pairs_removed,
                           " Q/DQ pair(s) removed; their scales apply with --int8"));
  }
  // Symbolic heights and widths take profile 0's opt: passes and lowering
  // see a static network, the runtime re-derives the others.
  const DynamicDims dynamic = builder::symbolic_dims(graph);
  if (!dynamic.empty())
    builder::fix_input_dims(graph, lowering_dims(graph, dynamic, config.profile));
  std::vector<PassReport> passes = run_passes(graph, config);
  builder::LowerOptions lower{.fp16 = config.fp16,
                              .tf32 = config.tf32,
                              .max_batch = profiles_max_batch(config),
                              .fuse_conv_max_pool = true,
                              .fold_output_reformat = true,
                              .int8_scales = {},
                              .int8_excluded = {},
                              .int8_first_layer = config.int8_first_layer};
  TunedPlan built;
  std::vector<std::string> fallbacks;
  if (!config.int8 && !config.fp8) {
    built = lower_and_tune(graph, lower, onnx_path, config, config.timing_cache, dynamic);
  } else {
    if (config.fp8) check_fp8_device();
    lower.int8_scales = int8_scales(onnx_path, graph, qdq, config);
    if (config.fp8) {
      lower.quantized = DType::kFloat8E4M3;
      lower.int8_scales = builder::fp8_scales_from_int8(lower.int8_scales);
    }
    lower.int8_excluded = builder::fp16_layer_names(graph, config.fp16_layers);
    const BuildTimingCache cache(config.timing_cache);
    const std::string q = config.fp8 ? "FP8" : "INT8";
    log_info(config, cat(q, ": tuning the FP16 plan, whose per-layer times ", q, " must beat"));
    const TunedPlan fp16 = lower_and_tune(
        graph, {.fp16 = lower.fp16, .tf32 = lower.tf32, .max_batch = lower.max_batch}, onnx_path,
        config, cache.path(), dynamic);
    log_info(config, cat(q, ": tuning the ", q, " plan"));
    built = lower_and_tune(graph, lower, onnx_path, config, cache.path(), dynamic);
    const std::vector<BatchRange> ranges = plan::batch_ranges(built.plan, "the INT8 plan");
    const std::map<std::string, std::string> slower =
        slower_in_int8(built, fp16, ranges, device_bytes_per_ms());
    if (!slower.empty()) {
      for (const auto& [layer, why] : slower) {
        lower.int8_excluded.insert(layer);
        fallbacks.push_back(why);
      }
      log_info(config, cat(q, ": ", slower.size(), " conv(s) faster in FP16; retuning"));
      built = lower_and_tune(graph, lower, onnx_path, config, cache.path(), dynamic);
    }
  }
  plan::Plan& p = built.plan;
  std::vector<std::byte> bytes = plan::serialize_plan(p);
  if (report) {
    *report = make_report(p, std::move(passes));
    report->tactics = std::move(built.tactics);
    report->int8_fallbacks = std::move(fallbacks);
    report->seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return bytes;
}

}  // namespace anvil
