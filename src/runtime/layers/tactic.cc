#include "runtime/layers/tactic.h"

#include <nlohmann/json.hpp>

#include "anvil/error.h"

namespace anvil::runtime {

std::optional<std::string> tactic_identity(const plan::LayerDesc& layer) {
  const auto tactic = nlohmann::json::parse(layer.tactic, nullptr, /*allow_exceptions=*/false);
  if (!tactic.is_object()) return std::nullopt;
  auto it = tactic.find("identity");
  if (it == tactic.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::string cublaslt_conv_identity(const std::string& gemm_identity) {
  return std::string(kCublasLtPrefix) + gemm_identity;
}

std::optional<std::string> cublaslt_algorithm(const std::string& identity) {
  if (!identity.starts_with(kCublasLtPrefix)) return std::nullopt;
  return identity.substr(kCublasLtPrefix.size());
}

}  // namespace anvil::runtime
