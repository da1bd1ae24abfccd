// INT8 calibration on the CPU: the |x| histogram (binning, lossless range
// growth), the three calibrators on histograms whose answer is known, and the
// calibration cache file (round trip, every corruption is a named error).
#include "quant/calibrator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "io/scratch_dir.h"
#include "quant/calibration_cache.h"
#include "quant/histogram.h"

namespace anvil::quant {
namespace {

namespace fs = std::filesystem;

template <typename Fn>
ErrorKind error_kind_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no anvil::Error thrown";
  return ErrorKind::kInternal;
}

// Values spread evenly over [-max, max]: every bin of |x| gets the same count.
std::vector<float> evenly_spaced(int count, float max) {
  std::vector<float> values;
  for (int k = 0; k < count; ++k)
    values.push_back(-max + 2.0f * max * static_cast<float>(k) / static_cast<float>(count - 1));
  return values;
}

std::vector<float> random_uniform(std::mt19937& rng, int count, float max) {
  std::uniform_real_distribution<float> uniform(-max, max);
  std::vector<float> values(static_cast<std::size_t>(count));
  for (float& v : values)
    v = uniform(rng);
  return values;
}

// 1e6 samples of |N(0, 1)| binned over [0, range], computed rather than drawn.
std::vector<std::uint64_t> half_normal_counts(int bins, double range) {
  const double width = range / bins;
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(bins));
  for (int k = 0; k < bins; ++k) {
    const double x = (k + 0.5) * width;
    const double density = 2.0 * std::exp(-x * x / 2.0) / std::sqrt(2.0 * std::numbers::pi);
    counts[static_cast<std::size_t>(k)] =
        static_cast<std::uint64_t>(std::llround(1e6 * density * width));
  }
  return counts;
}

// --- Histogram ---------------------------------------------------------------

TEST(Histogram, BinsAreClosedOnTheRight) {
  Histogram h(4);
  const std::vector<float> values = {0.0f, 0.25f, 0.3f, -0.5f, 0.75f, 1.0f, -1.0f};
  h.add(values);
  EXPECT_DOUBLE_EQ(h.range(), 1.0);
  EXPECT_EQ(h.max_abs(), 1.0f);
  EXPECT_EQ(h.total_count(), 7u);
  // [0, .25] (.25, .5] (.5, .75] (.75, 1]
  EXPECT_EQ(std::vector<std::uint64_t>(h.counts().begin(), h.counts().end()),
            (std::vector<std::uint64_t>{2, 2, 1, 2}));
}

TEST(Histogram, RangeGrowthKeepsEveryCountInItsBin) {
  std::mt19937 rng(1);
  const auto small = random_uniform(rng, 5000, 1.0f);
  const auto large = random_uniform(rng, 5000, 3.5f);
  const auto largest = evenly_spaced(101, 3.9f);

  Histogram grown(64);
  grown.add(small);
  const double first_range = grown.range();
  grown.add(large);
  grown.add(largest);
  // Two doublings: a range of ~1 becomes ~4, still >= 3.9.
  EXPECT_DOUBLE_EQ(grown.range(), 4.0 * first_range);

  // The same data binned with the final range from the start.
  Histogram direct = Histogram::from_counts(std::vector<std::uint64_t>(64, 0), grown.range(), 0.0f);
  direct.add(small);
  direct.add(large);
  direct.add(largest);
  EXPECT_DOUBLE_EQ(direct.range(), grown.range());
  EXPECT_EQ(std::vector<std::uint64_t>(grown.counts().begin(), grown.counts().end()),
            std::vector<std::uint64_t>(direct.counts().begin(), direct.counts().end()));
  EXPECT_EQ(grown.total_count(), 10101u);
  EXPECT_EQ(grown.max_abs(), 3.9f);
}

TEST(Histogram, ZerosBeforeTheFirstNonZeroValueStayInBinZero) {
  Histogram h(8);
  h.add(std::vector<float>{0.0f, -0.0f, 0.0f});
  EXPECT_EQ(h.range(), 0.0);
  h.add(std::vector<float>{2.0f});
  EXPECT_DOUBLE_EQ(h.range(), 2.0);
  EXPECT_EQ(h.counts()[0], 3u);
  EXPECT_EQ(h.counts()[7], 1u);
  EXPECT_EQ(h.total_count(), 4u);
}

