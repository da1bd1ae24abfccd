// anvil build: ONNX -> optimized, autotuned plan file for this GPU.
#include <chrono>
#include <cstdio>
#include <map>

#include "commands.h"
#include "model_loading.h"

#if ANVIL_HAVE_CUDA
#include "builder/gpu/autotune.h"
#include "builder/lower.h"
#include "plan/plan.h"
#endif

namespace anvil::cli {

namespace {

struct BuildCommandOptions {
  ModelOptions model;
  std::string output;
  bool fp16 = false;
  bool no_tf32 = false;
  std::string min_shapes, opt_shapes, max_shapes;
  std::string timing_cache;
  std::int64_t workspace_mib = 256;
};

// "input:8x3x224x224" -> {"input", {8,3,224,224}}.
std::pair<std::string, std::vector<std::int64_t>> parse_shape(const std::string& text,
                                                              const char* option) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0)
    fail(ErrorKind::kInvalidArgument, option, " '", text,
         "': expected NAME:DxDxD, e.g. input:8x3x224x224");
  std::vector<std::int64_t> dims;
  std::size_t start = colon + 1;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('x', start), text.size());
    try {
      dims.push_back(std::stoll(text.substr(start, end - start)));
    } catch (const std::exception&) {
      fail(ErrorKind::kInvalidArgument, option, " '", text, "': '", text.substr(start, end - start),
           "' is not a dimension");
    }
    if (dims.back() < 1)
      fail(ErrorKind::kInvalidArgument, option, " '", text, "': dimensions must be >= 1");
    start = end + 1;
  }
  return {text.substr(0, colon), dims};
}

#if ANVIL_HAVE_CUDA

// Applies --min/--opt/--max-shapes to the plan's profile (batch range).
void apply_shapes(plan::Plan& p, const BuildCommandOptions& opt) {
  if (opt.min_shapes.empty() && opt.opt_shapes.empty() && opt.max_shapes.empty()) return;
  auto [name, max] = parse_shape(opt.max_shapes, "--max-shapes");
  auto it = p.profiles.at(0).inputs.find(name);
  if (it == p.profiles.at(0).inputs.end())
    fail(ErrorKind::kInvalidArgument, "--max-shapes names '", name,
         "', which is not an input of the model");
  const auto& model = it->second.max;
  bool fixed_batch = false;
  for (const plan::IoBinding& io : p.io)
    if (io.name == name)
      fixed_batch = p.tensors.at(static_cast<std::size_t>(io.tensor_id)).dims.at(0) != -1;
  auto min = opt.min_shapes.empty() ? max : parse_shape(opt.min_shapes, "--min-shapes").second;
  if (opt.min_shapes.empty() && !fixed_batch && !min.empty()) min[0] = 1;
  auto best = opt.opt_shapes.empty() ? max : parse_shape(opt.opt_shapes, "--opt-shapes").second;
  for (const auto* dims : {&min, &best, &max}) {
    if (dims->size() != model.size())
      fail(ErrorKind::kInvalidArgument, "shape for '", name, "' has ", dims->size(),
           " dimensions; the model's input has ", model.size());
    for (std::size_t d = 1; d < model.size(); ++d)
      if ((*dims)[d] != model[d])
        fail(ErrorKind::kUnsupported, "shape for '", name, "': only the batch (first) dimension ",
             "is dynamic in this version; dimension ", d, " must be ", model[d]);
  }
  if (fixed_batch && (min[0] != model[0] || best[0] != model[0] || max[0] != model[0]))
    fail(ErrorKind::kUnsupported, "input '", name, "' has a fixed batch of ", model[0],
         " in the model; export it with a dynamic batch (dynamic_axes) to build a profile");
  if (!(min[0] <= best[0] && best[0] <= max[0]))
    fail(ErrorKind::kInvalidArgument, "profile for '", name,
         "': need min <= opt <= max batch, got ", min[0], ", ", best[0], ", ", max[0]);
  it->second = {min, best, max};
}

void print_progress(int done, int total) {
  constexpr int kWidth = 30;
  const int filled = total ? done * kWidth / total : kWidth;
  std::fprintf(stderr, "\rautotuning [%-*s] %d/%d layers", kWidth,
               std::string(static_cast<std::size_t>(filled), '#').c_str(), done, total);
  if (done == total) std::fprintf(stderr, "\n");
}

