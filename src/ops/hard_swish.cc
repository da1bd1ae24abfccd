// HardSwish: y = x * max(0, min(1, x / 6 + 0.5)) (MobileNetV3).
#include <algorithm>

#include "ops/unary_elementwise.h"

namespace anvil::ops {
namespace {

class HardSwish final : public UnaryElementwise {
  float apply(float x, const Params&) const override {
    // The spec defines it through HardSigmoid with alpha = 1/6, beta = 0.5.
    constexpr float kAlpha = 1.0f / 6.0f;
    return x * std::clamp(kAlpha * x + 0.5f, 0.0f, 1.0f);
  }
};

ANVIL_REGISTER_OP(HardSwish, "HardSwish", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
