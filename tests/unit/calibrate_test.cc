// Post-training calibration end to end on the CPU: a Conv -> Relu -> Conv
// model run on known batches, checked against activations computed by the
// reference runtime directly; which tensors are calibrated; the fingerprint;
// the cache round trip and hit; the .npy batch source.
#include "quant/calibrate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "io/npy.h"
#include "pass_test_util.h"
#include "quant/batch_source.h"
#include "quant/calibration_cache.h"
#include "quant/calibrator.h"

namespace anvil::quant {
namespace {

namespace fs = std::filesystem;
using passes::testing::GraphBuilder;

constexpr const char* kHash = "test-model";
const char* const kRelu = "Relu_1_out0";  // GraphBuilder names outputs "<Op>_<index>_out0"

// x [N,3,6,6] -> Conv 3->4 -> Relu -> Conv 4->2. With `expose_relu`, the Relu
// output is a graph output too, so a plain run returns it (same weights: the
// builder's generator is seeded).
ir::Graph tiny_model(bool expose_relu = false) {
  GraphBuilder b;
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(3), ir::Dim::known(6),
                                         ir::Dim::known(6)}));
  ir::Value* relu = b.node("Relu", {b.conv(x, 3, 4, 3, /*bias=*/true)});
  b.output(b.conv(relu, 4, 2, 3));
  if (expose_relu) b.output(relu);
  return b.finish();
}

// Three batches of 2 with different spreads, so that the max moves.
std::vector<Batch> known_batches() {
  std::mt19937 rng(42);
  std::vector<Batch> batches;
  for (float scale : {1.0f, 3.0f, 0.5f})
    batches.push_back({{"x", passes::testing::random_tensor({2, 3, 6, 6}, rng, scale)}});
  return batches;
}

float max_abs(const Tensor& t) {
  float m = 0.0f;
  for (float v : t.values<float>())
    m = std::max(m, std::fabs(v));
  return m;
}

// max|x| of the input and of the Relu output over `batches`, by running the
// model with the Relu exposed.
std::map<std::string, float> expected_max_abs(const std::vector<Batch>& batches) {
  const ir::Graph graph = tiny_model(/*expose_relu=*/true);
  std::map<std::string, float> expected{{"x", 0.0f}, {kRelu, 0.0f}};
  for (const Batch& batch : batches) {
    const auto outputs = reference::ReferenceRuntime(graph).run(batch);
    expected["x"] = std::max(expected["x"], max_abs(batch.at("x")));
    expected[kRelu] = std::max(expected[kRelu], max_abs(outputs.at(1)));
  }
  return expected;
}

CalibrateOptions options_with(int bins = Histogram::kDefaultBins) {
  CalibrateOptions options;
  options.model_hash = kHash;
  options.num_bins = bins;
  return options;
}

std::set<std::string> names_of(const CalibrationTable& table) {
  std::set<std::string> names;
  for (const auto& [name, amax] : table.amax)
    names.insert(name);
  return names;
}