void build_plan(const BuildCommandOptions& opt) {
  const auto start = std::chrono::steady_clock::now();
  const ir::Graph graph = load_model(opt.model);
  std::int64_t max_batch = 1;
  if (!opt.max_shapes.empty()) max_batch = parse_shape(opt.max_shapes, "--max-shapes").second.at(0);
  plan::Plan p =
      builder::lower_graph(graph, {.fp16 = opt.fp16, .tf32 = !opt.no_tf32, .max_batch = max_batch});
  apply_shapes(p, opt);
  p.anvil_version = "0.1.0";
  p.target = builder::current_target();
  p.options = {opt.fp16, !opt.no_tf32, opt.workspace_mib << 20, opt.model.disabled_passes};
  if (p.profiles.empty() || p.profiles[0].inputs.empty())
    fail(ErrorKind::kUnsupported, opt.model.path,
         ": the model has no image or matrix input to build for");
  const plan::ProfileDim& batch_range = p.profiles[0].inputs.begin()->second;
  const std::int64_t opt_batch = batch_range.opt.at(0);
  const auto tactics = builder::autotune(p, {.batch = opt_batch,
                                             .iterations = 10,
                                             .timing_cache = opt.timing_cache,
                                             .progress = print_progress});
  plan::write_plan_file(opt.output, p);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::map<std::string, int> kinds;
  for (const plan::LayerDesc& layer : p.layers)
    ++kinds[layer.kind];
  std::printf("Built %s in %.1f s for %s (%s%s), batch %lld..%lld (tuned at %lld)\n",
              opt.output.c_str(), seconds, p.target.gpu_name.c_str(), opt.fp16 ? "FP16" : "FP32",
              !opt.fp16 && !opt.no_tf32 ? " + TF32" : "",
              static_cast<long long>(batch_range.min.at(0)),
              static_cast<long long>(batch_range.max.at(0)), static_cast<long long>(opt_batch));
  std::printf("%zu layers:", p.layers.size());
  for (const auto& [kind, count] : kinds)
    std::printf(" %s %d", kind.c_str(), count);
  const std::size_t arena = builder::plan_arena(p, batch_range.max.at(0)).arena_bytes;
  std::printf("\nweights %.1f MB, activation arena %.1f MB per context at the max batch\n",
              static_cast<double>(p.weights.size()) / 1e6, static_cast<double>(arena) / 1e6);
  std::printf("%-32s %-5s %9s %5s  %s\n", "layer", "kind", "time(ms)", "tried", "tactic");
  for (const auto& t : tactics)
    std::printf("%-32s %-5s %9.4f %5d  %s\n", t.layer.substr(0, 32).c_str(), t.kind.c_str(), t.ms,
                t.candidates, t.identity.substr(0, 60).c_str());
}

#else

void build_plan(const BuildCommandOptions&) {
  fail(ErrorKind::kUnsupported, "this anvil was built without CUDA: `anvil build` needs nvcc at ",
       "build time and a GPU to tune on");
}

#endif

}  // namespace

void add_build_command(CLI::App& app) {
  auto opt = std::make_shared<BuildCommandOptions>();
  opt->model.optimize = true;
  CLI::App* cmd = app.add_subcommand("build", "Compile an ONNX model into a GPU plan file");
  cmd->add_option("model", opt->model.path, "ONNX model file")->required();
  cmd->add_option("-o,--output", opt->output, "Plan file to write")->required();
  cmd->add_flag("--fp16", opt->fp16, "FP16 weights and activations, FP32 accumulation");
  cmd->add_flag("--no-tf32", opt->no_tf32, "Keep FP32 layers off TF32 tensor cores");
  cmd->add_option("--min-shapes", opt->min_shapes, "Smallest input shape, e.g. input:1x3x224x224");
  cmd->add_option("--opt-shapes", opt->opt_shapes, "Shape the tactics are tuned at");
  cmd->add_option("--max-shapes", opt->max_shapes, "Largest input shape (sets the max batch)");
  cmd->add_option("--timing-cache", opt->timing_cache, "Read and update this timing cache file");
  cmd->add_option("--workspace", opt->workspace_mib, "Workspace limit in MiB")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--disable-pass", opt->model.disabled_passes, "Skip this optimization pass");
  cmd->callback([opt] { build_plan(*opt); });
}

}  // namespace anvil::cli
