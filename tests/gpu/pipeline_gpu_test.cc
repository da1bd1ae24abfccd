// The pipeline's GPU executor (engine_executor_factory): every result equals
// a direct ExecutionContext run of its own input, for FP32 and FP16 engines,
// FP32 and uint8 inputs, top-k on the GPU and the full output; top-k against
// the host reference; CUDA graphs on and off; sub-batch chunks (bit for bit
// against whole requests); shutdown while busy; errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <iterator>
#include <ostream>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "anvil/builder.h"
#include "anvil/engine.h"
#include "anvil/pipeline.h"
#include "builder/gpu/autotune.h"
#include "builder/lower.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/preprocess.h"
#include "engine_test_util.h"
#include "gpu_test.h"
#include "onnx/importer.h"
#include "passes/pass_manager.h"
#include "pipeline/host_postprocess.h"
#include "plan/plan.h"

namespace anvil {
namespace {

constexpr std::int64_t kMaxBatch = test::kTestMaxBatch;

// The fixture models' input is 3 x 224 x 224 and output 1000 classes; the
// sizes are read from the engine all the same.
struct EngineShape {
  std::vector<std::int64_t> input_dims;  // [-1, 3, H, W]
  std::size_t image = 0;                 // floats per image
  std::size_t classes = 0;
};

EngineShape shape_of(const Engine& engine) {
  EngineShape s;
  for (const IoTensorInfo& io : engine.io_tensors()) {
    std::size_t n = 1;
    for (std::size_t d = 1; d < io.dims.size(); ++d)
      n *= static_cast<std::size_t>(io.dims[d]);
    if (io.is_input) {
      s.input_dims = io.dims;
      s.image = n;
    } else {
      s.classes = n;
    }
  }
  return s;
}

// Runs the engine directly, one batch at a time, on a context of its own:
// what each pipeline result must equal.
class DirectRunner {
 public:
  explicit DirectRunner(std::shared_ptr<const Engine> engine)
      : engine_(std::move(engine)),
        shape_(shape_of(*engine_)),
        names_(test::io_names(*engine_)),
        context_(engine_->create_context()),
        input_(kMaxBatch * shape_.image * sizeof(float)),
        output_(kMaxBatch * shape_.classes * sizeof(float)),
        bytes_(kMaxBatch * shape_.image) {
    context_->set_tensor_address(names_.input, input_.data());
    context_->set_tensor_address(names_.output, output_.data());
  }

  std::vector<float> run(const std::vector<float>& nchw, std::int64_t batch) {
    cuda::copy_to_device(input_.data(), nchw.data(), nchw.size() * sizeof(float));
    return enqueue(batch);
  }

  // images_to_nchw, then the network.
  std::vector<float> run_uint8(const std::vector<std::uint8_t>& nhwc, std::int64_t batch,
                               const PipelineOptions& options) {
    cuda::copy_to_device(bytes_.data(), nhwc.data(), nhwc.size());
    cuda::kernels::Normalization norm;
    std::copy(std::begin(options.mean), std::end(options.mean), norm.mean);
    std::copy(std::begin(options.stddev), std::end(options.stddev), norm.std);
    const cuda::kernels::ImageBatchShape shape{batch, shape_.input_dims[2], shape_.input_dims[3]};
    cuda::kernels::images_to_nchw(bytes_.as<std::uint8_t>(), input_.as<float>(), shape, norm,
                                  stream_.get());
    return enqueue(batch);
  }

