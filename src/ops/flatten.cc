// Flatten: reshapes to 2-D, [d0 * ... * d(axis-1), d(axis) * ... * d(r-1)];
// axis in [-r, r]. Any dtype: the bytes are copied unchanged.
#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

class Flatten final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const TensorInfo& x = ctx.input(0);
    const std::vector<ir::Dim>& dims = x.shape.dims();
    const auto rank = static_cast<std::int64_t>(dims.size());
    std::int64_t axis = ctx.attributes().get_int("axis", 1);
    if (axis < -rank || axis > rank)
      ctx.fail("axis ", axis, " is out of range for an input of rank ", rank, " (valid: ", -rank,
               " to ", rank, ")");
    if (axis < 0) axis += rank;
    const auto split = dims.begin() + axis;
    const std::vector<ir::Dim> outer(dims.begin(), split), inner(split, dims.end());
    ctx.set_output(0, x.dtype, ir::Shape({dim_product(ctx, outer), dim_product(ctx, inner)}));
  }

  void run(RunContext& ctx) const override { copy_bytes(ctx.input(0), ctx.outputs[0]); }
};

ANVIL_REGISTER_OP(Flatten, "Flatten", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
