// Concat: joins inputs of one dtype and rank along `axis`; every other
// dimension must agree. Any dtype.
#include <cstring>

#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

class Concat final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const TensorInfo& first = ctx.input(0);
    const std::size_t axis = concat_axis(ctx);
    std::vector<ir::Dim> dims = first.shape.dims();
    std::vector<ir::Dim> along_axis;
    for (std::size_t i = 0; i < ctx.input_count(); ++i) {
      const TensorInfo& in = ctx.input(i);
      if (in.dtype != first.dtype)
        ctx.fail("input ", i, " has dtype ", to_string(in.dtype), ", input 0 has ",
                 to_string(first.dtype));
      if (in.shape.rank() != dims.size())
        ctx.fail("input ", i, " has shape ", to_string(in.shape), ", input 0 has ",
                 to_string(first.shape), ": ranks differ");
      for (std::size_t d = 0; d < dims.size(); ++d)
        if (d != axis) dims[d] = merged(ctx, dims[d], in.shape[d], i);
      along_axis.push_back(in.shape[axis]);
    }
    dims[axis] = dim_sum(ctx, along_axis);
    ctx.set_output(0, first.dtype, ir::Shape(std::move(dims)));
  }

  void run(RunContext& ctx) const override {
    const std::size_t axis = concat_axis(concrete_context(ctx));
    Tensor& y = ctx.outputs[0];
    std::int64_t outer = 1;
    for (std::size_t d = 0; d < axis; ++d)
      outer *= y.extents()[d];
    // Each input contributes one contiguous chunk per outer index.
    std::vector<std::int64_t> chunk_bytes;
    for (const Tensor* in : ctx.inputs)
      chunk_bytes.push_back(outer == 0 ? 0 : static_cast<std::int64_t>(in->byte_size()) / outer);
    std::byte* out = y.bytes();
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::size_t i = 0; i < ctx.inputs.size(); ++i) {
        const auto n = static_cast<std::size_t>(chunk_bytes[i]);
        if (n != 0) std::memcpy(out, ctx.inputs[i]->bytes() + o * chunk_bytes[i], n);
        out += n;
      }
    ANVIL_CHECK(out == y.bytes() + y.byte_size());
  }

 private:
  static std::size_t concat_axis(const InferContext& ctx) {
    const std::size_t rank = ctx.input(0).shape.rank();
    if (rank == 0) ctx.fail("cannot concatenate scalars");
    return normalize_axis(ctx, ctx.attributes().get_int("axis"), rank);
  }

  // A dimension two inputs share: a known size wins over a symbol.
  static ir::Dim merged(const InferContext& ctx, const ir::Dim& a, const ir::Dim& b,
                        std::size_t input) {
    if (a.is_known() && b.is_known() && a.size != b.size)
      ctx.fail("input ", input, " has a dimension of size ", b.size, " where input 0 has ", a.size);
    return a.is_known() ? a : b.is_known() ? b : a;
  }
};

ANVIL_REGISTER_OP(Concat, "Concat", {.min_inputs = 1, .max_inputs = 1 << 20});

}  // namespace
}  // namespace anvil::ops
