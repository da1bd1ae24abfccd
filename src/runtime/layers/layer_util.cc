#include "runtime/layers/layer_util.h"

#include <vector>

#include "builder/weights.h"
#include "cuda/check.h"

namespace anvil::runtime {

cuda::kernels::Activation activation_of(const std::string& name, const std::string& layer) {
  using cuda::kernels::Activation;
  if (name == "none") return Activation::kNone;
  if (name == "relu") return Activation::kRelu;
  if (name == "clip") return Activation::kClip;
  if (name == "leaky_relu") return Activation::kLeakyRelu;
  if (name == "sigmoid") return Activation::kSigmoid;
  if (name == "hard_sigmoid") return Activation::kHardSigmoid;
  if (name == "hard_swish") return Activation::kHardSwish;
  fail(ErrorKind::kInvalidArgument, "plan layer '", layer, "': unknown activation '", name, "'");
}

cuda::kernels::ActivationParams activation_params(const nlohmann::json& params,
                                                  const std::string& layer) {
  cuda::kernels::ActivationParams p;
  p.alpha = param<float>(params, "alpha", layer);
  p.beta = param<float>(params, "beta", layer);
  p.clip_min = param<float>(params, "clip_min", layer);
  p.clip_max = param<float>(params, "clip_max", layer);
  return p;
}

cuda::DeviceBuffer upload_bias(const void* host_fp32, std::int64_t count, bool fp16) {
  const auto* values = static_cast<const float*>(host_fp32);
  cuda::DeviceBuffer buffer(static_cast<std::size_t>(count) * (fp16 ? 2 : 4));
  if (!fp16) {
    cuda::copy_to_device(buffer.data(), values, buffer.bytes());
    return buffer;
  }
  std::vector<std::uint16_t> halves(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i)
    halves[static_cast<std::size_t>(i)] = builder::float_to_half(values[i]);
  cuda::copy_to_device(buffer.data(), halves.data(), buffer.bytes());
  return buffer;
}

void check_one_in_one_out(const LayerSetup& s, DType in, DType out) {
  const plan::LayerDesc& l = s.layer;
  if (l.inputs.size() != 1 || l.outputs.size() != 1)
    fail(ErrorKind::kInvalidArgument, "plan layer '", l.name, "': kind '", l.kind,
         "' takes one input and one output, not ", l.inputs.size(), " and ", l.outputs.size());
  const DType got_in = s.plan.tensors.at(static_cast<std::size_t>(l.inputs[0])).dtype;
  const DType got_out = s.plan.tensors.at(static_cast<std::size_t>(l.outputs[0])).dtype;
  if (got_in != in || got_out != out)
    fail(ErrorKind::kInvalidArgument, "plan layer '", l.name, "': kind '", l.kind, "' reads ",
         to_string(in), " and writes ", to_string(out), ", but its tensors are ", to_string(got_in),
         " and ", to_string(got_out), ": a corrupt plan");
}

}  // namespace anvil::runtime
