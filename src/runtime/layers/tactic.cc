#include "runtime/layers/tactic.h"

#include <algorithm>
#include <iterator>
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

bool is_conv3x3_int8_identity(std::string_view identity) {
  return std::find(std::begin(kConv3x3Int8Identities), std::end(kConv3x3Int8Identities),
                   identity) != std::end(kConv3x3Int8Identities);
}

std::optional<cuda::kernels::Conv3x3Int8Shape> conv3x3_int8_shape(const cuda::QuantizedConvShape& s,
                                                                  std::string_view identity) {
  constexpr int kC = cuda::kernels::kConv3x3Int8Channels;
  const bool fits = s.element == DType::kInt8 &&
                    s.output == cuda::QuantizedConvOutput::kQuantized && s.c == kC && s.k == kC &&
                    s.r == 3 && s.s == 3 && s.pad_h == 1 && s.pad_w == 1 && s.stride_h == 1 &&
                    s.stride_w == 1 && s.dil_h == 1 && s.dil_w == 1 && s.groups == 1;
  if (!fits || !is_conv3x3_int8_identity(identity)) return std::nullopt;
  cuda::kernels::Conv3x3Int8Shape own{.n = s.n,
                                      .h = s.h,
                                      .w = s.w,
                                      .relu = s.relu,
                                      .has_bias = s.has_bias,
                                      .has_residual = s.has_residual,
                                      .residual_scale = s.residual_scale};
  if (identity == kConv3x3Int8WgmmaIdentity) {
    own.kernel = cuda::kernels::Conv3x3Int8Kernel::kWgmmaFilterInRegisters;
    own.wgmma_parts = 4;
  }
  return own;
}

}  // namespace anvil::runtime
