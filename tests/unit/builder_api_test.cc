// The public build API on the CPU: OptimizationProfile's own checks, the
// BuilderConfig defaults, the checks Builder makes against the model before it
// needs a GPU, and a clean error where there is no GPU (or no CUDA).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../fuzz/onnx_model_builder.h"
#include "anvil/builder.h"
#include "anvil/error.h"

#if ANVIL_HAVE_CUDA
#include "cuda/device.h"
#endif

namespace anvil {
namespace {

using Dims = std::vector<std::int64_t>;
using anvil::testing::add_ints_attribute;
using anvil::testing::InputDim;
using anvil::testing::ModelBuilder;
using anvil::testing::ScratchDir;

// Success iff `body` throws an Error of `kind` whose message holds every part.
template <typename Body>
::testing::AssertionResult throws(ErrorKind kind, const std::vector<std::string>& parts,
                                  Body body) {
  try {
    body();
  } catch (const Error& e) {
    const std::string message = e.what();
    if (e.kind() != kind)
      return ::testing::AssertionFailure()
             << "error kind '" << to_string(e.kind()) << "', expected '" << to_string(kind)
             << "': " << message;
    for (const auto& part : parts)
      if (message.find(part) == std::string::npos)
        return ::testing::AssertionFailure() << "message lacks \"" << part << "\": " << message;
    return ::testing::AssertionSuccess() << message;
  }
  return ::testing::AssertionFailure() << "no error";
}

// ---- OptimizationProfile ----------------------------------------------------------

TEST(OptimizationProfile, StoresAValidRange) {
  OptimizationProfile profile;
  EXPECT_TRUE(profile.empty());
  profile.set_dimensions("input", Dims{1, 3, 8, 8}, Dims{4, 3, 8, 8}, Dims{8, 3, 8, 8});
  ASSERT_NE(profile.dimensions("input"), nullptr);
  EXPECT_EQ(profile.dimensions("input")->opt, (Dims{4, 3, 8, 8}));
  EXPECT_EQ(profile.dimensions("other"), nullptr);
  // Setting it again replaces the range.
  profile.set_dimensions("input", Dims{2, 3, 8, 8}, Dims{2, 3, 8, 8}, Dims{2, 3, 8, 8});
  EXPECT_EQ(profile.dimensions("input")->max, (Dims{2, 3, 8, 8}));
  EXPECT_EQ(profile.inputs().size(), 1u);
}

TEST(OptimizationProfile, RanksMustMatch) {
  OptimizationProfile profile;
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"'input'", "4, 3 and 4"}, [&] {
    profile.set_dimensions("input", Dims{1, 3, 8, 8}, Dims{4, 3, 8}, Dims{8, 3, 8, 8});
  }));
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"'x'"},
                     [&] { profile.set_dimensions("x", Dims{}, Dims{}, Dims{}); }));
  EXPECT_TRUE(profile.empty()) << "a rejected range must not be stored";
}

TEST(OptimizationProfile, MinOptMaxMustBeOrdered) {
  OptimizationProfile profile;
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"'input'", "min <= opt <= max", "4, 2, 8"}, [&] {
    profile.set_dimensions("input", Dims{4, 3}, Dims{2, 3}, Dims{8, 3});
  }));
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"'input'", "8, 8, 4"}, [&] {
    profile.set_dimensions("input", Dims{8, 3}, Dims{8, 3}, Dims{4, 3});
  }));
}

TEST(OptimizationProfile, DimensionsMustBePositive) {
  OptimizationProfile profile;
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"'input'", ">= 1"}, [&] {
    profile.set_dimensions("input", Dims{0, 3}, Dims{1, 3}, Dims{1, 3});
  }));
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"empty input name"}, [&] {
    profile.set_dimensions("", Dims{1, 3}, Dims{1, 3}, Dims{1, 3});
  }));
}

TEST(OptimizationProfile, EveryDimMayVaryInOrder) {
  OptimizationProfile profile;
  // Which dims may vary is the model's to say; the profile checks the order.
  profile.set_dimensions("input", Dims{1, 3, 8, 8}, Dims{1, 3, 16, 8}, Dims{1, 3, 16, 8});
  EXPECT_EQ(profile.dimensions("input")->opt, (Dims{1, 3, 16, 8}));
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"'input'", "dimension 3", "8, 4, 8"}, [&] {
    profile.set_dimensions("input", Dims{1, 3, 8, 8}, Dims{1, 3, 8, 4}, Dims{1, 3, 8, 8});
  }));
}

// ---- BuilderConfig ------------------------------------------------------------------

TEST(BuilderConfig, Defaults) {
  const BuilderConfig config;
  EXPECT_FALSE(config.fp16);
  EXPECT_TRUE(config.tf32);
  EXPECT_EQ(config.workspace_bytes, std::int64_t{256} << 20);
  EXPECT_TRUE(config.timing_cache.empty());
  EXPECT_TRUE(config.disabled_passes.empty());
  EXPECT_TRUE(config.profile.empty());
  EXPECT_EQ(config.autotune_iterations, 10);
  EXPECT_FALSE(config.progress);
  EXPECT_FALSE(config.log);
}

