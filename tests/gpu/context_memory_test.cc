// ExecutionContext memory: a context that owns its block and one that borrows
// the caller's (create_context_without_memory + set_device_memory) compute the
// same outputs; bad blocks and enqueue without memory are clear errors.
#include <cstdio>

#include "builder/lower.h"
#include "engine_test_util.h"
#include "gpu_test.h"

namespace anvil {
namespace {

using test::DeviceIo;

// Runs `what`, expecting kInvalidArgument whose message names `needle`.
template <typename F>
void expect_invalid(F&& what, const std::string& needle, const char* label) {
  try {
    what();
    ADD_FAILURE() << label << ": no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << label << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << label << ": the message should name '" << needle << "': " << e.what();
  }
}

TEST(ContextMemory, OwningAndBorrowingContextsGiveIdenticalOutputs) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  const std::size_t bytes = engine->context_memory_bytes();
  const std::size_t arena = builder::plan_arena(engine->plan(), engine->max_batch()).arena_bytes;
  std::printf(
      "resnet18 FP16: context memory %zu bytes (activations %zu, workspace and padding %zu)\n",
      bytes, arena, bytes - arena);
  ASSERT_GE(bytes, arena) << "context_memory_bytes() must cover the activations at max batch";

  auto owning = engine->create_context();
  EXPECT_TRUE(owning->owns_device_memory());
  EXPECT_GE(owning->device_memory_bytes(), bytes);

  auto borrowing = engine->create_context_without_memory();
  EXPECT_FALSE(borrowing->owns_device_memory());
  EXPECT_EQ(borrowing->device_memory_bytes(), 0u);
  EXPECT_EQ(borrowing->device_memory_needed(), bytes) << "before any shape: the engine's size";
  // Exactly the queried size, filled with NaN: a read of memory the engine
  // never wrote, or a write past the block's end, would show.
  cuda::DeviceBuffer block(bytes);
  test::poison(block.data(), bytes);
  borrowing->set_device_memory(block.data(), bytes);
  EXPECT_EQ(borrowing->device_memory_bytes(), bytes);

  // The max batch first (the block's sizing case), then smaller batches.
  for (std::int64_t batch : {test::kTestMaxBatch, std::int64_t{3}, std::int64_t{1}}) {
    SCOPED_TRACE(testing::Message() << "batch " << batch);
    const DeviceIo io(*engine, batch, static_cast<unsigned>(batch));
    test::bind(*engine, *owning, io, batch);
    test::bind(*engine, *borrowing, io, batch);
    // The test engine's tactics run at every batch: no fallback needs more.
    EXPECT_LE(borrowing->device_memory_needed(), bytes);
    EXPECT_EQ(borrowing->device_memory_needed(), owning->device_memory_needed());
    const std::vector<float> want = test::run_once(*owning, io);
    test::expect_bit_identical(test::run_once(*owning, io), want,
                               "the owning context run twice (is the engine deterministic?)");
    test::expect_bit_identical(test::run_once(*borrowing, io), want,
                               "borrowing context vs owning context");
  }
}

TEST(ContextMemory, ANewBlockRebindsTheContext) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  const std::size_t bytes = engine->context_memory_bytes();
  auto context = engine->create_context_without_memory();
  cuda::DeviceBuffer first(bytes), second(bytes + 4096);
  const DeviceIo io(*engine, 2, 7);
  context->set_device_memory(first.data(), bytes);
  test::bind(*engine, *context, io, 2);
  const std::vector<float> want = test::run_once(*context, io);
  context->set_device_memory(second.data(), second.bytes());
  EXPECT_EQ(context->device_memory_bytes(), second.bytes());
  // The old block is garbage now: a context still using it would differ.
  test::poison(first.data(), bytes);
  test::expect_bit_identical(test::run_once(*context, io), want, "after set_device_memory again");
}

TEST(ContextMemory, BadBlocksAndMissingMemoryAreClearErrors) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  const std::size_t bytes = engine->context_memory_bytes();
  const std::string needed = std::to_string(bytes);
  auto context = engine->create_context_without_memory();
  const DeviceIo io(*engine, 1, 1);
  test::bind(*engine, *context, io, 1);  // shapes and addresses: fine without memory

  cuda::Stream stream;
  expect_invalid([&] { context->enqueue(stream.get()); }, "set_device_memory",
                 "enqueue without memory");
  expect_invalid([&] { context->enqueue(stream.get()); }, needed, "enqueue without memory");

  cuda::DeviceBuffer block(bytes + 256);
  auto* base = static_cast<std::byte*>(block.data());
  expect_invalid([&] { context->set_device_memory(nullptr, bytes); }, needed, "null memory");
  expect_invalid([&] { context->set_device_memory(base + 16, bytes); }, "256-byte aligned",
                 "misaligned memory");
  expect_invalid([&] { context->set_device_memory(base + 16, bytes); }, needed,
                 "misaligned memory");
  expect_invalid([&] { context->set_device_memory(base, bytes - 1); }, needed, "too small memory");
  EXPECT_EQ(context->device_memory_bytes(), 0u) << "a rejected block must not be kept";

  // Aligned and large enough (an offset of 256 is fine): it runs.
  context->set_device_memory(base + 256, bytes);
  context->enqueue(stream.get());
  stream.synchronize();
  const std::vector<float> got = io.download();
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_FALSE(std::isnan(got[i])) << "output element " << i << " was not written";
}

}  // namespace
}  // namespace anvil

namespace anvil {
namespace {

// Engine::layer_workspace_bytes (what `anvil inspect` shows): one entry per
// layer, each within what a context reserves for workspace.
TEST(ContextMemory, LayerWorkspacesFitTheContextsBlock) {
  ANVIL_REQUIRE_GPU();
  auto engine = test::fixture_engine("resnet18", true);
  const std::vector<std::size_t> workspace = engine->layer_workspace_bytes(0);
  ASSERT_EQ(workspace.size(), engine->plan().layers.size());
  const std::size_t arena = builder::plan_arena(engine->plan(), engine->max_batch()).arena_bytes;
  std::size_t largest = 0;
  for (std::size_t i = 0; i < workspace.size(); ++i) {
    std::printf("  %-40s %zu bytes\n", engine->plan().layers[i].name.c_str(), workspace[i]);
    largest = std::max(largest, workspace[i]);
  }
  EXPECT_LE(arena + largest, engine->context_memory_bytes());
  EXPECT_THROW(engine->layer_workspace_bytes(1), Error);
}

}  // namespace
}  // namespace anvil
