// "conv_max_pool": ResNet's stem conv + max pool in one kernel
// (cuda/kernels/stem_conv_pool.h). The kernel is written for one shape, so
// the runner checks the plan's params and weights against it: anything else
// is a corrupt plan, never a launch with the wrong sizes. As
// "conv_max_pool_int8", with "out_scale" (an INT8 plan,
// builder/fuse_conv_max_pool.h), the kernel writes the pooled tensor as INT8
// with that scale. With two inputs it reads the engine's FP32 NCHW input
// (input 0) itself, or, where the context passes a null input 0 (the input
// is preformatted), the FP16 NHWC storage a caller wrote (input 1); or,
// where the context passes images (ExecutionContext::set_input_images, on
// the row kernel only), uint8 RGB NHWC pixels it normalizes as it loads.
#include <cmath>

#include "cuda/kernels/stem_conv_pool.h"
#include "runtime/layer_runner.h"
#include "runtime/layers/layer_util.h"

namespace anvil::runtime {

namespace {

namespace k = cuda::kernels;

class PreparedConvMaxPool final : public PreparedLayer {
 public:
  PreparedConvMaxPool(k::StemShape shape, const void* filter, const float* bias)
      : shape_(shape), filter_(filter), bias_(bias) {}

  void enqueue(const LaunchArgs& a) const override {
    if (a.images.pixels) {
      k::StemShape shape = shape_;
      shape.input = k::StemInput::kUint8Nhwc;
      shape.image_affine = a.images.affine;
      k::stem_conv_pool(a.images.pixels, filter_, bias_, a.outputs[0], shape, a.stream);
    } else if (a.inputs.size() == 2 && a.inputs[0]) {
      k::StemShape shape = shape_;
      shape.input = k::StemInput::kFloat32Nchw;
      k::stem_conv_pool(a.inputs[0], filter_, bias_, a.outputs[0], shape, a.stream);
    } else {
      k::stem_conv_pool(a.inputs.back(), filter_, bias_, a.outputs[0], shape_, a.stream);
    }
  }

 private:
  k::StemShape shape_;
  const void* filter_;
  const float* bias_;
};

class ConvMaxPoolRunner final : public LayerRunner {
 public:
  explicit ConvMaxPoolRunner(const LayerSetup& s) {
    const std::string& name = s.layer.name;
    const nlohmann::json& p = s.params;
    auto is = [&](const nlohmann::json& from, const char* key, int want) {
      return param<int>(from, key, name) == want;
    };
    const nlohmann::json& pool = param<nlohmann::json>(p, "pool", name);
    const std::string act = param<std::string>(p, "activation", name);
    const bool ok = s.fp16 && is(p, "c_pad", k::kStemInChannels) &&
                    is(p, "k_pad", k::kStemOutChannels) && is(p, "r", k::kStemKernel) &&
                    is(p, "s", k::kStemKernel) && is(p, "stride_h", 2) && is(p, "stride_w", 2) &&
                    is(p, "pad_top", 3) && is(p, "pad_left", 3) && is(p, "groups", 1) &&
                    !param<bool>(p, "has_residual", name) && (act == "relu" || act == "none") &&
                    is(pool, "kernel_h", 3) && is(pool, "stride_h", 2) && is(pool, "pad_top", 1) &&
                    s.layer.weights.size() == 2 &&
                    s.layer.weights[0].bytes == k::kStemOutChannels * k::kStemKernel *
                                                    k::kStemKernel * k::kStemInChannels * 2 &&
                    s.layer.weights[1].bytes == k::kStemOutChannels * 4;
    if (!ok)
      fail(ErrorKind::kInvalidArgument, "plan layer '", name,
           "': its params or weights are not those of the stem kernel (7x7 stride-2 FP16 conv, "
           "4 -> 64 channels, 3x3 stride-2 max pool): a corrupt plan");
    shape_.in_h = param<std::int64_t>(p, "in_h", name);
    shape_.in_w = param<std::int64_t>(p, "in_w", name);
    shape_.relu = act == "relu";
    const bool int8 = s.layer.kind == "conv_max_pool_int8";
    if (int8 != p.contains("out_scale"))
      fail(ErrorKind::kInvalidArgument, "plan layer '", name, "': a ", s.layer.kind, " layer ",
           int8 ? "needs" : "takes no", " out_scale param: a corrupt plan");
    if (int8) {
      shape_.int8_scale = param<float>(p, "out_scale", name);
      if (!std::isfinite(shape_.int8_scale) || !(shape_.int8_scale > 0.0f))
        fail(ErrorKind::kInvalidArgument, "plan layer '", name, "': out_scale ", shape_.int8_scale,
             " must be finite and > 0: a corrupt plan");
      shape_.int8_by_reciprocal = k::stem_int8_rounds_by_reciprocal(shape_.int8_scale);
    }
    check_tensors(s, int8 ? DType::kInt8 : DType::kFloat16);
    if (shape_.out_h() != param<std::int64_t>(pool, "out_h", name) ||
        shape_.out_w() != param<std::int64_t>(pool, "out_w", name))
      fail(ErrorKind::kInvalidArgument, "plan layer '", name,
           "': the pool's output size does not follow from the input's: a corrupt plan");
    reads_input_ = s.layer.inputs.size() == 2;
    filter_ = s.weights[0];
    bias_ = static_cast<const float*>(s.weights[1]);
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles&) const override {
    k::StemShape shape = shape_;
    shape.n = batch;
    return std::make_unique<PreparedConvMaxPool>(shape, filter_, bias_);
  }

