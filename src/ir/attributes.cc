#include "ir/attributes.h"

#include "anvil/error.h"

namespace anvil::ir {

namespace {

template <typename T>
constexpr std::string_view type_name();
template <>
constexpr std::string_view type_name<std::int64_t>() { return "int"; }
template <>
constexpr std::string_view type_name<float>() { return "float"; }
template <>
constexpr std::string_view type_name<std::string>() { return "string"; }
template <>
constexpr std::string_view type_name<Tensor>() { return "tensor"; }
template <>
constexpr std::string_view type_name<std::vector<std::int64_t>>() { return "ints"; }
template <>
constexpr std::string_view type_name<std::vector<float>>() { return "floats"; }
template <>
constexpr std::string_view type_name<std::vector<std::string>>() { return "strings"; }

}  // namespace

std::string_view attribute_type_name(const AttributeValue& value) {
  return std::visit([](const auto& v) { return type_name<std::decay_t<decltype(v)>>(); }, value);
}

template <typename T>
const T* Attributes::find(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return nullptr;
  if (const T* v = std::get_if<T>(&it->second)) return v;
  fail(ErrorKind::kInvalidModel, "attribute '", name, "' is of type ",
       attribute_type_name(it->second), ", expected ", type_name<T>());
}

std::int64_t Attributes::get_int(const std::string& name) const {
  if (const auto* v = find<std::int64_t>(name)) return *v;
  fail(ErrorKind::kInvalidModel, "required attribute '", name, "' is missing");
}

std::int64_t Attributes::get_int(const std::string& name, std::int64_t fallback) const {
  const auto* v = find<std::int64_t>(name);
  return v ? *v : fallback;
}

float Attributes::get_float(const std::string& name, float fallback) const {
  const auto* v = find<float>(name);
  return v ? *v : fallback;
}

std::string Attributes::get_string(const std::string& name, const std::string& fallback) const {
  const auto* v = find<std::string>(name);
  return v ? *v : fallback;
}

const Tensor& Attributes::get_tensor(const std::string& name) const {
  if (const auto* v = find<Tensor>(name)) return *v;
  fail(ErrorKind::kInvalidModel, "required attribute '", name, "' is missing");
}

std::vector<std::int64_t> Attributes::get_ints(const std::string& name,
                                               std::vector<std::int64_t> fallback) const {
  const auto* v = find<std::vector<std::int64_t>>(name);
  return v ? *v : fallback;
}

std::vector<float> Attributes::get_floats(const std::string& name,
                                          std::vector<float> fallback) const {
  const auto* v = find<std::vector<float>>(name);
  return v ? *v : fallback;
}

}  // namespace anvil::ir
