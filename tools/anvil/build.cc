// anvil build: ONNX -> optimized, autotuned plan file for this GPU.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "anvil/builder.h"
#include "commands.h"
#include "model_loading.h"
#include "shape_option.h"

namespace anvil::cli {

namespace {

struct BuildCommandOptions {
  ModelOptions model;
  std::string output;
  bool fp16 = false;
  bool no_tf32 = false;
  std::string min_shapes, opt_shapes, max_shapes;
  std::vector<std::string> profiles;  // --profile MIN:OPT:MAX, one per profile
  std::string timing_cache;
  std::int64_t workspace_mib = 256;
  int aux_streams = 0;
  bool int8 = false;
  bool fp8 = false;
  std::string calibration_cache;
  std::vector<std::string> layer_precisions;  // NAME:fp16
  bool int8_first_layer = false;
};

// --layer-precision NAME:fp16 -> NAME. Only fp16 is a choice: INT8 is the
// default of an --int8 build wherever it is possible and faster.
std::vector<std::string> fp16_layers(const std::vector<std::string>& specs) {
  std::vector<std::string> names;
  for (const std::string& spec : specs) {
    const auto colon = spec.rfind(':');
    if (colon == std::string::npos || colon == 0 || spec.substr(colon + 1) != "fp16")
      fail(ErrorKind::kInvalidArgument, "--layer-precision '", spec,
           "': expected NAME:fp16 (the conv's ONNX node name, as `anvil inspect` lists it)");
    names.push_back(spec.substr(0, colon));
  }
  return names;
}

// --min/--opt/--max-shapes as the profile: --max-shapes names the input; the
// min defaults to the max at batch 1, the opt to the max. A fixed-batch model
// then refuses any batch but its own (Builder::build_serialized).
void add_shapes(OptimizationProfile& profile, const BuildCommandOptions& opt) {
  if (opt.min_shapes.empty() && opt.opt_shapes.empty() && opt.max_shapes.empty()) return;
  const auto [name, max] = parse_shape(opt.max_shapes, "--max-shapes");
  auto shape_of = [&name](const std::string& text, const char* option) {
    auto [other, dims] = parse_shape(text, option);
    if (other != name)
      fail(ErrorKind::kInvalidArgument, option, " names '", other, "' but --max-shapes names '",
           name, "': give the same input");
    return dims;
  };
  std::vector<std::int64_t> min = max;
  if (opt.min_shapes.empty())
    min[0] = 1;
  else
    min = shape_of(opt.min_shapes, "--min-shapes");
  const auto best = opt.opt_shapes.empty() ? max : shape_of(opt.opt_shapes, "--opt-shapes");
  profile.set_dimensions(name, min, best, max);
}

// "input:1x3x160x160:8x3x224x224:16x3x288x288" -> that input's min, opt and
// max shapes (for a model whose height and width are dynamic).
OptimizationProfile parse_shape_profile(const std::string& text) {
  std::vector<std::string> parts;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find(':', start), text.size());
    parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  if (parts.size() != 4 || parts[0].empty())
    fail(ErrorKind::kInvalidArgument, "--profile '", text,
         "': expected NAME:MIN:OPT:MAX shapes, e.g. input:1x3x160x160:8x3x224x224:16x3x288x288");
  const auto min = parse_shape(parts[0] + ":" + parts[1], "--profile").second;
  const auto opt = parse_shape(parts[0] + ":" + parts[2], "--profile").second;
  const auto max = parse_shape(parts[0] + ":" + parts[3], "--profile").second;
  OptimizationProfile profile;
  profile.set_dimensions(parts[0], min, opt, max);
  return profile;
}

// "1:16:32" -> a profile of batches 1..32 tuned at 16.
OptimizationProfile parse_batch_profile(const std::string& text) {
  if (text.find('x') != std::string::npos) return parse_shape_profile(text);
  std::vector<std::int64_t> values;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(':', start), text.size());
    try {
      std::size_t used = 0;
      values.push_back(std::stoll(text.substr(start, end - start), &used));
      if (used != end - start) throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
      fail(ErrorKind::kInvalidArgument, "--profile '", text,
           "': expected MIN:OPT:MAX batch sizes, e.g. 1:16:32");
    }
    start = end + 1;
  }
  if (values.size() != 3)
    fail(ErrorKind::kInvalidArgument, "--profile '", text,
         "': expected MIN:OPT:MAX batch sizes, e.g. 1:16:32");
  OptimizationProfile profile;
  profile.set_batch_range(values[0], values[1], values[2]);
  return profile;
}

