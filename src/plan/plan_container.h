// The binary container of a plan file: the 64-byte header, the metadata text
// and the weights blob, with sizes and checksum checked against the input
// before anything is allocated. Knows nothing of what the metadata says.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace anvil::plan {

// Views into the bytes given to unpack_plan_file().
struct PlanSections {
  std::string_view metadata;
  std::span<const std::byte> weights;
};

// Header + metadata + zero padding to a 256-byte boundary + weights.
std::vector<std::byte> pack_plan_file(std::string_view metadata,
                                      std::span<const std::byte> weights);

// Checks magic, format version, header size, reserved bytes, section sizes
// against the input length, checksum and padding; errors start with `label`.
PlanSections unpack_plan_file(std::span<const std::byte> bytes, std::string_view label);

}  // namespace anvil::plan
