// "eltwise": y = act(a + b), or act(a), over tensors of one shape.
#include "runtime/layer_runner.h"
#include "runtime/layers/layer_util.h"

namespace anvil::runtime {

namespace {

class PreparedEltwise final : public PreparedLayer {
 public:
  PreparedEltwise(std::int64_t elements, cuda::kernels::Activation act,
                  cuda::kernels::ActivationParams params, cuda::kernels::StorageType type)
      : elements_(elements), act_(act), params_(params), type_(type) {}

  void enqueue(const LaunchArgs& a) const override {
    const void* b = a.inputs.size() > 1 ? a.inputs[1] : nullptr;
    cuda::kernels::add_activation(a.inputs[0], b, a.outputs[0], elements_, type_, act_, params_,
                                  a.stream);
  }

 private:
  std::int64_t elements_;
  cuda::kernels::Activation act_;
  cuda::kernels::ActivationParams params_;
  cuda::kernels::StorageType type_;
};

class EltwiseRunner final : public LayerRunner {
 public:
  explicit EltwiseRunner(const LayerSetup& s)
      : act_(activation_of(param<std::string>(s.params, "activation", s.layer.name), s.layer.name)),
        params_(activation_params(s.params, s.layer.name)),
        type_(storage_type(s.fp16)) {
    // Elements per sample of the output, padded channels included.
    const plan::TensorDesc& out =
        s.plan.tensors.at(static_cast<std::size_t>(s.layer.outputs.at(0)));
    per_sample_ = 1;
    for (std::size_t d = 1; d < out.dims.size(); ++d)
      per_sample_ *= out.dims[d];
    if (out.channel_padding_to && out.dims.size() >= 2) {
      const std::size_t channel_axis = out.layout == "NCHW" ? 1 : out.dims.size() - 1;
      per_sample_ = per_sample_ / out.dims[channel_axis] * *out.channel_padding_to;
    }
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles&) const override {
    return std::make_unique<PreparedEltwise>(batch * per_sample_, act_, params_, type_);
  }

 private:
  cuda::kernels::Activation act_;
  cuda::kernels::ActivationParams params_;
  cuda::kernels::StorageType type_;
  std::int64_t per_sample_ = 0;
};

std::unique_ptr<LayerRunner> make_eltwise(const LayerSetup& s) {
  return std::make_unique<EltwiseRunner>(s);
}

}  // namespace

ANVIL_REGISTER_LAYER("eltwise", make_eltwise);

}  // namespace anvil::runtime
