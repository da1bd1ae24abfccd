// anvil calibrate: run an ONNX model on calibration data (CPU reference) and
// write the INT8 calibration cache (per-tensor amax) that INT8 builds read.
#include "quant/calibrate.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "quant/batch_source.h"
#include "quant/calibration_cache.h"
#include "quant/calibrator.h"

namespace anvil::cli {

namespace {

namespace fs = std::filesystem;

struct CalibrateCommandOptions {
  std::string model;
  std::vector<std::string> data;
  std::string calibrator = "entropy";
  double percentile = 99.99;
  std::int64_t batch = 0;  // 0: the model's fixed batch, else 8 (images only)
  std::size_t max_batches = 0;
  int bins = quant::Histogram::kDefaultBins;
  std::string output;
};

bool has_images(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (entry.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) return true;
  }
  return false;
}

bool has_npy(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".npy") return true;
  return false;
}

// One image folder, or any mix of .npy files and folders of them.
std::unique_ptr<quant::BatchSource> make_source(const ir::Graph& graph,
                                                const CalibrateCommandOptions& opt) {
  const ir::Value& input = quant::single_float_input(graph);
  const bool image_folder = opt.data.size() == 1 && fs::is_directory(opt.data[0]) &&
                            !has_npy(opt.data[0]) && has_images(opt.data[0]);
  if (image_folder) {
    std::int64_t batch = opt.batch;
    if (batch == 0)
      batch = input.shape.rank() > 0 && input.shape[0].is_known() ? input.shape[0].size : 8;
    auto source = std::make_unique<quant::ImageBatchSource>(input, opt.data[0], batch);
    if (source->images_left_out())
      std::printf("%zu image(s) left out: they make no full batch of %lld\n",
                  source->images_left_out(), static_cast<long long>(batch));
    return source;
  }
  if (opt.batch != 0)
    fail(ErrorKind::kInvalidArgument,
         "--batch applies to an image folder; each .npy file is one batch as it is");
  std::vector<fs::path> paths(opt.data.begin(), opt.data.end());
  return std::make_unique<quant::NpyBatchSource>(input, quant::list_npy_files(paths));
}

void print_progress(std::size_t done, std::size_t total) {
  constexpr std::size_t kWidth = 30;
  const std::size_t filled = total ? done * kWidth / total : kWidth;
  std::fprintf(stderr, "\rcalibrating [%-*s] %zu/%zu batches", static_cast<int>(kWidth),
               std::string(filled, '#').c_str(), done, total);
  if (done == total) std::fprintf(stderr, "\n");
}

void print_summary(const CalibrateCommandOptions& opt, const quant::CalibrationResult& result,
                   double seconds) {
  const auto& amax = result.table.amax;
  const auto [low, high] = std::minmax_element(
      amax.begin(), amax.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  std::printf("Calibrated %zu tensors over %zu batches in %.1f s (%s)\n", amax.size(),
              result.batches, seconds, result.table.calibrator.c_str());
  if (!amax.empty())
    std::printf("amax %g ('%s') .. %g ('%s')\n", static_cast<double>(low->second),
                low->first.c_str(), static_cast<double>(high->second), high->first.c_str());
  std::printf("wrote %s\n", opt.output.c_str());
}

void calibrate_model(const CalibrateCommandOptions& opt) {
  quant::CalibratorOptions calibrator_options;
  calibrator_options.percentile = opt.percentile;
  const auto calibrator = quant::make_calibrator(opt.calibrator, calibrator_options);

  const std::string model_hash = quant::hash_file(opt.model);
  ir::Graph graph = onnx::import_model(opt.model);
  // The names in the cache must be those of the graph the builder lowers.
  passes::PassManager().run(graph);
  const auto source = make_source(graph, opt);

  const std::string fingerprint =
      quant::calibration_fingerprint(model_hash, source->shapes(), opt.bins);
  const quant::CacheLookup cached =
      quant::load_calibration_cache(opt.output, fingerprint, calibrator->signature());
  if (cached.status == quant::CacheStatus::kHit) {
    std::printf("%s is up to date (%zu tensors, %s, %s): calibration skipped\n", opt.output.c_str(),
                cached.table.amax.size(), cached.table.calibrator.c_str(), fingerprint.c_str());
    return;
  }
  if (cached.status == quant::CacheStatus::kStale)
    std::printf("%s is stale (%s): recalibrating\n", opt.output.c_str(), cached.reason.c_str());

  quant::CalibrateOptions options;
  options.model_hash = model_hash;
  options.num_bins = opt.bins;
  options.max_batches = opt.max_batches;
  options.progress = print_progress;
  std::fflush(stdout);  // the messages above come before the progress bar on stderr
  const auto start = std::chrono::steady_clock::now();
  quant::CalibrationResult result;
  try {
    result = quant::calibrate(graph, *source, *calibrator, options);
  } catch (const Error&) {
    std::fputc('\n', stderr);  // end the progress bar's line before main() prints the error
    throw;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  quant::write_calibration_cache(opt.output, result.table);
  print_summary(opt, result, seconds);
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto opt = std::make_shared<CalibrateCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate", "Collect INT8 activation ranges on calibration data into a calibration cache");
  cmd->add_option("model", opt->model, "ONNX model file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--data", opt->data,
                  "Calibration data: .npy files (one batch each) and folders of them, or one "
                  "folder of JPEG/PNG images")
      ->required();
  cmd->add_option("--calibrator", opt->calibrator, "How amax is chosen from the histograms")
      ->capture_default_str()
      ->check(CLI::IsMember({"entropy", "minmax", "percentile"}));
  cmd->add_option("--percentile", opt->percentile, "For --calibrator percentile: in (0, 100]")
      ->capture_default_str();
  cmd->add_option("--batch", opt->batch, "Images per batch (image folders only)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-batches", opt->max_batches, "Use at most this many batches")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--bins", opt->bins, "Histogram bins per tensor (even)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("-o,--output", opt->output, "Calibration cache to write")->required();
  cmd->callback([opt, cmd] {
    if (cmd->count("--percentile") && opt->calibrator != "percentile")
      fail(ErrorKind::kInvalidArgument, "--percentile needs --calibrator percentile");
    calibrate_model(*opt);
  });
}

}  // namespace anvil::cli
