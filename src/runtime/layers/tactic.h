// The tactic a plan stores for a layer: {"identity": "<library's config>"}.
#pragma once

#include <optional>
#include <string>

#include "anvil/error.h"
#include "plan/plan.h"

namespace anvil::runtime {

// The layer's stored tactic identity, or nothing when it was not tuned.
std::optional<std::string> tactic_identity(const plan::LayerDesc& layer);

// Tries `from_identity(identity)` first; when the plan holds none, or the
// library refuses it for this batch size, takes the heuristics' first choice.
// Both are decided in prepare(), outside enqueue().
template <typename Tactic, typename FromIdentity, typename Heuristic>
Tactic choose_tactic(const std::optional<std::string>& identity, FromIdentity from_identity,
                     Heuristic heuristic) {
  if (identity) {
    try {
      return from_identity(*identity);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kIncompatible && e.kind() != ErrorKind::kUnsupported) throw;
    }
  }
  return heuristic();
}

}  // namespace anvil::runtime
