// Activation memory planning: every intermediate tensor gets an offset in one
// arena per execution context, reusing bytes whose tensors are dead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace anvil::builder {

// One tensor to place: its size and the [first, last] layer indices during
// which it must stay intact (written at `first`, last read at `last`).
struct Lifetime {
  std::size_t bytes = 0;
  int first = 0;
  int last = 0;
};

struct MemoryPlan {
  std::vector<std::size_t> offsets;  // per tensor, aligned to kAlignment
  std::size_t arena_bytes = 0;
};

// Every offset is a multiple of this (cuDNN and vectorized kernels want 256).
inline constexpr std::size_t kAlignment = 256;

// A user's input and output tensors are only this aligned
// (ExecutionContext::set_tensor_address): a layer that reads or writes one
// itself must work at it.
inline constexpr std::size_t kIoAlignment = 16;

// Places tensors largest first, each at the lowest offset that overlaps no
// tensor whose lifetime intersects its own (greedy by size, the scheme of
// TensorRT-style planners). Tensors with overlapping lifetimes never share
// bytes; the arena is at most the sum of all sizes.
MemoryPlan plan_memory(const std::vector<Lifetime>& tensors);

}  // namespace anvil::builder
