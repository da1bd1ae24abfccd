// torchvision ResNet-18, ResNet-50 and MobileNetV2, exported by
// torch.onnx.export with a dynamic batch, through the whole GPU engine (import,
// passes, lowering, autotuning at batch 64, plan bytes, Engine) against PyTorch
// eager FP32 on the GPU with TF32 off, over 512 inputs (issue 3): FP32 plans
// (TF32 off) to 1e-4 of the output range, FP16 plans to 2e-2 with the same
// top-1 class for at least 99% of the inputs.
//
// Two sets of weights, as the GPU machine has no internet for pretrained ones:
//  - random (seeded, BatchNorm statistics of real batches), 1000 classes, on
//    512 standard-normal inputs. 1000 random classifiers have tiny top-1
//    margins, and PyTorch's own FP16 misses the FP16 bar on some of these
//    models; an FP16 plan that misses it must then be no worse than PyTorch's
//    FP16 on the same inputs (the log says so).
//  - trained on the digits dataset (10 classes, python/train_digits.py's
//    recipe), the realistic case, held to the bar with no exception, both on
//    the same 512 standard-normal inputs and on 512 digits images (the 360 of
//    the test split and 152 train images).
// The reference data is made by tests/gpu/torchvision_reference.py (the
// gpu.torchvision fixture; the digits cases skip when the dataset was not
// carried to the machine).
//
// Quantized (issue 6): the digits-trained ResNet-18 in INT8 and FP8,
// calibrated (entropy) on 16 of the train images among the 512, against
// PyTorch FP32 on the digits images: the same top-1 for 99.5% of them with
// INT8 (the "within 0.5 points"), 99% with FP8 (FP16's bar; the issue
// sets none).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "anvil/builder.h"
#include "anvil/engine.h"
#include "core/tensor.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "gpu_test.h"
#include "logit_compare.h"
#include "onnx/importer.h"
#include "quant/batch_source.h"
#include "quantized_build.h"

namespace anvil {
namespace {

constexpr std::int64_t kSamples = 512;
constexpr std::int64_t kBatch = 64;
constexpr std::int64_t kImageFloats = 3 * 224 * 224;
constexpr int kTop1Needed = 507;  // 99% of 512, rounded up

const char* const kDataDir = ANVIL_TORCHVISION_DIR;
const char* const kNoiseInputs = "inputs_512x3x224x224.bin";
const char* const kDigitsInputs = "digits_inputs_512x3x224x224.bin";

enum class Weights { kRandom, kDigits };

struct Case {
  const char* model;
  Weights weights;
  bool fp16;
};

std::string case_label(const Case& c) {
  return std::string(c.model) + (c.weights == Weights::kDigits ? "_digits" : "") +
         (c.fp16 ? "_fp16" : "_fp32");
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return case_label(info.param);
}

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const Case& c, std::ostream* os) {
  *os << case_label(c);
}

// One set of inputs with the reference's logits on them.
struct Reference {
  std::string label;  // for the log
  std::filesystem::path inputs, outputs;
  // PyTorch's own FP16 logits, held up where the bar is not (random weights).
  std::optional<std::filesystem::path> torch_fp16;
};

std::int64_t classes_of(const Case& c) {
  return c.weights == Weights::kDigits ? 10 : 1000;
}

std::filesystem::path model_file(const Case& c) {
  return std::filesystem::path(kDataDir) /
         (std::string(c.model) + (c.weights == Weights::kDigits ? "_digits.onnx" : ".onnx"));
}

std::vector<Reference> references(const Case& c) {
  const std::filesystem::path dir = kDataDir;
  const std::string m = c.model;
  if (c.weights == Weights::kRandom)
    return {{"noise", dir / kNoiseInputs, dir / (m + "_output_512x1000.bin"),
             dir / (m + "_fp16_output_512x1000.bin")}};
  return {{"noise", dir / kNoiseInputs, dir / (m + "_digits_on_noise_output_512x10.bin"), {}},
          {"digits", dir / kDigitsInputs, dir / (m + "_digits_on_digits_output_512x10.bin"), {}}};
}

// `count` floats starting at float `first` of a raw little-endian float32 file.
std::vector<float> read_floats(const std::filesystem::path& path, std::int64_t first,
                               std::int64_t count) {
  std::vector<float> values(static_cast<std::size_t>(count));
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(first * 4));
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(count * 4));
  if (!in)
    throw std::runtime_error("cannot read " + std::to_string(count) + " floats at " +
                             std::to_string(first) + " from " + path.string());
  return values;
}

