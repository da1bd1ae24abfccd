// ReduceMean: the mean over `axes` (an attribute before opset 18, an input
// since; all axes when empty, unless noop_with_empty_axes=1 from opset 18),
// keeping the reduced dimensions as 1 when keepdims=1 (the default). float32.
#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

class ReduceMean final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32});
    const ir::Shape& in = ctx.input(0).shape;
    const std::vector<bool> reduced = reduced_axes(ctx);
    const bool keepdims = ctx.attributes().get_int("keepdims", 1) != 0;
    std::vector<ir::Dim> dims;
    for (std::size_t d = 0; d < in.rank(); ++d) {
      if (!reduced[d])
        dims.push_back(in[d]);
      else if (keepdims)
        dims.push_back(ir::Dim::known(1));
    }
    ctx.set_output(0, DType::kFloat32, ir::Shape(std::move(dims)));
  }

  void run(RunContext& ctx) const override {
    const std::vector<bool> reduced = reduced_axes(concrete_context(ctx));
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.outputs[0];
    // Walk the input in order; each element adds to the output element with
    // the same index on the kept axes (stride 0 along reduced ones).
    const Extents& extents = x.extents();
    Extents kept_extents;
    for (std::size_t d = 0; d < extents.size(); ++d)
      kept_extents.push_back(reduced[d] ? 1 : extents[d]);
    std::vector<std::int64_t> out_strides = row_major_strides(kept_extents);
    std::int64_t count = 1;
    for (std::size_t d = 0; d < extents.size(); ++d)
      if (reduced[d]) {
        out_strides[d] = 0;
        count *= extents[d];
      }
    std::vector<double> sums(static_cast<std::size_t>(y.element_count()), 0.0);
    std::vector<std::int64_t> index(extents.size(), 0);
    const float* in = x.data<float>();
    for (std::int64_t i = 0, n = x.element_count(); i < n; ++i) {
      std::int64_t o = 0;
      for (std::size_t d = 0; d < index.size(); ++d)
        o += index[d] * out_strides[d];
      sums[static_cast<std::size_t>(o)] += in[i];
      for (std::size_t d = index.size(); d-- > 0;) {
        if (++index[d] < extents[d]) break;
        index[d] = 0;
      }
    }
    float* out = y.data<float>();
    // An empty reduction is 0/0 = NaN, as in NumPy.
    for (std::size_t i = 0; i < sums.size(); ++i)
      out[i] = static_cast<float>(sums[i] / static_cast<double>(count));
  }

 private:
  static std::vector<bool> reduced_axes(const InferContext& ctx) {
    const std::size_t rank = ctx.input(0).shape.rank();
    const std::optional<std::vector<std::int64_t>> axes = axes_argument(ctx, 18, 1);
    const bool noop_if_empty =
        ctx.opset() >= 18 && ctx.attributes().get_int("noop_with_empty_axes", 0) != 0;
    std::vector<bool> reduced(rank, !noop_if_empty);
    if (!axes || axes->empty()) return reduced;
    reduced.assign(rank, false);
    for (std::size_t axis : normalize_axes(ctx, *axes, rank))
      reduced[axis] = true;
    return reduced;
  }
};

ANVIL_REGISTER_OP(ReduceMean, "ReduceMean", {.min_inputs = 1, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
