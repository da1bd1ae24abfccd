#include "eval_calibration.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "anvil/pipeline.h"
#include "quant/batch_source.h"
#include "quant/calibrate.h"
#include "quant/calibration_cache.h"
#include "quant/calibrator.h"

namespace anvil::cli {

namespace {

// Images [first, first + count) of `split` as the engine's FP32 NCHW input:
// enlarged as io::digits_batch does, then (v / 255 - mean) / std with the
// Pipeline's default mean and std, as its uint8 path computes.
Tensor normalized_batch(const io::DigitsSplit& split, std::int64_t first, std::int64_t count,
                        std::int64_t side) {
  const Batch bytes = io::digits_batch(split, first, count, count, side);
  const PipelineOptions defaults;
  Tensor out(DType::kFloat32, {count, 3, side, side});
  float* dst = out.data<float>();
  const std::int64_t plane = side * side;
  for (std::int64_t n = 0; n < count; ++n)
    for (std::int64_t c = 0; c < 3; ++c)
      for (std::int64_t p = 0; p < plane; ++p) {
        const float v =
            static_cast<float>(bytes.nhwc[static_cast<std::size_t>((n * plane + p) * 3 + c)]) /
            255.0f;
        dst[(n * 3 + c) * plane + p] = (v - defaults.mean[c]) / defaults.stddev[c];
      }
  return out;
}

}  // namespace

EvalCalibration calibrate_for_eval(const std::filesystem::path& model, const ir::Graph& graph,
                                   const io::DigitsSplit& train, std::int64_t images,
                                   std::int64_t batch, std::int64_t side,
                                   const std::filesystem::path& dir) {
  const auto start = std::chrono::steady_clock::now();
  const std::string input = quant::single_float_input(graph).name;
  const std::int64_t total = std::min(images, train.count);
  std::vector<quant::Batch> batches;
  for (std::int64_t first = 0; first < total; first += batch)
    batches.push_back(
        {{input, normalized_batch(train, first, std::min(batch, total - first), side)}});
  quant::TensorBatchSource source(std::move(batches));
  quant::CalibrateOptions options;
  options.model_hash = quant::hash_file(model);
  options.progress = [](std::size_t done, std::size_t all) {
    std::fprintf(stderr, "\rcalibrating on the train split: %zu/%zu batches", done, all);
    if (done == all) std::fprintf(stderr, "\n");
  };
  const auto entropy = quant::make_calibrator("entropy");
  const quant::CalibrationResult result = quant::calibrate(graph, source, *entropy, options);
  EvalCalibration out;
  for (const char* name : {"entropy", "minmax", "percentile"}) {
    const auto calibrator = quant::make_calibrator(name);
    quant::CalibrationTable table = result.table;
    table.calibrator = calibrator->signature();
    for (const auto& [tensor, histogram] : result.histograms)
      table.amax[tensor] = calibrator->compute_amax(histogram);
    const std::filesystem::path path = dir / (std::string(name) + ".calib");
    quant::write_calibration_cache(path, table);
    out.caches[name] = path;
  }
  out.images = total;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace anvil::cli
