#include "builder/memory_plan.h"

#include <gtest/gtest.h>

#include <random>

namespace anvil::builder {
namespace {

// No two tensors alive at the same time may share a byte.
void expect_no_conflicts(const std::vector<Lifetime>& tensors, const MemoryPlan& plan) {
  ASSERT_EQ(plan.offsets.size(), tensors.size());
  for (std::size_t a = 0; a < tensors.size(); ++a) {
    EXPECT_EQ(plan.offsets[a] % kAlignment, 0u);
    EXPECT_LE(plan.offsets[a] + tensors[a].bytes, plan.arena_bytes);
    for (std::size_t b = a + 1; b < tensors.size(); ++b) {
      const bool live_together =
          tensors[a].first <= tensors[b].last && tensors[b].first <= tensors[a].last;
      const bool bytes_overlap = plan.offsets[a] < plan.offsets[b] + tensors[b].bytes &&
                                 plan.offsets[b] < plan.offsets[a] + tensors[a].bytes;
      EXPECT_FALSE(live_together && bytes_overlap) << "tensors " << a << " and " << b;
    }
  }
}

TEST(MemoryPlan, AChainReusesTwoBuffers) {
  // t0 -> layer0 -> t1 -> layer1 -> t2 -> layer2 -> t3: at most two alive at once.
  std::vector<Lifetime> chain = {{1024, 0, 0}, {1024, 0, 1}, {1024, 1, 2}, {1024, 2, 3}};
  MemoryPlan plan = plan_memory(chain);
  expect_no_conflicts(chain, plan);
  EXPECT_EQ(plan.arena_bytes, 2 * 1024u);
}

TEST(MemoryPlan, AResidualKeepsItsInputAlive) {
  // t0 is read again by layer 2 (a skip connection), so three buffers are needed.
  std::vector<Lifetime> block = {{4096, 0, 2}, {4096, 0, 1}, {4096, 1, 2}, {4096, 2, 3}};
  MemoryPlan plan = plan_memory(block);
  expect_no_conflicts(block, plan);
  EXPECT_EQ(plan.arena_bytes, 3 * 4096u);
}

TEST(MemoryPlan, RandomLifetimesNeverConflict) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<Lifetime> tensors;
    std::size_t total = 0;
    for (int i = 0; i < 40; ++i) {
      const int first = static_cast<int>(rng() % 30);
      tensors.push_back({1 + rng() % 100000, first, first + static_cast<int>(rng() % 6)});
      total += (tensors.back().bytes + kAlignment - 1) / kAlignment * kAlignment;
    }
    MemoryPlan plan = plan_memory(tensors);
    expect_no_conflicts(tensors, plan);
    EXPECT_LE(plan.arena_bytes, total);
  }
}

}  // namespace
}  // namespace anvil::builder