 private:
  std::vector<float> enqueue(std::int64_t batch) {
    context_->set_optimization_profile(engine_->best_profile(batch));
    std::vector<std::int64_t> dims = shape_.input_dims;
    dims[0] = batch;
    context_->set_input_shape(names_.input, dims);
    ANVIL_GPU_CHECK(cudaMemsetAsync(output_.data(), 0xff, output_.bytes(), stream_.get()));
    context_->enqueue(stream_.get());
    stream_.synchronize();
    std::vector<float> out(static_cast<std::size_t>(batch) * shape_.classes);
    ANVIL_GPU_CHECK(
        cudaMemcpy(out.data(), output_.data(), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return out;
  }

  std::shared_ptr<const Engine> engine_;
  EngineShape shape_;
  test::IoNames names_;
  std::unique_ptr<ExecutionContext> context_;
  cuda::DeviceBuffer input_, output_, bytes_;
  cuda::Stream stream_;
};

Batch float_batch(std::int64_t n, std::size_t image, unsigned seed, std::uint64_t tag) {
  Batch b;
  b.batch_size = n;
  b.nchw = test::random_floats(static_cast<std::size_t>(n) * image, seed);
  b.tag = tag;
  return b;
}

Batch uint8_batch(std::int64_t n, std::size_t image, unsigned seed, std::uint64_t tag) {
  Batch b;
  b.batch_size = n;
  b.format = InputFormat::kUint8Nhwc;
  b.nhwc.resize(static_cast<std::size_t>(n) * image);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::uint8_t& v : b.nhwc)
    v = static_cast<std::uint8_t>(byte(rng));
  b.tag = tag;
  return b;
}

// max|got - want| <= tolerance * max|want|, naming the worst element.
::testing::AssertionResult outputs_close(const std::vector<float>& got,
                                         const std::vector<float>& want, double tolerance,
                                         const std::string& what) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure()
           << what << ": " << got.size() << " values, want " << want.size();
  double max_want = 0, worst = -1;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    max_want = std::max(max_want, std::fabs(static_cast<double>(want[i])));
    const double err = std::isnan(got[i]) ? INFINITY : std::fabs(got[i] - want[i]);
    if (err > worst) worst = err, worst_at = i;
  }
  if (worst <= tolerance * max_want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": worst element " << worst_at << " of " << got.size() << " got "
         << got[worst_at] << " want " << want[worst_at] << " (|err| " << worst << " > " << tolerance
         << " * max|want| " << max_want << ")";
}

// `got` (one image's top-k) against the host's softmax (if on) and top-k of
// `logits`: each rank's score within `tolerance`, and its class the host's,
// unless the two classes' host scores are within `tolerance` (a near tie may
// go either way).
::testing::AssertionResult top_k_matches(std::span<const Classification> got,
                                         std::span<const float> logits, bool softmax,
                                         float tolerance, const std::string& what) {
  std::vector<float> scores(logits.begin(), logits.end());
  if (softmax) pipeline::softmax_in_place(scores);
  std::vector<Classification> want(got.size());
  pipeline::top_k(scores, want);
  std::set<std::int64_t> seen;
  for (std::size_t j = 0; j < got.size(); ++j) {
    const Classification& g = got[j];
    const Classification& w = want[j];
    const float limit = tolerance * std::max(1.0f, std::fabs(w.score));
    const bool valid = g.class_index >= 0 &&
                       g.class_index < static_cast<std::int64_t>(scores.size()) &&
                       seen.insert(g.class_index).second;
    const bool ok = valid && std::fabs(g.score - w.score) <= limit &&
                    (g.class_index == w.class_index ||
                     std::fabs(scores[static_cast<std::size_t>(g.class_index)] - w.score) <= limit);
    if (!ok)
      return ::testing::AssertionFailure()
             << what << ": rank " << j << " of " << got.size() << " got (class " << g.class_index
             << ", score " << g.score << ") want (class " << w.class_index << ", score " << w.score
             << ")" << (valid ? "" : " [class out of range or repeated]");
  }
  return ::testing::AssertionSuccess();
}

// Checks every image of `r` (a result of `options`) against `logits`, the
// direct run's output of the same batch.
void expect_matches(const Result& r, const std::vector<float>& logits, const PipelineOptions& o,
                    std::size_t classes, bool fp16, const std::string& what) {
  if (o.output == OutputMode::kFullOutput) {
    EXPECT_EQ(r.output_elements, static_cast<std::int64_t>(classes)) << what;
    EXPECT_TRUE(outputs_close(r.output, logits, fp16 ? 1e-2 : 1e-5, what));
    return;
  }
  ASSERT_EQ(r.k, o.top_k) << what;
  ASSERT_EQ(r.top_k.size(), static_cast<std::size_t>(r.batch_size * r.k)) << what;
  for (std::int64_t i = 0; i < r.batch_size; ++i) {
    const auto row = std::span(logits).subspan(static_cast<std::size_t>(i) * classes, classes);
    EXPECT_TRUE(top_k_matches(r.image_top_k(i), row, o.softmax, fp16 ? 1e-3f : 1e-5f,
                              cat(what, " image ", i)));
  }
}

std::int64_t varying_batch(int i) {
  return 1 + (i * 5 + 3) % kMaxBatch;
}

struct RunCase {
  bool fp16;
  OutputMode output;
};

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const RunCase& c, std::ostream* os) {
  *os << (c.fp16 ? "fp16" : "fp32") << (c.output == OutputMode::kTopK ? "_topk" : "_full");
}

class PipelineGpuRun : public ::testing::TestWithParam<RunCase> {};

TEST_P(PipelineGpuRun, EveryResultEqualsADirectRunOfItsInput) {
  ANVIL_REQUIRE_GPU();
  const RunCase& c = GetParam();
  const auto engine = test::fixture_engine("resnet18", c.fp16);
  const EngineShape shape = shape_of(*engine);
  PipelineOptions o;
  o.workers = 2;
  o.batches_in_flight_per_worker = 2;
  o.output = c.output;
  Pipeline pipeline(engine_executor_factory(engine), o);
  EXPECT_EQ(pipeline.model_info().max_batch, kMaxBatch);
  EXPECT_EQ(pipeline.model_info().output_elements, static_cast<std::int64_t>(shape.classes));

  constexpr int kRequests = 40;
  std::vector<Batch> inputs;
  std::vector<std::future<Result>> futures;
  for (int i = 0; i < kRequests; ++i) {
    inputs.push_back(float_batch(varying_batch(i), shape.image, 1000u + i, 7000u + i));
    futures.push_back(pipeline.submit(inputs.back()));
  }
  std::vector<Result> results;
  for (auto& f : futures)
    results.push_back(f.get());
  pipeline.drain();
  const PipelineStats stats = pipeline.stats();
  EXPECT_EQ(stats.completed, static_cast<std::uint64_t>(kRequests));
  EXPECT_EQ(stats.failed, 0u);

  // The references once the pipeline is idle, so its timing is its own.
  DirectRunner direct(engine);
  std::set<int> workers;
  for (int i = 0; i < kRequests; ++i) {
    const Result& r = results[static_cast<std::size_t>(i)];
    const Batch& b = inputs[static_cast<std::size_t>(i)];
    const std::string what = cat(c.fp16 ? "FP16" : "FP32", " request ", i, " (batch ", b.batch_size,
                                 ", worker ", r.worker, ")");
    EXPECT_EQ(r.tag, b.tag) << what;
    EXPECT_EQ(r.batch_size, b.batch_size) << what;
    workers.insert(r.worker);
    expect_matches(r, direct.run(b.nchw, b.batch_size), o, shape.classes, c.fp16, what);
  }
  std::printf("%d requests ran on %zu worker(s)\n", kRequests, workers.size());
}

INSTANTIATE_TEST_SUITE_P(Resnet18, PipelineGpuRun,
                         ::testing::Values(RunCase{false, OutputMode::kTopK},
                                           RunCase{false, OutputMode::kFullOutput},
                                           RunCase{true, OutputMode::kTopK},
                                           RunCase{true, OutputMode::kFullOutput}));

// uint8 and FP32 requests interleaved: the uint8 ones normalized on the GPU
// (with non-default constants) write the same input buffer FP32 uploads do.
TEST(PipelineGpu, Uint8ImagesEqualPreprocessingThenADirectRun) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", false);
  const EngineShape shape = shape_of(*engine);
  PipelineOptions o;
  o.workers = 2;
  o.output = OutputMode::kFullOutput;
  const float mean[3] = {0.5f, 0.4f, 0.3f}, stddev[3] = {0.2f, 0.3f, 0.25f};
  std::copy(std::begin(mean), std::end(mean), o.mean);
  std::copy(std::begin(stddev), std::end(stddev), o.stddev);
  Pipeline pipeline(engine_executor_factory(engine), o);

