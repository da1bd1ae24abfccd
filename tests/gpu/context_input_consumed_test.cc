// ExecutionContext::set_input_consumed_event: the event is recorded on the
// enqueue stream once the inputs are read, so the caller may overwrite them
// after waiting on it while the rest of the network still runs.
#include "engine_test_util.h"
#include "gpu_test.h"

namespace anvil {
namespace {

using test::DeviceIo;

TEST(ContextInputConsumed, TheEventIsRecordedInsideTheEnqueue) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  auto context = engine->create_context();
  const DeviceIo io(*engine, 4, 11);
  test::bind(*engine, *context, io, 4);
  cuda::Event before, consumed, after;
  context->set_input_consumed_event(consumed.get());
  cuda::Stream stream;
  before.record(stream.get());
  context->enqueue(stream.get());
  after.record(stream.get());
  stream.synchronize();
  EXPECT_EQ(cudaEventQuery(consumed.get()), cudaSuccess);
  // Elapsed times exist only between recorded events (cudaErrorInvalidResourceHandle
  // otherwise), so these prove the record happened, between the two.
  float to_consumed = -1, to_after = -1;
  ASSERT_EQ(cudaEventElapsedTime(&to_consumed, before.get(), consumed.get()), cudaSuccess)
      << "the input-consumed event was not recorded";
  ASSERT_EQ(cudaEventElapsedTime(&to_after, before.get(), after.get()), cudaSuccess);
  std::printf("input consumed %.4f ms into an enqueue of %.4f ms\n", to_consumed, to_after);
  EXPECT_GE(to_consumed, 0.0f);
  EXPECT_LE(to_consumed, to_after);
}

TEST(ContextInputConsumed, OverwritingTheInputAfterTheEventLeavesTheOutput) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  auto context = engine->create_context();
  constexpr std::int64_t kBatch = 8;
  const DeviceIo io(*engine, kBatch, 5);
  test::bind(*engine, *context, io, kBatch);
  const std::vector<float> want = test::run_once(*context, io);

  cuda::Event consumed(false);
  context->set_input_consumed_event(consumed.get());
  const std::vector<float> next = test::random_floats(io.host_input.size(), 99);
  cuda::PinnedBuffer pinned(next.size() * sizeof(float));
  std::memcpy(pinned.data(), next.data(), pinned.bytes());
  cuda::Stream compute, copy;
  for (int round = 0; round < 3; ++round) {
    cuda::copy_to_device(io.input.data(), io.host_input.data(), io.input.bytes());
    io.clear_output();
    context->enqueue(compute.get());
    // The next batch's upload, as a pipeline does it: on another stream,
    // after the event, while the network may still run.
    ANVIL_GPU_CHECK(cudaStreamWaitEvent(copy.get(), consumed.get(), 0));
    ANVIL_GPU_CHECK(cudaMemcpyAsync(io.input.data(), pinned.data(), pinned.bytes(),
                                    cudaMemcpyHostToDevice, copy.get()));
    compute.synchronize();
    copy.synchronize();
    test::expect_bit_identical(
        io.download(), want,
        "output with the input overwritten after the event, round " + std::to_string(round));
  }
}

TEST(ContextInputConsumed, NullTurnsItOff) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  auto context = engine->create_context();
  const DeviceIo io(*engine, 1, 3);
  test::bind(*engine, *context, io, 1);
  cuda::Event start, never;
  context->set_input_consumed_event(never.get());
  context->set_input_consumed_event(nullptr);
  cuda::Stream stream;
  start.record(stream.get());
  context->enqueue(stream.get());
  stream.synchronize();
  float ms = 0;
  EXPECT_EQ(cudaEventElapsedTime(&ms, start.get(), never.get()), cudaErrorInvalidResourceHandle)
      << "the event was recorded after set_input_consumed_event(nullptr)";
  cudaGetLastError();

  // The context still runs, without the event.
  context->enqueue(stream.get());
  stream.synchronize();
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
}  // namespace anvil