TEST(Histogram, RejectsBadInput) {
  Histogram h(8);
  h.add(std::vector<float>{1.0f});
  EXPECT_EQ(error_kind_of([&] {
              h.add(std::vector<float>{0.5f, std::nanf("")});
            }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind_of([&] { h.add(std::vector<float>{INFINITY}); }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(h.total_count(), 1u);  // a rejected batch adds nothing
  EXPECT_EQ(error_kind_of([] { Histogram odd(3); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind_of([] { Histogram none(0); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind_of([] {
              Histogram::from_counts({1, 1}, 1.0, 2.0f);
            }),
            ErrorKind::kInvalidArgument);
}

// --- Calibrators -------------------------------------------------------------

TEST(Calibrator, MinMaxOfUniformDataIsTheMax) {
  Histogram h;
  h.add(evenly_spaced(10001, 2.5f));
  EXPECT_EQ(MinMaxCalibrator().compute_amax(h), 2.5f);
  EXPECT_FLOAT_EQ(int8_scale(MinMaxCalibrator().compute_amax(h)), 2.5f / 127.0f);
}

// 1000 values: 900 in bin 9, 99 in bin 99, 1 in bin 999; bins are 1 wide.
Histogram three_spikes() {
  std::vector<std::uint64_t> counts(2048, 0);
  counts[9] = 900;
  counts[99] = 99;
  counts[999] = 1;
  return Histogram::from_counts(counts, 2048.0, 999.5f);
}

TEST(Calibrator, PercentileIsTheUpperEdgeOfTheBinReachingIt) {
  const Histogram h = three_spikes();
  EXPECT_EQ(PercentileCalibrator(50).compute_amax(h), 10.0f);
  EXPECT_EQ(PercentileCalibrator(90).compute_amax(h), 10.0f);  // 900 of 1000 reached in bin 9
  EXPECT_EQ(PercentileCalibrator(90.1).compute_amax(h), 100.0f);
  EXPECT_EQ(PercentileCalibrator(99.9).compute_amax(h), 100.0f);   // 999 of 1000
  EXPECT_EQ(PercentileCalibrator(99.99).compute_amax(h), 999.5f);  // capped at max|x|
  EXPECT_EQ(PercentileCalibrator(100).compute_amax(h), MinMaxCalibrator().compute_amax(h));
}

TEST(Calibrator, MassInAFewBinsKeepsTheFullRangeForMinMaxAndEntropy) {
  const Histogram h = three_spikes();
  EXPECT_EQ(MinMaxCalibrator().compute_amax(h), 999.5f);
  // Each occupied bin is its own quantization level once nothing is clipped,
  // so KL is 0 first at i = 1000 bins: amax = 1000.5, capped at max|x|.
  EXPECT_EQ(EntropyCalibrator().compute_amax(h), 999.5f);
}

TEST(Calibrator, EntropyClipsASparseTailAboveTheBulk) {
  auto counts = half_normal_counts(2048, 20.0);
  for (double x : {6.0, 8.0, 10.0, 12.0, 15.0, 19.99})
    counts[static_cast<std::size_t>(x / 20.0 * 2048)] += 1;
  const Histogram h = Histogram::from_counts(counts, 20.0, 19.99f);
  const float amax = EntropyCalibrator().compute_amax(h);
  EXPECT_GT(amax, 3.0f);  // keeps > 99.7% of a unit normal
  EXPECT_LT(amax, 6.0f);  // drops the six outliers, max|x| = 20
  EXPECT_EQ(MinMaxCalibrator().compute_amax(h), 19.99f);
  // 99.99% of 1e6 draws of |N(0,1)| lie below ~3.9.
  EXPECT_NEAR(PercentileCalibrator().compute_amax(h), 3.89, 0.02);
}

TEST(Calibrator, EntropyOfUniformDataIsCloseToTheMax) {
  Histogram exact;
  exact.add(evenly_spaced(2048 * 50 + 1, 3.0f));
  EXPECT_EQ(EntropyCalibrator().compute_amax(exact), 3.0f);

  std::mt19937 rng(2);
  Histogram sampled;
  for (int batch = 0; batch < 4; ++batch)
    sampled.add(random_uniform(rng, 100000, 3.0f));
  EXPECT_GT(EntropyCalibrator().compute_amax(sampled), 0.95f * sampled.max_abs());
}

TEST(Calibrator, EntropyFlattensTheZeroSpikeOfAReluOutput) {
  auto counts = half_normal_counts(2048, 8.0);
  counts[0] += 4'000'000;  // ReLU zeros: 80% of the values
  counts[2047] += 1;
  const Histogram h = Histogram::from_counts(counts, 8.0, 8.0f);
  EXPECT_GT(EntropyCalibrator().compute_amax(h), 3.0f);
  // Unflattened, the spike's KL cost pushes the threshold to a few levels' worth.
  EntropyOptions raw;
  raw.flatten_zero_bin = false;
  EXPECT_LT(EntropyCalibrator(raw).compute_amax(h), 1.5f);
}

TEST(Calibrator, AllZeroAndEmptyHistograms) {
  Histogram zeros;
  zeros.add(std::vector<float>(100, 0.0f));
  for (const char* name : {"entropy", "minmax", "percentile"})
    EXPECT_EQ(make_calibrator(name)->compute_amax(zeros), 0.0f) << name;
  EXPECT_EQ(int8_scale(0.0f), 1.0f);
  const Histogram empty;
  for (const char* name : {"entropy", "minmax", "percentile"})
    EXPECT_EQ(error_kind_of([&] { make_calibrator(name)->compute_amax(empty); }),
              ErrorKind::kInvalidArgument)
        << name;
  Histogram few_bins(64);
  few_bins.add(std::vector<float>{1.0f});
  EXPECT_EQ(error_kind_of([&] { EntropyCalibrator().compute_amax(few_bins); }),
            ErrorKind::kInvalidArgument);
}

TEST(Calibrator, PickedByName) {
  EXPECT_EQ(make_calibrator("entropy")->name(), "entropy");
  EXPECT_EQ(make_calibrator("minmax")->name(), "minmax");
  CalibratorOptions options;
  options.percentile = 99.9;
  EXPECT_EQ(make_calibrator("percentile", options)->signature(), "percentile p=99.9");
  EXPECT_EQ(make_calibrator("percentile")->signature(), "percentile p=99.99");
  EXPECT_EQ(make_calibrator("entropy")->signature(),
            "entropy levels=128 epsilon=0.0001 flatten_zero_bin=1");
  EXPECT_EQ(error_kind_of([] { make_calibrator("kl"); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind_of([] { PercentileCalibrator(0.0); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(error_kind_of([] { PercentileCalibrator(100.5); }), ErrorKind::kInvalidArgument);
}

// --- Calibration cache -------------------------------------------------------

// A folder per process (ctest runs this binary's tests as parallel
// processes, and several of them write a file of the same name), removed
// when the process exits.
fs::path temp_path(const std::string& name) {
  static const io::ScratchDir dir("anvil_calibrator_test");
  return dir.path() / name;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

CalibrationTable sample_table() {
  CalibrationTable table;
  table.calibrator = "entropy levels=128 epsilon=0.0001 flatten_zero_bin=1";
  table.fingerprint = "sha256:0123abcd resnet18 opset 13";
  table.amax = {{"conv1.out", 0.1f},      {"layer1/relu 0", 6.5f}, {"tiny", 1.17549435e-38f},
                {"huge", 3.40282347e38f}, {"zero", 0.0f},          {"third", 1.0f / 3.0f}};
  return table;
}

TEST(CalibrationCache, RoundTripsBitExact) {
  const fs::path path = temp_path("round_trip.cache");
  write_calibration_cache(path, sample_table());
  EXPECT_EQ(read_calibration_cache(path), sample_table());
  EXPECT_FALSE(fs::exists(fs::path(path.string() + ".tmp")));
  const std::string text = read_text(path);
  EXPECT_TRUE(
      text.starts_with("anvil-calibration-cache 1\n"
                       "calibrator entropy levels=128 epsilon=0.0001 flatten_zero_bin=1\n"
                       "fingerprint sha256:0123abcd resnet18 opset 13\n"
                       "tensors 6\n"
                       "0.1 conv1.out\n"))
      << text;
  EXPECT_TRUE(text.ends_with("0 zero\nend\n")) << text;

  CalibrationTable empty = sample_table();
  empty.amax.clear();
  write_calibration_cache(path, empty);
  EXPECT_EQ(read_calibration_cache(path), empty);
}

TEST(CalibrationCache, LookupReportsHitMissingAndStale) {
  const fs::path path = temp_path("lookup.cache");
  fs::remove(path);
  const CalibrationTable table = sample_table();
  EXPECT_EQ(load_calibration_cache(path, table.fingerprint, table.calibrator).status,
            CacheStatus::kMissing);
  write_calibration_cache(path, table);

  const CacheLookup hit = load_calibration_cache(path, table.fingerprint, table.calibrator);
  EXPECT_EQ(hit.status, CacheStatus::kHit);
  EXPECT_EQ(hit.table, table);

  const CacheLookup other_model = load_calibration_cache(path, "sha256:ffff", table.calibrator);
  EXPECT_EQ(other_model.status, CacheStatus::kStale);
  EXPECT_NE(other_model.reason.find("sha256:ffff"), std::string::npos) << other_model.reason;

  const CacheLookup other_calibrator = load_calibration_cache(path, table.fingerprint, "minmax");
  EXPECT_EQ(other_calibrator.status, CacheStatus::kStale);
  EXPECT_NE(other_calibrator.reason.find("minmax"), std::string::npos) << other_calibrator.reason;
}

// The message of the error read_calibration_cache raises for `text`.
std::string corrupt_error(const std::string& text) {
  const fs::path path = temp_path("corrupt.cache");
  write_text(path, text);
  try {
    read_calibration_cache(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted a corrupt cache:\n" << text;
  return "";
}

TEST(CalibrationCache, CorruptFilesNameFileAndLine) {
  const std::string head = "anvil-calibration-cache 1\ncalibrator minmax\nfingerprint f\n";
  const std::string cases[][2] = {
      {"", "corrupt.cache:1: truncated"},
      {"onnx model\n", "corrupt.cache:1: not an Anvil calibration cache"},
      {"anvil-calibration-cache 2\n", "corrupt.cache:1: unsupported calibration cache version"},
      {"anvil-calibration-cache 1\ncalibrator\n", "corrupt.cache:2: expected 'calibrator"},
      {head + "tensors two\n", "corrupt.cache:4: tensor count"},
      {head + "tensors 2\n1.5 a\n", "corrupt.cache:6: truncated"},
      {head + "tensors 1\n1.5 a\n", "corrupt.cache:6: truncated"},
      {head + "tensors 1\n1.5 a\n2.5 b\n", "corrupt.cache:6: expected 'end'"},
      {head + "tensors 1\nabc a\n", "corrupt.cache:5: amax 'abc'"},
      {head + "tensors 1\n-1 a\n", "corrupt.cache:5: amax '-1'"},
      {head + "tensors 1\nnan a\n", "corrupt.cache:5: amax 'nan'"},
      {head + "tensors 1\ninf a\n", "corrupt.cache:5: amax 'inf'"},
      {head + "tensors 1\n1.5\n", "corrupt.cache:5: expected '<amax> <tensor name>'"},
      {head + "tensors 2\n1 a\n2 a\n", "corrupt.cache:6: tensor 'a' appears twice"},
      {head + "tensors 0\nend\nmore\n", "corrupt.cache:6: unexpected text after 'end'"},
      // Found by fuzz_calibration_cache: a field the writer could not write back.
      {"anvil-calibration-cache 1\ncalibrator minmax\nfingerprint res\rnet\n",
       "corrupt.cache:3: a carriage return inside the line"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string message = corrupt_error(text);
    EXPECT_NE(message.find(expected), std::string::npos) << message << "\nexpected: " << expected;
  }
}

TEST(CalibrationCache, EveryTruncationIsAnError) {
  const fs::path path = temp_path("full.cache");
  write_calibration_cache(path, sample_table());
  const std::string full = read_text(path);
  // Cutting only the final '\n' leaves a complete file; any shorter cut
  // loses part of a line the reader needs.
  for (std::size_t size = 0; size + 1 < full.size(); ++size)
    EXPECT_NE(corrupt_error(full.substr(0, size)), "") << "cut at " << size;
  write_text(path, full.substr(0, full.size() - 1));
  EXPECT_EQ(read_calibration_cache(path), sample_table());
}

TEST(CalibrationCache, IoAndUnwritableFieldErrors) {
  const fs::path missing = temp_path("no_such_dir") / "x" / "a.cache";
  EXPECT_EQ(error_kind_of([&] { read_calibration_cache(missing); }), ErrorKind::kIo);
  EXPECT_EQ(error_kind_of([] { read_calibration_cache(fs::temp_directory_path()); }),
            ErrorKind::kIo);
  EXPECT_EQ(error_kind_of([&] { write_calibration_cache(missing, sample_table()); }),
            ErrorKind::kIo);

  const fs::path path = temp_path("bad_fields.cache");
  CalibrationTable table = sample_table();
  table.amax["line\nbreak"] = 1.0f;
  EXPECT_EQ(error_kind_of([&] { write_calibration_cache(path, table); }),
            ErrorKind::kInvalidArgument);
  table = sample_table();
  table.fingerprint = "";
  EXPECT_EQ(error_kind_of([&] { write_calibration_cache(path, table); }),
            ErrorKind::kInvalidArgument);
  table = sample_table();
  table.amax["nan"] = std::nanf("");
  EXPECT_EQ(error_kind_of([&] { write_calibration_cache(path, table); }),
            ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace anvil::quant
