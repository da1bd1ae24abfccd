// anvil classify: the top-k classes of every JPEG/PNG image in a folder,
// served through the Pipeline (the CPU reference runtime for an ONNX model,
// the GPU engine for a plan).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "anvil/pipeline.h"
#include "commands.h"
#include "io/image.h"
#include "labels.h"
#include "model_loading.h"
#include "pipeline/cpu_executor.h"
#include "pipeline/image_batches.h"
#include "run_plan.h"

#if ANVIL_HAVE_CUDA
#include "anvil/engine.h"
#endif

namespace anvil::cli {

namespace {

namespace fs = std::filesystem;

struct ClassifyOptions {
  ModelOptions model;
  std::string images_dir;
  std::string labels_file;
  int top = 5;
  std::int64_t batch = 8;
  int workers = 2;
  int loader_threads = 4;
};

// The executors, and the classes per image (to keep --top within them).
struct Served {
  ExecutorFactory factory;
  std::int64_t classes = 0;
};

std::int64_t per_image_elements(const std::vector<std::int64_t>& dims) {
  std::int64_t n = 1;
  for (std::size_t d = 1; d < dims.size(); ++d)
    n *= dims[d];
  return n;
}

Served serve_plan(const std::string& path) {
#if ANVIL_HAVE_CUDA
  std::shared_ptr<const Engine> engine = Engine::load(path);
  Served served;
  served.factory = engine_executor_factory(engine);
  for (const IoTensorInfo& io : engine->io_tensors())
    if (!io.is_input) served.classes = per_image_elements(io.dims);
  return served;
#else
  fail(ErrorKind::kUnsupported, path,
       ": plans run on the GPU and this Anvil was built without CUDA; classify the ONNX model "
       "on the CPU instead");
#endif
}

Served serve_onnx(const ModelOptions& model) {
  auto graph = std::make_shared<const ir::Graph>(load_model(model));
  Served served;
  served.factory = pipeline::cpu_executor_factory(graph);
  if (graph->outputs.size() == 1) {
    std::vector<std::int64_t> dims;
    for (const ir::Dim& d : graph->outputs[0]->shape.dims())
      dims.push_back(d.is_known() ? d.size : -1);
    served.classes = per_image_elements(dims);
  }
  return served;
}

// Decodes and preprocesses one file for a [3, H, W] input.
pipeline::ImageLoader imagenet_loader(const ExecutorModelInfo& model) {
  const auto& dims = model.image_dims;
  if (dims.size() != 3 || dims[0] != 3)
    fail(ErrorKind::kUnsupported, "anvil classify needs an input of shape [N,3,H,W]; one image is ",
         to_string(Extents(dims.begin(), dims.end())));
  const int h = static_cast<int>(dims[1]), w = static_cast<int>(dims[2]);
  return [h, w](const fs::path& file) {
    const io::Image image = io::decode_image(file);
    std::vector<float> chw(3 * static_cast<std::size_t>(h) * static_cast<std::size_t>(w));
    io::preprocess_imagenet(image, h, w, chw.data());
    return chw;
  };
}

void print_outcome(const pipeline::ImageOutcome& outcome, const std::vector<std::string>& labels) {
  const std::string name = outcome.file.filename().string();
  if (!outcome.error.empty()) {
    // Flushed first so the error keeps its place among the results on a terminal.
    std::fflush(stdout);
    std::fprintf(stderr, "%s: error: %s\n", name.c_str(), outcome.error.c_str());
    return;
  }
  std::printf("%s:", name.c_str());
  for (std::size_t i = 0; i < outcome.top_k.size(); ++i)
    std::printf("%s%zu. %s (%.3f)", i ? "  " : " ", i + 1,
                label_name(labels, outcome.top_k[i].class_index).c_str(), outcome.top_k[i].score);
  std::printf("\n");
}

// Returns the process exit code: nonzero when any file failed.
int classify(const ClassifyOptions& opt) {
  const std::vector<std::string> labels = read_labels(opt.labels_file);
  const std::vector<fs::path> files = pipeline::list_image_files(opt.images_dir);
  if (files.empty()) fail(ErrorKind::kInvalidArgument, opt.images_dir, ": no JPEG or PNG files");
  Served served = is_plan_file(opt.model.path) ? serve_plan(opt.model.path) : serve_onnx(opt.model);

  PipelineOptions options;
  options.workers = opt.workers;
  options.top_k = static_cast<int>(
      std::clamp<std::int64_t>(opt.top, 1, std::max<std::int64_t>(served.classes, 1)));
  Pipeline pipeline(served.factory, options);
  const pipeline::ImageLoader load = imagenet_loader(pipeline.model_info());

  pipeline::ClassifyFilesOptions classify_options;
  classify_options.batch = opt.batch;
  classify_options.loader_threads = opt.loader_threads;
  const auto start = std::chrono::steady_clock::now();
  const pipeline::ClassifyCounts counts = pipeline::classify_files(
      pipeline, files, load, classify_options,
      [&](const pipeline::ImageOutcome& outcome) { print_outcome(outcome, labels); });
  pipeline.shutdown();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fflush(stdout);
  std::printf("%zu classified, %zu failed, in %zu batch(es) of up to %lld: %.1f images/s\n",
              counts.succeeded, counts.failed, counts.batches,
              static_cast<long long>(pipeline::choose_batch_size(opt.batch, pipeline.model_info())),
              seconds > 0 ? static_cast<double>(counts.succeeded) / seconds : 0.0);
  return counts.failed == 0 ? 0 : 1;
}

}  // namespace

void add_classify_command(CLI::App& app) {
  auto opt = std::make_shared<ClassifyOptions>();
  CLI::App* cmd = app.add_subcommand(
      "classify",
      "Print the top-k classes of every JPEG/PNG image in a folder (ONNX: CPU, plan: GPU)");
  cmd->add_option("model", opt->model.path, "ONNX model or plan file")->required();
  cmd->add_option("dir", opt->images_dir, "Folder of JPEG/PNG images")->required();
  add_model_options(*cmd, opt->model);
  cmd->add_option("--labels", opt->labels_file, "Class names, one per line");
  cmd->add_option("--top", opt->top, "Classes to print per image")->check(CLI::PositiveNumber);
  cmd->add_option("--batch", opt->batch,
                  "Images per request (a fixed-batch model uses its own batch)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--workers", opt->workers, "Executors running batches at once")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--loader-threads", opt->loader_threads, "Images decoded at once")
      ->check(CLI::PositiveNumber);
  cmd->callback([opt] {
    if (const int code = classify(*opt); code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace anvil::cli
