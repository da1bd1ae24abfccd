// anvil run: execute a model on a batch and print the top-k classes per sample.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

#include "commands.h"
#include "io/image.h"
#include "io/npy.h"
#include "labels.h"
#include "model_loading.h"
#include "reference/reference_runtime.h"
#include "run_plan.h"
#include "shape_option.h"

namespace anvil::cli {

namespace {

namespace fs = std::filesystem;

struct RunOptions {
  ModelOptions model;
  std::string device = "auto";
  std::int64_t batch = 1;
  std::string shapes;  // --shapes NAME:NxCxHxW (plans)
  std::string input_npy;
  std::string images_dir;
  std::string labels_file;
  std::string output_npy;
  int top = 5;
  int iterations = 1;
  unsigned seed = 0;
  PlanRunOptions plan;  // the GPU engine's options, for plan files
};

const ir::Value& single_input(const ir::Graph& graph) {
  if (graph.inputs.size() != 1)
    fail(ErrorKind::kUnsupported, "the model has ", graph.inputs.size(),
         " inputs; `anvil run` feeds models with exactly one");
  return *graph.inputs[0];
}

// The model's input shape with every unknown dimension set to `batch`.
Extents input_extents(const ir::Value& input, std::int64_t batch) {
  Extents extents;
  for (const ir::Dim& d : input.shape.dims())
    extents.push_back(d.is_known() ? d.size : batch);
  return extents;
}

Tensor random_input(const ir::Value& input, std::int64_t batch, unsigned seed) {
  if (input.dtype != DType::kFloat32)
    fail(ErrorKind::kUnsupported, "input '", input.name, "' is ", to_string(input.dtype),
         "; random data is generated for float32 inputs only (pass --input x.npy)");
  Tensor t(DType::kFloat32, input_extents(input, batch));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : std::span<float>(t.data<float>(), static_cast<std::size_t>(t.element_count())))
    x = normal(rng);
  return t;
}

// Decodes every image of `dir` (sorted by name); files that fail are reported
// and left out. Returns the batch and the names of the files it holds.
Tensor image_batch(const ir::Value& input, const std::string& dir,
                   std::vector<std::string>& names) {
  if (input.shape.rank() != 4 || !input.shape[2].is_known() || !input.shape[3].is_known())
    fail(ErrorKind::kUnsupported, "--images needs an input of shape [N,3,H,W]; '", input.name,
         "' is ", to_string(input.shape));
  if (!fs::is_directory(dir)) fail(ErrorKind::kIo, dir, ": not a directory");
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  const int h = static_cast<int>(input.shape[2].size), w = static_cast<int>(input.shape[3].size);
  std::vector<float> pixels;
  for (const fs::path& file : files) {
    try {
      io::Image image = io::decode_image(file);
      pixels.resize(pixels.size() + 3 * static_cast<std::size_t>(h) * w);
      io::preprocess_imagenet(image, h, w, pixels.data() + pixels.size() - 3 * h * w);
      names.push_back(file.filename().string());
    } catch (const Error& e) {
      std::fprintf(stderr, "anvil: skipping %s\n", e.what());
    }
  }
  if (names.empty()) fail(ErrorKind::kInvalidArgument, dir, ": no readable JPEG or PNG images");
  return Tensor::from<float>({static_cast<std::int64_t>(names.size()), 3, h, w}, pixels);
}

void print_top_k(const Tensor& scores, const std::vector<std::string>& sample_names,
                 const std::vector<std::string>& labels, int top) {
  if (scores.dtype() != DType::kFloat32 || scores.rank() < 1) return;
  const std::int64_t batch = scores.extents()[0];
  const std::int64_t classes = batch ? scores.element_count() / batch : 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    const float* row = scores.data<float>() + b * classes;
    // Softmax over the row turns logits into probabilities for display.
    const float peak = *std::max_element(row, row + classes);
    double sum = 0;
    for (std::int64_t c = 0; c < classes; ++c)
      sum += std::exp(row[c] - peak);
    std::vector<std::int64_t> order(static_cast<std::size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    const auto k = std::min<std::int64_t>(top, classes);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](std::int64_t a, std::int64_t c) { return row[a] > row[c]; });
    const std::string name = b < static_cast<std::int64_t>(sample_names.size())
                                 ? sample_names[static_cast<std::size_t>(b)]
                                 : cat("sample ", b);
    std::printf("%s:", name.c_str());
    for (std::int64_t i = 0; i < k; ++i) {
      const std::int64_t c = order[static_cast<std::size_t>(i)];
      const std::string label = label_name(labels, c);
      std::printf("  %s %.4f", label.c_str(), std::exp(row[c] - peak) / sum);
    }
    std::printf("\n");
  }
}

