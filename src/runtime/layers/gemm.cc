// "gemm": Y[N, n] = act(X[N, k] · W[n, k]^T + bias) through cuBLASLt; and
// "gemm_output", the same writing the graph's FP32 output itself.
#include "cuda/cublaslt_gemm.h"
#include "runtime/layer_runner.h"
#include "runtime/layers/layer_shapes.h"
#include "runtime/layers/layer_util.h"
#include "runtime/layers/tactic.h"

namespace anvil::runtime {

namespace {

// cuBLASLt algorithms may use up to this much workspace.
constexpr std::size_t kGemmWorkspaceLimit = std::size_t{32} << 20;

class PreparedGemm final : public PreparedLayer {
 public:
  PreparedGemm(cuda::Gemm gemm, const void* weights, const void* bias)
      : gemm_(std::move(gemm)), weights_(weights), bias_(bias) {}

  std::size_t workspace_bytes() const override { return gemm_.workspace_bytes(); }

  void enqueue(const LaunchArgs& a) const override {
    gemm_.execute(a.handles.cublaslt, a.stream, a.inputs[0], weights_, bias_, nullptr, a.outputs[0],
                  a.workspace, a.workspace_bytes);
  }

 private:
  cuda::Gemm gemm_;
  const void* weights_;
  const void* bias_;
};

class GemmRunner final : public LayerRunner {
 public:
  explicit GemmRunner(const LayerSetup& s) : identity_(tactic_identity(s.layer, s.profile)) {
    shape_ = gemm_layer_shape(s.params, s.layer.name, s.layer.kind, s.fp16, s.plan.options.tf32);
    const DType storage = s.fp16 ? DType::kFloat16 : DType::kFloat32;
    check_one_in_one_out(s, storage, cuda::half_output(shape_) ? storage : DType::kFloat32);
    weights_ = s.weights.at(0);
    if (shape_.has_bias) {
      const plan::WeightRef& ref = s.layer.weights.at(1);
      // In Y's type, as cuBLASLt wants it.
      bias_ = upload_bias(s.host_weights_blob() + ref.offset, shape_.n, cuda::half_output(shape_));
    }
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles& h) const override {
    cuda::GemmShape shape = shape_;
    shape.m = batch;
    cuda::Gemm gemm = choose_tactic<cuda::Gemm>(
        identity_,
        [&](const std::string& id) { return cuda::Gemm::from_identity(h.cublaslt, shape, id); },
        [&] { return cuda::Gemm::candidates(h.cublaslt, shape, kGemmWorkspaceLimit, 1).front(); });
    return std::make_unique<PreparedGemm>(std::move(gemm), weights_, bias_.data());
  }

 private:
  cuda::GemmShape shape_;
  std::optional<std::string> identity_;
  const void* weights_ = nullptr;
  cuda::DeviceBuffer bias_;
};

std::unique_ptr<LayerRunner> make_gemm(const LayerSetup& s) {
  return std::make_unique<GemmRunner>(s);
}

std::unique_ptr<LayerRunner> make_gemm_output(const LayerSetup& s) {
  return std::make_unique<GemmRunner>(s);
}

}  // namespace

ANVIL_REGISTER_LAYER("gemm", make_gemm);
ANVIL_REGISTER_LAYER("gemm_output", make_gemm_output);

}  // namespace anvil::runtime
