// anvil eval: top-1 accuracy of an ONNX classifier on a labeled dataset
// (python/make_digits.py's layout, src/io/digits_dataset.h), per precision:
// on the GPU from plans built here with anvil::Builder, on the CPU with the
// reference runtime. Both are served through the Pipeline's uint8 path, so
// they see the pixels python/train_digits.py trained on.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "anvil/pipeline.h"
#include "commands.h"
#include "eval_calibration.h"
#include "eval_report.h"
#include "io/digits_dataset.h"
#include "io/scratch_dir.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "pipeline/cpu_executor.h"
#include "run_plan.h"

#if ANVIL_HAVE_CUDA
#include "anvil/builder.h"
#include "anvil/engine.h"
#include "cuda/device.h"
#endif

namespace anvil::cli {

namespace {

struct EvalOptions {
  std::string model;
  std::string dataset;
  std::string split = "test";
  std::string precision = "all";
  std::string device = "auto";
  std::int64_t batch = 64;
  std::int64_t limit = 0;  // 0: every image of the split
  int workers = 2;
  std::string timing_cache;
  std::string json;
  std::int64_t calibration_images = 256;
};

// One precision's plan: FP32 (TF32 off), FP16, or INT8 (or FP8 E4M3) with
// the calibration cache of one calibrator.
struct GpuPrecision {
  std::string name;  // the row's: "fp32", "fp16", "int8 entropy", "fp8 entropy", ...
  bool fp16 = false;
  std::filesystem::path calibration_cache;  // INT8 (or FP8) when set
  bool fp8 = false;                         // with a cache: FP8 instead of INT8
};

// The facts of the model eval needs before anything is built.
struct ModelFacts {
  std::int64_t classes = 0;
  std::optional<std::int64_t> fixed_batch;  // set when the input's batch dim is a number
  std::int64_t image_side = 0;              // H of the [N, 3, H, H] input, 0 if not known
};

ModelFacts describe(const ir::Graph& graph, const std::string& path) {
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1)
    fail(ErrorKind::kUnsupported, path, ": anvil eval needs one input and one output; it has ",
         graph.inputs.size(), " and ", graph.outputs.size());
  ModelFacts facts;
  facts.classes = 1;
  const ir::Shape& out = graph.outputs[0]->shape;
  for (std::size_t d = 1; d < out.rank(); ++d) {
    if (!out[d].is_known())
      fail(ErrorKind::kUnsupported, path, ": output '", graph.outputs[0]->name, "' is ",
           to_string(out), "; anvil eval needs [N, classes]");
    facts.classes *= out[d].size;
  }
  const ir::Shape& in = graph.inputs[0]->shape;
  if (in.rank() >= 1 && in[0].is_known()) facts.fixed_batch = in[0].size;
  if (in.rank() == 4 && in[2].is_known()) facts.image_side = in[2].size;
  return facts;
}

bool gpu_present() {
#if ANVIL_HAVE_CUDA
  return cuda::device_count() > 0;
#else
  return false;
#endif
}

// The executors of one precision, and how long making them took (a build).
struct Served {
  ExecutorFactory factory;
  double build_seconds = 0;
};

Served serve_on_gpu([[maybe_unused]] const EvalOptions& opt,
                    [[maybe_unused]] const GpuPrecision& precision,
                    [[maybe_unused]] const ModelFacts& facts) {
#if ANVIL_HAVE_CUDA
  const auto start = std::chrono::steady_clock::now();
  BuilderConfig config;
  config.fp16 = precision.fp16;
  config.int8 = !precision.calibration_cache.empty() && !precision.fp8;
  config.fp8 = !precision.calibration_cache.empty() && precision.fp8;
  config.calibration_cache = precision.calibration_cache;
  config.tf32 = false;  // FP32 means FP32, as PyTorch's reference top-1 is measured
  config.timing_cache = opt.timing_cache;
  const std::int64_t batch = facts.fixed_batch.value_or(opt.batch);
  config.profile.set_batch_range(facts.fixed_batch ? batch : 1, batch, batch);
  std::fprintf(stderr, "building the %s plan (batch 1..%lld)...\n", precision.name.c_str(),
               static_cast<long long>(batch));
  const std::vector<std::byte> plan = Builder().build_serialized(opt.model, config);
  auto engine = Engine::deserialize(plan, cat(opt.model, " (", precision.name, ")"));
  Served served{engine_executor_factory(std::move(engine)), 0};
  served.build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return served;
#else
  fail(ErrorKind::kUnsupported, "this Anvil was built without CUDA: use --device cpu");
#endif
}

EvalRow score(const Served& served, const EvalOptions& opt, const std::string& precision,
              const std::string& device, const io::DigitsSplit& split) {
  PipelineOptions options;
  options.workers = opt.workers;
  options.top_k = 1;
  options.softmax = false;  // the argmax is all top-1 needs
  Pipeline pipeline(served.factory, options);
  const auto start = std::chrono::steady_clock::now();
  const io::Top1Count count = io::count_top1(pipeline, split, opt.batch);
  pipeline.shutdown();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EvalRow row{precision, device, count.correct, count.total, served.build_seconds, 0};
  row.images_per_second = seconds > 0 ? static_cast<double>(count.total) / seconds : 0;
  return row;
}

void keep_first(io::DigitsSplit& split, std::int64_t limit) {
  if (limit <= 0 || limit >= split.count) return;
  split.count = limit;
  split.pixels.resize(static_cast<std::size_t>(limit * split.side * split.side));
  split.labels.resize(static_cast<std::size_t>(limit));
}

void evaluate(const EvalOptions& opt) {
  if (is_plan_file(opt.model))
    fail(ErrorKind::kInvalidArgument, opt.model,
         ": is a plan; anvil eval builds its plans itself, give it the ONNX model");
  ir::Graph graph = onnx::import_model(opt.model);
  const ModelFacts facts = describe(graph, opt.model);
  io::DigitsSplit split = io::read_digits_split(opt.dataset, opt.split, facts.classes);
  keep_first(split, opt.limit);

  EvalReport report{opt.model, opt.dataset, opt.split, {}, {}};
  bool gpu = opt.device == "gpu";
  if (opt.device == "auto") gpu = gpu_present();
  if (opt.device == "gpu" && !gpu_present())
    fail(ErrorKind::kGpu, "--device gpu: no CUDA GPU is visible; use --device cpu");
  if (!gpu && (opt.precision == "fp16" || opt.precision == "int8" || opt.precision == "fp8"))
    fail(ErrorKind::kUnsupported, "--precision ", opt.precision, " runs on the GPU only and ",
         opt.device == "auto" ? "there is none here" : "--device cpu was given",
         "; the CPU reference runtime computes in FP32");
  if (opt.device == "auto" && !gpu)
    std::fprintf(stderr,
                 "anvil eval: no GPU here: scoring FP32 on the CPU reference runtime only\n");

  if (gpu) {
    std::vector<GpuPrecision> precisions;
    for (const char* p : {"fp32", "fp16"})
      if (opt.precision == "all" || opt.precision == p)
        precisions.push_back({p, p == std::string("fp16"), {}});
    const io::ScratchDir scratch("anvil-eval");
    const bool int8 = opt.precision == "all" || opt.precision == "int8";
    const bool fp8 = opt.precision == "all" || opt.precision == "fp8";
    if (int8 || fp8) {
      // Calibrated on the train split, never on the images scored.
      if (facts.image_side == 0)
        fail(ErrorKind::kUnsupported, opt.model, ": INT8 calibration needs the input's image ",
             "size in the model ([N, 3, H, H] with H a number)");
      passes::PassManager().run(graph);
      io::DigitsSplit train = io::read_digits_split(opt.dataset, "train", facts.classes);
      const EvalCalibration calibration =
          calibrate_for_eval(opt.model, graph, train, opt.calibration_images, opt.batch,
                             facts.image_side, scratch.path());
      report.notes.push_back(cat("INT8: calibrated on the first ", calibration.images,
                                 " images of the train split in ",
                                 static_cast<int>(calibration.seconds), " s (CPU reference)"));
      if (int8)
        for (const auto& [calibrator, cache] : calibration.caches)
          precisions.push_back({"int8 " + calibrator, true, cache});
      if (fp8)
        for (const auto& [calibrator, cache] : calibration.caches)
          precisions.push_back({"fp8 " + calibrator, true, cache, true});
    }
    for (const GpuPrecision& p : precisions) {
      try {
        report.rows.push_back(score(serve_on_gpu(opt, p, facts), opt, p.name, "gpu", split));
      } catch (const Error& e) {
        // FP8 engines exist on Hopper (and later) only: --precision all notes
        // their absence instead of failing the INT8 and FP16 rows.
        if (!p.fp8 || opt.precision != "all" || e.kind() != ErrorKind::kUnsupported) throw;
        report.notes.push_back(cat(p.name, ": not run (", e.what(), ")"));
      }
    }
  } else {
    // The passes (BN folding, fusion) make the reference runtime faster;
    // they are exact rewrites up to float rounding.
    passes::PassManager().run(graph);
    Served served{pipeline::cpu_executor_factory(
                      std::make_shared<const ir::Graph>(std::move(graph)), opt.batch),
                  0};
    report.rows.push_back(score(served, opt, "fp32", "cpu", split));
    if (opt.precision == "all")
      report.notes.push_back("FP16: not run (the CPU reference runtime computes in FP32)");
  }
  if (opt.precision == "all" && !gpu)
    report.notes.push_back("INT8, FP8: not run (INT8 and FP8 layers run on the GPU only)");

  std::printf("%s", markdown_table(report).c_str());
  if (!opt.json.empty()) write_eval_json(report, opt.json);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto opt = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Top-1 accuracy of an ONNX classifier on a labeled dataset, per precision");
  cmd->add_option("model", opt->model, "ONNX model file")->required();
  cmd->add_option("--dataset", opt->dataset,
                  "Dataset folder: SPLIT_images.npy (uint8 [N,S,S]) and SPLIT_labels.npy "
                  "(int64 [N]), as python/make_digits.py writes")
      ->required();
  cmd->add_option("--split", opt->split, "Which split to score (test, train)");
  cmd->add_option("--precision", opt->precision,
                  "fp32 (TF32 off), fp16, int8 or fp8 (one row per calibrator), or all")
      ->check(CLI::IsMember({"fp32", "fp16", "int8", "fp8", "all"}));
  cmd->add_option("--calibration-images", opt->calibration_images,
                  "INT8: calibrate on this many images of the train split")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", opt->device,
                  "gpu: plans built here; cpu: the reference runtime (FP32); auto: the GPU if "
                  "there is one")
      ->check(CLI::IsMember({"cpu", "gpu", "auto"}));
  cmd->add_option("--batch", opt->batch, "Images per request (the plans' max batch)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--limit", opt->limit, "Score only the first N images of the split")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--workers", opt->workers, "Executors running batches at once")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--timing-cache", opt->timing_cache, "Read and update this timing cache file");
  cmd->add_option("--json", opt->json, "Also write the results to this JSON file");
  cmd->callback([opt] { evaluate(*opt); });
}

}  // namespace anvil::cli