// Profile 0 from --min/--opt/--max-shapes if given, else from the first
// --profile; every other --profile adds one.
void add_profiles(BuilderConfig& config, const BuildCommandOptions& opt) {
  add_shapes(config.profile, opt);
  for (const std::string& text : opt.profiles) {
    OptimizationProfile profile = parse_batch_profile(text);
    if (config.profile.empty())
      config.profile = std::move(profile);
    else
      config.additional_profiles.push_back(std::move(profile));
  }
}

void print_progress(int done, int total) {
  constexpr int kWidth = 30;
  const int filled = total ? done * kWidth / total : kWidth;
  std::fprintf(stderr, "\rautotuning [%-*s] %d/%d layers", kWidth,
               std::string(static_cast<std::size_t>(filled), '#').c_str(), done, total);
  if (done == total) std::fprintf(stderr, "\n");
}

void print_log(LogSeverity severity, std::string_view message) {
  std::FILE* out = severity == LogSeverity::kInfo ? stdout : stderr;
  std::fprintf(out, "%.*s\n", static_cast<int>(message.size()), message.data());
}

void write_bytes(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(ErrorKind::kIo, path, ": cannot create plan file: ", std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) fail(ErrorKind::kIo, path, ": cannot write plan file (disk full?)");
}

void print_summary(const BuildCommandOptions& opt, const BuildReport& r, double seconds) {
  std::map<std::string, int> kinds;
  for (const std::string& kind : r.layer_kinds)
    ++kinds[kind];
  std::printf("Built %s in %.1f s for %s (%s%s), batch %lld..%lld (tuned at %lld)\n",
              opt.output.c_str(), seconds, r.gpu_name.c_str(),
              opt.int8   ? "INT8 + FP16"
              : opt.fp8  ? "FP8 E4M3 + FP16"
              : opt.fp16 ? "FP16"
                         : "FP32",
              !opt.fp16 && !opt.no_tf32 ? " + TF32" : "", static_cast<long long>(r.min_batch),
              static_cast<long long>(r.max_batch), static_cast<long long>(r.opt_batch));
  for (std::size_t i = 1; i < r.profiles.size(); ++i)
    std::printf("  and profile %zu: batch %lld..%lld (tuned at %lld)\n", i,
                static_cast<long long>(r.profiles[i].min),
                static_cast<long long>(r.profiles[i].max),
                static_cast<long long>(r.profiles[i].opt));
  std::printf("%zu layers:", r.layer_kinds.size());
  for (const auto& [kind, count] : kinds)
    std::printf(" %s %d", kind.c_str(), count);
  std::printf("\nweights %.1f MB, activation arena %.1f MB per context at the max batch\n",
              static_cast<double>(r.weight_bytes) / 1e6, static_cast<double>(r.arena_bytes) / 1e6);
  const auto aux = static_cast<std::size_t>(
      std::count_if(r.layer_streams.begin(), r.layer_streams.end(), [](int s) { return s > 0; }));
  if (aux > 0) std::printf("%zu layer(s) on auxiliary streams\n", aux);
  if (!r.int8_fallbacks.empty()) {
    std::printf("%zu conv(s) kept in FP16, faster there than in %s:\n", r.int8_fallbacks.size(),
                opt.fp8 ? "FP8" : "INT8");
    for (const std::string& why : r.int8_fallbacks)
      std::printf("  %s\n", why.c_str());
  }
  std::printf("%-32s %-9s %7s %9s %5s  %s\n", "layer", "kind", "profile", "time(ms)", "tried",
              "tactic");
  for (const auto& t : r.tactics)
    std::printf("%-32s %-9s %7d %9.4f %5d  %s\n", t.layer.substr(0, 32).c_str(), t.kind.c_str(),
                t.profile, t.ms, t.candidates, t.tactic.substr(0, 60).c_str());
}

