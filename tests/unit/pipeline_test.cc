// The pipeline's core on the CPU: every result reaches its own request under
// load, backpressure, drain and cancel, error propagation, clean destruction,
// and the host softmax / top-k / uint8 normalization.
#include "anvil/pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>

#include "pass_test_util.h"
#include "pipeline/cpu_executor.h"
#include "pipeline/host_postprocess.h"
#include "tiny_classifier.h"

namespace anvil {
namespace {

using namespace std::chrono_literals;
using passes::testing::GraphBuilder;

constexpr std::int64_t kClasses = test::kTinyClasses;
constexpr std::int64_t kImage = test::kTinyImage;
using test::tiny_classifier;

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v)
    x = normal(rng);
  return v;
}

Batch float_batch(std::int64_t batch_size, unsigned seed, std::uint64_t tag) {
  Batch b;
  b.batch_size = batch_size;
  b.nchw = random_floats(static_cast<std::size_t>(batch_size * kImage), seed);
  b.tag = tag;
  return b;
}

// The model's output for `batch`, run directly (not through the pipeline).
std::vector<float> direct_output(const ir::Graph& graph, const Batch& batch) {
  Tensor in = Tensor::from<float>({batch.batch_size, 3, 4, 4}, std::span<const float>(batch.nchw));
  std::vector<Tensor> out = reference::ReferenceRuntime(graph).run({{"x", in}});
  return {out[0].values<float>().begin(), out[0].values<float>().end()};
}

PipelineOptions full_output_options(int workers, int queue_depth) {
  PipelineOptions o;
  o.workers = workers;
  o.queue_depth = queue_depth;
  o.output = OutputMode::kFullOutput;
  return o;
}

template <typename T>
bool ready_within(const std::future<T>& f, std::chrono::milliseconds timeout) {
  return f.wait_for(timeout) == std::future_status::ready;
}

// ---- Association and ordering on the CPU executor -----------------------------

TEST(Pipeline, EveryResultBelongsToItsOwnRequestUnderLoad) {
  auto graph = tiny_classifier();
  constexpr int kRequests = 200;
  std::vector<Batch> batches;
  std::vector<std::vector<float>> expected;
  for (int i = 0; i < kRequests; ++i) {
    batches.push_back(
        float_batch(1 + i % 3, 1000u + static_cast<unsigned>(i), static_cast<std::uint64_t>(i)));
    expected.push_back(direct_output(*graph, batches.back()));
  }
  Pipeline pipeline(pipeline::cpu_executor_factory(graph), full_output_options(4, 4));

  // Two submitters at once, each with its half, so sequence numbers interleave.
  std::vector<std::future<Result>> futures(kRequests);
  auto submit_half = [&](int first) {
    for (int i = first; i < kRequests; i += 2)
      futures[static_cast<std::size_t>(i)] = pipeline.submit(batches[static_cast<std::size_t>(i)]);
  };
  std::thread other(submit_half, 1);
  submit_half(0);
  other.join();

  std::set<std::uint64_t> sequences;
  std::set<int> workers;
  std::uint64_t last_even_sequence = 0;
  for (int i = 0; i < kRequests; ++i) {
    Result r = futures[static_cast<std::size_t>(i)].get();
    ASSERT_EQ(r.tag, static_cast<std::uint64_t>(i));
    ASSERT_EQ(r.batch_size, 1 + i % 3);
    ASSERT_EQ(r.output_elements, kClasses);
    ASSERT_EQ(r.output, expected[static_cast<std::size_t>(i)]) << "request " << i;
    EXPECT_TRUE(sequences.insert(r.sequence).second) << "sequence " << r.sequence << " twice";
    if (i % 2 == 0) {  // one submitter's requests are numbered in its order
      if (i > 0) {
        EXPECT_GT(r.sequence, last_even_sequence);
      }
      last_even_sequence = r.sequence;
    }
    EXPECT_GE(r.timing.total_ms, r.timing.executed_ms);
    workers.insert(r.worker);
  }
  EXPECT_EQ(*sequences.rbegin(), static_cast<std::uint64_t>(kRequests - 1));
  EXPECT_GT(workers.size(), 1u) << "all requests ran on one worker";
  pipeline.drain();  // a request counts as ended just after its future is ready
  const PipelineStats s = pipeline.stats();
  EXPECT_EQ(s.submitted, static_cast<std::uint64_t>(kRequests));
  EXPECT_EQ(s.completed, static_cast<std::uint64_t>(kRequests));
  EXPECT_EQ(s.failed + s.cancelled, 0u);
  EXPECT_LE(s.queue_high_water, 4u);
}