  constexpr int kRequests = 16;
  std::vector<Batch> inputs;
  std::vector<std::future<Result>> futures;
  for (int i = 0; i < kRequests; ++i) {
    const std::int64_t n = varying_batch(i);
    inputs.push_back(i % 2 == 0 ? uint8_batch(n, shape.image, 300u + i, i)
                                : float_batch(n, shape.image, 300u + i, i));
    futures.push_back(pipeline.submit(inputs.back()));
  }
  std::vector<Result> results;
  for (auto& f : futures)
    results.push_back(f.get());
  pipeline.drain();
  DirectRunner direct(engine);
  for (int i = 0; i < kRequests; ++i) {
    const Result& r = results[static_cast<std::size_t>(i)];
    const Batch& b = inputs[static_cast<std::size_t>(i)];
    const bool bytes = b.format == InputFormat::kUint8Nhwc;
    const std::vector<float> want =
        bytes ? direct.run_uint8(b.nhwc, b.batch_size, o) : direct.run(b.nchw, b.batch_size);
    EXPECT_TRUE(outputs_close(
        r.output, want, 1e-5,
        cat("request ", i, bytes ? " (uint8" : " (FP32", ", batch ", b.batch_size, ")")));
  }
}

// kUint8Nchw: the same images as planes give what the packed ones give
// (one kernel, either layout, the same arithmetic), and both what
// images_to_nchw then a direct run gives, in a mix of batch sizes. In the
// FP32 plan both go through images_to_nchw; in the FP16 one, on Hopper,
// the packed ones go to the stem as they are (ExecutionContext::
// set_input_images) and the planes through images_to_engine_storage: the
// same bits.
class PipelineGpuPlanes : public ::testing::TestWithParam<bool> {};

TEST_P(PipelineGpuPlanes, Uint8PlanesEqualPackedImages) {
  ANVIL_REQUIRE_GPU();
  const bool fp16 = GetParam();
  const auto engine = test::fixture_engine("resnet18", fp16);
  const EngineShape shape = shape_of(*engine);
  std::printf("%s plan: the stem %s uint8 NHWC images itself\n", fp16 ? "FP16" : "FP32",
              engine->create_context()->input_reads_images(test::io_names(*engine).input)
                  ? "reads"
                  : "does not read");
  const std::int64_t hw = shape.input_dims[2] * shape.input_dims[3];
  PipelineOptions o;
  o.workers = 2;
  o.output = OutputMode::kFullOutput;
  Pipeline pipeline(engine_executor_factory(engine), o);
  constexpr int kRequests = 6;
  std::vector<Batch> packed;
  std::vector<std::future<Result>> from_packed, from_planes;
  for (int i = 0; i < kRequests; ++i) {
    packed.push_back(uint8_batch(varying_batch(i), shape.image, 700u + i, i));
    const Batch& b = packed.back();
    Batch planes;
    planes.batch_size = b.batch_size;
    planes.format = InputFormat::kUint8Nchw;
    planes.nchw_u8.resize(b.nhwc.size());
    for (std::int64_t n = 0; n < b.batch_size; ++n)
      for (std::int64_t p = 0; p < hw; ++p)
        for (std::int64_t c = 0; c < 3; ++c)
          planes.nchw_u8[static_cast<std::size_t>((n * 3 + c) * hw + p)] =
              b.nhwc[static_cast<std::size_t>((n * hw + p) * 3 + c)];
    from_packed.push_back(pipeline.submit(b));
    from_planes.push_back(pipeline.submit(std::move(planes)));
  }
  DirectRunner direct(engine);
  for (int i = 0; i < kRequests; ++i) {
    const Batch& b = packed[static_cast<std::size_t>(i)];
    const Result planar = from_planes[static_cast<std::size_t>(i)].get();
    const Result packed_result = from_packed[static_cast<std::size_t>(i)].get();
    const std::string what = cat("request ", i, ", batch ", b.batch_size);
    EXPECT_TRUE(outputs_close(planar.output, packed_result.output, 1e-6,
                              cat(what, ": NCHW bytes vs NHWC bytes")));
    EXPECT_TRUE(outputs_close(planar.output, direct.run_uint8(b.nhwc, b.batch_size, o),
                              fp16 ? 1e-2 : 1e-5,
                              cat(what, ": NCHW bytes vs images_to_nchw + a direct run")));
  }
}