std::shared_ptr<const Engine> build_engine(const std::filesystem::path& model, bool fp16) {
  BuilderConfig config;
  config.fp16 = fp16;
  config.tf32 = false;
  config.autotune_iterations = 2;  // the tactic's speed is not under test here
  const std::vector<std::int64_t> max{kBatch, 3, 224, 224}, min{1, 3, 224, 224};
  config.profile.set_dimensions("input", min, max, max);  // tuned at kBatch (the export names it)
  const std::vector<std::byte> bytes = Builder().build_serialized(model, config);
  return Engine::deserialize(bytes, model.filename().string() + ".plan");
}

// The engine's logits for all kSamples inputs, run kBatch at a time.
std::vector<float> run_all(const Engine& engine, const std::filesystem::path& inputs,
                           std::int64_t classes) {
  const IoTensorInfo& first = engine.io_tensors()[0];
  const std::string in = first.is_input ? first.name : engine.io_tensors()[1].name;
  const std::string out = first.is_input ? engine.io_tensors()[1].name : first.name;
  auto context = engine.create_context();
  const std::vector<std::int64_t> shape{kBatch, 3, 224, 224};
  context->set_input_shape(in, shape);
  EXPECT_EQ(context->tensor_shape(out), (std::vector<std::int64_t>{kBatch, classes}));
  cuda::DeviceBuffer d_in(static_cast<std::size_t>(kBatch * kImageFloats) * 4);
  cuda::DeviceBuffer d_out(static_cast<std::size_t>(kBatch * classes) * 4);
  context->set_tensor_address(in, d_in.data());
  context->set_tensor_address(out, d_out.data());
  cuda::Stream stream;
  std::vector<float> got(static_cast<std::size_t>(kSamples * classes));
  for (std::int64_t start = 0; start < kSamples; start += kBatch) {
    const std::vector<float> x = read_floats(inputs, start * kImageFloats, kBatch * kImageFloats);
    cuda::copy_to_device(d_in.data(), x.data(), d_in.bytes());
    test::poison(d_out.data(), d_out.bytes());
    context->enqueue(stream.get());
    stream.synchronize();
    ANVIL_GPU_CHECK(cudaMemcpy(got.data() + start * classes, d_out.data(), d_out.bytes(),
                               cudaMemcpyDeviceToHost));
  }
  return got;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs `engine` on one reference's inputs and holds it to issue 3's bar.
void check_reference(const Case& c, const Engine& engine, const Reference& ref) {
  const std::int64_t classes = classes_of(c);
  ASSERT_EQ(std::filesystem::file_size(ref.outputs),
            static_cast<std::uintmax_t>(kSamples * classes * 4))
      << ref.outputs;
  const auto run_start = std::chrono::steady_clock::now();
  const std::vector<float> got = run_all(engine, ref.inputs, classes);
  const double run_s = seconds_since(run_start);
  const std::vector<float> want = read_floats(ref.outputs, 0, kSamples * classes);
  const auto bad = std::find_if(got.begin(), got.end(), [](float v) { return !std::isfinite(v); });
  ASSERT_TRUE(bad == got.end()) << c.model << ": output " << (bad - got.begin()) / classes << ","
                                << (bad - got.begin()) % classes << " is " << *bad
                                << " (NaN: never written; inf: overflow)";

  const std::string name = case_label(c);
  const test::LogitComparison r = test::compare_logits(got, want, classes);
  const double rel = r.relative_error();
  const double limit = c.fp16 ? 2e-2 : 1e-4;
  char note[96];
  std::snprintf(note, sizeof note, "limit %.0e; %lld inputs %.1f s", limit,
                static_cast<long long>(kSamples), run_s);
  test::print_logit_comparison("torchvision " + name + " on " + ref.label, r, note);

  if (!c.fp16) {
    EXPECT_LE(rel, limit) << name << " on " << ref.label << ": worst at sample "
                          << r.worst / static_cast<std::size_t>(classes) << " class "
                          << r.worst % static_cast<std::size_t>(classes) << ", got " << r.worst_got
                          << " want " << r.worst_want;
    return;
  }
  if (!ref.torch_fp16) {
    EXPECT_LE(rel, limit) << name << " on " << ref.label;
    EXPECT_GE(r.top1_agree, kTop1Needed) << name << " on " << ref.label;
    return;
  }
  // Random weights: the bar, or no worse than PyTorch's own FP16
  // (channels-last eager) where that misses it too.
  const test::LogitComparison t =
      test::compare_logits(read_floats(*ref.torch_fp16, 0, kSamples * classes), want, classes);
  std::printf("  PyTorch FP16 itself: relative %.3g, top-1 agreement %d/%lld\n", t.relative_error(),
              t.top1_agree, static_cast<long long>(kSamples));
  if (rel > limit || r.top1_agree < kTop1Needed)
    std::printf(
        "  misses issue 3's FP16 bar (2e-2, 507/512); held to PyTorch's own FP16 instead\n");
  EXPECT_LE(rel, std::max(limit, 1.1 * t.relative_error())) << name;
  EXPECT_GE(r.top1_agree, std::min(kTop1Needed, t.top1_agree - 1)) << name;
}

class TorchvisionAccuracy : public ::testing::TestWithParam<Case> {};

TEST_P(TorchvisionAccuracy, MatchesPyTorchEager) {
  ANVIL_REQUIRE_GPU();
  const Case c = GetParam();
  const std::filesystem::path model = model_file(c);
  const std::vector<Reference> refs = references(c);
  std::vector<std::filesystem::path> needed{model};
  for (const Reference& ref : refs) {
    needed.push_back(ref.inputs);
    needed.push_back(ref.outputs);
    if (ref.torch_fp16) needed.push_back(*ref.torch_fp16);
  }
  for (const auto& file : needed) {
    if (!std::filesystem::exists(file))
      GTEST_SKIP() << file << " is missing: the gpu.torchvision fixture makes it with python3, "
                   << "torch and torchvision (run `ctest -L gpu`, or "
                   << "tests/gpu/torchvision_reference.py " << kDataDir << " --digits DIR)"
                   << (c.weights == Weights::kDigits
                           ? "; the digits cases also need the digits dataset (ANVIL_DIGITS_DIR, "
                             "python/make_digits.py)"
                           : "");
  }
  for (const Reference& ref : refs)
    ASSERT_EQ(std::filesystem::file_size(ref.inputs),
              static_cast<std::uintmax_t>(kSamples * kImageFloats * 4))
        << ref.inputs;

  const auto build_start = std::chrono::steady_clock::now();
  auto engine = build_engine(model, c.fp16);
  std::printf("torchvision %s: built in %.1f s\n", case_label(c).c_str(),
              seconds_since(build_start));
  for (const Reference& ref : refs)
    check_reference(c, *engine, ref);
}

INSTANTIATE_TEST_SUITE_P(Models, TorchvisionAccuracy,
                         ::testing::Values(Case{"resnet18", Weights::kRandom, false},
                                           Case{"resnet18", Weights::kRandom, true},
                                           Case{"resnet50", Weights::kRandom, false},
                                           Case{"resnet50", Weights::kRandom, true},
                                           Case{"mobilenet_v2", Weights::kRandom, false},
                                           Case{"mobilenet_v2", Weights::kRandom, true},
                                           Case{"resnet18", Weights::kDigits, false},
                                           Case{"resnet18", Weights::kDigits, true},
                                           Case{"resnet50", Weights::kDigits, false},
                                           Case{"resnet50", Weights::kDigits, true},
                                           Case{"mobilenet_v2", Weights::kDigits, false},
                                           Case{"mobilenet_v2", Weights::kDigits, true}),
                         case_name);

// The digits-trained ResNet-18 quantized, on the digits images (see the top).
class TorchvisionQuantized : public ::testing::TestWithParam<test::Quantized> {};

TEST_P(TorchvisionQuantized, DigitsResnet18KeepsPyTorchTop1) {
  ANVIL_REQUIRE_GPU();
  const test::Quantized q = GetParam();
  const Case c{"resnet18", Weights::kDigits, true};
  const std::filesystem::path model = model_file(c);
  const Reference ref = references(c).back();
  for (const auto& file : {model, ref.inputs, ref.outputs})
    if (!std::filesystem::exists(file))
      GTEST_SKIP() << file << " is missing: the gpu.torchvision fixture makes it when the digits "
                   << "dataset is there (ANVIL_DIGITS_DIR, python/make_digits.py)";
  constexpr std::int64_t kCalibrationFirst = 360, kCalibrationBatch = 8;  // train images
  std::vector<quant::Batch> batches;
  const std::string input = onnx::import_model(model).inputs[0]->name;
  for (std::int64_t b = 0; b < 2; ++b) {
    Tensor x(DType::kFloat32, {kCalibrationBatch, 3, 224, 224});
    const std::vector<float> v =
        read_floats(ref.inputs, (kCalibrationFirst + b * kCalibrationBatch) * kImageFloats,
                    kCalibrationBatch * kImageFloats);
    std::copy(v.begin(), v.end(), x.data<float>());
    batches.push_back({{input, std::move(x)}});
  }
  quant::TensorBatchSource source(std::move(batches));
  const test::ScratchDir dir;
  const auto start = std::chrono::steady_clock::now();
  const std::filesystem::path cache = test::calibrate(model, source, "entropy", dir.path());
  BuildReport report;
  const std::vector<std::byte> bytes =
      Builder().build_serialized(model, test::quantized_config(q, cache, kBatch), &report);
  const auto engine = Engine::deserialize(bytes, "resnet18_digits.plan");
  const auto quantized =
      std::count(report.layer_kinds.begin(), report.layer_kinds.end(), std::string("conv_int8"));
  std::printf(
      "resnet18_digits %s: calibrated and built in %.1f s, %lld quantized convs, %zu "
      "kept in FP16 as faster\n",
      test::quantized_name(q), seconds_since(start), static_cast<long long>(quantized),
      report.int8_fallbacks.size());
  EXPECT_GT(quantized, 0);

  const std::vector<float> got = run_all(*engine, ref.inputs, 10);
  const std::vector<float> want = read_floats(ref.outputs, 0, kSamples * 10);
  const auto bad = std::find_if(got.begin(), got.end(), [](float v) { return !std::isfinite(v); });
  ASSERT_TRUE(bad == got.end()) << "output " << bad - got.begin() << " is " << *bad;
  const test::LogitComparison r = test::compare_logits(got, want, 10);
  test::print_logit_comparison(
      std::string("resnet18_digits ") + test::quantized_name(q) + " on digits", r);
  const int needed = q == test::Quantized::kInt8 ? 510 : kTop1Needed;  // 99.5%, 99% of 512
  EXPECT_GE(r.top1_agree, needed) << test::quantized_name(q);
}

INSTANTIATE_TEST_SUITE_P(Digits, TorchvisionQuantized,
                         ::testing::Values(test::Quantized::kInt8, test::Quantized::kFp8),
                         test::quantized_test_name);

}  // namespace
}  // namespace anvil