TEST(Pipeline, TopKIsTheSoftmaxOfTheModelsOutput) {
  auto graph = tiny_classifier();
  PipelineOptions options;
  options.workers = 2;
  options.top_k = 3;
  Pipeline pipeline(pipeline::cpu_executor_factory(graph), options);
  Batch batch = float_batch(4, 7, 0);
  const std::vector<float> logits = direct_output(*graph, batch);
  Result r = pipeline.submit(batch).get();
  ASSERT_EQ(r.k, 3);
  ASSERT_EQ(r.top_k.size(), 12u);
  for (std::int64_t image = 0; image < 4; ++image) {
    std::vector<float> row(logits.begin() + image * kClasses,
                           logits.begin() + (image + 1) * kClasses);
    double sum = 0;
    for (float v : row)
      sum += std::exp(static_cast<double>(v));
    const auto best = std::max_element(row.begin(), row.end()) - row.begin();
    auto top = r.image_top_k(image);
    EXPECT_EQ(top[0].class_index, best) << "image " << image;
    for (const Classification& c : top)
      EXPECT_NEAR(c.score, std::exp(row[static_cast<std::size_t>(c.class_index)]) / sum, 1e-6);
    EXPECT_GE(top[0].score, top[1].score);
    EXPECT_GE(top[1].score, top[2].score);
  }
  EXPECT_THROW(r.image_top_k(4), Error);
}

TEST(Pipeline, OneWorkerFinishesInSubmissionOrder) {
  Pipeline pipeline(pipeline::cpu_executor_factory(tiny_classifier()), full_output_options(1, 3));
  std::mutex mutex;
  std::vector<std::uint64_t> order;
  for (int i = 0; i < 20; ++i)
    pipeline.submit(float_batch(1, static_cast<unsigned>(i), static_cast<std::uint64_t>(i)),
                    [&](std::exception_ptr error, Result r) {
                      EXPECT_FALSE(error);
                      std::lock_guard lock(mutex);
                      order.push_back(r.sequence);
                    });
  pipeline.drain();
  std::vector<std::uint64_t> expected(20);
  std::iota(expected.begin(), expected.end(), 0u);
  std::lock_guard lock(mutex);
  EXPECT_EQ(order, expected);
}

