// NumPy-style broadcasting of shapes (symbolic, at import) and of element
// indices (concrete, in the reference kernels).
//
// Multidirectional broadcasting (Add, Mul, ...) aligns both shapes on the
// right; each pair of dimensions must be equal or one of them 1. The
// unidirectional form (PRelu's slope) only lets the second shape stretch.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "ir/shape.h"

namespace anvil::ops {

// The broadcast of two dimensions, or nothing when both are known, differ and
// neither is 1. A symbol meeting 1 or itself stays the symbol; a symbol
// meeting a known N (N != 1) becomes N, since it can only be N or 1; anything
// else that is not provable at import is Dim::unknown().
std::optional<ir::Dim> broadcast_dim(const ir::Dim& a, const ir::Dim& b);

// The multidirectional broadcast of two shapes, or nothing if incompatible.
std::optional<ir::Shape> broadcast_shapes(const ir::Shape& a, const ir::Shape& b);

// True unless `from` provably cannot stretch to `to` (unidirectional
// broadcasting): a higher rank, or a known dimension that is neither 1 nor
// the known target size.
bool broadcasts_to(const ir::Shape& from, const ir::Shape& to);

// Element strides of a tensor of extents `in` read as if it had extents `out`
// (right-aligned; 0 where `in` is broadcast). `in` must broadcast to `out`.
std::vector<std::int64_t> broadcast_strides(const Extents& in, const Extents& out);

// Calls fn(o, i, j) for every element o of a row-major tensor of extents
// `out`, with i and j the matching element indices of tensors of extents `a`
// and `b` that broadcast to `out`.
template <typename Fn>
void for_each_broadcast(const Extents& out, const Extents& a, const Extents& b, Fn&& fn) {
  const std::int64_t count = element_count(out);
  if (count == 0) return;
  if (a == out && b == out) {  // the common case of no broadcasting at all
    for (std::int64_t o = 0; o < count; ++o)
      fn(o, o, o);
    return;
  }
  if (out.empty()) {  // scalars: only rank-0 or one-element inputs reach here
    fn(0, 0, 0);
    return;
  }
  const std::vector<std::int64_t> sa = broadcast_strides(a, out), sb = broadcast_strides(b, out);
  const std::size_t last = out.size() - 1;
  const std::int64_t inner = out[last];
  std::vector<std::int64_t> index(out.size(), 0);  // odometer over the outer dimensions
  std::int64_t ia = 0, ib = 0;
  for (std::int64_t o = 0; o < count; o += inner) {
    for (std::int64_t k = 0; k < inner; ++k)
      fn(o + k, ia + k * sa[last], ib + k * sb[last]);
    for (std::size_t d = last; d-- > 0;) {
      ia += sa[d];
      ib += sb[d];
      if (++index[d] < out[d]) break;
      ia -= sa[d] * out[d];
      ib -= sb[d] * out[d];
      index[d] = 0;
    }
  }
}

}  // namespace anvil::ops
