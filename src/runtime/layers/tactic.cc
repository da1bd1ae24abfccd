#include "runtime/layers/tactic.h"

#include <nlohmann/json.hpp>

#include "anvil/error.h"
#include "plan/profiles.h"

namespace anvil::runtime {

std::optional<std::string> tactic_identity(const plan::LayerDesc& layer, int profile) {
  return plan::tactic_identity(layer, profile);
}

std::string cublaslt_conv_identity(const std::string& gemm_identity) {
  return std::string(kCublasLtPrefix) + gemm_identity;
}

std::optional<std::string> cublaslt_algorithm(const std::string& identity) {
  if (!identity.starts_with(kCublasLtPrefix)) return std::nullopt;
  return identity.substr(kCublasLtPrefix.size());
}

std::string unfused_conv_identity(const std::string& engine) {
  return std::string(kUnfusedPrefix) + engine;
}

std::optional<std::string> unfused_conv_engine(const std::string& identity) {
  if (!identity.starts_with(kUnfusedPrefix)) return std::nullopt;
  return identity.substr(kUnfusedPrefix.size());
}

}  // namespace anvil::runtime
