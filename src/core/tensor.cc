#include "core/tensor.h"

#include <cstring>
#include <sstream>

namespace anvil {

std::int64_t element_count(const Extents& extents) {
  std::int64_t n = 1;
  for (std::int64_t e : extents)
    n *= e;
  return n;
}

std::string to_string(const Extents& extents) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < extents.size(); ++i)
    out << (i ? "," : "") << extents[i];
  out << ']';
  return out.str();
}

Tensor::Tensor(DType dtype, Extents extents) : dtype_(dtype), extents_(std::move(extents)) {
  for (std::int64_t e : extents_)
    ANVIL_CHECK(e >= 0);
  bytes_ = std::make_shared<std::vector<std::byte>>(static_cast<std::size_t>(element_count()) *
                                                    size_of(dtype_));
}

Tensor Tensor::reshaped(Extents extents) const {
  ANVIL_CHECK(anvil::element_count(extents) == element_count());
  Tensor t = *this;
  t.extents_ = std::move(extents);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = *this;
  if (bytes_) t.bytes_ = std::make_shared<std::vector<std::byte>>(*bytes_);
  return t;
}

std::vector<std::int64_t> Tensor::to_int64s() const {
  if (dtype_ == DType::kInt64)
    return {values<std::int64_t>().begin(), values<std::int64_t>().end()};
  if (dtype_ == DType::kInt32)
    return {values<std::int32_t>().begin(), values<std::int32_t>().end()};
  fail(ErrorKind::kInvalidModel, "expected an int64 or int32 tensor, got ", to_string(dtype_));
}

std::vector<double> Tensor::to_doubles() const {
  if (dtype_ == DType::kFloat32) return {values<float>().begin(), values<float>().end()};
  if (dtype_ == DType::kFloat64) return {values<double>().begin(), values<double>().end()};
  fail(ErrorKind::kInvalidModel, "expected a float32 or float64 tensor, got ", to_string(dtype_));
}

void Tensor::check_dtype(DType requested) const {
  if (requested != dtype_)
    fail(ErrorKind::kInternal, "tensor of ", to_string(dtype_), " accessed as ",
         to_string(requested));
}

}  // namespace anvil
