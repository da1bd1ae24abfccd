// The tactic a plan stores for a layer: {"identity": "<library's config>"}.
// A conv layer's identity names its library: a cuDNN engine config as is
// ("eng12:3=1,..."), a cuBLASLt algorithm with kCublasLtPrefix in front (a
// 1x1 stride-1 conv run as a GEMM), or kUnfusedPrefix and the cuDNN engine
// config of the conv alone (its bias, residual and activation then run as a
// kernel of ours). A gemm layer's identity is always a bare cuBLASLt algorithm.
// A conv_int8 layer's is a cuDNN engine config, or one of
// kConv3x3Int8Identities for one of our own kernels (cuda/kernels/
// conv3x3_int8.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "anvil/error.h"
#include "cuda/cudnn_quantized_conv.h"
#include "cuda/kernels/conv3x3_int8.h"
#include "plan/plan.h"

namespace anvil::runtime {

inline constexpr std::string_view kCublasLtPrefix = "cublaslt:";
inline constexpr std::string_view kUnfusedPrefix = "unfused:";
// Our INT8 3x3 kernels: the mma.sync one (sm_80 and later), and on Hopper
// the warpgroup-MMA one with the filter in registers (steps of 256 slots).
inline constexpr std::string_view kConv3x3Int8Identity = "anvil:conv3x3_int8";
inline constexpr std::string_view kConv3x3Int8WgmmaIdentity = "anvil:conv3x3_int8_wgmma_rs";
inline constexpr std::string_view kConv3x3Int8Identities[] = {kConv3x3Int8Identity,
                                                              kConv3x3Int8WgmmaIdentity};

// Whether `identity` names one of our INT8 3x3 kernels.
bool is_conv3x3_int8_identity(std::string_view identity);

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

// The shape for the kernel `identity` (one of kConv3x3Int8Identities) names,
// for a conv_int8 layer our kernels compute (INT8 in and out, 64 channels in
// and out, 3x3, stride 1, padding 1, no dilation, one group), or nothing:
// that layer has cuDNN's engines only. Whether this GPU runs that kernel is
// the kernel's to say (Conv3x3Int8's constructor: kUnsupported).
std::optional<cuda::kernels::Conv3x3Int8Shape> conv3x3_int8_shape(
    const cuda::QuantizedConvShape& shape, std::string_view identity = kConv3x3Int8Identity);

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
