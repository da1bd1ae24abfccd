// Sigmoid: y = 1 / (1 + exp(-x)).
#include <cmath>

#include "ops/unary_elementwise.h"

namespace anvil::ops {
namespace {

class Sigmoid final : public UnaryElementwise {
  // Both branches only ever exponentiate a non-positive number, so neither
  // overflows for large |x|.
  float apply(float x, const Params&) const override {
    if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
    const float e = std::exp(x);
    return e / (1.0f + e);
  }
};

ANVIL_REGISTER_OP(Sigmoid, "Sigmoid", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
