// ExecutionContext CUDA graphs: replay is bit-identical to plain launches,
// also after a batch change and an address change; a capture that cannot
// happen (the legacy default stream) falls back to plain launches and says why.
#include <ostream>

#include "engine_test_util.h"
#include "gpu_test.h"

namespace anvil {
namespace {

using test::DeviceIo;

struct Case {
  const char* model;
  bool fp16;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(info.param.model) + (info.param.fp16 ? "_fp16" : "_fp32");
}

// The ctest names show the parameter: printed, not its bytes (whose padding
// would make the names differ from build to build).
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << (c.fp16 ? "_fp16" : "_fp32");
}

class ContextCudaGraph : public ::testing::TestWithParam<Case> {};

// Enqueues until the context replays its graph (warm-up, capture, replay),
// checking every output against `want`.
void expect_replay_matches(ExecutionContext& context, const DeviceIo& io,
                           const std::vector<float>& want, const std::string& what) {
  const char* steps[] = {"warm-up (plain)", "capture", "replay", "second replay"};
  for (int i = 0; i < 4; ++i) {
    test::expect_bit_identical(test::run_once(context, io), want, what + ", " + steps[i]);
    EXPECT_EQ(context.last_enqueue_used_graph(), i >= 1)
        << what << ", " << steps[i] << "; capture failure: '" << context.cuda_graph_failure()
        << "'";
  }
  EXPECT_EQ(context.cuda_graph_failure(), "") << what;
}

TEST_P(ContextCudaGraph, ReplayIsBitIdenticalToPlainLaunches) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine(GetParam().model, GetParam().fp16);
  auto plain = engine->create_context();
  auto graphed = engine->create_context();
  graphed->set_cuda_graph(true);
  EXPECT_TRUE(graphed->cuda_graph_active());

  const DeviceIo io8(*engine, 8, 1), io3(*engine, 3, 2), io8b(*engine, 8, 3);
  auto reference = [&](const DeviceIo& io, std::int64_t batch) {
    test::bind(*engine, *plain, io, batch);
    const std::vector<float> want = test::run_once(*plain, io);
    test::expect_bit_identical(test::run_once(*plain, io), want,
                               "plain launches run twice (is the engine deterministic?)");
    return want;
  };
  const std::vector<float> want8 = reference(io8, 8), want3 = reference(io3, 3),
                           want8b = reference(io8b, 8);

  test::bind(*engine, *graphed, io8, 8);
  expect_replay_matches(*graphed, io8, want8, "batch 8");
  test::bind(*engine, *graphed, io3, 3);
  expect_replay_matches(*graphed, io3, want3, "then batch 3");
  // Back to batch 8 and the same buffers: the kept graph replays at once.
  test::bind(*engine, *graphed, io8, 8);
  test::expect_bit_identical(test::run_once(*graphed, io8), want8, "batch 8 again");
  EXPECT_TRUE(graphed->last_enqueue_used_graph()) << "batch 8's graph was not kept";
  // Other IO buffers: a new warm-up and capture.
  test::bind(*engine, *graphed, io8b, 8);
  expect_replay_matches(*graphed, io8b, want8b, "batch 8, new IO addresses");
  // New device memory too.
  cuda::DeviceBuffer block(engine->context_memory_bytes());
  graphed->set_device_memory(block.data(), block.bytes());
  expect_replay_matches(*graphed, io8b, want8b, "batch 8, new device memory");
}

INSTANTIATE_TEST_SUITE_P(Models, ContextCudaGraph,
                         ::testing::Values(Case{"resnet18", true}, Case{"mobilenetv2", false}),
                         case_name);

TEST(ContextCudaGraphFallback, TheLegacyDefaultStreamFallsBackWithAReason) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  auto context = engine->create_context();
  const DeviceIo io(*engine, 2, 4);
  test::bind(*engine, *context, io, 2);
  cuda::Stream stream;
  const std::vector<float> want = test::run_once(*context, io);

  context->set_cuda_graph(true);
  // Capturing the legacy default stream is illegal: the capture step fails.
  for (int i = 0; i < 3; ++i) {
    io.clear_output();
    context->enqueue(cudaStreamLegacy);
    ANVIL_GPU_CHECK(cudaStreamSynchronize(cudaStreamLegacy));
    test::expect_bit_identical(io.download(), want,
                               "legacy default stream, enqueue " + std::to_string(i));
    EXPECT_FALSE(context->last_enqueue_used_graph());
  }
  std::printf("fallback reason: %s\n", context->cuda_graph_failure().c_str());
  EXPECT_FALSE(context->cuda_graph_active());
  EXPECT_NE(context->cuda_graph_failure().find("cudaStreamBeginCapture"), std::string::npos)
      << "reason: '" << context->cuda_graph_failure() << "'";
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the failed capture left a CUDA error behind";

  // Fallen back for good: a proper stream still launches plainly...
  test::expect_bit_identical(test::run_once(*context, io), want, "after the fallback");
  EXPECT_FALSE(context->last_enqueue_used_graph());
  // ...until graphs are turned on again.
  context->set_cuda_graph(true);
  EXPECT_TRUE(context->cuda_graph_active());
  EXPECT_EQ(context->cuda_graph_failure(), "");
  test::run_once(*context, io);  // the address set's warm-up already ran: this captures
  EXPECT_TRUE(context->last_enqueue_used_graph()) << context->cuda_graph_failure();
}

TEST(ContextCudaGraphFallback, ProfilingWinsOverGraphs) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  auto context = engine->create_context();
  const DeviceIo io(*engine, 2, 6);
  test::bind(*engine, *context, io, 2);
  context->set_cuda_graph(true);
  struct Counter final : Profiler {
    int reports = 0;
    void report_layer_time(std::string_view, std::string_view, float) override { ++reports; }
  } counter;
  context->set_profiler(&counter);
  for (int i = 0; i < 3; ++i) {
    test::run_once(*context, io);
    EXPECT_FALSE(context->last_enqueue_used_graph()) << "a profiled enqueue replayed a graph";
  }
  EXPECT_EQ(counter.reports, 3 * static_cast<int>(engine->plan().layers.size()));
  context->set_profiler(nullptr);
  test::run_once(*context, io);
  test::run_once(*context, io);
  EXPECT_TRUE(context->last_enqueue_used_graph()) << context->cuda_graph_failure();
}

}  // namespace
}  // namespace anvil
