// DequantizeLinear: y = (x - x_zero_point) * x_scale, float32, for int8, uint8
// and int32 x (int32 is how quantized biases are stored; their zero point is 0).
//
// The float8, int4 and 16-bit inputs and the float16/bfloat16 scales of opsets
// 19 and 21 are not supported.
#include "ops/quantization.h"

namespace anvil::ops {
namespace {

class DequantizeLinear final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kInt8, DType::kUInt8, DType::kInt32});
    const DType x = ctx.input(0).dtype;
    if (ctx.has_input(2) && ctx.input(2).dtype != x)
      ctx.fail("the zero point has dtype ", to_string(ctx.input(2).dtype), " but x has ",
               to_string(x), "; they must match");
    check_quant_params(ctx);
    ctx.set_output(0, DType::kFloat32, ctx.input(0).shape);
  }

  void run(RunContext& ctx) const override {
    switch (ctx.input(0).dtype()) {
      case DType::kInt8:
        return dequantize<std::int8_t>(ctx);
      case DType::kUInt8:
        return dequantize<std::uint8_t>(ctx);
      case DType::kInt32:
        return dequantize<std::int32_t>(ctx);
      case DType::kUndefined:
      case DType::kFloat32:
      case DType::kFloat16:
      case DType::kFloat64:
      case DType::kInt64:
      case DType::kBool:
      case DType::kFloat8E4M3:
        break;  // infer() admits none of these
    }
    ANVIL_CHECK(false);
  }

 private:
  template <typename T>
  static void dequantize(RunContext& ctx) {
    const QuantLayout layout = quant_layout(ctx);
    const T* x = ctx.input(0).data<T>();
    const float* scale = ctx.input(1).data<float>();
    const T* zero_point = ctx.has_input(2) ? ctx.input(2).data<T>() : nullptr;
    float* y = ctx.outputs[0].data<float>();
    for (std::int64_t i = 0, n = ctx.input(0).element_count(); i < n; ++i) {
      const std::int64_t c = layout.channel_of(i);
      // In int64: an int32 x minus its zero point may overflow int32.
      const std::int64_t shifted =
          static_cast<std::int64_t>(x[i]) - (zero_point ? zero_point[c] : T{0});
      y[i] = static_cast<float>(shifted) * scale[c];
    }
  }
};

ANVIL_REGISTER_OP(DequantizeLinear, "DequantizeLinear", {.min_inputs = 2, .max_inputs = 3});

}  // namespace
}  // namespace anvil::ops
