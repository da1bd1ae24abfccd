// Mul: c = a * b with NumPy broadcasting.
#include "ops/binary_elementwise.h"

namespace anvil::ops {
namespace {

class Mul final : public BinaryElementwise<Mul> {
 public:
  static float apply(float a, float b) { return a * b; }
  static std::int64_t apply(std::int64_t a, std::int64_t b) { return wrapping_mul(a, b); }
};

ANVIL_REGISTER_OP(Mul, "Mul", {.min_inputs = 2, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
