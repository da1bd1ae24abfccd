// anvil bench --ablation MODEL.onnx: the TensorRT optimization guide's table
// (3 batches of 128 images, from a plain FP32 loop to two contexts with CUDA
// graphs) reproduced with Anvil's library, one config per row.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ablation_report.h"
#include "anvil/error.h"
#include "commands.h"

#if ANVIL_HAVE_CUDA
#include "ablation_chart.h"
#include "ablation_configs.h"
#include "ablation_input.h"
#include "anvil/builder.h"
#include "anvil/engine.h"
#include "cuda/device.h"
#include "io/chrome_trace.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "quant/batch_source.h"
#include "quant/calibrate.h"
#include "quant/calibration_cache.h"
#endif

namespace anvil::cli {

namespace {

struct BenchOptions {
  std::string model;
  int batches = 10;
  int timed = 3;
  int repeats = 5;
  std::int64_t batch = 128;
  double duration_s = 2;
  std::string configs = "0-12";
  std::int64_t chunk_images = 32;
  int idle_poll_us = 0;
  unsigned seed = 10088;  // the guide's
  std::string timing_cache;
  std::string json, trace, chart;
};

#if ANVIL_HAVE_CUDA

using Clock = std::chrono::steady_clock;

std::shared_ptr<const Engine> build_engine(const BenchOptions& opt, const std::string& what,
                                           bool fp16, std::vector<BatchRange> profiles,
                                           const std::string& calibration_cache = {}) {
  BuilderConfig config;
  config.fp16 = fp16;
  config.int8 = !calibration_cache.empty();
  config.calibration_cache = calibration_cache;
  config.timing_cache = opt.timing_cache;
  std::string ranges;
  for (std::size_t i = 0; i < profiles.size(); ++i) {
    OptimizationProfile profile;
    profile.set_batch_range(profiles[i].min, profiles[i].opt, profiles[i].max);
    (i == 0 ? config.profile : config.additional_profiles.emplace_back()) = profile;
    ranges += (i ? ", " : "") + std::to_string(profiles[i].min) + ".." +
              std::to_string(profiles[i].max) + " tuned at " + std::to_string(profiles[i].opt);
  }
  std::fprintf(stderr, "building the %s engine (batch %s)...\n", what.c_str(), ranges.c_str());
  const auto start = Clock::now();
  const std::vector<std::byte> plan = Builder().build_serialized(opt.model, config);
  std::fprintf(stderr, "  built in %.1f s\n",
               std::chrono::duration<double>(Clock::now() - start).count());
  return Engine::deserialize(plan, opt.model + " (" + what + ")");
}

// Config 10's calibration cache, written beside the model: min-max over the
// first 16 images of the first batch, as config 9 sends them (uint8 pixels
// normalized), through the CPU reference.
std::string calibrate_on(const BenchOptions& opt, const AblationData& data,
                         const std::string& input) {
  ir::Graph graph = onnx::import_model(opt.model);
  passes::PassManager().run(graph);
  const std::int64_t images = std::min<std::int64_t>(16, data.batch);
  const std::vector<float>& first = data.nhwc_as_nchw.at(0);
  Tensor x(DType::kFloat32, {images, data.channels, data.height, data.width});
  std::copy_n(first.begin(), x.element_count(), x.data<float>());
  quant::TensorBatchSource source({{{input, std::move(x)}}});
  quant::CalibrateOptions options;
  options.model_hash = quant::hash_file(opt.model);
  std::fprintf(stderr, "calibrating for INT8 on %lld images (CPU reference)...\n",
               static_cast<long long>(images));
  const auto calibrator = quant::make_calibrator("minmax");
  const std::string path = opt.model + ".int8.calib";
  quant::write_calibration_cache(path, quant::calibrate(graph, source, *calibrator, options).table);
  return path;
}

bool uses(const std::vector<int>& configs, int first, int last) {
  for (int c : configs)
    if (c >= first && c <= last) return true;
  return false;
}

std::int64_t count_mismatches(const std::vector<std::vector<std::int32_t>>& got,
                              const std::vector<std::vector<std::int32_t>>& want,
                              std::int64_t& checked) {
  std::int64_t mismatches = 0;
  for (std::size_t b = 0; b < want.size(); ++b) {
    for (std::size_t i = 0; i < want[b].size(); ++i) {
      ++checked;
      // A batch never processed counts as wrong throughout.
      if (b >= got.size() || i >= got[b].size() || got[b][i] != want[b][i]) {
        if (mismatches < 5)
          std::fprintf(stderr, "  top-1 differs: batch %zu image %zu: got %d, plain run %d\n", b, i,
                       b < got.size() && i < got[b].size() ? got[b][i] : -1, want[b][i]);
        ++mismatches;
      }
    }
  }
  return mismatches;
}

void write_trace(const std::string& path, const AblationRow& row,
                 const std::vector<TraceSpan>& spans) {
  io::ChromeTrace trace;
  constexpr double kUs = 1000.0;
  for (const TraceSpan& s : spans)
    trace.add(s.track, s.name, s.start_ms * kUs, s.duration_ms * kUs,
              {{"config", row.config}, {"config_name", row.name}});
  trace.write(path);
}

void run_ablation(const BenchOptions& opt) {
  const std::vector<int> configs = parse_config_list(opt.configs);
  if (opt.batches < 1 || opt.timed < 1 || opt.timed > opt.batches)
    fail(ErrorKind::kInvalidArgument, "--timed ", opt.timed, " must be 1..--batches (", opt.batches,
         ")");
  if (cuda::device_count() == 0)
    fail(ErrorKind::kUnsupported, "anvil bench needs a CUDA GPU: none was found");
  if (!std::filesystem::exists(opt.model)) fail(ErrorKind::kIo, opt.model, ": no such model file");
  BenchOptions o = opt;
  if (o.timing_cache.empty()) o.timing_cache = o.model + ".timing-cache";

  // Config 8's two profiles, as the guide's 1..32 (opt 16) and 64..192 (opt
  // 128) at batch 128.
  const std::int64_t small = std::max<std::int64_t>(1, o.batch / 8);
  const BatchRange low{1, small, 2 * small};
  const BatchRange high{std::max(2 * small + 1, o.batch / 2), o.batch, o.batch * 3 / 2};
  const bool two_profiles_possible = o.batch >= 4;

  const AblationInput input = ablation_input(o.model);
  AblationEngines engines;
  if (uses(configs, 0, 2)) engines.fp32 = build_engine(o, "FP32", false, {{1, o.batch, o.batch}});
  if (uses(configs, 3, 7) || uses(configs, 9, 9) || uses(configs, 11, 11))
    engines.fp16 = build_engine(o, "FP16", true, {{1, o.batch, o.batch}});
  if (uses(configs, 8, 8) && two_profiles_possible) {
    engines.two_profiles = build_engine(o, "FP16 two-profile", true, {low, high});
    engines.small_batch = small;
  }

  AblationReport report;
  report.rows.reserve(configs.size());  // last_row below points into it
  const auto gpu = cuda::device_info(0);
  report.gpu = gpu ? gpu->name : "?";
  report.model = o.model;
  report.batch = o.batch;
  report.batches = o.batches;
  report.timed_batches = o.timed;
  report.duration_s = o.duration_s;

  std::vector<TraceSpan> last_spans;
  const AblationRow* last_row = nullptr;
  std::fprintf(stderr, "making %d batches of %lld images (seed %u)...\n", o.batches,
               static_cast<long long>(o.batch), o.seed);
  const AblationData data =
      make_ablation_data(o.batches, o.batch, input.channels, input.height, input.width, o.seed);
  report.image_elements = data.image_elements();
  ConfigSettings settings;
  settings.timed = o.timed;
  settings.repeats = o.repeats;
  settings.duration_s = o.duration_s;
  settings.chunk_images = o.chunk_images;
  settings.idle_poll_us = o.idle_poll_us;
  // Plain runs of each engine: the top-1 classes every config must give.
  std::vector<std::vector<std::int32_t>> want_fp32, want_fp16, want_u8, want_int8, want_int8_fp32,
      want_two, want_small;
  if (engines.fp32) want_fp32 = plain_top1(*engines.fp32, data.nchw, o.batch);
  if (engines.fp16) want_fp16 = plain_top1(*engines.fp16, data.nchw, o.batch);
  if (engines.fp16 && uses(configs, 9, 9) && !data.nhwc_as_nchw.empty())
    want_u8 = plain_top1(*engines.fp16, data.nhwc_as_nchw, o.batch);
  if (uses(configs, 10, 10) || uses(configs, 12, 12)) {
    if (!data.nhwc_as_nchw.empty())
      engines.int8 =
          build_engine(o, "INT8", true, {{1, o.batch, o.batch}}, calibrate_on(o, data, input.name));
    if (engines.int8 && uses(configs, 10, 10))
      want_int8 = plain_top1(*engines.int8, data.nhwc_as_nchw, o.batch);
    if (engines.int8 && uses(configs, 12, 12))
      want_int8_fp32 = plain_top1(*engines.int8, data.nchw, o.batch);
  }
  if (engines.two_profiles) {
    want_two = plain_top1(*engines.two_profiles, data.nchw, o.batch);
    want_small = plain_top1(*engines.two_profiles, data.nchw, o.batch, small);
  }
  for (const int c : configs) {
    AblationRow& row = report.rows.emplace_back();
    row.config = c;
    row.name = std::string(kAblationConfigNames[static_cast<std::size_t>(c)]);
    // 9 and 10 send uint8 RGB; 10 and 12 calibrate INT8 on it.
    const bool needs_rgb = c == 9 || c == 10 || c == 12;
    if ((c == 8 && !two_profiles_possible) || (needs_rgb && data.nhwc.empty())) {
      row.available = false;
      row.note = c == 8 ? "not available (needs --batch 4 or more)" : std::string(kNeedsRgb);
      continue;
    }
    std::fprintf(stderr, "config %d: %s...\n", c, row.name.c_str());
    ConfigResult r = run_ablation_config(c, engines, data, settings);
    row.timed_ms = r.timed_ms;
    row.timed_runs_ms = r.timed_runs_ms;
    row.traced_ms = r.traced_ms;
    row.images_per_s = r.images_per_s;
    row.device_bytes = r.device_bytes;
    row.input_h2d_min_gb_per_s = r.input_h2d_gb_per_s.min;
    row.input_h2d_max_gb_per_s = r.input_h2d_gb_per_s.max;
    const auto& want = c <= 2    ? want_fp32
                       : c == 8  ? want_two
                       : c == 9  ? want_u8
                       : c == 10 ? want_int8
                       : c == 12 ? want_int8_fp32
                                 : want_fp16;
    row.top1_mismatches = count_mismatches(r.top1, want, row.top1_checked);
    if (c == 8) row.top1_mismatches += count_mismatches(r.top1_small, want_small, row.top1_checked);
    if (c == 8)
      row.note = "each batch also runs its first " + std::to_string(small) +
                 " images as a batch of their own (profile 0)";
    if (c >= 9) row.note = "softmax and top-1 on the GPU, the host prints";
    if (c >= 5 && o.idle_poll_us > 0)
      row.note += std::string(row.note.empty() ? "" : "; ") + "workers poll " +
                  std::to_string(o.idle_poll_us) + " us before sleeping";
    if (c >= 11)
      row.note += "; chunks of " + std::to_string(std::min(o.chunk_images, o.batch)) +
                  " images, 1 worker, 3 batches in flight, CUDA graphs";
    std::fprintf(stderr, "  %.3f ms (median of %zu runs%s%s), %.0f images/s\n", row.timed_ms,
                 row.timed_runs_ms.size(), row.timed_runs_ms.size() > 1 ? ": " : "",
                 run_range(row.timed_runs_ms).c_str(), row.images_per_s);
    if (row.input_h2d_min_gb_per_s > 0)
      std::fprintf(stderr, "  its pinned data uploads at %.2f-%.2f GB/s (per batch)\n",
                   row.input_h2d_min_gb_per_s, row.input_h2d_max_gb_per_s);
    if (const std::string lanes = gpu_summary(r.spans, r.traced_ms); !lanes.empty())
      std::fprintf(stderr, "  traced run (%.3f ms): %s\n", r.traced_ms, lanes.c_str());
    last_spans = std::move(r.spans);
    last_row = &row;
  }
  report.h2d_gb_per_s = measure_h2d_gb_per_s();

  std::printf("## anvil bench --ablation %s on %s\n\n", o.model.c_str(), report.gpu.c_str());
  std::printf("%s\n", markdown_table(report).c_str());
  std::printf("%s", floor_lines(report).c_str());
  if (gpu) std::printf("GPU 0 hangs off host NUMA node %d (-1: unknown).\n", gpu->numa_node);
  std::printf(
      "ms: wall clock from the first timed submit to the last result processed on the host, "
      "the median of %d runs (range: the fastest and slowest); images/s: a %.1f s run per "
      "config.\n",
      o.repeats, o.duration_s);
  for (const AblationRow& row : report.rows)
    if (row.available && !row.note.empty())
      std::printf("config %d: %s\n", row.config, row.note.c_str());

  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << to_json(report).dump(2) << "\n";
    if (!out) fail(ErrorKind::kIo, o.json, ": cannot write the JSON report");
  }
  if (!o.trace.empty()) {
    if (!last_row) fail(ErrorKind::kInvalidArgument, "--trace: no config ran");
    write_trace(o.trace, *last_row, last_spans);
  }
  if (!o.chart.empty()) write_ablation_chart(o.chart, report);
}

#else

void run_ablation(const BenchOptions&) {
  fail(ErrorKind::kUnsupported, "anvil bench needs a CUDA GPU: this anvil was built without CUDA");
}

#endif  // ANVIL_HAVE_CUDA

}  // namespace

