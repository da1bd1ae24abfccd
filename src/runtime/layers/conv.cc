// "conv": a fused cuDNN convolution y = act(conv(x, W) + bias [+ residual]).
// Activations cuDNN has no pointwise mode for (HardSigmoid, HardSwish) run
// as a second, in-place kernel.
#include "cuda/cudnn_conv.h"
#include "runtime/layer_runner.h"
#include "runtime/layers/layer_shapes.h"
#include "runtime/layers/layer_util.h"
#include "runtime/layers/tactic.h"

namespace anvil::runtime {

namespace {

using cuda::kernels::Activation;

struct ConvWeights {
  const void* filter = nullptr;
  const void* bias = nullptr;
};

class PreparedConv final : public PreparedLayer {
 public:
  PreparedConv(cuda::FusedConv conv, ConvWeights weights, Activation post_act,
               cuda::kernels::ActivationParams post_params, cuda::kernels::StorageType type)
      : conv_(std::move(conv)),
        weights_(weights),
        post_act_(post_act),
        post_params_(post_params),
        type_(type) {}

  std::size_t workspace_bytes() const override { return conv_.workspace_bytes(); }

  void bind(const LaunchArgs& a) override {
    const void* residual = a.inputs.size() > 1 ? a.inputs[1] : nullptr;
    binding_ = conv_.bind(a.inputs[0], weights_.filter, weights_.bias, residual, a.outputs[0],
                          a.workspace);
  }

  void enqueue(const LaunchArgs& a) const override {
    conv_.execute(a.handles.cudnn, a.stream, binding_);
    if (post_act_ == Activation::kNone) return;
    const cuda::ConvShape& s = conv_.shape();
    cuda::kernels::add_activation(a.outputs[0], nullptr, a.outputs[0],
                                  s.n * s.out_h() * s.out_w() * s.k, type_, post_act_, post_params_,
                                  a.stream);
  }

 private:
  cuda::FusedConv conv_;
  cuda::FusedConv::Binding binding_;
  ConvWeights weights_;
  Activation post_act_;
  cuda::kernels::ActivationParams post_params_;
  cuda::kernels::StorageType type_;
};

class ConvRunner final : public LayerRunner {
 public:
  explicit ConvRunner(const LayerSetup& s)
      : type_(storage_type(s.fp16)), identity_(tactic_identity(s.layer)) {
    ConvLayerShape parsed = conv_layer_shape(s.params, s.layer.name, s.fp16, s.plan.options.tf32);
    shape_ = parsed.shape;
    post_act_ = parsed.post_activation;
    act_params_ = parsed.activation_params;

    weights_.filter = s.weights.at(0);
    if (shape_.has_bias) {
      const plan::WeightRef& ref = s.layer.weights.at(1);
      bias_ = upload_bias(s.plan.weights.data() + ref.offset, shape_.k, s.fp16);
      weights_.bias = bias_.data();
    }
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles& h) const override {
    cuda::ConvShape shape = shape_;
    shape.n = batch;
    cuda::FusedConv conv = choose_tactic<cuda::FusedConv>(
        identity_,
        [&](const std::string& id) { return cuda::FusedConv::from_identity(h.cudnn, shape, id); },
        [&] {
          auto found = cuda::FusedConv::candidates(h.cudnn, shape, 1);
          if (found.empty())
            fail(ErrorKind::kUnsupported, "no cuDNN engine runs convolution layer at batch ",
                 batch);
          return std::move(found.front());
        });
    return std::make_unique<PreparedConv>(std::move(conv), weights_, post_act_, act_params_, type_);
  }

 private:
  cuda::ConvShape shape_;
  cuda::kernels::StorageType type_;
  std::optional<std::string> identity_;
  Activation post_act_ = Activation::kNone;
  cuda::kernels::ActivationParams act_params_;
  ConvWeights weights_;
  cuda::DeviceBuffer bias_;
};

std::unique_ptr<LayerRunner> make_conv(const LayerSetup& s) {
  return std::make_unique<ConvRunner>(s);
}

}  // namespace

ANVIL_REGISTER_LAYER("conv", make_conv);

}  // namespace anvil::runtime
