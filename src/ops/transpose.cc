// Transpose: output dimension i is input dimension perm[i]; perm defaults to
// reversing the dimensions. Any dtype.
#include <numeric>

#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

class Transpose final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const TensorInfo& x = ctx.input(0);
    std::vector<ir::Dim> dims;
    for (std::size_t axis : permutation(ctx))
      dims.push_back(x.shape[axis]);
    ctx.set_output(0, x.dtype, ir::Shape(std::move(dims)));
  }

  void run(RunContext& ctx) const override {
    const std::vector<std::size_t> perm = permutation(concrete_context(ctx));
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.outputs[0];
    const std::vector<std::int64_t> in_strides = row_major_strides(x.extents());
    std::vector<std::int64_t> src_strides;
    for (std::size_t axis : perm)
      src_strides.push_back(in_strides[axis]);
    copy_strided(x.bytes(), src_strides, y.bytes(), row_major_strides(y.extents()), y.extents(),
                 size_of(x.dtype()));
  }

 private:
  static std::vector<std::size_t> permutation(const InferContext& ctx) {
    const std::size_t rank = ctx.input(0).shape.rank();
    if (!ctx.attributes().has("perm")) {
      std::vector<std::size_t> reverse(rank);
      std::iota(reverse.rbegin(), reverse.rend(), std::size_t{0});
      return reverse;
    }
    const std::vector<std::int64_t> perm = ctx.attributes().get_ints("perm");
    if (perm.size() != rank)
      ctx.fail("perm has ", perm.size(), " entries but the input has rank ", rank);
    for (std::int64_t p : perm)
      if (p < 0) ctx.fail("perm entry ", p, " is negative");
    return normalize_axes(ctx, perm, rank, "perm entries");
  }
};

ANVIL_REGISTER_OP(Transpose, "Transpose", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