TEST(Pipeline, Uint8ImagesAreNormalizedLikeTorchvision) {
  auto graph = tiny_classifier();
  Pipeline pipeline(pipeline::cpu_executor_factory(graph), full_output_options(1, 2));
  const PipelineOptions& o = pipeline.options();
  Batch images;
  images.batch_size = 2;
  images.format = InputFormat::kUint8Nhwc;
  Batch floats;
  floats.batch_size = 2;
  for (int i = 0; i < 2 * 16 * 3; ++i)
    images.nhwc.push_back(static_cast<std::uint8_t>((i * 37) % 256));
  floats.nchw.resize(2 * kImage);
  for (int n = 0; n < 2; ++n)
    for (int p = 0; p < 16; ++p)
      for (int c = 0; c < 3; ++c)
        floats.nchw[static_cast<std::size_t>(n * kImage + c * 16 + p)] =
            (images.nhwc[static_cast<std::size_t>((n * 16 + p) * 3 + c)] / 255.0f - o.mean[c]) /
            o.stddev[c];
  const std::vector<float> expected = direct_output(*graph, floats);
  const Result r = pipeline.submit(images).get();
  ASSERT_EQ(r.output.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(r.output[i], expected[i], 1e-5) << i;
}

TEST(Pipeline, BadBatchesAndOptionsAreErrorsAtTheCall) {
  auto factory = pipeline::cpu_executor_factory(tiny_classifier(), /*max_batch=*/8);
  Pipeline pipeline(factory, full_output_options(1, 2));
  Batch short_batch = float_batch(2, 1, 0);
  short_batch.nchw.pop_back();
  EXPECT_THROW(pipeline.submit(short_batch), Error);
  EXPECT_THROW(pipeline.submit(float_batch(9, 1, 0)), Error);  // above max_batch
  Batch empty;
  EXPECT_THROW(pipeline.submit(std::move(empty)), Error);
  EXPECT_EQ(pipeline.stats().submitted, 0u);

  PipelineOptions too_many_classes;
  too_many_classes.top_k = static_cast<int>(kClasses) + 1;
  EXPECT_THROW((Pipeline{factory, too_many_classes}), Error);
  PipelineOptions no_workers;
  no_workers.workers = 0;
  EXPECT_THROW((Pipeline{factory, no_workers}), Error);
  for (int poll_us : {-1, 1'000'001}) {
    PipelineOptions bad_poll;
    bad_poll.idle_poll_us = poll_us;
    EXPECT_THROW((Pipeline{factory, bad_poll}), Error) << poll_us;
  }
}

// Workers that poll before sleeping serve requests that come while they poll,
// after they gave up, and shut down while polling.
TEST(Pipeline, PollingWorkersServeEveryRequestAndShutDown) {
  PipelineOptions options = full_output_options(2, 4);
  options.idle_poll_us = 2000;
  Pipeline pipeline(pipeline::cpu_executor_factory(tiny_classifier()), options);
  auto graph = tiny_classifier();
  for (int round = 0; round < 3; ++round) {
    std::vector<std::future<Result>> futures;
    for (unsigned i = 0; i < 6; ++i)
      futures.push_back(pipeline.submit(float_batch(1, i, i)));
    for (unsigned i = 0; i < futures.size(); ++i)
      EXPECT_EQ(futures[i].get().output, direct_output(*graph, float_batch(1, i, i))) << i;
    // Round 1 comes while the workers poll, round 2 after they gave up.
    std::this_thread::sleep_for(round == 0 ? 100us : 10ms);
  }
  const auto before = std::chrono::steady_clock::now();
  pipeline.shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
  EXPECT_EQ(pipeline.stats().completed, 18u);
}

// Borrowed pixels give the results of owned ones; a batch may not have both,
// and borrowed floats must be whole and aligned.
TEST(Pipeline, BorrowedPixelsEqualOwnedOnes) {
  auto graph = tiny_classifier();
  Pipeline pipeline(pipeline::cpu_executor_factory(graph), full_output_options(2, 4));
  const Batch owned = float_batch(3, 11, 1);
  Batch borrowed;
  borrowed.batch_size = 3;
  borrowed.borrowed = std::as_bytes(std::span(owned.nchw));
  std::future<Result> from_borrowed = pipeline.submit(borrowed);
  const std::vector<float> want = direct_output(*graph, owned);
  EXPECT_EQ(from_borrowed.get().output, want);

  Batch uint8_owned;
  uint8_owned.batch_size = 1;
  uint8_owned.format = InputFormat::kUint8Nhwc;
  for (int i = 0; i < 16 * 3; ++i)
    uint8_owned.nhwc.push_back(static_cast<std::uint8_t>(i * 5));
  Batch uint8_borrowed = uint8_owned;
  uint8_borrowed.borrowed = std::as_bytes(std::span(uint8_owned.nhwc));
  uint8_borrowed.nhwc.clear();
  EXPECT_EQ(pipeline.submit(uint8_borrowed).get().output,
            pipeline.submit(uint8_owned).get().output);

  Batch both = owned;
  both.borrowed = borrowed.borrowed;
  EXPECT_THROW(pipeline.submit(both), Error);
  Batch ragged = borrowed;
  ragged.borrowed = ragged.borrowed.first(ragged.borrowed.size() - 2);
  EXPECT_THROW(pipeline.submit(ragged), Error);
  Batch misaligned = borrowed;
  misaligned.borrowed = misaligned.borrowed.subspan(1, misaligned.borrowed.size() - 4);
  EXPECT_THROW(pipeline.submit(misaligned), Error);
}

TEST(Pipeline, CpuExecutorRefusesModelsItCannotServe) {
  GraphBuilder b;
  ir::Value* x = b.input("x", {1, 3, 4, 4});
  ir::Value* y = b.input("y", {1, 3, 4, 4});
  b.output(b.node("Add", {x, y}));
  auto graph = std::make_shared<const ir::Graph>(b.finish());
  try {
    pipeline::cpu_executor_factory(graph);
    ADD_FAILURE() << "no error for a two-input model";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
  }
}

// ---- A fake executor for timing-sensitive behavior ----------------------------

// Shared by the fake executors of one test: a gate that holds every finish()
// until opened, a tag that fails, and what the test needs to observe.
struct FakeControl {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = true;
  int started = 0;
  int slots = 1;
  std::uint64_t fail_in_start = UINT64_MAX;
  std::uint64_t fail_in_finish = UINT64_MAX;
  std::chrono::microseconds work{0};

  void set_open(bool value) {
    {
      std::lock_guard lock(mutex);
      open = value;
    }
    changed.notify_all();
  }
  // Waits until `n` batches were started; false after 5 s.
  bool wait_started(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 5s, [&] { return started >= n; });
  }
};

