// Sub: c = a - b with NumPy broadcasting.
#include "ops/binary_elementwise.h"

namespace anvil::ops {
namespace {

class Sub final : public BinaryElementwise<Sub> {
 public:
  static float apply(float a, float b) { return a - b; }
  static std::int64_t apply(std::int64_t a, std::int64_t b) { return wrapping_sub(a, b); }
};

ANVIL_REGISTER_OP(Sub, "Sub", {.min_inputs = 2, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
