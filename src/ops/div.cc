// Div: c = a / b with NumPy broadcasting. Integer division truncates toward
// zero, as the ONNX reference implementation and ONNX Runtime do (not
// NumPy's floor division): -7 / 2 = -3.
#include <algorithm>

#include "ops/binary_elementwise.h"

namespace anvil::ops {
namespace {

class Div final : public BinaryElementwise<Div> {
 public:
  static float apply(float a, float b) { return a / b; }
  static std::int64_t apply(std::int64_t a, std::int64_t b) {
    // INT64_MIN / -1 overflows (a hardware trap on x86); negation wraps instead.
    return b == -1 ? wrapping_sub(0, a) : a / b;
  }

  // Integer division by zero is undefined (a SIGFPE on x86): report it instead.
  static void check_operands(const RunContext& ctx) {
    const Tensor& divisor = ctx.input(1);
    if (divisor.dtype() != DType::kInt64) return;
    const auto values = divisor.values<std::int64_t>();
    if (std::find(values.begin(), values.end(), 0) != values.end())
      fail(ErrorKind::kInvalidArgument, ctx.node.describe(),
           ": integer division by zero (input 1 ('", ctx.node.inputs[1]->name, "') holds a 0)");
  }
};

ANVIL_REGISTER_OP(Div, "Div", {.min_inputs = 2, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