// Outputs one value per image: the batch's tag.
class FakeExecutor final : public BatchExecutor {
 public:
  explicit FakeExecutor(std::shared_ptr<FakeControl> control)
      : control_(std::move(control)), busy_(static_cast<std::size_t>(control_->slots)) {}

  ExecutorModelInfo model_info() const override { return {{1}, 1, 1, 4}; }
  int slots() const override { return control_->slots; }

  void start(int slot, const Batch& batch) override {
    if (busy_.at(static_cast<std::size_t>(slot)))
      fail(ErrorKind::kInternal, "slot ", slot, " started while busy");
    {
      std::lock_guard lock(control_->mutex);
      ++control_->started;
    }
    control_->changed.notify_all();
    if (batch.tag == control_->fail_in_start) fail(ErrorKind::kGpu, "start failed");
    busy_[static_cast<std::size_t>(slot)] = &batch;
  }

  void finish(int slot, Result& result) override {
    const Batch* batch = std::exchange(busy_.at(static_cast<std::size_t>(slot)), nullptr);
    if (!batch) fail(ErrorKind::kInternal, "slot ", slot, " finished but never started");
    {
      std::unique_lock lock(control_->mutex);
      control_->changed.wait(lock, [&] { return control_->open; });
    }
    std::this_thread::sleep_for(control_->work);
    if (batch->tag == control_->fail_in_finish) fail(ErrorKind::kGpu, "finish failed");
    result.output_elements = 1;
    result.output.assign(static_cast<std::size_t>(batch->batch_size),
                         static_cast<float>(batch->tag));
  }

 private:
  std::shared_ptr<FakeControl> control_;
  std::vector<const Batch*> busy_;
};

ExecutorFactory fake_factory(const std::shared_ptr<FakeControl>& control) {
  return [control](int, const PipelineOptions&) { return std::make_unique<FakeExecutor>(control); };
}

Batch tiny_batch(std::uint64_t tag) {
  Batch b;
  b.batch_size = 1;
  b.nchw = {0.0f};
  b.tag = tag;
  return b;
}