void build_plan(const BuildCommandOptions& opt) {
  const auto start = std::chrono::steady_clock::now();
  BuilderConfig config;
  config.fp16 = opt.fp16;
  config.tf32 = !opt.no_tf32;
  config.workspace_bytes = opt.workspace_mib << 20;
  config.timing_cache = opt.timing_cache;
  config.disabled_passes = opt.model.disabled_passes;
  config.aux_streams = opt.aux_streams;
  config.int8 = opt.int8;
  config.fp8 = opt.fp8;
  config.calibration_cache = opt.calibration_cache;
  config.fp16_layers = fp16_layers(opt.layer_precisions);
  config.int8_first_layer = opt.int8_first_layer;
  config.progress = print_progress;
  config.log = print_log;
  add_profiles(config, opt);
  BuildReport report;
  const std::vector<std::byte> bytes = Builder().build_serialized(opt.model.path, config, &report);
  write_bytes(opt.output, bytes);
  print_summary(opt, report,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace

void add_build_command(CLI::App& app) {
  auto opt = std::make_shared<BuildCommandOptions>();
  opt->model.optimize = true;
  CLI::App* cmd = app.add_subcommand("build", "Compile an ONNX model into a GPU plan file");
  cmd->add_option("model", opt->model.path, "ONNX model file")->required();
  cmd->add_option("-o,--output", opt->output, "Plan file to write")->required();
  cmd->add_flag("--fp16", opt->fp16, "FP16 weights and activations, FP32 accumulation");
  cmd->add_flag("--no-tf32", opt->no_tf32, "Keep FP32 layers off TF32 tensor cores");
  cmd->add_option("--min-shapes", opt->min_shapes,
                  "Smallest input shape, e.g. input:1x3x224x224; height and width may vary too "
                  "where the model leaves them dynamic, e.g. input:1x3x160x160");
  cmd->add_option("--opt-shapes", opt->opt_shapes, "Shape the tactics are tuned at");
  cmd->add_option("--max-shapes", opt->max_shapes,
                  "Largest input shape (sets the max batch, and height and width)");
  cmd->add_option("--profile", opt->profiles,
                  "An optimization profile of batch sizes MIN:OPT:MAX, or of whole shapes "
                  "NAME:MIN:OPT:MAX (e.g. input:1x3x160x160:8x3x224x224:16x3x288x288); repeat "
                  "for several, e.g. --profile 1:16:32 --profile 64:128:192");
  cmd->add_option("--timing-cache", opt->timing_cache, "Read and update this timing cache file");
  cmd->add_option("--workspace", opt->workspace_mib, "Workspace limit in MiB")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--disable-pass", opt->model.disabled_passes, "Skip this optimization pass");
  cmd->add_option("--aux-streams", opt->aux_streams,
                  "Auxiliary streams per context for layers that can run in parallel "
                  "(a ResNet block's downsample shortcut)")
      ->check(CLI::Range(0, 8));
  cmd->add_flag("--int8", opt->int8,
                "INT8 convolutions where calibrated and faster than FP16 (needs --fp16 and "
                "--calibration-cache)");
  cmd->add_flag("--fp8", opt->fp8,
                "FP8 (E4M3, Hopper) convolutions where calibrated and faster than FP16 (needs "
                "--fp16 and --calibration-cache; not with --int8)");
  cmd->add_option("--calibration-cache", opt->calibration_cache,
                  "INT8 scales from `anvil calibrate` for this model (--int8 or --fp8)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--layer-precision", opt->layer_precisions,
                  "Keep a conv in FP16 in an --int8 or --fp8 build: NAME:fp16; repeat for several");
  cmd->add_flag("--int8-first-layer", opt->int8_first_layer,
                "Run the conv reading the image in INT8 too (default: FP16)");
  cmd->callback([opt] { build_plan(*opt); });
}

}  // namespace anvil::cli
