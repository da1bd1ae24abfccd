#include "passes/batch_norm_affine.h"

#include <cmath>

namespace anvil::passes {

const Tensor* float_constant(const ir::Value* v) {
  return v && v->is_constant() && v->dtype == DType::kFloat32 ? &*v->constant : nullptr;
}

std::optional<ChannelAffine> batch_norm_affine(const ir::Node& bn, std::int64_t channels) {
  const Tensor* p[4];
  for (std::size_t i = 0; i < 4; ++i) {
    p[i] = float_constant(bn.input(i + 1));
    if (!p[i] || p[i]->rank() != 1 || p[i]->element_count() != channels) return std::nullopt;
  }
  const double epsilon = bn.attributes.get_float("epsilon", 1e-5f);
  ChannelAffine affine;
  for (std::int64_t c = 0; c < channels; ++c) {
    const double a = p[0]->data<float>()[c] / std::sqrt(double{p[3]->data<float>()[c]} + epsilon);
    affine.scale.push_back(a);
    affine.shift.push_back(p[1]->data<float>()[c] - p[2]->data<float>()[c] * a);
  }
  return affine;
}

}  // namespace anvil::passes
