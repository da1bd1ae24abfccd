// Shapes of IR values: each dimension is a known size or a symbol (ONNX
// dim_param, e.g. a dynamic batch "N"), or unknown (no size and no name).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace anvil::ir {

struct Dim {
  std::int64_t size = -1;  // >= 0 when known
  std::string symbol;      // set for a named symbolic dimension

  static Dim known(std::int64_t n) { return Dim{n, {}}; }
  static Dim named(std::string name) { return Dim{-1, std::move(name)}; }
  static Dim unknown() { return Dim{}; }

  bool is_known() const { return size >= 0; }
  bool operator==(const Dim&) const = default;
};

// "N", "224" or "?"
std::string to_string(const Dim& dim);

class Shape {
 public:
  Shape() = default;
  explicit Shape(std::vector<Dim> dims) : dims_(std::move(dims)) {}
  static Shape of(const Extents& extents);

  std::size_t rank() const { return dims_.size(); }
  const Dim& operator[](std::size_t i) const { return dims_[i]; }
  Dim& operator[](std::size_t i) { return dims_[i]; }
  const std::vector<Dim>& dims() const { return dims_; }
  std::vector<Dim>& dims() { return dims_; }

  // True when every dimension has a known size.
  bool is_static() const;
  // The sizes when static, else nothing.
  std::optional<Extents> extents() const;

  bool operator==(const Shape&) const = default;

 private:
  std::vector<Dim> dims_;
};

// "[N,3,224,224]"
std::string to_string(const Shape& shape);

}  // namespace anvil::ir
