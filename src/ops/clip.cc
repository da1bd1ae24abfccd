// Clip (opset 11+): y = min(max(x, min), max), with min and max optional
// scalar inputs (an omitted bound defaults to the type's lowest or largest
// value). When min > max every element becomes max, as the spec says.
// Integer types are handled too since quantized graphs clip int8 tensors.
#include <limits>

#include "ops/op.h"

namespace anvil::ops {
namespace {

class Clip final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    if (ctx.attributes().has("min") || ctx.attributes().has("max"))
      ctx.fail("min and max are attributes only up to opset 10; from opset 11 they are inputs");
    ctx.expect_dtype(0,
                     {DType::kFloat32, DType::kInt8, DType::kUInt8, DType::kInt32, DType::kInt64});
    for (std::size_t i : {1, 2})
      if (ctx.has_input(i)) check_bound(ctx, i);
    ctx.set_output(0, ctx.input(0).dtype, ctx.input(0).shape);
  }

  void run(RunContext& ctx) const override {
    switch (ctx.input(0).dtype()) {
      case DType::kFloat32:
        return clip<float>(ctx);
      case DType::kInt8:
        return clip<std::int8_t>(ctx);
      case DType::kUInt8:
        return clip<std::uint8_t>(ctx);
      case DType::kInt32:
        return clip<std::int32_t>(ctx);
      case DType::kInt64:
        return clip<std::int64_t>(ctx);
      default:
        ANVIL_CHECK(false);  // infer() admits only the types above
    }
  }

 private:
  // A bound is a scalar of x's type; a one-element tensor of any rank is
  // accepted too, as exporters sometimes emit shape [1].
  static void check_bound(const InferContext& ctx, std::size_t i) {
    const char* what = i == 1 ? "min" : "max";
    const TensorInfo& bound = ctx.input(i);
    if (bound.dtype != ctx.input(0).dtype)
      ctx.fail("input ", i, " (", what, ") has dtype ", to_string(bound.dtype),
               " but input 0 has dtype ", to_string(ctx.input(0).dtype), "; they must match");
    for (const ir::Dim& d : bound.shape.dims())
      if (d.is_known() && d.size != 1)
        ctx.fail("input ", i, " (", what, ") must be a scalar, got shape ", to_string(bound.shape));
  }

  template <typename T>
  static T bound_or(const RunContext& ctx, std::size_t i, T fallback) {
    return ctx.has_input(i) ? ctx.input(i).data<T>()[0] : fallback;
  }

  template <typename T>
  static void clip(RunContext& ctx) {
    using Limits = std::numeric_limits<T>;
    // The spec's defaults, which ONNX Runtime follows too: -inf and +inf
    // inputs clip to the largest finite float32 values.
    const T lo = bound_or<T>(ctx, 1, Limits::lowest());
    const T hi = bound_or<T>(ctx, 2, Limits::max());
    const Tensor& x = ctx.input(0);
    const T* in = x.data<T>();
    T* out = ctx.outputs[0].data<T>();
    // Comparisons rather than std::min/max so that NaN passes through.
    for (std::int64_t k = 0, n = x.element_count(); k < n; ++k) {
      const T v = in[k] < lo ? lo : in[k];
      out[k] = v > hi ? hi : v;
    }
  }
};

ANVIL_REGISTER_OP(Clip, "Clip", {.min_inputs = 1, .max_inputs = 3});

}  // namespace
}  // namespace anvil::ops
