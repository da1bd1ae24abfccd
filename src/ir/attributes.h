// Typed node attributes, with accessors that turn a missing or mistyped
// attribute into an error naming the attribute.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace anvil::ir {

using AttributeValue = std::variant<std::int64_t, float, std::string, Tensor,
                                    std::vector<std::int64_t>, std::vector<float>,
                                    std::vector<std::string>>;

// "int", "float", "string", "tensor", "ints", "floats", "strings"
std::string_view attribute_type_name(const AttributeValue& value);

class Attributes {
 public:
  void set(const std::string& name, AttributeValue value) { values_[name] = std::move(value); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  void erase(const std::string& name) { values_.erase(name); }
  const std::map<std::string, AttributeValue>& all() const { return values_; }

  // Each getter throws kInvalidModel if the attribute exists with another type;
  // the overloads without a fallback also throw if it is missing.
  std::int64_t get_int(const std::string& name) const;
  std::int64_t get_int(const std::string& name, std::int64_t fallback) const;
  float get_float(const std::string& name, float fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  const Tensor& get_tensor(const std::string& name) const;
  std::vector<std::int64_t> get_ints(const std::string& name,
                                     std::vector<std::int64_t> fallback = {}) const;
  std::vector<float> get_floats(const std::string& name, std::vector<float> fallback = {}) const;

 private:
  template <typename T>
  const T* find(const std::string& name) const;

  std::map<std::string, AttributeValue> values_;
};

}  // namespace anvil::ir
