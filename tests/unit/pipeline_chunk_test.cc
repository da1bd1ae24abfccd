// PipelineOptions::chunk_images on the CPU: chunked requests give exactly the
// whole batch's results, in order, for every output mode and input format;
// the option's bad values are errors naming it, at construction or submit.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "anvil/pipeline.h"
#include "pass_test_util.h"
#include "pipeline/cpu_executor.h"
#include "reference/reference_runtime.h"
#include "tiny_classifier.h"

namespace anvil {
namespace {

constexpr std::int64_t kClasses = test::kTinyClasses;
constexpr std::int64_t kImage = test::kTinyImage;
using test::tiny_classifier;

Batch float_batch(std::int64_t n, unsigned seed, std::uint64_t tag) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Batch b;
  b.batch_size = n;
  b.tag = tag;
  b.nchw.resize(static_cast<std::size_t>(n * kImage));
  for (float& v : b.nchw)
    v = normal(rng);
  return b;
}

Batch uint8_batch(std::int64_t n, unsigned seed, std::uint64_t tag) {
  std::mt19937 rng(seed);
  Batch b;
  b.batch_size = n;
  b.tag = tag;
  b.format = InputFormat::kUint8Nhwc;
  b.nhwc.resize(static_cast<std::size_t>(n * kImage));
  for (std::uint8_t& v : b.nhwc)
    v = static_cast<std::uint8_t>(rng() & 0xff);
  return b;
}

std::vector<float> direct_output(const ir::Graph& graph, const Batch& batch) {
  Tensor in = Tensor::from<float>({batch.batch_size, 3, 4, 4}, std::span<const float>(batch.nchw));
  std::vector<Tensor> out = reference::ReferenceRuntime(graph).run({{"x", in}});
  return {out[0].values<float>().begin(), out[0].values<float>().end()};
}

PipelineOptions options_with(OutputMode mode, int chunk, int workers = 1) {
  PipelineOptions o;
  o.workers = workers;
  o.output = mode;
  o.top_k = 3;
  o.chunk_images = chunk;
  return o;
}

// Sizes around the chunk of 3: multiples, a smaller last chunk, one chunk,
// less than one chunk.
const std::vector<std::int64_t> kSizes = {8, 7, 6, 3, 2, 1, 4};

TEST(PipelineChunks, FullOutputsEqualWholeBatchesInSubmissionOrder) {
  auto graph = tiny_classifier();
  auto factory = pipeline::cpu_executor_factory(graph, /*max_batch=*/8);
  Pipeline chunked(factory, options_with(OutputMode::kFullOutput, 3));
  Pipeline whole(factory, options_with(OutputMode::kFullOutput, 0));
  std::vector<Batch> batches;
  std::vector<std::future<Result>> got, want;
  for (std::size_t i = 0; i < kSizes.size(); ++i)
    batches.push_back(float_batch(kSizes[i], 100u + static_cast<unsigned>(i), 50 + i));
  for (const Batch& b : batches) {
    got.push_back(chunked.submit(b));
    want.push_back(whole.submit(b));
  }
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const Result r = got[i].get();
    EXPECT_EQ(r.sequence, i);  // one worker: submission order
    EXPECT_EQ(r.tag, 50 + i);
    EXPECT_EQ(r.batch_size, kSizes[i]);
    ASSERT_EQ(r.output.size(), static_cast<std::size_t>(kSizes[i] * kClasses)) << "batch " << i;
    // Bit for bit: each chunk's rows are the whole batch's rows.
    EXPECT_EQ(r.output, want[i].get().output) << "batch " << i << " of " << kSizes[i];
    EXPECT_EQ(r.output, direct_output(*graph, batches[i])) << "batch " << i;
  }
}