INSTANTIATE_TEST_SUITE_P(Resnet18, PipelineGpuPlanes, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return std::string(p.param ? "fp16" : "fp32");
                         });

// GPU top-k (k <= 32, softmax on and off) and the host fallback (k = 40)
// against host_postprocess applied to the same batches' full output.
TEST(PipelineGpu, TopKEqualsHostPostprocessOfTheFullOutput) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", false);
  const EngineShape shape = shape_of(*engine);
  constexpr int kRequests = 10;
  std::vector<Batch> inputs;
  for (int i = 0; i < kRequests; ++i)
    inputs.push_back(float_batch(varying_batch(i), shape.image, 500u + i, i));

  auto run_all = [&](const PipelineOptions& o) {
    Pipeline pipeline(engine_executor_factory(engine), o);
    std::vector<std::future<Result>> futures;
    for (const Batch& b : inputs)
      futures.push_back(pipeline.submit(b));
    std::vector<Result> results;
    for (auto& f : futures)
      results.push_back(f.get());
    return results;
  };
  PipelineOptions full;
  full.output = OutputMode::kFullOutput;
  const std::vector<Result> logits = run_all(full);

  struct TopKOptions {
    int k;
    bool softmax;
  };
  for (const TopKOptions& t : {TopKOptions{5, true}, TopKOptions{5, false}, TopKOptions{32, true},
                               TopKOptions{40, true}}) {
    PipelineOptions o;
    o.top_k = t.k;
    o.softmax = t.softmax;
    const std::vector<Result> got = run_all(o);
    for (int i = 0; i < kRequests; ++i) {
      const Result& r = got[static_cast<std::size_t>(i)];
      ASSERT_EQ(r.k, t.k);
      for (std::int64_t image = 0; image < r.batch_size; ++image)
        EXPECT_TRUE(top_k_matches(
            r.image_top_k(image), logits[static_cast<std::size_t>(i)].image_output(image),
            t.softmax, 1e-5f,
            cat("k=", t.k, t.softmax ? " softmax" : " logits", " request ", i, " image ", image)));
    }
  }
}

// Each batch size is seen often enough to be warmed up, captured and
// replayed; the replays read inputs uploaded after the previous batch's
// input-consumed event, so a missed wait would show here.
TEST(PipelineGpu, CudaGraphsOnAndOffGiveTheSameOutputs) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", false);
  const EngineShape shape = shape_of(*engine);
  std::vector<Batch> inputs;
  for (int i = 0; i < 16; ++i)
    inputs.push_back(i % 3 == 2 ? uint8_batch(i < 8 ? 3 : 8, shape.image, 900u + i, i)
                                : float_batch(i < 8 ? 3 : 8, shape.image, 900u + i, i));
  auto run_all = [&](bool graphs) {
    PipelineOptions o;
    o.workers = 1;
    o.batches_in_flight_per_worker = 3;
    o.output = OutputMode::kFullOutput;
    o.cuda_graphs = graphs;
    Pipeline pipeline(engine_executor_factory(engine), o);
    std::vector<std::future<Result>> futures;
    for (const Batch& b : inputs)
      futures.push_back(pipeline.submit(b));
    std::vector<std::vector<float>> outputs;
    for (auto& f : futures)
      outputs.push_back(f.get().output);
    return outputs;
  };
  const auto plain = run_all(false);
  const auto graphed = run_all(true);
  DirectRunner direct(engine);
  PipelineOptions defaults;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Batch& b = inputs[i];
    const std::vector<float> want = b.format == InputFormat::kUint8Nhwc
                                        ? direct.run_uint8(b.nhwc, b.batch_size, defaults)
                                        : direct.run(b.nchw, b.batch_size);
    EXPECT_TRUE(outputs_close(plain[i], want, 1e-5, cat("graphs off, request ", i)));
    test::expect_bit_identical(graphed[i], plain[i], cat("graphs on vs off, request ", i));
  }
}

