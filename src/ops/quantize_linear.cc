// QuantizeLinear: y = saturate(round_half_to_even(x / y_scale) + y_zero_point).
//
// Outputs int8 or uint8 (the zero point's dtype; uint8 when it is omitted, or
// the opset 21 output_dtype attribute). The float8, int4 and 16-bit outputs of
// opsets 19 and 21 are not supported. `saturate` (opset 19) only affects
// float8 outputs, so integer outputs always saturate.
#include "ops/quantization.h"

namespace anvil::ops {
namespace {

// TensorProto.DataType codes of output_dtype.
constexpr std::int64_t kOnnxUInt8 = 2;
constexpr std::int64_t kOnnxInt8 = 3;

class QuantizeLinear final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32, DType::kInt32});
    check_quant_params(ctx);
    ctx.set_output(0, output_dtype(ctx), ctx.input(0).shape);
  }

  void run(RunContext& ctx) const override {
    const bool int8 = ctx.outputs[0].dtype() == DType::kInt8;
    const bool float_x = ctx.input(0).dtype() == DType::kFloat32;
    if (int8)
      float_x ? quantize<float, std::int8_t>(ctx) : quantize<std::int32_t, std::int8_t>(ctx);
    else
      float_x ? quantize<float, std::uint8_t>(ctx) : quantize<std::int32_t, std::uint8_t>(ctx);
  }

 private:
  static DType output_dtype(const InferContext& ctx) {
    DType from_zero_point = DType::kUndefined;
    if (ctx.has_input(2)) {
      from_zero_point = ctx.input(2).dtype;
      if (from_zero_point != DType::kInt8 && from_zero_point != DType::kUInt8)
        ctx.fail("the zero point has dtype ", to_string(from_zero_point),
                 "; QuantizeLinear outputs int8 or uint8");
    }
    const std::int64_t code = ctx.opset() >= 21 ? ctx.attributes().get_int("output_dtype", 0) : 0;
    if (code == 0) return from_zero_point == DType::kUndefined ? DType::kUInt8 : from_zero_point;
    if (code != kOnnxUInt8 && code != kOnnxInt8)
      ctx.unsupported("output_dtype ", code, " is not supported (only int8 and uint8 are)");
    const DType attr = code == kOnnxInt8 ? DType::kInt8 : DType::kUInt8;
    if (from_zero_point != DType::kUndefined && from_zero_point != attr)
      ctx.fail("output_dtype ", to_string(attr), " contradicts the zero point's dtype ",
               to_string(from_zero_point));
    return attr;
  }

  template <typename In, typename Out>
  static void quantize(RunContext& ctx) {
    const QuantLayout layout = quant_layout(ctx);
    const In* x = ctx.input(0).data<In>();
    const float* scale = ctx.input(1).data<float>();
    const Out* zero_point = ctx.has_input(2) ? ctx.input(2).data<Out>() : nullptr;
    Out* y = ctx.outputs[0].data<Out>();
    for (std::int64_t i = 0, n = ctx.input(0).element_count(); i < n; ++i) {
      const std::int64_t c = layout.channel_of(i);
      // Divided in float32, not multiplied by a reciprocal: onnxruntime and
      // the ONNX reference do the same, so ties round identically.
      const float v = static_cast<float>(x[i]) / scale[c];
      y[i] = quantize_value<Out>(v, zero_point ? zero_point[c] : Out{0});
    }
  }
};

ANVIL_REGISTER_OP(QuantizeLinear, "QuantizeLinear", {.min_inputs = 2, .max_inputs = 3});

}  // namespace
}  // namespace anvil::ops
