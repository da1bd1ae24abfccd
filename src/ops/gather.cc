// Gather: picks slices of `data` along `axis` by index (int64 or int32,
// negative counting from the end); the output's shape is data's with that
// axis replaced by the indices' shape. Any data dtype.
#include <cstring>

#include "ops/axes.h"

namespace anvil::ops {
namespace {

class Gather final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const TensorInfo& data = ctx.input(0);
    ctx.expect_dtype(1, {DType::kInt64, DType::kInt32});
    const std::size_t axis = gather_axis(ctx);
    if (const Tensor* indices = ctx.constant(1); indices && data.shape[axis].is_known())
      check_indices(ctx, indices->to_int64s(), data.shape[axis].size);
    const std::vector<ir::Dim>& in = data.shape.dims();
    std::vector<ir::Dim> dims(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(axis));
    const std::vector<ir::Dim>& index_dims = ctx.input(1).shape.dims();
    dims.insert(dims.end(), index_dims.begin(), index_dims.end());
    dims.insert(dims.end(), in.begin() + static_cast<std::ptrdiff_t>(axis) + 1, in.end());
    ctx.set_output(0, data.dtype, ir::Shape(std::move(dims)));
  }

  // infer() has checked every index against the concrete shape.
  void run(RunContext& ctx) const override {
    const std::size_t axis = gather_axis(concrete_context(ctx));
    const Tensor& data = ctx.input(0);
    const Extents& extents = data.extents();
    std::int64_t outer = 1, inner = 1;
    for (std::size_t d = 0; d < axis; ++d)
      outer *= extents[d];
    for (std::size_t d = axis + 1; d < extents.size(); ++d)
      inner *= extents[d];
    const std::int64_t size = extents[axis];
    const auto slice_bytes = static_cast<std::size_t>(inner) * size_of(data.dtype());
    const std::vector<std::int64_t> indices = ctx.input(1).to_int64s();
    std::byte* out = ctx.outputs[0].bytes();
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t index : indices) {
        const std::int64_t i = index < 0 ? index + size : index;
        ANVIL_CHECK(i >= 0 && i < size);
        if (slice_bytes != 0)
          std::memcpy(out, data.bytes() + (o * size + i) * static_cast<std::int64_t>(slice_bytes),
                      slice_bytes);
        out += slice_bytes;
      }
  }

 private:
  static std::size_t gather_axis(const InferContext& ctx) {
    const std::size_t rank = ctx.input(0).shape.rank();
    if (rank == 0) ctx.fail("data must have rank >= 1");
    return normalize_axis(ctx, ctx.attributes().get_int("axis", 0), rank);
  }

  static void check_indices(const InferContext& ctx, const std::vector<std::int64_t>& indices,
                            std::int64_t size) {
    for (std::int64_t i : indices)
      if (i < -size || i >= size)
        ctx.fail("index ", i, " is out of range for an axis of size ", size, " (valid: ", -size,
                 " to ", size - 1, ")");
  }
};

ANVIL_REGISTER_OP(Gather, "Gather", {.min_inputs = 2, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
