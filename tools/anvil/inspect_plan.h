// `anvil inspect` on a plan file.
#pragma once

#include <string>

namespace anvil::cli {

// Prints the plan's target, options, profile and layers with their tactics.
void inspect_plan(const std::string& path);

}  // namespace anvil::cli
