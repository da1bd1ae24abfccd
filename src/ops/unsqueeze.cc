// Unsqueeze: inserts dimensions of size 1 at the output positions named by
// axes (an attribute before opset 13, an input since). Any dtype.
#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

class Unsqueeze final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const TensorInfo& x = ctx.input(0);
    if (ctx.opset() >= 13 && ctx.has_input(1) && !ctx.constant(1)) {
      // Axes fed as a graph input: only the output's rank is known at import.
      const std::int64_t n = unknown_list_length(ctx, 1, "axes");
      ctx.set_output(0, x.dtype,
                     ir::Shape(std::vector<ir::Dim>(x.shape.rank() + static_cast<std::size_t>(n))));
      return;
    }
    const std::optional<std::vector<std::int64_t>> axes = axes_argument(ctx, 13, 1);
    if (!axes) ctx.fail("axes is required");
    const std::size_t rank = x.shape.rank() + axes->size();
    if (rank > static_cast<std::size_t>(kMaxRank))
      ctx.unsupported("an output of rank ", rank, " (at most ", kMaxRank, ")");
    std::vector<bool> inserted(rank, false);
    for (std::size_t axis : normalize_axes(ctx, *axes, rank))
      inserted[axis] = true;
    std::vector<ir::Dim> dims;
    std::size_t next = 0;
    for (std::size_t i = 0; i < rank; ++i)
      dims.push_back(inserted[i] ? ir::Dim::known(1) : x.shape[next++]);
    ctx.set_output(0, x.dtype, ir::Shape(std::move(dims)));
  }

  void run(RunContext& ctx) const override { copy_bytes(ctx.input(0), ctx.outputs[0]); }
};

ANVIL_REGISTER_OP(Unsqueeze, "Unsqueeze", {.min_inputs = 1, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