// A fresh folder per test and process, removed afterwards.
class TempDir {
 public:
  explicit TempDir(const std::string& tag)
      : path_(fs::temp_directory_path() /
              ("anvil_calibrate_test_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(Calibrate, MinMaxIsTheExactMaxOfEachCalibratedTensor) {
  const ir::Graph graph = tiny_model();
  const auto batches = known_batches();
  TensorBatchSource source(batches);
  const auto result = calibrate(graph, source, MinMaxCalibrator(), options_with());
  const auto expected = expected_max_abs(batches);
  ASSERT_EQ(result.table.amax.size(), expected.size());
  for (const auto& [name, amax] : expected) {
    ASSERT_TRUE(result.table.amax.count(name)) << name;
    EXPECT_EQ(result.table.amax.at(name), amax) << name;
  }
  EXPECT_GT(expected.at("x"), 3.0f);  // the second batch's spread, not the first's
  EXPECT_EQ(result.batches, 3u);
  EXPECT_EQ(result.table.calibrator, "minmax");
  EXPECT_EQ(result.histograms.at("x").total_count(), 3u * 2 * 3 * 6 * 6);
}

TEST(Calibrate, OptimizedGraphCalibratesTheSameTensors) {
  ir::Graph graph = tiny_model();
  passes::PassManager().run(graph);
  ASSERT_EQ(passes::testing::count_of(graph, "FusedConv"), 1);  // Conv + Relu fused
  const auto batches = known_batches();
  TensorBatchSource source(batches);
  const auto table = calibrate(graph, source, MinMaxCalibrator(), options_with()).table;
  for (const auto& [name, amax] : expected_max_abs(batches)) {
    ASSERT_TRUE(table.amax.count(name)) << name;
    EXPECT_FLOAT_EQ(table.amax.at(name), amax) << name;
  }
  EXPECT_EQ(names_of(table), (std::set<std::string>{"x", kRelu}));
}

TEST(Calibrate, TableNamesExactlyTheQuantizedOperands) {
  // Conv reads x and the Relu output; the second Conv's output (a graph
  // output) and the first Conv's output (read only by Relu) are not INT8
  // operands; weights and biases are constants.
  const ir::Graph graph = tiny_model();
  std::vector<std::string> values;
  for (const ir::Value* v : calibrated_values(graph))
    values.push_back(v->name);
  EXPECT_EQ(values, (std::vector<std::string>{"x", kRelu}));

  // Gemm and MatMul: both non-constant operands, never the constant B or C.
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{2, 4});
  ir::Value* y = b.input("y", Extents{4, 4});
  ir::Value* m = b.node("MatMul", {x, y});
  ir::Value* g = b.node("Gemm", {m, b.weight("B", {4, 3}), b.weight("C", {3})});
  b.output(b.node("Gemm", {g, b.weight("B2", {3, 2})}));
  const ir::Graph products = b.finish();
  values.clear();
  for (const ir::Value* v : calibrated_values(products))
    values.push_back(v->name);
  EXPECT_EQ(values, (std::vector<std::string>{"x", "y", m->name, g->name}));
}

TEST(Calibrate, FingerprintFollowsInputShapeAndBinsOnly) {
  const ir::Graph graph = tiny_model();
  auto fingerprint = [&](std::int64_t batch, unsigned seed, int bins, const Calibrator& c) {
    RandomBatchSource source(graph, 2, batch, seed);
    return calibrate(graph, source, c, options_with(bins)).table.fingerprint;
  };
  const MinMaxCalibrator minmax;
  const std::string base = fingerprint(2, 0, 2048, minmax);
  EXPECT_EQ(base, calibration_fingerprint(kHash, {{"x", {2, 3, 6, 6}}}, 2048));
  EXPECT_EQ(fingerprint(2, 99, 2048, minmax), base);                 // other data
  EXPECT_EQ(fingerprint(2, 0, 2048, PercentileCalibrator()), base);  // calibrator: own field
  EXPECT_NE(fingerprint(1, 0, 2048, minmax), base);                  // input shape
  EXPECT_NE(fingerprint(2, 0, 1024, minmax), base);                  // bin count
  EXPECT_NE(calibration_fingerprint("other-model", {{"x", {2, 3, 6, 6}}}, 2048), base);
}

TEST(Calibrate, ModelHashIsStableFnv1a) {
  const std::string text = "a";
  EXPECT_EQ(fnv1a64_hex(std::as_bytes(std::span<const char>(text))), "af63dc4c8601ec8c");
  EXPECT_EQ(fnv1a64_hex({}), "cbf29ce484222325");
  EXPECT_THROW(hash_file("/nonexistent/model.onnx"), Error);
}

TEST(Calibrate, CacheRoundTripsAndASecondRunHits) {
  TempDir dir("cache");
  const fs::path path = dir.path() / "model.calib";
  const ir::Graph graph = tiny_model();
  const EntropyCalibrator entropy;
  TensorBatchSource source(known_batches());
  const auto table = calibrate(graph, source, entropy, options_with()).table;

  EXPECT_EQ(load_calibration_cache(path, table.fingerprint, entropy.signature()).status,
            CacheStatus::kMissing);
  write_calibration_cache(path, table);
  EXPECT_EQ(read_calibration_cache(path), table);

  // The CLI's second run: the fingerprint it computes before running matches.
  const std::string fingerprint = calibration_fingerprint(kHash, source.shapes(), 2048);
  const CacheLookup hit = load_calibration_cache(path, fingerprint, entropy.signature());
  EXPECT_EQ(hit.status, CacheStatus::kHit);
  EXPECT_EQ(hit.table, table);
  EXPECT_EQ(load_calibration_cache(path, fingerprint, MinMaxCalibrator().signature()).status,
            CacheStatus::kStale);
  EXPECT_EQ(load_calibration_cache(path, calibration_fingerprint(kHash, source.shapes(), 1024),
                                   entropy.signature())
                .status,
            CacheStatus::kStale);
}

TEST(Calibrate, ProgressReachesTotalAndMaxBatchesLimitsIt) {
  const ir::Graph graph = tiny_model();
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  CalibrateOptions options = options_with();
  options.progress = [&](std::size_t done, std::size_t total) { calls.emplace_back(done, total); };
  TensorBatchSource source(known_batches());
  calibrate(graph, source, MinMaxCalibrator(), options);
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls.back(), std::make_pair(std::size_t{3}, std::size_t{3}));