TEST(PipelineChunks, TopKAndUint8InputEqualWholeBatches) {
  auto factory = pipeline::cpu_executor_factory(tiny_classifier(), /*max_batch=*/8);
  for (const int workers : {1, 2}) {
    Pipeline chunked(factory, options_with(OutputMode::kTopK, 3, workers));
    Pipeline whole(factory, options_with(OutputMode::kTopK, 0, workers));
    for (std::size_t i = 0; i < kSizes.size(); ++i) {
      for (const bool u8 : {false, true}) {
        const Batch b = u8 ? uint8_batch(kSizes[i], 7u + static_cast<unsigned>(i), i)
                           : float_batch(kSizes[i], 9u + static_cast<unsigned>(i), i);
        const Result r = chunked.submit(b).get();
        const Result w = whole.submit(b).get();
        ASSERT_EQ(r.k, 3);
        ASSERT_EQ(r.top_k.size(), w.top_k.size()) << "batch of " << kSizes[i];
        for (std::size_t j = 0; j < r.top_k.size(); ++j) {
          EXPECT_EQ(r.top_k[j].class_index, w.top_k[j].class_index)
              << (u8 ? "uint8" : "FP32") << " batch of " << kSizes[i] << " entry " << j;
          EXPECT_EQ(r.top_k[j].score, w.top_k[j].score) << "entry " << j;
        }
      }
    }
  }
}

// A chunk as large as the model's max batch leaves every batch whole: the
// same results again.
TEST(PipelineChunks, AChunkOfTheMaxBatchIsAWholeBatch) {
  auto graph = tiny_classifier();
  Pipeline pipeline(pipeline::cpu_executor_factory(graph, 8),
                    options_with(OutputMode::kFullOutput, 8));
  const Batch b = float_batch(8, 3, 0);
  EXPECT_EQ(pipeline.submit(b).get().output, direct_output(*graph, b));
}

// An executor that accepts batches of 4..16 and returns zeros: the
// pipeline's own checks, independent of any model.
class ZeroExecutor final : public BatchExecutor {
 public:
  ExecutorModelInfo model_info() const override { return {{3, 4, 4}, kClasses, 4, 16}; }
  int slots() const override { return 1; }
  void start(int, const Batch& batch) override { n_ = batch.batch_size; }
  void finish(int, Result& result) override {
    result.output_elements = kClasses;
    result.output.assign(static_cast<std::size_t>(n_ * kClasses), 0.0f);
  }

 private:
  std::int64_t n_ = 0;
};

ExecutorFactory zero_factory() {
  return [](int, const PipelineOptions&) { return std::make_unique<ZeroExecutor>(); };
}

// The error's kind, and that its message names `words`.
void expect_invalid(const std::function<void()>& call, const std::string& words) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one naming '" << words << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(PipelineChunks, BadChunkSizesAreErrorsNamingTheOption) {
  auto cpu = pipeline::cpu_executor_factory(tiny_classifier(), 8);
  expect_invalid([&] { Pipeline p(cpu, options_with(OutputMode::kFullOutput, -1)); },
                 "chunk_images");
  expect_invalid([&] { Pipeline p(cpu, options_with(OutputMode::kFullOutput, 9)); },
                 "chunk_images 9 is outside the model's batch range 1..8");
  expect_invalid([&] { Pipeline p(zero_factory(), options_with(OutputMode::kFullOutput, 2)); },
                 "chunk_images 2 is outside the model's batch range 4..16");
}

TEST(PipelineChunks, ALastChunkBelowTheSmallestBatchIsRefusedAtSubmit) {
  Pipeline pipeline(zero_factory(), options_with(OutputMode::kFullOutput, 4));
  Batch b;
  b.nchw.assign(static_cast<std::size_t>(6 * kImage), 1.0f);
  b.batch_size = 6;  // chunks of 4 and 2; the model runs 4..16
  expect_invalid([&] { pipeline.submit(b); }, "ends with a chunk of 2");
  EXPECT_EQ(pipeline.stats().submitted, 0u);
  Batch eleven;  // chunks of 4, 4 and 3
  eleven.batch_size = 11;
  eleven.nchw.assign(static_cast<std::size_t>(11 * kImage), 1.0f);
  expect_invalid([&] { pipeline.submit(eleven); }, "ends with a chunk of 3");
  for (const std::int64_t ok : {4, 8, 12, 16}) {  // whole chunks
    Batch good;
    good.batch_size = ok;
    good.nchw.assign(static_cast<std::size_t>(ok * kImage), 1.0f);
    EXPECT_EQ(pipeline.submit(good).get().output.size(), static_cast<std::size_t>(ok * kClasses));
  }
}

}  // namespace
}  // namespace anvil
