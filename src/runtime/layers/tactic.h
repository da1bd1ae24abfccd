// The tactic a plan stores for a layer: {"identity": "<library's config>"}.
// A conv layer's identity names its library: a cuDNN engine config as is
// ("eng12:3=1,..."), a cuBLASLt algorithm with kCublasLtPrefix in front (a
// 1x1 stride-1 conv run as a GEMM), or kUnfusedPrefix and the cuDNN engine
// config of the conv alone (its bias, residual and activation then run as a
// kernel of ours). A gemm layer's identity is always a bare cuBLASLt algorithm.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "anvil/error.h"
#include "plan/plan.h"

namespace anvil::runtime {

inline constexpr std::string_view kCublasLtPrefix = "cublaslt:";
inline constexpr std::string_view kUnfusedPrefix = "unfused:";

// The tactic identity the layer was tuned to under the runner's profile, or
// nothing when it was not tuned (plan/profiles.h reads it).
std::optional<std::string> tactic_identity(const plan::LayerDesc& layer, int profile);

// "cublaslt:<algo>" for a conv layer run as a cuBLASLt GEMM.
std::string cublaslt_conv_identity(const std::string& gemm_identity);

// The cuBLASLt algorithm of a "cublaslt:" identity, or nothing for any other
// (a cuDNN engine config).
std::optional<std::string> cublaslt_algorithm(const std::string& identity);

// "unfused:<engine>" for the conv-only graph's cuDNN engine config `engine`.
std::string unfused_conv_identity(const std::string& engine);

// The cuDNN engine config of an "unfused:" identity, or nothing for any other
// (a fused cuDNN engine config or a "cublaslt:" algorithm).
std::optional<std::string> unfused_conv_engine(const std::string& identity);

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