  calls.clear();
  options.max_batches = 2;
  const auto result = calibrate(graph, source, MinMaxCalibrator(), options);
  EXPECT_EQ(calls.back(), std::make_pair(std::size_t{2}, std::size_t{2}));
  EXPECT_EQ(result.batches, 2u);
  EXPECT_EQ(result.table.amax.at("x"),
            expected_max_abs({known_batches()[0], known_batches()[1]}).at("x"));
}

TEST(Calibrate, ErrorsNameWhatIsWrong) {
  const ir::Graph graph = tiny_model();
  TensorBatchSource empty({});
  EXPECT_THROW(calibrate(graph, empty, MinMaxCalibrator(), options_with()), Error);

  TensorBatchSource source(known_batches());
  EXPECT_THROW(calibrate(graph, source, MinMaxCalibrator(), CalibrateOptions{}), Error);  // no hash
  // Fewer bins than the entropy calibrator's 128 levels: refused before running.
  std::size_t batches_run = 0;
  CalibrateOptions few_bins = options_with(64);
  few_bins.progress = [&](std::size_t, std::size_t) { ++batches_run; };
  EXPECT_THROW(calibrate(graph, source, EntropyCalibrator(), few_bins), Error);
  EXPECT_EQ(batches_run, 0u);

  auto batches = known_batches();
  batches[1].at("x").data<float>()[5] = std::numeric_limits<float>::quiet_NaN();
  TensorBatchSource with_nan(batches);
  try {
    calibrate(graph, with_nan, MinMaxCalibrator(), options_with());
    ADD_FAILURE() << "a NaN input was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'x'"), std::string::npos) << e.what();
  }
}

TEST(NpyBatchSource, ReadsFilesInSortedOrder) {
  TempDir dir("npy_order");
  // Written out of order; batch k is filled with the value k.
  for (int k : {2, 0, 1}) {
    Tensor t(DType::kFloat32, {1, 3, 6, 6});
    std::fill_n(t.data<float>(), t.element_count(), static_cast<float>(k));
    io::write_npy(dir.path() / ("batch_" + std::to_string(k) + ".npy"), t);
  }
  const ir::Graph graph = tiny_model();
  const auto files = list_npy_files({dir.path()});
  ASSERT_EQ(files.size(), 3u);
  NpyBatchSource source(single_float_input(graph), files);
  EXPECT_EQ(source.shapes(), (std::map<std::string, Extents>{{"x", {1, 3, 6, 6}}}));
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(files[k].filename(), "batch_" + std::to_string(k) + ".npy");
    EXPECT_EQ(source.batch(k).at("x").values<float>()[7], static_cast<float>(k));
  }
  // And it drives a calibration: max|x| is the last file's 2.
  NpyBatchSource again(single_float_input(graph), files);
  EXPECT_EQ(calibrate(graph, again, MinMaxCalibrator(), options_with()).table.amax.at("x"), 2.0f);
}

TEST(NpyBatchSource, RejectsAFileOfTheWrongShapeNamingIt) {
  TempDir dir("npy_shape");
  io::write_npy(dir.path() / "a.npy", Tensor(DType::kFloat32, {2, 3, 6, 6}));
  io::write_npy(dir.path() / "b_other_batch.npy", Tensor(DType::kFloat32, {1, 3, 6, 6}));
  io::write_npy(dir.path() / "c_bad_channels.npy", Tensor(DType::kFloat32, {2, 4, 6, 6}));
  const ir::Graph graph = tiny_model();
  const ir::Value& input = single_float_input(graph);
  NpyBatchSource source(input, list_npy_files({dir.path()}));
  EXPECT_NO_THROW(source.batch(0));
  auto message_of = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  };
  EXPECT_NE(message_of([&] { source.batch(1); }).find("b_other_batch.npy"), std::string::npos);
  EXPECT_NE(message_of([&] { source.batch(2); }).find("c_bad_channels.npy"), std::string::npos);
  // A first file that does not fit the model fails at once.
  const std::string first =
      message_of([&] { NpyBatchSource(input, {dir.path() / "c_bad_channels.npy"}); });
  EXPECT_NE(first.find("c_bad_channels.npy"), std::string::npos) << first;
  EXPECT_NE(first.find("[N,3,6,6]"), std::string::npos) << first;
  EXPECT_THROW(list_npy_files({dir.path() / "missing"}), Error);
}

}  // namespace
}  // namespace anvil::quant
