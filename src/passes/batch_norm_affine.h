// The per-channel affine map of an inference BatchNormalization, shared by the
// passes that rewrite one (fold_batch_norm, batch_norm_to_conv):
//   y = x * scale[c] + shift[c],  scale = gamma / sqrt(var + epsilon),
//   shift = beta - mean * scale, in double so callers round once.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/graph.h"

namespace anvil::passes {

struct ChannelAffine {
  std::vector<double> scale;
  std::vector<double> shift;
};

// The float constant behind `v`, or null.
const Tensor* float_constant(const ir::Value* v);

// The map of `bn` when its four parameters are float constants of `channels`
// entries each; nullopt otherwise.
std::optional<ChannelAffine> batch_norm_affine(const ir::Node& bn, std::int64_t channels);

}  // namespace anvil::passes
