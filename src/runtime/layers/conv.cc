// "conv": y = act(conv(x, W) + bias [+ residual]), as a fused cuDNN
// convolution or, for a 1x1 stride-1 conv whose tactic is a cuBLASLt
// algorithm ("cublaslt:..."), as a cuBLASLt GEMM with a bias / ReLU /
// residual epilogue. Activations the library cannot fuse (cuDNN: HardSigmoid,
// HardSwish; cuBLASLt: all but ReLU) run as a second, in-place kernel.
#include "cuda/cublaslt_gemm.h"
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

// The activation left to the eltwise kernel, run in place on the output.
struct PostActivation {
  Activation act = Activation::kNone;
  cuda::kernels::ActivationParams params;
  cuda::kernels::StorageType type = cuda::kernels::StorageType::kFloat32;

  void enqueue(void* y, std::int64_t elements, cudaStream_t stream) const {
    if (act == Activation::kNone) return;
    cuda::kernels::add_activation(y, nullptr, y, elements, type, act, params, stream);
  }
};

class PreparedConv final : public PreparedLayer {
 public:
  PreparedConv(cuda::FusedConv conv, ConvWeights weights, PostActivation post)
      : conv_(std::move(conv)), weights_(weights), post_(post) {}

  std::size_t workspace_bytes() const override { return conv_.workspace_bytes(); }

  void bind(const LaunchArgs& a) override {
    const void* residual = a.inputs.size() > 1 ? a.inputs[1] : nullptr;
    binding_ = conv_.bind(a.inputs[0], weights_.filter, weights_.bias, residual, a.outputs[0],
                          a.workspace);
  }

  void enqueue(const LaunchArgs& a) const override {
    conv_.execute(a.handles.cudnn, a.stream, binding_);
    const cuda::ConvShape& s = conv_.shape();
    post_.enqueue(a.outputs[0], s.n * s.out_h() * s.out_w() * s.k, a.stream);
  }

 private:
  cuda::FusedConv conv_;
  cuda::FusedConv::Binding binding_;
  ConvWeights weights_;
  PostActivation post_;
};

// The conv as Y[N*H*W, k_pad] = X[N*H*W, c_pad] · W[k_pad, c_pad]^T: NHWC
// activations and the KRSC filter are already the GEMM's row-major matrices.
class PreparedConvGemm final : public PreparedLayer {
 public:
  PreparedConvGemm(cuda::Gemm gemm, ConvWeights weights, PostActivation post)
      : gemm_(std::move(gemm)), weights_(weights), post_(post) {}

  std::size_t workspace_bytes() const override { return gemm_.workspace_bytes(); }

  void enqueue(const LaunchArgs& a) const override {
    const void* residual = a.inputs.size() > 1 ? a.inputs[1] : nullptr;
    gemm_.execute(a.handles.cublaslt, a.stream, a.inputs[0], weights_.filter, weights_.bias,
                  residual, a.outputs[0], a.workspace, a.workspace_bytes);
    const cuda::GemmShape& s = gemm_.shape();
    post_.enqueue(a.outputs[0], s.m * s.n, a.stream);
  }

 private:
  cuda::Gemm gemm_;
  ConvWeights weights_;
  PostActivation post_;
};

class ConvRunner final : public LayerRunner {
 public:
  explicit ConvRunner(const LayerSetup& s) : identity_(tactic_identity(s.layer, s.profile)) {
    parsed_ = conv_layer_shape(s.params, s.layer.name, s.fp16, s.plan.options.tf32);
    type_ = storage_type(s.fp16);
    weights_.filter = s.weights.at(0);
    if (parsed_.shape.has_bias) {
      const plan::WeightRef& ref = s.layer.weights.at(1);
      bias_ = upload_bias(s.plan.weights.data() + ref.offset, parsed_.shape.k, s.fp16);
      weights_.bias = bias_.data();
    }
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles& h) const override {
    ConvLayerShape parsed = parsed_;
    parsed.shape.n = batch;
    return choose_tactic<std::unique_ptr<PreparedLayer>>(
        identity_, [&](const std::string& id) { return from_identity(parsed, id, h); },
        [&] { return cudnn_heuristic(parsed.shape, h); });
  }

 private:
  std::unique_ptr<PreparedLayer> from_identity(const ConvLayerShape& parsed,
                                               const std::string& identity,
                                               const Handles& h) const {
    if (const auto algo = cublaslt_algorithm(identity)) {
      const std::optional<ConvAsGemm> gemm = conv_as_gemm(parsed);
      if (!gemm)
        fail(ErrorKind::kIncompatible, "a cuBLASLt tactic for a conv that is not 1x1 stride 1");
      return std::make_unique<PreparedConvGemm>(
          cuda::Gemm::from_identity(h.cublaslt, gemm->gemm, *algo), weights_,
          PostActivation{gemm->post_activation, parsed.activation_params, type_});
    }
    return std::make_unique<PreparedConv>(
        cuda::FusedConv::from_identity(h.cudnn, parsed.shape, identity), weights_,
        PostActivation{parsed.post_activation, parsed.activation_params, type_});
  }

  std::unique_ptr<PreparedLayer> cudnn_heuristic(const cuda::ConvShape& shape,
                                                 const Handles& h) const {
    auto found = cuda::FusedConv::candidates(h.cudnn, shape, 1);
    if (found.empty())
      fail(ErrorKind::kUnsupported, "no cuDNN engine runs convolution layer at batch ", shape.n);
    return std::make_unique<PreparedConv>(
        std::move(found.front()), weights_,
        PostActivation{parsed_.post_activation, parsed_.activation_params, type_});
  }

  ConvLayerShape parsed_;
  cuda::kernels::StorageType type_;
  std::optional<std::string> identity_;
  ConvWeights weights_;
  cuda::DeviceBuffer bias_;
};

std::unique_ptr<LayerRunner> make_conv(const LayerSetup& s) {
  return std::make_unique<ConvRunner>(s);
}

}  // namespace

ANVIL_REGISTER_LAYER("conv", make_conv);

}  // namespace anvil::runtime
