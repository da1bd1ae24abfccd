// INT8 calibration for `anvil eval`: the training split's first images,
// normalized exactly as the Pipeline's uint8 path feeds the engine, run once
// through the CPU reference (quant::calibrate), and one calibration cache per
// calibrator (entropy, minmax, percentile) computed from the same histograms.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "io/digits_dataset.h"
#include "ir/graph.h"

namespace anvil::cli {

struct EvalCalibration {
  std::map<std::string, std::filesystem::path> caches;  // calibrator name -> cache file
  std::int64_t images = 0;
  double seconds = 0;
};

// Calibrates `graph` (the model at `model`, optimized as the builder will)
// on up to `images` images of `train` (its input [N, 3, side, side]) in
// batches of `batch`, and writes DIR/<calibrator>.calib for each calibrator.
EvalCalibration calibrate_for_eval(const std::filesystem::path& model, const ir::Graph& graph,
                                   const io::DigitsSplit& train, std::int64_t images,
                                   std::int64_t batch, std::int64_t side,
                                   const std::filesystem::path& dir);

}  // namespace anvil::cli
