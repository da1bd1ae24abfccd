// LeakyRelu: y = x for x >= 0, alpha * x otherwise (alpha defaults to 0.01).
#include "ops/unary_elementwise.h"

namespace anvil::ops {
namespace {

class LeakyRelu final : public UnaryElementwise {
  Params params(const ir::Attributes& attributes) const override {
    return {.alpha = attributes.get_float("alpha", 0.01f)};
  }
  float apply(float x, const Params& p) const override { return x < 0.0f ? p.alpha * x : x; }
};

ANVIL_REGISTER_OP(LeakyRelu, "LeakyRelu", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
