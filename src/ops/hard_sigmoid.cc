// HardSigmoid: y = max(0, min(1, alpha * x + beta)), alpha 0.2 and beta 0.5
// by default.
#include <algorithm>

#include "ops/unary_elementwise.h"

namespace anvil::ops {
namespace {

class HardSigmoid final : public UnaryElementwise {
  Params params(const ir::Attributes& attributes) const override {
    return {.alpha = attributes.get_float("alpha", 0.2f),
            .beta = attributes.get_float("beta", 0.5f)};
  }
  float apply(float x, const Params& p) const override {
    return std::clamp(p.alpha * x + p.beta, 0.0f, 1.0f);
  }
};

ANVIL_REGISTER_OP(HardSigmoid, "HardSigmoid", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