TEST(Pipeline, FullQueueBlocksSubmitAndRefusesTrySubmit) {
  auto control = std::make_shared<FakeControl>();
  control->open = false;
  Pipeline pipeline(fake_factory(control), full_output_options(1, 2));
  std::vector<std::future<Result>> futures;
  futures.push_back(pipeline.submit(tiny_batch(0)));
  ASSERT_TRUE(control->wait_started(1));  // the worker holds request 0
  futures.push_back(pipeline.submit(tiny_batch(1)));
  futures.push_back(pipeline.submit(tiny_batch(2)));  // the queue is now full

  Batch refused = tiny_batch(3);
  EXPECT_FALSE(pipeline.try_submit(std::move(refused)).has_value());
  EXPECT_EQ(refused.nchw.size(), 1u) << "a refused batch must stay the caller's";
  EXPECT_FALSE(pipeline.try_submit(tiny_batch(3), [](std::exception_ptr, Result) {}));

  std::atomic<bool> returned{false};
  std::future<Result> blocked_future;
  std::thread blocked([&] {
    blocked_future = pipeline.submit(tiny_batch(3));
    returned = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(returned) << "submit returned while the queue was full";
  control->set_open(true);
  blocked.join();
  EXPECT_TRUE(returned);
  futures.push_back(std::move(blocked_future));
  for (std::size_t i = 0; i < futures.size(); ++i)
    EXPECT_EQ(futures[i].get().output.at(0), static_cast<float>(i));
  const PipelineStats s = pipeline.stats();
  EXPECT_EQ(s.queue_high_water, 2u);
  EXPECT_EQ(s.submitted, 4u);
}

TEST(Pipeline, ShutdownWithDrainRunsEveryRequest) {
  auto control = std::make_shared<FakeControl>();
  control->open = false;
  control->slots = 2;
  Pipeline pipeline(fake_factory(control), full_output_options(2, 16));
  std::vector<std::future<Result>> futures;
  for (std::uint64_t i = 0; i < 12; ++i)
    futures.push_back(pipeline.submit(tiny_batch(i)));
  std::thread opener([&] {
    std::this_thread::sleep_for(20ms);
    control->set_open(true);
  });
  pipeline.shutdown(/*cancel_pending=*/false);
  opener.join();
  for (std::size_t i = 0; i < futures.size(); ++i) {
    ASSERT_TRUE(ready_within(futures[i], 0ms)) << "request " << i << " not done after shutdown";
    EXPECT_EQ(futures[i].get().output.at(0), static_cast<float>(i));
  }
  EXPECT_EQ(pipeline.stats().completed, 12u);
  EXPECT_THROW(pipeline.submit(tiny_batch(99)), Error);
  pipeline.shutdown(true);  // idempotent
}

TEST(Pipeline, ShutdownWithCancelEndsEveryQueuedRequest) {
  auto control = std::make_shared<FakeControl>();
  control->open = false;
  Pipeline pipeline(fake_factory(control), full_output_options(1, 16));
  std::vector<std::future<Result>> futures;
  for (std::uint64_t i = 0; i < 10; ++i)
    futures.push_back(pipeline.submit(tiny_batch(i)));
  ASSERT_TRUE(control->wait_started(1));
  // shutdown waits for the running request, which waits for the gate.
  std::thread stopper([&] { pipeline.shutdown(/*cancel_pending=*/true); });
  for (std::size_t i = 1; i < futures.size(); ++i)
    ASSERT_TRUE(ready_within(futures[i], 5s)) << "queued request " << i << " hangs";
  control->set_open(true);
  stopper.join();
  ASSERT_TRUE(ready_within(futures[0], 0ms));
  EXPECT_EQ(futures[0].get().output.at(0), 0.0f);
  for (std::size_t i = 1; i < futures.size(); ++i)
    EXPECT_THROW(futures[i].get(), CancelledError) << "request " << i;
  const PipelineStats s = pipeline.stats();
  EXPECT_EQ(s.completed, 1u);
  EXPECT_EQ(s.cancelled, 9u);
  EXPECT_EQ(s.completed + s.failed + s.cancelled, s.submitted);
}

TEST(Pipeline, AnExecutorErrorReachesOnlyItsRequest) {
  auto control = std::make_shared<FakeControl>();
  control->slots = 2;
  control->fail_in_start = 3;
  control->fail_in_finish = 7;
  Pipeline pipeline(fake_factory(control), full_output_options(2, 4));
  std::vector<std::future<Result>> futures;
  for (std::uint64_t i = 0; i < 40; ++i)
    futures.push_back(pipeline.submit(tiny_batch(i)));
  for (std::size_t i = 0; i < futures.size(); ++i) {
    if (i == 3 || i == 7) {
      try {
        futures[i].get();
        ADD_FAILURE() << "request " << i << " did not fail";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::kGpu);
        EXPECT_STREQ(e.what(), i == 3 ? "start failed" : "finish failed");
      }
      continue;
    }
    EXPECT_EQ(futures[i].get().output.at(0), static_cast<float>(i)) << "request " << i;
  }
  pipeline.drain();
  const PipelineStats s = pipeline.stats();
  EXPECT_EQ(s.failed, 2u);
  EXPECT_EQ(s.completed, 38u);
}

TEST(Pipeline, CallbacksMayTrySubmitButNotBlock) {
  auto control = std::make_shared<FakeControl>();
  Pipeline pipeline(fake_factory(control), full_output_options(1, 4));
  std::atomic<int> calls{0};
  std::atomic<bool> drain_refused{false}, resubmitted{false};
  pipeline.submit(tiny_batch(0), [&](std::exception_ptr, Result) {
    ++calls;
    try {
      pipeline.drain();
    } catch (const Error& e) {
      drain_refused = e.kind() == ErrorKind::kInvalidArgument;
    }
    resubmitted = pipeline.try_submit(tiny_batch(1), [&](std::exception_ptr, Result) { ++calls; });
    throw std::runtime_error("a callback's own bug");
  });
  // The nested request is submitted before the first one counts as ended,
  // so drain() waits for both.
  pipeline.drain();
  EXPECT_TRUE(drain_refused);
  EXPECT_TRUE(resubmitted);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(pipeline.stats().callback_errors, 1u);
  EXPECT_EQ(pipeline.stats().completed, 2u);
}

TEST(Pipeline, DestructionWhileBusyEndsEveryRequest) {
  auto control = std::make_shared<FakeControl>();
  control->work = 500us;
  control->slots = 2;
  std::vector<std::future<Result>> futures;
  std::atomic<int> callbacks{0};
  {
    Pipeline pipeline(fake_factory(control), full_output_options(3, 64));
    for (std::uint64_t i = 0; i < 60; ++i) {
      if (i % 2) {
        futures.push_back(pipeline.submit(tiny_batch(i)));
      } else {
        pipeline.submit(tiny_batch(i), [&](std::exception_ptr, Result) { ++callbacks; });
      }
    }
  }
  int completed = 0, cancelled = 0;
  for (auto& f : futures) {
    ASSERT_TRUE(ready_within(f, 0ms));
    try {
      f.get();
      ++completed;
    } catch (const CancelledError&) {
      ++cancelled;
    }
  }
  EXPECT_EQ(completed + cancelled, 30);
  EXPECT_EQ(callbacks, 30);
}

// ---- Host post-processing ----------------------------------------------------

TEST(PipelineHost, TopKBreaksTiesByIndexAndRanksNanLast) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> scores{1.0f, nan, 3.0f, 3.0f, -2.0f};
  std::vector<Classification> top(5);
  pipeline::top_k(scores, top);
  const std::vector<std::int64_t> expected{2, 3, 0, 4, 1};
  for (std::size_t i = 0; i < top.size(); ++i)
    EXPECT_EQ(top[i].class_index, expected[i]) << "rank " << i;
  EXPECT_EQ(top[0].score, 3.0f);
}

TEST(PipelineHost, SoftmaxIsStableForLargeLogits) {
  // exp(1000) overflows a float: only the max-subtracted form gets these.
  std::vector<float> v{1000.0f, 999.0f};
  pipeline::softmax_in_place(v);
  EXPECT_NEAR(v[0], 1.0 / (1.0 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(v[1], 1.0 / (1.0 + std::exp(1.0)), 1e-6);
  std::vector<float> with_nan{0.0f, std::numeric_limits<float>::quiet_NaN()};
  pipeline::softmax_in_place(with_nan);
  EXPECT_TRUE(std::isnan(with_nan[0]));
}

}  // namespace
}  // namespace anvil