// Borrowed pixels, page-locked (uploaded in place) or pageable (staged),
// give the bits of the same batch owned, FP32 and uint8.
TEST(PipelineGpu, BorrowedPixelsEqualOwnedOnes) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", true);
  const EngineShape shape = shape_of(*engine);
  PipelineOptions o;
  o.workers = 1;
  o.output = OutputMode::kFullOutput;
  Pipeline pipeline(engine_executor_factory(engine), o);
  for (const bool bytes : {false, true}) {
    const Batch owned =
        bytes ? uint8_batch(5, shape.image, 41u, 0) : float_batch(5, shape.image, 41u, 0);
    const std::span<const std::byte> pixels =
        bytes ? std::as_bytes(std::span(owned.nhwc)) : std::as_bytes(std::span(owned.nchw));
    const std::vector<float> want = pipeline.submit(owned).get().output;
    cuda::PinnedBuffer pinned(pixels.size());
    std::memcpy(pinned.data(), pixels.data(), pixels.size());
    EXPECT_TRUE(cuda::is_page_locked(pinned.data(), pinned.bytes()));
    EXPECT_FALSE(cuda::is_page_locked(pixels.data(), pixels.size()));
    for (const bool page_locked : {true, false}) {
      Batch borrowed;
      borrowed.batch_size = owned.batch_size;
      borrowed.format = owned.format;
      borrowed.borrowed =
          page_locked ? std::span(static_cast<const std::byte*>(pinned.data()), pinned.bytes())
                      : pixels;
      test::expect_bit_identical(
          pipeline.submit(borrowed).get().output, want,
          cat(bytes ? "uint8" : "FP32", page_locked ? ", page-locked" : ", pageable", " borrowed"));
    }
  }
}

TEST(PipelineGpu, ShutdownWithCancelWhileBusyEndsEveryRequest) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", true);
  const EngineShape shape = shape_of(*engine);
  PipelineOptions o;
  o.workers = 2;
  o.queue_depth = 32;
  Pipeline pipeline(engine_executor_factory(engine), o);
  constexpr int kRequests = 40;
  std::vector<Batch> inputs;
  for (int i = 0; i < kRequests; ++i)
    inputs.push_back(float_batch(kMaxBatch, shape.image, 40u + i, i));
  std::vector<std::future<Result>> futures;
  for (const Batch& b : inputs)
    futures.push_back(pipeline.submit(b));
  pipeline.shutdown(/*cancel_pending=*/true);

  DirectRunner direct(engine);
  int completed = 0, cancelled = 0;
  for (int i = 0; i < kRequests; ++i) {
    try {
      const Result r = futures[static_cast<std::size_t>(i)].get();
      ++completed;
      EXPECT_EQ(r.tag, static_cast<std::uint64_t>(i));
      const Batch& b = inputs[static_cast<std::size_t>(i)];
      expect_matches(r, direct.run(b.nchw, b.batch_size), o, shape.classes, true,
                     cat("request ", i, " finished during shutdown"));
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kCancelled) << "request " << i << ": " << e.what();
      ++cancelled;
    }
  }
  const PipelineStats stats = pipeline.stats();
  EXPECT_EQ(stats.completed, static_cast<std::uint64_t>(completed));
  EXPECT_EQ(stats.cancelled, static_cast<std::uint64_t>(cancelled));
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(completed + cancelled, kRequests);
  std::printf("shutdown: %d completed, %d cancelled\n", completed, cancelled);
  EXPECT_THROW(pipeline.submit(inputs[0]), Error);
}

TEST(PipelineGpu, DestroyingABusyPipelineEndsEveryRequest) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", true);
  const EngineShape shape = shape_of(*engine);
  std::vector<std::future<Result>> futures;
  {
    PipelineOptions o;
    o.queue_depth = 16;
    Pipeline pipeline(engine_executor_factory(engine), o);
    for (int i = 0; i < 16; ++i)
      futures.push_back(pipeline.submit(float_batch(kMaxBatch, shape.image, 60u + i, i)));
  }
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    try {
      EXPECT_EQ(f.get().top_k.size(), static_cast<std::size_t>(kMaxBatch * 5));
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kCancelled) << e.what();
    }
  }
}

ErrorKind kind_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no error was thrown";
  return ErrorKind::kInternal;
}

TEST(PipelineGpu, BadRequestsAndOptionsAreErrors) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", false);
  const EngineShape shape = shape_of(*engine);
  EXPECT_EQ(kind_of([] { engine_executor_factory(nullptr); }), ErrorKind::kInvalidArgument);
  PipelineOptions bad_k;
  bad_k.top_k = 0;
  EXPECT_EQ(kind_of([&] { Pipeline p(engine_executor_factory(engine), bad_k); }),
            ErrorKind::kInvalidArgument);

  Pipeline pipeline(engine_executor_factory(engine), PipelineOptions{});
  EXPECT_EQ(kind_of([&] { pipeline.submit(float_batch(kMaxBatch + 1, shape.image, 1, 0)); }),
            ErrorKind::kInvalidArgument);
  Batch empty;
  EXPECT_EQ(kind_of([&] { pipeline.submit(empty); }), ErrorKind::kInvalidArgument);
  // The pipeline still serves after refusing those.
  const Batch good = float_batch(2, shape.image, 2, 0);
  DirectRunner direct(engine);
  expect_matches(pipeline.submit(good).get(), direct.run(good.nchw, 2), pipeline.options(),
                 shape.classes, false, "after refused requests");
}

