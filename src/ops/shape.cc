// Shape: the dimensions of the input as a 1-D int64 tensor, optionally only
// those in [start, end) (opset 15), with ONNX's clamping of both ends.
#include <algorithm>

#include "ops/axes.h"

namespace anvil::ops {
namespace {

class ShapeOp final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const auto [start, end] = range(ctx);
    ctx.set_output(0, DType::kInt64, ir::Shape({ir::Dim::known(end - start)}));
  }

  void run(RunContext& ctx) const override {
    const auto [start, end] = range(concrete_context(ctx));
    const Extents& extents = ctx.input(0).extents();
    std::copy(extents.begin() + start, extents.begin() + end, ctx.outputs[0].data<std::int64_t>());
  }

 private:
  // [start, end) within the input's dimensions, possibly empty.
  static std::pair<std::int64_t, std::int64_t> range(const InferContext& ctx) {
    const auto rank = static_cast<std::int64_t>(ctx.input(0).shape.rank());
    if (ctx.opset() < 15) return {0, rank};
    auto clamp = [rank](std::int64_t i) {
      return std::clamp(i < 0 ? i + rank : i, std::int64_t{0}, rank);
    };
    const std::int64_t start = clamp(ctx.attributes().get_int("start", 0));
    const std::int64_t end = clamp(ctx.attributes().get_int("end", rank));
    return {start, std::max(start, end)};
  }
};

ANVIL_REGISTER_OP(ShapeOp, "Shape", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
