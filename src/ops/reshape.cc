// Reshape: the input's elements under the shape given by input 1 (int64). A 0
// entry copies the input's dimension at that position (unless allowzero=1,
// opset 14, makes it a literal 0); one -1 entry is inferred from the element
// count. Symbolic dimensions survive where the arithmetic is exact:
// Reshape([N,512,7,7], [0,-1]) is [N,25088].
#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

class Reshape final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const TensorInfo& data = ctx.input(0);
    ctx.expect_dtype(1, {DType::kInt64});
    const Tensor* target = ctx.constant(1);
    if (!target) {
      ctx.set_output(0, data.dtype, unknown_shape_of_length(ctx));
      return;
    }
    if (target->rank() != 1)
      ctx.fail("the target shape (input 1) must be 1-D, got shape ", to_string(target->extents()));
    const bool allowzero = ctx.opset() >= 14 && ctx.attributes().get_int("allowzero", 0) != 0;
    ctx.set_output(0, data.dtype, output_shape(ctx, data.shape, target->to_int64s(), allowzero));
  }

  void run(RunContext& ctx) const override { copy_bytes(ctx.input(0), ctx.outputs[0]); }

 private:
  // A target computed at run time: only its length is known at import.
  static ir::Shape unknown_shape_of_length(const InferContext& ctx) {
    const std::int64_t length = unknown_list_length(ctx, 1, "target shape");
    return ir::Shape(std::vector<ir::Dim>(static_cast<std::size_t>(length)));
  }

  static ir::Shape output_shape(const InferContext& ctx, const ir::Shape& in,
                                const std::vector<std::int64_t>& target, bool allowzero) {
    std::vector<ir::Dim> out;
    std::vector<bool> copied(in.rank(), false);
    std::optional<std::size_t> inferred;
    bool has_zero = false;
    for (std::size_t i = 0; i < target.size(); ++i) {
      const std::int64_t v = target[i];
      has_zero |= v == 0;
      if (v == 0 && !allowzero) {
        if (i >= in.rank())
          ctx.fail("target entry ", i, " is 0 (copy the input's dimension) but the input has rank ",
                   in.rank());
        copied[i] = true;
        out.push_back(in[i]);
      } else if (v == -1) {
        if (inferred) ctx.fail("the target shape has more than one -1 entry");
        inferred = i;
        out.push_back(ir::Dim::unknown());
      } else if (v < -1) {
        ctx.fail("target entry ", i, " is ", v, "; entries must be >= -1");
      } else {
        out.push_back(ir::Dim::known(v));
      }
    }
    if (inferred && allowzero && has_zero)
      ctx.fail("with allowzero=1 the target shape may not hold both 0 and -1");
    if (inferred) out[*inferred] = inferred_dim(ctx, in, copied, out, *inferred);
    check_element_count(ctx, in, ir::Shape(out));
    return ir::Shape(std::move(out));
  }

  // The -1 entry: the input's dimensions over the target's other entries, after
  // cancelling each copied dimension against itself.
  static ir::Dim inferred_dim(const InferContext& ctx, const ir::Shape& in,
                              const std::vector<bool>& copied, const std::vector<ir::Dim>& out,
                              std::size_t inferred) {
    std::int64_t have = 1, other = 1;
    std::vector<ir::Dim> unknown;
    for (std::size_t i = 0; i < in.rank(); ++i) {
      if (copied[i]) continue;
      if (in[i].is_known())
        have = checked_mul(ctx, have, in[i].size);
      else
        unknown.push_back(in[i]);
    }
    for (std::size_t i = 0; i < out.size(); ++i)
      if (i != inferred && !(i < copied.size() && copied[i]))
        other = checked_mul(ctx, other, out[i].size);
    if (other == 0)
      ctx.fail("cannot infer the -1 entry of the target shape: the other entries multiply to 0");
    if (have == 0) return ir::Dim::known(0);
    if (unknown.empty()) {
      if (have % other != 0)
        ctx.fail("cannot reshape ", to_string(in), ": ", have, " elements do not divide by ",
                 other);
      return ir::Dim::known(have / other);
    }
    if (unknown.size() == 1 && have == other) return unknown[0];
    return ir::Dim::unknown();
  }

  static void check_element_count(const InferContext& ctx, const ir::Shape& in,
                                  const ir::Shape& out) {
    const ir::Dim a = dim_product(ctx, in.dims()), b = dim_product(ctx, out.dims());
    if (a.is_known() && b.is_known() && a.size != b.size)
      ctx.fail("cannot reshape ", to_string(in), " (", a.size, " elements) to ", to_string(out),
               " (", b.size, " elements)");
  }
};

ANVIL_REGISTER_OP(Reshape, "Reshape", {.min_inputs = 2, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
