#include "ops/broadcast.h"

#include <algorithm>

#include "anvil/error.h"

namespace anvil::ops {

namespace {

// The dimension `shape` has at position `i` counted from the right (0 is the
// last), or 1 where it has fewer dimensions.
ir::Dim from_right(const ir::Shape& shape, std::size_t i) {
  return i < shape.rank() ? shape[shape.rank() - 1 - i] : ir::Dim::known(1);
}

}  // namespace

std::optional<ir::Dim> broadcast_dim(const ir::Dim& a, const ir::Dim& b) {
  if (a.is_known() && b.is_known()) {
    if (a.size == b.size || b.size == 1) return a;
    if (a.size == 1) return b;
    return std::nullopt;
  }
  if (a.is_known()) return a.size == 1 ? b : a;
  if (b.is_known()) return b.size == 1 ? a : b;
  if (!a.symbol.empty() && a.symbol == b.symbol) return a;
  return ir::Dim::unknown();
}

std::optional<ir::Shape> broadcast_shapes(const ir::Shape& a, const ir::Shape& b) {
  const std::size_t rank = std::max(a.rank(), b.rank());
  std::vector<ir::Dim> dims(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    std::optional<ir::Dim> d = broadcast_dim(from_right(a, i), from_right(b, i));
    if (!d) return std::nullopt;
    dims[rank - 1 - i] = std::move(*d);
  }
  return ir::Shape(std::move(dims));
}

bool broadcasts_to(const ir::Shape& from, const ir::Shape& to) {
  if (from.rank() > to.rank()) return false;
  for (std::size_t i = 0; i < from.rank(); ++i) {
    const ir::Dim f = from_right(from, i);
    const ir::Dim t = from_right(to, i);
    if (f.is_known() && f.size != 1 && t.is_known() && f.size != t.size) return false;
  }
  return true;
}

std::vector<std::int64_t> broadcast_strides(const Extents& in, const Extents& out) {
  ANVIL_CHECK(in.size() <= out.size());
  std::vector<std::int64_t> strides(out.size(), 0);
  std::int64_t stride = 1;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const std::size_t d_in = in.size() - 1 - i, d_out = out.size() - 1 - i;
    ANVIL_CHECK(in[d_in] == out[d_out] || in[d_in] == 1);
    strides[d_out] = in[d_in] == 1 ? 0 : stride;
    stride *= in[d_in];
  }
  return strides;
}

}  // namespace anvil::ops
