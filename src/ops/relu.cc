// Relu: y = max(x, 0).
#include "ops/unary_elementwise.h"

namespace anvil::ops {
namespace {

class Relu final : public UnaryElementwise {
  float apply(float x, const Params&) const override { return x > 0.0f ? x : 0.0f; }
};

ANVIL_REGISTER_OP(Relu, "Relu", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
