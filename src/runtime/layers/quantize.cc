// "quantize" (FP16 storage -> INT8 or FP8 E4M3) and "dequantize" (back):
// the quantized tensor's dtype says which element type,
// one elementwise kernel over every stored element, padded channels included
// (they hold zeros on both sides).
#include "cuda/kernels/quantize.h"

#include <cmath>

#include "runtime/layer_runner.h"
#include "runtime/layers/layer_util.h"

namespace anvil::runtime {

namespace {

class PreparedQuantize final : public PreparedLayer {
 public:
  PreparedQuantize(bool to_int8, DType element, std::int64_t elements, float scale)
      : to_int8_(to_int8), element_(element), elements_(elements), scale_(scale) {}

  void enqueue(const LaunchArgs& a) const override {
    if (to_int8_)
      cuda::kernels::quantize(a.inputs[0], a.outputs[0], elements_, scale_, element_, a.stream);
    else
      cuda::kernels::dequantize(a.inputs[0], a.outputs[0], elements_, scale_, element_, a.stream);
  }

 private:
  bool to_int8_;
  DType element_;
  std::int64_t elements_;
  float scale_;
};

class QuantizeRunner final : public LayerRunner {
 public:
  QuantizeRunner(const LayerSetup& s, bool to_int8) : to_int8_(to_int8) {
    const std::string& name = s.layer.name;
    if (!s.fp16)
      fail(ErrorKind::kInvalidArgument, "plan layer '", name, "': kind '", s.layer.kind,
           "' needs an FP16 plan (INT8 layers are built only with FP16 storage)");
    element_ = quantized_element(s, to_int8);
    check_one_in_one_out(s, to_int8 ? DType::kFloat16 : element_,
                         to_int8 ? element_ : DType::kFloat16);
    const auto c = param<std::int64_t>(s.params, "c", name);
    const auto c_pad = param<std::int64_t>(s.params, "c_pad", name);
    const auto h = param<std::int64_t>(s.params, "h", name);
    const auto w = param<std::int64_t>(s.params, "w", name);
    const auto layout = param<std::string>(s.params, "layout", name);
    scale_ = param<float>(s.params, "scale", name);
    if (c < 1 || c_pad < c || h < 1 || w < 1)
      fail(ErrorKind::kInvalidArgument, "plan layer '", name, "': bad shape c=", c,
           " c_pad=", c_pad, " h=", h, " w=", w, " (need 1 <= c <= c_pad, h, w >= 1)");
    if (layout != "NHWC" && layout != "NC")
      fail(ErrorKind::kInvalidArgument, "plan layer '", name, "': layout '", layout,
           "' (expected NHWC or NC)");
    if (!std::isfinite(scale_) || !(scale_ > 0.0f))
      fail(ErrorKind::kInvalidArgument, "plan layer '", name, "': scale ", scale_,
           " must be finite and > 0");
    // An NC tensor is one pixel per image whatever h and w say.
    per_image_ = (layout == "NC" ? 1 : h * w) * c_pad;
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles&) const override {
    return std::make_unique<PreparedQuantize>(to_int8_, element_, batch * per_image_, scale_);
  }

 private:
  // The dtype of the quantized side (the output of a quantize, the input of
  // a dequantize): int8, or float8e4m3fn in an FP8 plan.
  static DType quantized_element(const LayerSetup& s, bool to_int8) {
    const plan::LayerDesc& l = s.layer;
    const std::vector<int>& side = to_int8 ? l.outputs : l.inputs;
    if (side.size() != 1) return DType::kInt8;  // check_one_in_one_out says what is wrong
    const DType d = s.plan.tensors.at(static_cast<std::size_t>(side[0])).dtype;
    return d == DType::kFloat8E4M3 ? d : DType::kInt8;
  }

  bool to_int8_;
  DType element_ = DType::kInt8;
  std::int64_t per_image_ = 0;  // stored elements of one image
  float scale_ = 1.0f;
};

std::unique_ptr<LayerRunner> make_quantize(const LayerSetup& s) {
  return std::make_unique<QuantizeRunner>(s, true);
}
std::unique_ptr<LayerRunner> make_dequantize(const LayerSetup& s) {
  return std::make_unique<QuantizeRunner>(s, false);
}

}  // namespace

ANVIL_REGISTER_LAYER("quantize", make_quantize);
ANVIL_REGISTER_LAYER("dequantize", make_dequantize);

}  // namespace anvil::runtime
