// Shared by the GPU tests of quantized engines (engine_int8_test,
// torchvision_accuracy_test): a scratch directory, a calibration cache made
// on the CPU reference, and the builder config of an INT8 or FP8 plan.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "anvil/builder.h"
#include "io/scratch_dir.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "quant/batch_source.h"
#include "quant/calibrate.h"
#include "quant/calibration_cache.h"

namespace anvil::test {

// A fresh directory for the running test's files, removed with it, named
// after the test.
class ScratchDir : public io::ScratchDir {
 public:
  ScratchDir() : io::ScratchDir(test_name()) {}

 private:
  static std::string test_name() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("anvil-") + info->test_suite_name() + "-" + info->name();
    for (char& c : name)
      if (c == '/') c = '_';  // parameterized names
    return name;
  }
};

// The gpu.models fixture's model `name` (resnet18, mobilenetv2, resnet50).
inline std::filesystem::path fixture_model(const std::string& name) {
  return std::filesystem::path(ANVIL_GPU_MODEL_DIR) / (name + ".onnx");
}

// `anvil calibrate`'s cache for `model` from `batches` with `calibrator`
// (entropy, minmax, percentile), written into `dir`.
inline std::filesystem::path calibrate(const std::filesystem::path& model,
                                       quant::BatchSource& batches, const std::string& calibrator,
                                       const std::filesystem::path& dir) {
  ir::Graph graph = onnx::import_model(model);
  passes::PassManager().run(graph);
  quant::CalibrateOptions options;
  options.model_hash = quant::hash_file(model);
  const quant::CalibrationResult result =
      quant::calibrate(graph, batches, *quant::make_calibrator(calibrator), options);
  const std::filesystem::path cache = dir / (model.stem().string() + ".calib");
  quant::write_calibration_cache(cache, result.table);
  return cache;
}

// Min-max over 2 batches of 4 N(0, 1) images: enough for random-weight models.
inline std::filesystem::path calibrate_on_noise(const std::filesystem::path& model,
                                                const std::filesystem::path& dir) {
  ir::Graph graph = onnx::import_model(model);
  passes::PassManager().run(graph);
  quant::RandomBatchSource batches(graph, 2, 4, /*seed=*/7);
  return calibrate(model, batches, "minmax", dir);
}

enum class Quantized { kInt8, kFp8 };

inline const char* quantized_name(Quantized q) {
  return q == Quantized::kFp8 ? "Fp8" : "Int8";
}

// The ctest names show the parameter: printed, not its bytes.
inline void PrintTo(Quantized q, std::ostream* os) {
  *os << quantized_name(q);
}

// For INSTANTIATE_TEST_SUITE_P: "Int8", "Fp8".
inline std::string quantized_test_name(const ::testing::TestParamInfo<Quantized>& param) {
  return quantized_name(param.param);
}

// An FP16 plan with INT8 or FP8 convolutions from `cache`, for batches 1 to
// `max_batch` of 3 x 224 x 224, tuned at `max_batch`.
inline BuilderConfig quantized_config(Quantized q, const std::filesystem::path& cache,
                                      std::int64_t max_batch = 8) {
  BuilderConfig config;
  config.fp16 = true;
  config.int8 = q == Quantized::kInt8;
  config.fp8 = q == Quantized::kFp8;
  config.calibration_cache = cache;
  config.autotune_iterations = 3;
  const std::vector<std::int64_t> max{max_batch, 3, 224, 224}, min{1, 3, 224, 224};
  config.profile.set_dimensions("input", min, max, max);
  return config;
}

}  // namespace anvil::test