// ---- Builder: checks against the model, made before the GPU is needed --------------

// x[batch,c,h,w] -> Conv 'conv' (4 filters 3x3, pads 1) -> y, and with a
// pool, -> MaxPool 'pool' (3x3, no pads: inputs under 3x3 cannot run).
std::string conv_model(InputDim batch, InputDim channels = std::int64_t{3},
                       InputDim height = std::int64_t{8}, InputDim width = std::int64_t{8},
                       bool pool = false) {
  ModelBuilder b;
  b.input("x", {batch, channels, height, width}).output(pool ? "z" : "y");
  std::vector<float> w(4 * 3 * 3 * 3);
  for (std::size_t i = 0; i < w.size(); ++i)
    w[i] = 0.01f * static_cast<float>(i % 17) - 0.08f;
  b.raw_f32("w", {4, 3, 3, 3}, w);
  auto& conv = b.node("Conv", {"x", "w"}, {"y"}, "conv");
  add_ints_attribute(conv, "kernel_shape", {3, 3});
  add_ints_attribute(conv, "pads", {1, 1, 1, 1});
  if (pool) add_ints_attribute(b.node("MaxPool", {"y"}, {"z"}, "pool"), "kernel_shape", {3, 3});
  return b.bytes();
}

class BuilderModel : public ::testing::Test {
 protected:
  ScratchDir dir_{"anvil_builder_api_test"};
  std::filesystem::path dynamic_ = dir_.write("dynamic.onnx", conv_model(std::string("N")));
  std::filesystem::path fixed_ = dir_.write("fixed.onnx", conv_model(std::int64_t{2}));
  // Height and width symbolic, as exported with dynamic_axes {2: "H", 3: "W"}.
  std::filesystem::path spatial_ =
      dir_.write("spatial.onnx", conv_model(std::string("N"), std::int64_t{3}, std::string("H"),
                                            std::string("W"), /*pool=*/true));
  BuilderConfig config_;
};

TEST_F(BuilderModel, UnknownInputIsNamed) {
  config_.profile.set_dimensions("images", Dims{1, 3, 8, 8}, Dims{1, 3, 8, 8}, Dims{1, 3, 8, 8});
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"'images'", "not an input", "x"},
                     [&] { Builder().build_serialized(dynamic_, config_); }));
}

TEST_F(BuilderModel, RankMustMatchTheModel) {
  config_.profile.set_dimensions("x", Dims{1, 3, 8}, Dims{1, 3, 8}, Dims{1, 3, 8});
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"'x'", "3 dimensions", "has 4"},
                     [&] { Builder().build_serialized(dynamic_, config_); }));
}

TEST_F(BuilderModel, NonBatchDimsMustMatchTheModel) {
  config_.profile.set_dimensions("x", Dims{1, 3, 16, 16}, Dims{1, 3, 16, 16}, Dims{1, 3, 16, 16});
  EXPECT_TRUE(throws(ErrorKind::kUnsupported,
                     {"'x'", "dimension 2 is fixed at 8", "dynamic height and width"},
                     [&] { Builder().build_serialized(dynamic_, config_); }));
}

// ---- Spatial ranges: checked against the model before the GPU is needed ----------

TEST_F(BuilderModel, SymbolicHeightAndWidthNeedARange) {
  config_.profile.set_batch_range(1, 2, 4);
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"'x'", "[N,3,H,W]", "--min-shapes"},
                     [&] { Builder().build_serialized(spatial_, config_); }));
}

TEST_F(BuilderModel, EveryProfileNeedsTheSpatialRange) {
  config_.profile.set_dimensions("x", Dims{1, 3, 8, 8}, Dims{2, 3, 12, 16}, Dims{4, 3, 16, 20});
  config_.additional_profiles.emplace_back().set_batch_range(8, 8, 16);
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"profile 1", "'x'", "shape range"},
                     [&] { Builder().build_serialized(spatial_, config_); }));
}

TEST_F(BuilderModel, ChannelsStayFixed) {
  const auto model = dir_.write("channels.onnx", conv_model(std::string("N"), std::string("C")));
  config_.profile.set_dimensions("x", Dims{1, 3, 8, 8}, Dims{1, 3, 8, 8}, Dims{1, 3, 8, 8});
  EXPECT_TRUE(throws(ErrorKind::kUnsupported, {"'x'", "dimension 1", "only the batch, height"},
                     [&] { Builder().build_serialized(model, config_); }));
}

TEST_F(BuilderModel, ProfileShapesTheNetworkCannotRunAreNamed) {
  // The 3x3 pool does not fit a 2x2 image: min is refused, naming the layer.
  config_.profile.set_dimensions("x", Dims{1, 3, 2, 2}, Dims{2, 3, 12, 16}, Dims{4, 3, 16, 20});
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument,
                     {"profile 0's min shape", "pool", "x 1x3x2x2", "narrow the profile"},
                     [&] { Builder().build_serialized(spatial_, config_); }));
}

