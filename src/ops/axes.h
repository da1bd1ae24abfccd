// Helpers shared by the shape ops (Squeeze, Slice, Concat, ReduceMean, ...):
// axis normalization and validation, integer list inputs, and dimension
// arithmetic that keeps a symbolic dimension only where the result is exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "ops/op.h"

namespace anvil::ops {

// The most dimensions a shape op produces from a shape known only by its
// length; guards allocations against absurd symbolic lengths.
inline constexpr std::int64_t kMaxRank = 64;

// Maps `axis` in [-rank, rank) to [0, rank); fails naming the node otherwise.
std::size_t normalize_axis(const InferContext& ctx, std::int64_t axis, std::size_t rank,
                           std::string_view what = "axis");

// Normalizes every axis like normalize_axis and rejects an axis given twice.
std::vector<std::size_t> normalize_axes(const InferContext& ctx, std::span<const std::int64_t> axes,
                                        std::size_t rank, std::string_view what = "axes");

// The contents of input i, which must be a known 1-D (or scalar) int64 or
// int32 tensor; unsupported when it is not known at import.
std::vector<std::int64_t> int_list_input(const InferContext& ctx, std::size_t i,
                                         std::string_view what);

// The length of input i, a 1-D tensor whose contents are not known at import
// (e.g. axes fed as a graph input); unsupported when the length is unknown too.
std::int64_t unknown_list_length(const InferContext& ctx, std::size_t i, std::string_view what);

// The `axes` of ops that turned the attribute into input `input_index` at
// opset `input_since`; nothing when neither is given.
std::optional<std::vector<std::int64_t>> axes_argument(const InferContext& ctx, int input_since,
                                                       std::size_t input_index);

// a * b, failing naming the node on int64 overflow.
std::int64_t checked_mul(const InferContext& ctx, std::int64_t a, std::int64_t b);

// The product of dims: known when all are (or one is 0); the one unknown dim
// itself when the others are all 1; else unknown.
ir::Dim dim_product(const InferContext& ctx, std::span<const ir::Dim> dims);

// The sum of dims: known when all are; the one unknown dim itself when the
// others are all 0; else unknown. Fails naming the node on overflow.
ir::Dim dim_sum(const InferContext& ctx, std::span<const ir::Dim> dims);

// An InferContext over the concrete inputs of a run, so that run() can derive
// its parameters with the same code as infer().
InferContext concrete_context(const RunContext& ctx);

}  // namespace anvil::ops