  bool reads_images() const override { return reads_input_ && k::stem_reads_images(shape_); }

 private:
  // An FP16 input (or the FP32 NCHW RGB one and the FP16 one) and one
  // output of dtype `out` (INT8 for the _int8 kind): a mismatch would
  // overrun or misread the buffer.
  static void check_tensors(const LayerSetup& s, DType out) {
    const plan::LayerDesc& l = s.layer;
    if (l.inputs.empty() || l.inputs.size() > 2 || l.outputs.size() != 1)
      fail(ErrorKind::kInvalidArgument, "plan layer '", l.name, "': kind '", l.kind,
           "' takes one or two inputs and one output, not ", l.inputs.size(), " and ",
           l.outputs.size());
    auto tensor = [&](int id) -> const plan::TensorDesc& {
      if (id < 0 || static_cast<std::size_t>(id) >= s.plan.tensors.size())
        fail(ErrorKind::kInvalidArgument, "plan layer '", l.name, "': tensor id ", id,
             " is out of range: a corrupt plan");
      return s.plan.tensors[static_cast<std::size_t>(id)];
    };
    const DType got_in = tensor(l.inputs.back()).dtype, got_out = tensor(l.outputs[0]).dtype;
    if (got_in != DType::kFloat16 || got_out != out)
      fail(ErrorKind::kInvalidArgument, "plan layer '", l.name, "': kind '", l.kind, "' reads ",
           to_string(DType::kFloat16), " and writes ", to_string(out), ", but its tensors are ",
           to_string(got_in), " and ", to_string(got_out), ": a corrupt plan");
    if (l.inputs.size() == 2) {
      const plan::TensorDesc& rgb = tensor(l.inputs[0]);
      if (rgb.dtype != DType::kFloat32 || rgb.layout != "NCHW" || rgb.dims.size() != 4 ||
          rgb.dims[1] != 3)
        fail(ErrorKind::kInvalidArgument, "plan layer '", l.name, "': its input 0 '", rgb.name,
             "' must be an FP32 NCHW tensor of 3 channels: a corrupt plan");
    }
  }

  k::StemShape shape_;
  bool reads_input_ = false;  // the engine's FP32 NCHW input is its input 0
  const void* filter_ = nullptr;
  const float* bias_ = nullptr;
};

std::unique_ptr<LayerRunner> make_conv_max_pool(const LayerSetup& s) {
  return std::make_unique<ConvMaxPoolRunner>(s);
}

std::unique_ptr<LayerRunner> make_conv_max_pool_int8(const LayerSetup& s) {
  return std::make_unique<ConvMaxPoolRunner>(s);
}

}  // namespace

ANVIL_REGISTER_LAYER("conv_max_pool", make_conv_max_pool);
ANVIL_REGISTER_LAYER("conv_max_pool_int8", make_conv_max_pool_int8);

}  // namespace anvil::runtime