TEST_F(BuilderModel, ValidSpatialProfilesPassTheChecks) {
#if ANVIL_HAVE_CUDA
  if (cuda::device_count() > 0)
    GTEST_SKIP() << "this machine has a GPU: tests/gpu/engine_spatial_test.cc builds for real";
  const ErrorKind want = ErrorKind::kGpu;
#else
  const ErrorKind want = ErrorKind::kUnsupported;
#endif
  config_.profile.set_dimensions("x", Dims{1, 3, 3, 3}, Dims{2, 3, 12, 16}, Dims{4, 3, 33, 47});
  config_.additional_profiles.emplace_back().set_dimensions(
      "x", Dims{8, 3, 64, 64}, Dims{8, 3, 96, 96}, Dims{16, 3, 128, 128});
  // The only error left is the missing GPU (or CUDA): the model, the ranges
  // and every profile's min, opt and max shapes passed.
  EXPECT_TRUE(throws(want, {}, [&] { Builder().build_serialized(spatial_, config_); }));
}

TEST_F(BuilderModel, FixedBatchModelOnlyTakesItsBatch) {
  config_.profile.set_dimensions("x", Dims{1, 3, 8, 8}, Dims{2, 3, 8, 8}, Dims{2, 3, 8, 8});
  EXPECT_TRUE(throws(ErrorKind::kUnsupported, {"'x'", "fixed batch of 2", "dynamic_axes"},
                     [&] { Builder().build_serialized(fixed_, config_); }));
}

TEST_F(BuilderModel, BatchRangesApplyToUnnamedInputs) {
  OptimizationProfile profile;
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"1 <= min <= opt <= max", "4, 2, 8"},
                     [&] { profile.set_batch_range(4, 2, 8); }));
  profile.set_batch_range(1, 2, 8);
  EXPECT_FALSE(profile.empty());
  ASSERT_TRUE(profile.batch_range());
  EXPECT_EQ(profile.batch_range()->opt, 2);
  // A fixed-batch model refuses another batch range, before the GPU is needed.
  config_.profile = profile;
  EXPECT_TRUE(throws(ErrorKind::kUnsupported, {"'x'", "fixed batch of 2"},
                     [&] { Builder().build_serialized(fixed_, config_); }));
}

TEST_F(BuilderModel, AnAdditionalProfileMustSetSomething) {
  config_.profile.set_batch_range(1, 4, 8);
  config_.additional_profiles.emplace_back();  // empty
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"optimization profile 1 is empty"},
                     [&] { Builder().build_serialized(dynamic_, config_); }));
}

TEST_F(BuilderModel, BadConfigIsRefused) {
  config_.autotune_iterations = 0;
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"autotune_iterations"},
                     [&] { Builder().build_serialized(dynamic_, config_); }));
  config_.autotune_iterations = 1;
  config_.disabled_passes = {"no_such_pass"};
  EXPECT_TRUE(throws(ErrorKind::kInvalidArgument, {"no_such_pass"},
                     [&] { Builder().build_serialized(dynamic_, config_); }));
}

TEST_F(BuilderModel, MissingModelIsAnIoError) {
  EXPECT_TRUE(throws(ErrorKind::kIo, {"missing.onnx"},
                     [&] { Builder().build_serialized(dir_.path() / "missing.onnx", config_); }));
}

// Where no plan can be built (no CUDA, or no GPU), a valid request is one
// clear error, after the model and profile were checked and the passes ran.
TEST_F(BuilderModel, WithoutAGpuBuildingIsACleanError) {
#if ANVIL_HAVE_CUDA
  if (cuda::device_count() > 0)
    GTEST_SKIP() << "this machine has a GPU: tests/gpu/builder_api_test.cc builds for real";
  const ErrorKind want = ErrorKind::kGpu;
  const std::string says = "no CUDA GPU";
#else
  const ErrorKind want = ErrorKind::kUnsupported;
  const std::string says = "without CUDA";
#endif
  std::vector<std::string> info;
  config_.log = [&info](LogSeverity severity, std::string_view message) {
    if (severity == LogSeverity::kInfo) info.emplace_back(message);
  };
  config_.profile.set_dimensions("x", Dims{1, 3, 8, 8}, Dims{4, 3, 8, 8}, Dims{8, 3, 8, 8});
  BuildReport report;
  EXPECT_TRUE(
      throws(want, {says}, [&] { Builder().build_serialized(dynamic_, config_, &report); }));
  ASSERT_FALSE(info.empty()) << "the passes should have been logged before the GPU was needed";
  EXPECT_EQ(info[0].rfind("pass ", 0), 0u) << info[0];
  // Several profiles pass the checks too.
  config_.additional_profiles.resize(1);
  config_.additional_profiles[0].set_batch_range(16, 32, 64);
  EXPECT_TRUE(throws(want, {says}, [&] { Builder().build_serialized(dynamic_, config_); }));
  config_.additional_profiles.clear();
  // A fixed-batch model at its own batch passes the checks too.
  config_.profile = {};
  config_.profile.set_dimensions("x", Dims{2, 3, 8, 8}, Dims{2, 3, 8, 8}, Dims{2, 3, 8, 8});
  EXPECT_TRUE(throws(want, {says}, [&] { Builder().build_serialized(fixed_, config_); }));
}

}  // namespace
}  // namespace anvil