void add_bench_command(CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Reproduce the TensorRT optimization guide's table with Anvil (--ablation)");
  cmd->add_option("--ablation", opt->model, "ONNX model (one [N,C,H,W] input) to run the table on")
      ->required();
  cmd->add_option("--batches", opt->batches, "Batches in the job (the guide: 10)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--timed", opt->timed, "The last this many batches are timed (the guide: 3)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--repeats", opt->repeats,
                  "Runs of the timed batches per config; the table shows their median")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--batch", opt->batch, "Images per batch (the guide: 128)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--duration", opt->duration_s, "Seconds of the throughput run per config")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--configs", opt->configs, "Configs to run, e.g. 0,1,3 or 0-4,9 (default all)");
  cmd->add_option("--seed", opt->seed, "Seed of the random input");
  cmd->add_option("--chunk-images", opt->chunk_images,
                  "Images per chunk of configs 11 and 12 (sub-batch pipelining)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--idle-poll-us", opt->idle_poll_us,
                  "Configs 5-12: Pipeline workers poll for requests this long before sleeping")
      ->check(CLI::Range(0, 1'000'000));
  cmd->add_option("--timing-cache", opt->timing_cache,
                  "Timing cache file (default MODEL.timing-cache, next to the model)");
  cmd->add_option("--json", opt->json, "Write every number to this JSON file");
  cmd->add_option("--trace", opt->trace,
                  "Write a Chrome trace of the last config's timed batches (one more run, "
                  "recorded)");
  cmd->add_option("--chart", opt->chart, "Write a PNG bar chart of the ms column");
  cmd->callback([opt] { run_ablation(*opt); });
}

}  // namespace anvil::cli