// The executor on its own, as the pipeline drives it: bad calls are errors
// that leave it able to run the next batch.
TEST(PipelineGpu, TheExecutorRefusesBadCallsAndKeepsWorking) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", false);
  const EngineShape shape = shape_of(*engine);
  PipelineOptions o;
  o.output = OutputMode::kFullOutput;
  const std::unique_ptr<BatchExecutor> executor = engine_executor_factory(engine)(0, o);
  ASSERT_EQ(executor->slots(), 2);
  EXPECT_EQ(executor->model_info().max_batch, kMaxBatch);

  Batch short_input = float_batch(3, shape.image, 3, 0);
  short_input.nchw.pop_back();
  Batch short_bytes = uint8_batch(3, shape.image, 3, 0);
  short_bytes.nhwc.pop_back();
  const Batch good = float_batch(3, shape.image, 4, 0);
  const Batch other = uint8_batch(5, shape.image, 5, 0);
  Result unused;
  EXPECT_EQ(kind_of([&] { executor->start(0, short_input); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { executor->start(0, short_bytes); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { executor->start(2, good); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of([&] { executor->finish(1, unused); }), ErrorKind::kInvalidArgument);

  DirectRunner direct(engine);
  executor->start(0, good);
  EXPECT_EQ(kind_of([&] { executor->start(0, good); }), ErrorKind::kInvalidArgument);
  executor->start(1, other);
  Result first, second;
  executor->finish(0, first);
  executor->finish(1, second);
  EXPECT_TRUE(outputs_close(first.output, direct.run(good.nchw, 3), 1e-5, "slot 0 after errors"));
  EXPECT_TRUE(
      outputs_close(second.output, direct.run_uint8(other.nhwc, 5, o), 1e-5, "slot 1 (uint8)"));
}

// ---- Sub-batch chunks (PipelineOptions::chunk_images) ------------------------

// ResNet-18 FP16 for batches 1..128, tuned at 128 as `anvil bench --ablation`
// builds it: the fixture's engine stops at batch 8.
std::shared_ptr<const Engine> engine_to_128() {
  static std::shared_ptr<const Engine> built;
  if (built) return built;
  const std::filesystem::path model = std::filesystem::path(ANVIL_GPU_MODEL_DIR) / "resnet18.onnx";
  ir::Graph graph = onnx::import_model(model);
  passes::PassManager().run(graph);
  plan::Plan p = builder::lower_graph(graph, {.fp16 = true, .tf32 = false, .max_batch = 128});
  p.anvil_version = "test";
  p.target = builder::current_target();
  p.options = {true, false, 256 << 20, {}};
  builder::AutotuneOptions tuning;
  tuning.batch = 128;
  tuning.iterations = 1;
  builder::autotune(p, tuning);
  built = Engine::deserialize(plan::serialize_plan(p), "resnet18 1..128.plan");
  return built;
}

// The engine run directly on images first..first+count of `nchw`: what a
// chunk of them must give.
std::vector<float> direct_rows(const Engine& engine, const std::vector<float>& nchw,
                               std::int64_t first, std::int64_t count) {
  const EngineShape shape = shape_of(engine);
  const test::IoNames names = test::io_names(engine);
  auto context = engine.create_context();
  cuda::DeviceBuffer in(static_cast<std::size_t>(count) * shape.image * sizeof(float));
  cuda::DeviceBuffer out(static_cast<std::size_t>(count) * shape.classes * sizeof(float));
  context->set_optimization_profile(engine.best_profile(count));
  std::vector<std::int64_t> dims = shape.input_dims;
  dims[0] = count;
  context->set_input_shape(names.input, dims);
  context->set_tensor_address(names.input, in.data());
  context->set_tensor_address(names.output, out.data());
  cuda::copy_to_device(in.data(), nchw.data() + static_cast<std::size_t>(first) * shape.image,
                       in.bytes());
  cuda::Stream stream;
  context->enqueue(stream.get());
  stream.synchronize();
  std::vector<float> rows(static_cast<std::size_t>(count) * shape.classes);
  ANVIL_GPU_CHECK(cudaMemcpy(rows.data(), out.data(), out.bytes(), cudaMemcpyDeviceToHost));
  return rows;
}

// Chunked requests give, chunk by chunk, the bits of a direct run at the
// chunk's size, for 128 = 4 x 32, 100 = 3 x 32 + 4, 7 in one chunk of 32 and
// in 3 + 3 + 1, CUDA graphs off and on; each request is sent three times so
// graphs warm up, capture and replay. Against the whole request they agree
// only to FP16 rounding: the engine's tactics differ between batch 32 and 128
// (on an H100, 42399 of 128000 logits differed in their last bits), as
// TensorRT's do.
TEST(PipelineGpu, ChunkedRequestsEqualWholeOnes) {
  ANVIL_REQUIRE_GPU();
  const auto engine = engine_to_128();
  const EngineShape shape = shape_of(*engine);
  struct Case {
    std::int64_t batch, chunk;
  };
  const Case cases[] = {{128, 32}, {100, 32}, {7, 32}, {7, 3}};
  for (const bool graphs : {false, true}) {
    for (const Case& c : cases) {
      const std::string what =
          cat("batch ", c.batch, " in chunks of ", c.chunk, ", graphs ", graphs ? "on" : "off");
      std::printf("%s\n", what.c_str());
      PipelineOptions o;
      o.workers = 1;
      o.output = OutputMode::kFullOutput;
      o.cuda_graphs = graphs;
      Pipeline whole(engine_executor_factory(engine), o);
      o.chunk_images = static_cast<int>(c.chunk);
      Pipeline chunked(engine_executor_factory(engine), o);
      const Batch b = float_batch(c.batch, shape.image, 4000u + static_cast<unsigned>(c.batch), 0);
      std::vector<float> want_chunks;
      for (std::int64_t first = 0; first < c.batch; first += c.chunk) {
        const std::vector<float> rows =
            direct_rows(*engine, b.nchw, first, std::min(c.chunk, c.batch - first));
        want_chunks.insert(want_chunks.end(), rows.begin(), rows.end());
      }
      const std::vector<float> want_whole = whole.submit(b).get().output;
      for (int round = 0; round < 3; ++round) {
        const std::vector<float> got = chunked.submit(b).get().output;
        test::expect_bit_identical(got, want_chunks,
                                   cat(what, ", round ", round, ": vs direct runs of each chunk"));
        EXPECT_TRUE(outputs_close(got, want_whole, 2e-2,
                                  cat(what, ", round ", round, ": vs the whole batch")));
      }
    }
  }
}

// The images [first, first + count) of `b`, as a request of their own.
Batch slice(const Batch& b, std::int64_t first, std::int64_t count) {
  Batch s;
  s.batch_size = count;
  s.format = b.format;
  s.tag = b.tag;
  const auto cut = [&](const auto& from, auto& to) {
    const std::size_t per_image = from.size() / static_cast<std::size_t>(b.batch_size);
    to.assign(from.begin() + static_cast<std::ptrdiff_t>(first * per_image),
              from.begin() + static_cast<std::ptrdiff_t>((first + count) * per_image));
  };
  cut(b.nchw, s.nchw);
  cut(b.nhwc, s.nhwc);
  cut(b.nchw_u8, s.nchw_u8);
  return s;
}

// The per-chunk paths besides FP32 full output: uint8 images normalized a
// chunk at a time, top-k written at each chunk's offset (the indices and
// the scores halves), against each chunk sent unchunked as a request of its
// own (so the engine runs the same batch sizes and the bits must match).
TEST(PipelineGpu, ChunkedTopKAndUint8EqualWholeRequests) {
  ANVIL_REQUIRE_GPU();
  const auto engine = engine_to_128();
  const EngineShape shape = shape_of(*engine);
  for (const OutputMode mode : {OutputMode::kTopK, OutputMode::kFullOutput}) {
    PipelineOptions o;
    o.workers = 1;
    o.output = mode;
    o.top_k = 5;
    Pipeline whole(engine_executor_factory(engine), o);
    o.chunk_images = 32;
    Pipeline chunked(engine_executor_factory(engine), o);
    for (const bool u8 : {false, true}) {
      const Batch b =
          u8 ? uint8_batch(100, shape.image, 77, 0) : float_batch(100, shape.image, 78, 0);
      const std::string what = cat(u8 ? "uint8" : "FP32", " batch 100 in chunks of 32, ",
                                   mode == OutputMode::kTopK ? "top-5" : "full output");
      std::printf("%s\n", what.c_str());
      Result want;
      for (std::int64_t first = 0; first < b.batch_size; first += 32) {
        const Result part =
            whole.submit(slice(b, first, std::min<std::int64_t>(32, b.batch_size - first))).get();
        want.output.insert(want.output.end(), part.output.begin(), part.output.end());
        want.top_k.insert(want.top_k.end(), part.top_k.begin(), part.top_k.end());
      }
      const Result got = chunked.submit(b).get();
      if (mode == OutputMode::kFullOutput) {
        test::expect_bit_identical(got.output, want.output, what);
        continue;
      }
      ASSERT_EQ(got.top_k.size(), want.top_k.size()) << what;
      std::size_t differing = 0;
      for (std::size_t i = 0; i < got.top_k.size(); ++i) {
        if (got.top_k[i].class_index == want.top_k[i].class_index &&
            got.top_k[i].score == want.top_k[i].score)
          continue;
        if (differing++ < 5)
          ADD_FAILURE() << what << ": image " << i / 5 << " rank " << i % 5 << " got class "
                        << got.top_k[i].class_index << " score " << got.top_k[i].score
                        << ", unchunked class " << want.top_k[i].class_index << " score "
                        << want.top_k[i].score;
      }
      EXPECT_EQ(differing, 0u) << what;
    }
  }
}

// PipelineOptions::gpu_timeline: each request of 100 images in chunks of 32
// carries 4 upload, 4 compute and 1 download spans, each in order on its
// stream, chunk c's compute after its upload, the download after the last
// compute, all inside the request's own submit-to-result window (within the
// clock placement's slack); uint8 requests (preformatted storage) too.
// Without the option there are none.
TEST(PipelineGpu, GpuTimelineSpansFollowTheStreams) {
  ANVIL_REQUIRE_GPU();
  using Clock = std::chrono::steady_clock;
  const auto engine = engine_to_128();
  const EngineShape shape = shape_of(*engine);
  PipelineOptions o;
  o.workers = 1;
  o.chunk_images = 32;
  o.gpu_timeline = true;
  Pipeline pipeline(engine_executor_factory(engine), o);
  const auto slack = std::chrono::microseconds(200);
  for (int i = 0; i < 4; ++i) {
    const Batch b = i % 2 ? uint8_batch(100, shape.image, 5000u + i, i)
                          : float_batch(100, shape.image, 5000u + i, i);
    const auto submitted = Clock::now();
    const Result r = pipeline.submit(b).get();
    const auto returned = Clock::now();
    std::vector<GpuSpan> up, compute, down;
    for (const GpuSpan& g : r.timing.gpu) {
      std::printf("request %d %-8s %-9s %+.3f .. %+.3f ms\n", i, g.stream.c_str(), g.what.c_str(),
                  std::chrono::duration<double, std::milli>(g.start - submitted).count(),
                  std::chrono::duration<double, std::milli>(g.end - submitted).count());
      EXPECT_LE(g.start, g.end) << g.stream << " " << g.what;
      EXPECT_GE(g.start, submitted - slack) << g.stream << " " << g.what;
      EXPECT_LE(g.end, returned + slack) << g.stream << " " << g.what;
      (g.stream == "upload" ? up : g.stream == "compute" ? compute : down).push_back(g);
    }
    ASSERT_EQ(up.size(), 4u);
    ASSERT_EQ(compute.size(), 4u);
    ASSERT_EQ(down.size(), 1u);
    for (std::size_t c = 0; c < 4; ++c) {
      EXPECT_EQ(up[c].what, cat("chunk ", c + 1, "/4"));
      EXPECT_GE(compute[c].start, up[c].end) << "chunk " << c + 1 << " computed before it landed";
      if (c > 0) {
        EXPECT_GE(up[c].start, up[c - 1].end) << "one copy stream: uploads in turn";
        EXPECT_GE(compute[c].start, compute[c - 1].end) << "one compute stream";
      }
    }
    EXPECT_GE(down[0].start, compute[3].end);
  }
  o.gpu_timeline = false;
  Pipeline plain(engine_executor_factory(engine), o);
  EXPECT_TRUE(plain.submit(float_batch(100, shape.image, 5100u, 0)).get().timing.gpu.empty());
}

// Chunk sizes the engine cannot run are refused where the pipeline is made.
TEST(PipelineGpu, ChunkSizesOutsideTheEngineAreErrors) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", false);  // batches 1..8
  for (const int chunk : {-1, 9}) {
    PipelineOptions o;
    o.chunk_images = chunk;
    try {
      Pipeline p(engine_executor_factory(engine), o);
      ADD_FAILURE() << "chunk_images " << chunk << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find("chunk_images"), std::string::npos) << e.what();
    }
  }
}

// Chunk contexts are bound to the chunk size where the pipeline is made
// (so no request pays for their first shape): a chunk size between an
// engine's two profiles is refused there, where it used to fail the first
// request; one inside a profile is made and runs.
TEST(PipelineGpu, AChunkSizeInNoProfileIsRefusedWhereThePipelineIsMade) {
  ANVIL_REQUIRE_GPU();
  const std::filesystem::path model =
      std::filesystem::path(ANVIL_GPU_MODEL_DIR) / "mobilenetv2.onnx";
  ASSERT_TRUE(std::filesystem::exists(model)) << model << " (made by the gpu.models fixture)";
  BuilderConfig config;
  config.fp16 = true;
  config.autotune_iterations = 1;
  config.profile.set_batch_range(1, 2, 2);
  config.additional_profiles.resize(1);
  config.additional_profiles[0].set_batch_range(4, 4, 8);
  const std::shared_ptr<const Engine> engine =
      Engine::deserialize(Builder().build_serialized(model, config), "two-profile.plan");
  const EngineShape shape = shape_of(*engine);
  PipelineOptions o;
  o.workers = 1;
  o.output = OutputMode::kFullOutput;
  o.chunk_images = 3;
  try {
    Pipeline p(engine_executor_factory(engine), o);
    ADD_FAILURE() << "chunks of 3 were accepted: no profile runs batch 3";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    const std::string what = e.what();
    EXPECT_NE(what.find("batch 3"), std::string::npos) << what;
    EXPECT_NE(what.find("no optimization profile"), std::string::npos) << what;
  }
  o.chunk_images = 4;
  Pipeline p(engine_executor_factory(engine), o);
  const Result r = p.submit(float_batch(8, shape.image, 7100u, 0)).get();
  EXPECT_EQ(r.output.size(), 8 * shape.classes);
}

}  // namespace
}  // namespace anvil
