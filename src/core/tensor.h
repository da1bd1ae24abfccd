// A dense, row-major host tensor: the unit of data of the importer (weights,
// constants) and of the CPU reference runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/types.h"

namespace anvil {

// Concrete dimensions of a tensor, outermost first.
using Extents = std::vector<std::int64_t>;

// Number of elements of a tensor with these extents (1 for a scalar).
std::int64_t element_count(const Extents& extents);

// "[1,3,224,224]"
std::string to_string(const Extents& extents);

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::kFloat64;
}
template <>
constexpr DType dtype_of<std::int64_t>() {
  return DType::kInt64;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::kInt32;
}
template <>
constexpr DType dtype_of<std::int8_t>() {
  return DType::kInt8;
}
template <>
constexpr DType dtype_of<std::uint8_t>() {
  return DType::kUInt8;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::kBool;
}

// Copies share their bytes (weights are large and never mutated in place);
// clone() makes an independent copy.
class Tensor {
 public:
  Tensor() = default;
  // Zero-initialized tensor.
  Tensor(DType dtype, Extents extents);

  // A tensor holding `values` with the given extents (sizes must agree).
  template <typename T>
  static Tensor from(Extents extents, std::span<const T> values) {
    Tensor t(dtype_of<T>(), std::move(extents));
    ANVIL_CHECK(static_cast<std::int64_t>(values.size()) == t.element_count());
    std::copy(values.begin(), values.end(), t.data<T>());
    return t;
  }
  template <typename T>
  static Tensor from(Extents extents, std::initializer_list<T> values) {
    return from<T>(std::move(extents), std::span<const T>(values.begin(), values.size()));
  }

  DType dtype() const { return dtype_; }
  const Extents& extents() const { return extents_; }
  std::size_t rank() const { return extents_.size(); }
  std::int64_t element_count() const { return anvil::element_count(extents_); }
  std::size_t byte_size() const { return bytes_ ? bytes_->size() : 0; }
  bool empty() const { return dtype_ == DType::kUndefined; }

  std::byte* bytes() { return bytes_ ? bytes_->data() : nullptr; }
  const std::byte* bytes() const { return bytes_ ? bytes_->data() : nullptr; }

  template <typename T>
  T* data() {
    check_dtype(dtype_of<T>());
    return reinterpret_cast<T*>(bytes());
  }
  template <typename T>
  const T* data() const {
    check_dtype(dtype_of<T>());
    return reinterpret_cast<const T*>(bytes());
  }
  template <typename T>
  std::span<const T> values() const {
    return {data<T>(), static_cast<std::size_t>(element_count())};
  }

  // Same bytes, new extents with the same element count.
  Tensor reshaped(Extents extents) const;
  // An independent copy of the bytes.
  Tensor clone() const;

  // Integer contents (int64 or int32) widened to int64, for shape-like inputs.
  std::vector<std::int64_t> to_int64s() const;
  // Floating contents (float32 or float64) as doubles, for scalar inputs such as Clip's min.
  std::vector<double> to_doubles() const;

 private:
  void check_dtype(DType requested) const;

  DType dtype_ = DType::kUndefined;
  Extents extents_;
  std::shared_ptr<std::vector<std::byte>> bytes_;
};

}  // namespace anvil
