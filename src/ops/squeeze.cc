// Squeeze: removes dimensions of size 1, those named by axes (an attribute
// before opset 13, an input since) or else all of them. Any dtype.
#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

class Squeeze final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const TensorInfo& x = ctx.input(0);
    if (const std::optional<std::size_t> n = runtime_axes_count(ctx)) {
      if (*n > x.shape.rank())
        ctx.fail("cannot squeeze ", *n, " axes of an input of rank ", x.shape.rank());
      ctx.set_output(0, x.dtype, ir::Shape(std::vector<ir::Dim>(x.shape.rank() - *n)));
      return;
    }
    const std::vector<bool> removed = removed_axes(ctx, x.shape);
    std::vector<ir::Dim> dims;
    for (std::size_t i = 0; i < x.shape.rank(); ++i)
      if (!removed[i]) dims.push_back(x.shape[i]);
    ctx.set_output(0, x.dtype, ir::Shape(std::move(dims)));
  }

  void run(RunContext& ctx) const override { copy_bytes(ctx.input(0), ctx.outputs[0]); }

 private:
  // The number of axes fed as a graph input: known at run time only, so at
  // import the output has that many fewer dimensions, all unknown.
  static std::optional<std::size_t> runtime_axes_count(const InferContext& ctx) {
    if (ctx.opset() < 13 || !ctx.has_input(1) || ctx.constant(1)) return std::nullopt;
    const std::int64_t n = unknown_list_length(ctx, 1, "axes");
    if (n == 0) ctx.unsupported("an empty axes input must be a constant at import");
    return static_cast<std::size_t>(n);
  }

  static std::vector<bool> removed_axes(const InferContext& ctx, const ir::Shape& shape) {
    std::vector<bool> removed(shape.rank(), false);
    const std::optional<std::vector<std::int64_t>> axes = axes_argument(ctx, 13, 1);
    if (!axes || axes->empty()) {
      // Which dimensions are 1 decides the output's rank: a symbolic one
      // (a batch N that may be 1) leaves it undecided.
      for (std::size_t i = 0; i < shape.rank(); ++i) {
        if (!shape[i].is_known())
          ctx.unsupported(
              "squeezing without axes needs every input dimension known at import, got ",
              to_string(shape));
        removed[i] = shape[i].size == 1;
      }
      return removed;
    }
    for (std::size_t axis : normalize_axes(ctx, *axes, shape.rank())) {
      if (shape[axis].is_known() && shape[axis].size != 1)
        ctx.fail("cannot squeeze axis ", axis, " of size ", shape[axis].size, " in ",
                 to_string(shape));
      removed[axis] = true;
    }
    return removed;
  }
};

ANVIL_REGISTER_OP(Squeeze, "Squeeze", {.min_inputs = 1, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
