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

}  // namespace anvil::runtime
