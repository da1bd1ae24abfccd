// Issue 4's stress test: eight threads, each with its own ExecutionContext and
// stream on one shared Engine, running different batch sizes at once, give
// results bit-identical to the same work run on one thread.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "engine_test_util.h"
#include "gpu_test.h"

namespace anvil {
namespace {

constexpr int kThreads = 8;
constexpr int kRounds = 4;
constexpr std::int64_t kBatches[kRounds] = {1, 3, 8, 5};

unsigned seed_of(int thread, int round) {
  return static_cast<unsigned>(100 * thread + round + 1);
}

TEST(ContextThreads, EightThreadsMatchOneThread) {
  ANVIL_REQUIRE_GPU();
  const auto engine = test::fixture_engine("resnet18", true);

  // The reference: every thread's work, one after the other on one context.
  std::vector<std::vector<std::vector<float>>> want(kThreads);
  {
    auto context = engine->create_context();
    for (int t = 0; t < kThreads; ++t)
      for (int r = 0; r < kRounds; ++r) {
        const test::DeviceIo io(*engine, kBatches[r], seed_of(t, r));
        test::bind(*engine, *context, io, kBatches[r]);
        want[static_cast<std::size_t>(t)].push_back(test::run_once(*context, io));
      }
  }

  std::vector<std::vector<std::vector<float>>> got(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      try {
        auto context = engine->create_context();
        cuda::Stream stream;
        for (int r = 0; r < kRounds; ++r) {
          const test::DeviceIo io(*engine, kBatches[r], seed_of(t, r));
          test::bind(*engine, *context, io, kBatches[r]);
          context->enqueue(stream.get());
          stream.synchronize();
          got[static_cast<std::size_t>(t)].push_back(io.download());
        }
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(t)] = e.what();
      }
    });
  for (std::thread& thread : threads)
    thread.join();

  for (int t = 0; t < kThreads; ++t) {
    const auto i = static_cast<std::size_t>(t);
    ASSERT_TRUE(errors[i].empty()) << "thread " << t << ": " << errors[i];
    ASSERT_EQ(got[i].size(), static_cast<std::size_t>(kRounds)) << "thread " << t;
    for (int r = 0; r < kRounds; ++r)
      test::expect_bit_identical(
          got[i][static_cast<std::size_t>(r)], want[i][static_cast<std::size_t>(r)],
          "thread " + std::to_string(t) + " batch " + std::to_string(kBatches[r]));
  }
}

}  // namespace
}  // namespace anvil
