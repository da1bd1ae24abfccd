// `anvil eval` end to end on the CPU: a tiny classifier and a tiny dataset
// written here, scored by io::count_top1 through the Pipeline's uint8 path,
// must count exactly the images a direct computation (own upscaling, own
// normalization, the reference runtime, argmax) gets right.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "io/digits_dataset.h"
#include "io/npy.h"
#include "io/scratch_dir.h"
#include "pass_test_util.h"
#include "pipeline/cpu_executor.h"

namespace anvil {
namespace {

namespace fs = std::filesystem;
using passes::testing::GraphBuilder;

constexpr std::int64_t kClasses = 5;
constexpr std::int64_t kSide = 4;       // the dataset's images
constexpr std::int64_t kModelSide = 8;  // the model's input: 2x upscaling

// [N,3,8,8] -> Conv 3->2 -> Relu -> Flatten -> Gemm -> [N,5]: no pooling, so
// every pixel's place matters and a wrong upscaling changes the answers.
std::shared_ptr<const ir::Graph> tiny_classifier(ir::Dim batch) {
  GraphBuilder b;
  ir::Value* x = b.input("x", ir::Shape({batch, ir::Dim::known(3), ir::Dim::known(kModelSide),
                                         ir::Dim::known(kModelSide)}));
  ir::Value* y = b.node("Relu", {b.conv(x, 3, 2, 3, /*bias=*/true)});
  y = b.node("Flatten", {y});
  constexpr std::int64_t kFeatures = 2 * kModelSide * kModelSide;
  y = b.node("Gemm", {y, b.weight("fc_w", {kFeatures, kClasses}), b.weight("fc_b", {kClasses})});
  b.output(y);
  return std::make_shared<const ir::Graph>(b.finish());
}

// The model's best class for one gray image, computed without the pipeline
// or io::upscale_digit: nearest-neighbour 2x, gray to RGB, ImageNet
// normalization, argmax.
std::int64_t direct_class(const ir::Graph& graph, std::span<const std::uint8_t> gray) {
  constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
  constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};
  Tensor in(DType::kFloat32, {1, 3, kModelSide, kModelSide});
  float* dst = in.data<float>();
  for (std::int64_t c = 0; c < 3; ++c)
    for (std::int64_t y = 0; y < kModelSide; ++y)
      for (std::int64_t x = 0; x < kModelSide; ++x) {
        const float pixel = gray[static_cast<std::size_t>(y / 2 * kSide + x / 2)];
        // (pixel / 255 - mean) / std, in the executor's rounding, so no
        // near-tie can flip between the two computations.
        *dst++ = pixel * (1.0f / (255.0f * kStd[c])) + -kMean[c] / kStd[c];
      }
  const std::vector<Tensor> out = reference::ReferenceRuntime(graph).run({{"x", in}});
  const auto logits = out[0].values<float>();
  return std::max_element(logits.begin(), logits.end()) - logits.begin();
}

// Writes a split of `n` random images whose labels are the model's own
// answer for even images and a wrong class for odd ones, so exactly
// ceil(n / 2) are right.
fs::path write_dataset(const ir::Graph& graph, std::int64_t n) {
  // Removed when the process exits (ctest runs each test as a process).
  static std::vector<std::unique_ptr<io::ScratchDir>> dirs;
  const fs::path dir =
      dirs.emplace_back(std::make_unique<io::ScratchDir>("anvil_eval_top1_test"))->path();
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> byte(0, 255);
  Tensor images(DType::kUInt8, {n, kSide, kSide});
  for (std::int64_t i = 0; i < images.element_count(); ++i)
    images.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(byte(rng));
  Tensor labels(DType::kInt64, {n});
  const auto pixels = images.values<std::uint8_t>();
  std::set<std::int64_t> answers;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto image = pixels.subspan(static_cast<std::size_t>(i * kSide * kSide), kSide * kSide);
    const std::int64_t best = direct_class(graph, image);
    labels.data<std::int64_t>()[i] = i % 2 == 0 ? best : (best + 1) % kClasses;
    answers.insert(best);
  }
  // A model that gives every image one class would count right whatever the
  // pixels were.
  EXPECT_GE(answers.size(), 3u) << "the tiny model answers too few classes to test anything";
  io::write_npy(dir / "test_images.npy", images);
  io::write_npy(dir / "test_labels.npy", labels);
  return dir;
}

io::Top1Count score(std::shared_ptr<const ir::Graph> graph, const fs::path& dir,
                    std::int64_t batch) {
  const io::DigitsSplit split = io::read_digits_split(dir, "test", kClasses);
  PipelineOptions options;
  options.workers = 2;
  options.top_k = 1;
  options.softmax = false;
  Pipeline pipeline(pipeline::cpu_executor_factory(std::move(graph)), options);
  return io::count_top1(pipeline, split, batch);
}

TEST(EvalTop1, CountsWhatTheModelGetsRight) {
  auto graph = tiny_classifier(ir::Dim::named("N"));
  const fs::path dir = write_dataset(*graph, 11);
  // Batches of 3: 3 + 3 + 3 + 2, finishing on two workers in any order.
  const io::Top1Count top1 = score(graph, dir, 3);
  EXPECT_EQ(top1.total, 11);
  EXPECT_EQ(top1.correct, 6);
}

TEST(EvalTop1, FixedBatchModelPadsTheLastBatch) {
  // The same weights (GraphBuilder is seeded); the labels come from the
  // dynamic-batch twin, which runs single images.
  auto graph = tiny_classifier(ir::Dim::known(4));
  const fs::path dir = write_dataset(*tiny_classifier(ir::Dim::named("N")), 7);
  // The model takes batches of exactly 4: 4 + 3 images, the last padded.
  const io::Top1Count top1 = score(graph, dir, 16);
  EXPECT_EQ(top1.total, 7);
  EXPECT_EQ(top1.correct, 4);
}

TEST(EvalTop1, InputSideNotAMultipleIsRefused) {
  auto graph = tiny_classifier(ir::Dim::named("N"));
  io::DigitsSplit split;
  split.count = 1;
  split.side = 3;  // 8 is no multiple of 3
  split.pixels.assign(9, 0);
  split.labels = {0};
  PipelineOptions options;
  options.top_k = 1;
  Pipeline pipeline(pipeline::cpu_executor_factory(graph), options);
  try {
    io::count_top1(pipeline, split, 4);
    ADD_FAILURE() << "no error for 3x3 images and an 8x8 input";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("multiple of 3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace anvil
