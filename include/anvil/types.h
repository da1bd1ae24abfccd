// Element types of tensors, shared by the importer, the IR and the runtimes;
// the batch range of an optimization profile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace anvil {

enum class DType : std::uint8_t {
  kUndefined,
  kFloat32,
  kFloat16,
  kFloat64,
  kInt8,
  kUInt8,
  kInt32,
  kInt64,
  kBool,
  // FP8 E4M3 (OCP "fn": no infinities, S.1111.111 NaN, max 448): the
  // element of FP8 plan tensors and weights, not an ONNX graph dtype here.
  kFloat8E4M3,
};

// Bytes per element; 0 for kUndefined.
std::size_t size_of(DType dtype);

// Lower-case name as ONNX spells it: "float32", "int64", ...
std::string_view to_string(DType dtype);

// The batch sizes an optimization profile accepts, and the one its tactics
// were tuned at: min <= opt <= max.
struct BatchRange {
  std::int64_t min = 1, opt = 1, max = 1;
  bool contains(std::int64_t batch) const { return min <= batch && batch <= max; }
};

}  // namespace anvil
