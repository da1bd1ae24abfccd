// The data movement of the layout ops (Transpose, Slice, Pad): copying an
// N-d block of elements of any dtype between buffers addressed by strides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"

namespace anvil::ops {

// Copies every byte of `src` into `dst` (same byte size): the kernel of the
// ops that only change the shape (Reshape, Flatten, Squeeze, ...).
void copy_bytes(const Tensor& src, Tensor& dst);

// Row-major strides, in elements, of a tensor with these extents.
std::vector<std::int64_t> row_major_strides(const Extents& extents);

// Copies the block of `extents` elements of `element_size` bytes whose first
// element is at `src` (resp. `dst`); moving one step along dimension d moves
// src_strides[d] (resp. dst_strides[d]) elements, possibly negative.
void copy_strided(const std::byte* src, std::span<const std::int64_t> src_strides, std::byte* dst,
                  std::span<const std::int64_t> dst_strides, std::span<const std::int64_t> extents,
                  std::size_t element_size);

}  // namespace anvil::ops
