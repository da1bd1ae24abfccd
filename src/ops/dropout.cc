// Dropout at inference: output = input, and the optional mask is all true.
//
// Opset 11 (Dropout-10) takes ratio as an attribute; from opset 12 ratio and
// training_mode are optional inputs. Training mode drops random elements,
// which a deterministic inference compiler does not do, except with ratio 0
// where it is the identity too.
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "ops/op.h"

namespace anvil::ops {
namespace {

class Dropout final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32, DType::kFloat16, DType::kFloat64});
    if (ctx.opset() < 12) {
      if (ctx.input_count() > 1)
        ctx.fail("takes one input at opset ", ctx.opset(),
                 "; ratio and training_mode are inputs from opset 12");
      ctx.attributes().get_float("ratio", 0.5f);  // checks its type
    } else {
      check_mode(ctx, read_ratio(ctx));
    }
    ctx.set_output(0, ctx.input(0).dtype, ctx.input(0).shape);
    if (ctx.outputs().size() > 1) ctx.set_output(1, DType::kBool, ctx.input(0).shape);
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    if (x.byte_size() > 0) std::memcpy(ctx.outputs[0].bytes(), x.bytes(), x.byte_size());
    if (ctx.outputs.size() > 1) {
      Tensor& mask = ctx.outputs[1];
      std::fill_n(mask.data<bool>(), mask.element_count(), true);
    }
  }

 private:
  // The ratio when known (the spec's default 0.5 when omitted), else -1.
  static double read_ratio(const InferContext& ctx) {
    if (!ctx.has_input(1)) return 0.5;
    ctx.expect_dtype(1, {DType::kFloat32, DType::kFloat64});
    expect_scalar(ctx, 1, "ratio");
    const Tensor* ratio = ctx.constant(1);
    if (!ratio) return -1.0;
    const double r = ratio->to_doubles()[0];
    if (!(r >= 0.0 && r < 1.0)) ctx.fail("input 1 (ratio) is ", r, "; it must be in [0, 1)");
    return r;
  }

  static void check_mode(const InferContext& ctx, double ratio) {
    if (!ctx.has_input(2)) return;
    ctx.expect_dtype(2, {DType::kBool});
    expect_scalar(ctx, 2, "training_mode");
    const Tensor* mode = ctx.constant(2);
    // Read the byte: a bool object holding anything but 0 or 1 is undefined.
    const bool training = mode && std::to_integer<int>(mode->bytes()[0]) != 0;
    if (training && ratio != 0.0)
      ctx.unsupported("training_mode is true: random dropout (ratio ",
                      ratio < 0 ? "unknown" : cat(ratio),
                      ") is a training feature; export the model in eval mode");
  }

  static void expect_scalar(const InferContext& ctx, std::size_t i, const char* what) {
    for (const ir::Dim& d : ctx.input(i).shape.dims())
      if (d.is_known() && d.size != 1)
        ctx.fail("input ", i, " (", what, ") must be a scalar, got shape ",
                 to_string(ctx.input(i).shape));
  }
};

ANVIL_REGISTER_OP(Dropout, "Dropout",
                  {.min_inputs = 1, .max_inputs = 3, .min_outputs = 1, .max_outputs = 2});

}  // namespace
}  // namespace anvil::ops