void run_model(const RunOptions& opt) {
  if (opt.device == "gpu")
    fail(ErrorKind::kUnsupported, "--device gpu runs plans: `anvil build ", opt.model.path,
         " -o model.plan` first, then `anvil run model.plan`");
  std::printf(
      "notice: running on the CPU reference runtime (plain FP32 kernels); for the GPU "
      "engine, `anvil build` a plan and run that\n");
  const auto t0 = std::chrono::steady_clock::now();
  const ir::Graph graph = load_model(opt.model);
  const auto t1 = std::chrono::steady_clock::now();
  const ir::Value& input = single_input(graph);

  std::vector<std::string> names;
  Tensor batch = !opt.input_npy.empty()    ? io::read_npy(opt.input_npy)
                 : !opt.images_dir.empty() ? image_batch(input, opt.images_dir, names)
                                           : random_input(input, opt.batch, opt.seed);
  reference::ReferenceRuntime runtime(graph);
  std::vector<Tensor> outputs;
  std::vector<double> times_ms;
  for (int i = 0; i < opt.iterations; ++i) {
    const auto start = std::chrono::steady_clock::now();
    outputs = runtime.run({{input.name, batch}});
    times_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  print_top_k(outputs[0], names, read_labels(opt.labels_file), opt.top);
  if (!opt.output_npy.empty()) io::write_npy(opt.output_npy, outputs[0]);

  std::sort(times_ms.begin(), times_ms.end());
  const double median = times_ms[times_ms.size() / 2];
  const std::int64_t n = batch.extents().empty() ? 1 : batch.extents()[0];
  std::printf("import %.1f ms; batch %lld %s: median %.1f ms over %d run(s), %.1f samples/s\n",
              std::chrono::duration<double, std::milli>(t1 - t0).count(), static_cast<long long>(n),
              to_string(batch.extents()).c_str(), median, opt.iterations,
              1000.0 * static_cast<double>(n) / median);
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto opt = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run an ONNX model (CPU reference) or a plan (GPU engine) on a batch");
  cmd->add_option("model", opt->model.path, "ONNX model file")->required();
  add_model_options(*cmd, opt->model);
  cmd->add_option("--device", opt->device, "Where to run: auto, cpu or gpu")
      ->check(CLI::IsMember({"auto", "cpu", "gpu"}));
  cmd->add_option("--batch", opt->batch, "Batch size of the random input")
      ->check(CLI::PositiveNumber);
  auto* npy = cmd->add_option("--input", opt->input_npy, "Input batch as a .npy file");
  cmd->add_option("--images", opt->images_dir, "Folder of JPEG/PNG images to classify")
      ->excludes(npy);
  cmd->add_option("--labels", opt->labels_file, "Class names, one per line");
  cmd->add_option("--output", opt->output_npy, "Write the first output to this .npy file");
  cmd->add_option("--top", opt->top, "Classes to print per sample")->check(CLI::PositiveNumber);
  cmd->add_option("--iterations", opt->iterations, "Timed runs")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", opt->seed, "Seed of the random input");
  cmd->add_option("--shapes", opt->shapes,
                  "Plans: the input's shape, NAME:NxCxHxW (default: --batch, and the "
                  "profile's opt height and width where they vary)");
  cmd->add_option("--warmup", opt->plan.warmup_ms, "Plans: warm-up time in ms");
  cmd->add_option("--duration", opt->plan.duration_s, "Plans: timed run length in seconds");
  cmd->add_flag("--no-data-transfers", opt->plan.no_data_transfers,
                "Plans: leave host-device copies out of the timing");
  cmd->add_option("--export-times", opt->plan.export_times, "Plans: per-iteration times as JSON");
  cmd->add_option(
      "--export-trace", opt->plan.export_trace,
      "Plans: a Chrome trace (Perfetto) of the timed run, with --dump-profile's layers");
  cmd->add_flag("--dump-profile", opt->plan.dump_profile,
                "Plans: then print each layer's mean GPU time and share");
  cmd->add_flag("--cuda-graph", opt->plan.cuda_graph,
                "Plans: replay the network as a CUDA graph (falls back to plain launches, "
                "saying why)");
  cmd->callback([opt, cmd] {
    if (!is_plan_file(opt->model.path)) return run_model(*opt);
    PlanRunOptions plan = opt->plan;
    plan.plan = opt->model.path;
    plan.batch = opt->batch;
    if (!opt->shapes.empty()) {
      auto [name, dims] = parse_shape(opt->shapes, "--shapes");
      plan.shape = std::move(dims);
      plan.batch = plan.shape.empty() ? plan.batch : plan.shape[0];
      plan.shape_input = std::move(name);
    }
    plan.top = opt->top;
    plan.seed = opt->seed;
    if (cmd->count("--iterations")) plan.iterations = opt->iterations;
    run_plan(plan);
  });
}

}  // namespace anvil::cli
