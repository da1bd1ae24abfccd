// The JSON metadata of a plan file: Plan (less its weights) to text and back.
// Reading checks every field's presence and type and names the one at fault;
// cross-references (tensor ids, weight ranges, IO names) are validate_plan's.
#pragma once

#include <string>
#include <string_view>

#include "plan/plan.h"

namespace anvil::plan {

// Deeper JSON is refused before parsing: nlohmann's dump, copy and compare
// recurse, and a plan's metadata needs a handful of levels.
inline constexpr int kMaxJsonDepth = 64;

// Throws Error(kInvalidArgument) for params or tactic that are not JSON objects.
std::string to_metadata(const Plan& plan);

// Every field but `weights`. Errors start with `label`.
Plan from_metadata(std::string_view text, std::string_view label);

// Cross-checks a plan's tables (ids, names, weight ranges, profiles) with the
// first inconsistency as Error(kInvalidArgument) starting with `label`.
void validate_plan(const Plan& plan, std::string_view label);

}  // namespace anvil::plan
