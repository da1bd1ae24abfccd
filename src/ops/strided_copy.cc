#include "ops/strided_copy.h"

#include <cstring>

namespace anvil::ops {

void copy_bytes(const Tensor& src, Tensor& dst) {
  ANVIL_CHECK(src.byte_size() == dst.byte_size());
  if (src.byte_size() != 0) std::memcpy(dst.bytes(), src.bytes(), src.byte_size());
}

std::vector<std::int64_t> row_major_strides(const Extents& extents) {
  std::vector<std::int64_t> strides(extents.size(), 1);
  for (std::size_t d = extents.size(); d-- > 1;)
    strides[d - 1] = strides[d] * extents[d];
  return strides;
}

namespace {

// One run along the innermost dimension: a single memcpy when both sides are
// contiguous, the common case of Slice and Pad.
void copy_row(const std::byte* src, std::int64_t src_stride, std::byte* dst,
              std::int64_t dst_stride, std::int64_t count, std::size_t element_size) {
  if (src_stride == 1 && dst_stride == 1) {
    std::memcpy(dst, src, static_cast<std::size_t>(count) * element_size);
    return;
  }
  const auto src_step =
      static_cast<std::ptrdiff_t>(src_stride * static_cast<std::int64_t>(element_size));
  const auto dst_step =
      static_cast<std::ptrdiff_t>(dst_stride * static_cast<std::int64_t>(element_size));
  for (std::int64_t i = 0; i < count; ++i, src += src_step, dst += dst_step)
    std::memcpy(dst, src, element_size);
}

}  // namespace

void copy_strided(const std::byte* src, std::span<const std::int64_t> src_strides, std::byte* dst,
                  std::span<const std::int64_t> dst_strides, std::span<const std::int64_t> extents,
                  std::size_t element_size) {
  ANVIL_CHECK(src_strides.size() == extents.size() && dst_strides.size() == extents.size());
  for (std::int64_t e : extents)
    if (e == 0) return;
  if (extents.empty()) {
    std::memcpy(dst, src, element_size);
    return;
  }
  const std::size_t inner = extents.size() - 1;
  const auto bytes = static_cast<std::int64_t>(element_size);
  // An odometer over the outer dimensions, moving both pointers incrementally.
  std::vector<std::int64_t> index(inner, 0);
  while (true) {
    copy_row(src, src_strides[inner], dst, dst_strides[inner], extents[inner], element_size);
    std::size_t d = inner;
    while (d > 0) {
      --d;
      if (++index[d] < extents[d]) {
        src += src_strides[d] * bytes;
        dst += dst_strides[d] * bytes;
        break;
      }
      src -= src_strides[d] * (extents[d] - 1) * bytes;
      dst -= dst_strides[d] * (extents[d] - 1) * bytes;
      index[d] = 0;
      if (d == 0) return;
    }
    if (inner == 0) return;
  }
}

}  // namespace anvil::ops
