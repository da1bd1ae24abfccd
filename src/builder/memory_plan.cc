#include "builder/memory_plan.h"

#include <algorithm>
#include <numeric>

namespace anvil::builder {

namespace {

std::size_t align_up(std::size_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

bool lifetimes_overlap(const Lifetime& a, const Lifetime& b) {
  return a.first <= b.last && b.first <= a.last;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<Lifetime>& tensors) {
  MemoryPlan plan;
  plan.offsets.assign(tensors.size(), 0);
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return tensors[a].bytes > tensors[b].bytes;
  });

  // Blocks already placed whose lifetimes overlap the current tensor's, as
  // [begin, end) byte ranges, sorted by begin: the tensor goes in the first gap.
  std::vector<std::size_t> placed;
  for (std::size_t t : order) {
    const std::size_t size = align_up(tensors[t].bytes);
    std::vector<std::pair<std::size_t, std::size_t>> busy;
    for (std::size_t p : placed)
      if (lifetimes_overlap(tensors[t], tensors[p]))
        busy.emplace_back(plan.offsets[p], plan.offsets[p] + align_up(tensors[p].bytes));
    std::sort(busy.begin(), busy.end());
    std::size_t offset = 0;
    for (const auto& [begin, end] : busy) {
      if (offset + size <= begin) break;
      offset = std::max(offset, end);
    }
    plan.offsets[t] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
    placed.push_back(t);
  }
  return plan;
}

}  // namespace anvil::builder
