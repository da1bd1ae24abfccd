// "reformat_in" and "reformat_out": the user's NCHW / NC FP32 tensors to the
// engine's NHWC / NC storage with padded channels, and back.
#include "cuda/kernels/reformat.h"

#include "runtime/layer_runner.h"
#include "runtime/layers/layer_util.h"

namespace anvil::runtime {

namespace {

struct ReformatParams {
  cuda::kernels::ImageShape shape;
  bool nc = false;  // rank-2 tensors
  cuda::kernels::StorageType type;
};

class PreparedReformat final : public PreparedLayer {
 public:
  PreparedReformat(ReformatParams p, bool to_engine) : p_(p), to_engine_(to_engine) {}

  void enqueue(const LaunchArgs& a) const override {
    using namespace cuda::kernels;
    if (to_engine_) {
      nchw_to_nhwc(static_cast<const float*>(a.inputs[0]), a.outputs[0], p_.type, p_.shape,
                   a.stream);
    } else if (p_.nc) {
      unpad_rows(a.inputs[0], p_.type, static_cast<float*>(a.outputs[0]), p_.shape.n, p_.shape.c,
                 p_.shape.c_pad, a.stream);
    } else {
      nhwc_to_nchw(a.inputs[0], p_.type, static_cast<float*>(a.outputs[0]), p_.shape, a.stream);
    }
  }

 private:
  ReformatParams p_;
  bool to_engine_;
};

class ReformatRunner final : public LayerRunner {
 public:
  ReformatRunner(const LayerSetup& s, bool to_engine) : to_engine_(to_engine) {
    const std::string& name = s.layer.name;
    p_.shape.c = param<std::int64_t>(s.params, "c", name);
    p_.shape.c_pad = param<std::int64_t>(s.params, "c_pad", name);
    p_.shape.h = param<std::int64_t>(s.params, "h", name);
    p_.shape.w = param<std::int64_t>(s.params, "w", name);
    p_.nc = param<std::string>(s.params, "layout", name) == "NC";
    p_.type = storage_type(s.fp16);
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles&) const override {
    ReformatParams p = p_;
    p.shape.n = batch;
    return std::make_unique<PreparedReformat>(p, to_engine_);
  }

 private:
  ReformatParams p_;
  bool to_engine_;
};

std::unique_ptr<LayerRunner> make_reformat_in(const LayerSetup& s) {
  return std::make_unique<ReformatRunner>(s, true);
}
std::unique_ptr<LayerRunner> make_reformat_out(const LayerSetup& s) {
  return std::make_unique<ReformatRunner>(s, false);
}

}  // namespace

ANVIL_REGISTER_LAYER("reformat_in", make_reformat_in);
ANVIL_REGISTER_LAYER("reformat_out", make_reformat_out);

}  // namespace anvil::runtime
