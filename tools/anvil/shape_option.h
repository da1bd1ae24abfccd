// The NAME:DxDxD shape syntax of trtexec's --shapes and --min/--opt/--max-shapes,
// shared by `anvil build` and `anvil run`.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace anvil::cli {

// "input:8x3x224x224" -> {"input", {8,3,224,224}}; kInvalidArgument naming
// `option` for anything else (a missing name, a dimension below 1).
std::pair<std::string, std::vector<std::int64_t>> parse_shape(const std::string& text,
                                                              const char* option);

}  // namespace anvil::cli
