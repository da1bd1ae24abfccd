// Tanh: y = tanh(x).
#include <cmath>

#include "ops/unary_elementwise.h"

namespace anvil::ops {
namespace {

class Tanh final : public UnaryElementwise {
  float apply(float x, const Params&) const override { return std::tanh(x); }
};

ANVIL_REGISTER_OP(Tanh, "Tanh", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
