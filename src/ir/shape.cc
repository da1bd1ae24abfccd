#include "ir/shape.h"

namespace anvil::ir {

std::string to_string(const Dim& dim) {
  if (dim.is_known()) return std::to_string(dim.size);
  return dim.symbol.empty() ? "?" : dim.symbol;
}

Shape Shape::of(const Extents& extents) {
  Shape shape;
  for (std::int64_t e : extents) shape.dims_.push_back(Dim::known(e));
  return shape;
}

bool Shape::is_static() const {
  for (const Dim& d : dims_)
    if (!d.is_known()) return false;
  return true;
}

std::optional<Extents> Shape::extents() const {
  if (!is_static()) return std::nullopt;
  Extents out;
  for (const Dim& d : dims_) out.push_back(d.size);
  return out;
}

std::string to_string(const Shape& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.rank(); ++i) out += (i ? "," : "") + to_string(shape[i]);
  return out + "]";
}

}  // namespace anvil::ir
