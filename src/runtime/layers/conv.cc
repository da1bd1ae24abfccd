// "conv": y = act(conv(x, W) + bias [+ residual]), as a fused cuDNN
// convolution or, for a 1x1 stride-1 conv whose tactic is a cuBLASLt
// algorithm ("cublaslt:..."), as a cuBLASLt GEMM with a bias / ReLU /
// residual epilogue. Activations the library cannot fuse (cuDNN: HardSigmoid,
// HardSwish; cuBLASLt: all but ReLU) run as a second, in-place kernel. An
// "unfused:..." tactic runs cuDNN's convolution alone and the whole epilogue
// as one kernel of ours (FP32 graphs whose fused form cuDNN only runs in TF32).
#include <atomic>
#include <cstdio>

#include "cuda/cublaslt_gemm.h"
#include "cuda/cudnn_conv.h"
#include "cuda/kernels/conv_epilogue.h"
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

// cuDNN's convolution alone, then y = act(y + bias[k] + residual) in place.
class PreparedUnfusedConv final : public PreparedLayer {
 public:
  PreparedUnfusedConv(cuda::FusedConv conv, ConvWeights weights, PostActivation epilogue)
      : conv_(std::move(conv)), weights_(weights), epilogue_(epilogue) {}

  std::size_t workspace_bytes() const override { return conv_.workspace_bytes(); }

  void bind(const LaunchArgs& a) override {
    binding_ =
        conv_.bind(a.inputs[0], weights_.filter, nullptr, nullptr, a.outputs[0], a.workspace);
  }

  void enqueue(const LaunchArgs& a) const override {
    conv_.execute(a.handles.cudnn, a.stream, binding_);
    const cuda::ConvShape& s = conv_.shape();
    const void* residual = a.inputs.size() > 1 ? a.inputs[1] : nullptr;
    cuda::kernels::conv_epilogue(a.outputs[0], weights_.bias, residual,
                                 s.n * s.out_h() * s.out_w() * s.k, s.k, epilogue_.type,
                                 epilogue_.act, epilogue_.params, a.stream);
  }

 private:
  cuda::FusedConv conv_;  // the conv-only graph
  cuda::FusedConv::Binding binding_;
  ConvWeights weights_;
  PostActivation epilogue_;  // the layer's whole activation
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
  explicit ConvRunner(const LayerSetup& s)
      : identity_(tactic_identity(s.layer, s.profile)), name_(s.layer.name) {
    parsed_ = conv_layer_shape(s.params, s.layer.name, s.fp16, s.plan.options.tf32);
    type_ = storage_type(s.fp16);
    weights_.filter = s.weights.at(0);
    if (parsed_.shape.has_bias) {
      const plan::WeightRef& ref = s.layer.weights.at(1);
      bias_ = upload_bias(s.host_weights_blob() + ref.offset, parsed_.shape.k, s.fp16);
      weights_.bias = bias_.data();
    }
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles& h) const override {
    ConvLayerShape parsed = parsed_;
    parsed.shape.n = batch;
    return choose_tactic<std::unique_ptr<PreparedLayer>>(
        identity_,
        [&](const std::string& id) {
          try {
            return from_identity(parsed, id, h);
          } catch (const Error& e) {
            note_fallback(parsed.shape, e);
            throw;
          }
        },
        [&] { return cudnn_heuristic(parsed, h); });
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
    if (const auto engine = unfused_conv_engine(identity))
      return unfused(cuda::FusedConv::from_identity(h.cudnn, unfused_conv(parsed).conv, *engine),
                     parsed);
    return std::make_unique<PreparedConv>(
        cuda::FusedConv::from_identity(h.cudnn, parsed.shape, identity), weights_,
        PostActivation{parsed.post_activation, parsed.activation_params, type_});
  }

  std::unique_ptr<PreparedLayer> unfused(cuda::FusedConv conv, const ConvLayerShape& parsed) const {
    return std::make_unique<PreparedUnfusedConv>(
        std::move(conv), weights_,
        PostActivation{unfused_conv(parsed).act, parsed.activation_params, type_});
  }

  // The heuristics' first fused engine config, else (no engine with the
  // layer's numerics for the fused graph) the first for the conv alone.
  std::unique_ptr<PreparedLayer> cudnn_heuristic(const ConvLayerShape& parsed,
                                                 const Handles& h) const {
    std::vector<cuda::FusedConv> found;
    try {
      found = cuda::FusedConv::candidates(h.cudnn, parsed.shape, 1);
    } catch (const Error& e) {
      // cuDNN cannot build the fused graph at all: the conv alone may still run.
      if (e.kind() != ErrorKind::kUnsupported) throw;
    }
    if (!found.empty())
      return std::make_unique<PreparedConv>(
          std::move(found.front()), weights_,
          PostActivation{parsed.post_activation, parsed.activation_params, type_});
    found = cuda::FusedConv::candidates(h.cudnn, unfused_conv(parsed).conv, 1);
    if (found.empty())
      fail(ErrorKind::kUnsupported, "no cuDNN engine runs convolution layer at batch ",
           parsed.shape.n, ", fused or not",
           parsed.shape.fp16 || parsed.shape.allow_tf32
               ? std::string()
               : " (without TF32: try building with TF32)");
    return unfused(std::move(found.front()), parsed);
  }

  // A tactic tuned at the profile's opt shape may not run at another batch,
  // height or width: the heuristics then take over, which the user hears
  // once per runner (one per profile and geometry), as it may cost speed.
  void note_fallback(const cuda::ConvShape& shape, const Error& e) const {
    if (e.kind() != ErrorKind::kIncompatible && e.kind() != ErrorKind::kUnsupported) return;
    if (warned_.exchange(true)) return;
    std::fprintf(stderr,
                 "anvil: layer '%s': its tuned tactic does not run at batch %lld, input %lldx%lld "
                 "(%s); using cuDNN's heuristics there\n",
                 name_.c_str(), static_cast<long long>(shape.n), static_cast<long long>(shape.h),
                 static_cast<long long>(shape.w), e.what());
  }

  ConvLayerShape parsed_;
  cuda::kernels::StorageType type_;
  std::optional<std::string> identity_;
  std::string name_;
  mutable std::atomic<bool> warned_{false};
  ConvWeights weights_;
  cuda::DeviceBuffer bias_;
};

std::unique_ptr<LayerRunner> make_conv(const LayerSetup& s) {
  return std::make_unique<ConvRunner>(s);
}

}  // namespace

ANVIL_REGISTER_LAYER("conv", make_conv);

}  // namespace anvil::runtime
