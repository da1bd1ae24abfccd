// Small pieces shared by the layer runners.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "anvil/error.h"
#include "cuda/handles.h"
#include "cuda/kernels/activation.h"
#include "cuda/kernels/storage.h"
#include "runtime/layer_runner.h"

namespace anvil::runtime {

inline cuda::kernels::StorageType storage_type(bool fp16) {
  return fp16 ? cuda::kernels::StorageType::kFloat16 : cuda::kernels::StorageType::kFloat32;
}

// A parameter of a layer; a missing or mistyped one is a corrupt plan.
template <typename T>
T param(const nlohmann::json& params, const char* key, const std::string& layer) {
  auto it = params.find(key);
  if (it == params.end())
    fail(ErrorKind::kInvalidArgument, "plan layer '", layer, "': parameter '", key, "' is missing");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail(ErrorKind::kInvalidArgument, "plan layer '", layer, "': parameter '", key,
         "' has the wrong type");
  }
}

cuda::kernels::Activation activation_of(const std::string& name, const std::string& layer);
cuda::kernels::ActivationParams activation_params(const nlohmann::json& params,
                                                  const std::string& layer);

// kInvalidArgument, naming the layer, unless it has one input of dtype `in`
// and one output of dtype `out`: a layer that converts or reads a dtype
// other than the plan's storage checks this, as a corrupt plan's mismatch
// would make it overrun or misread a buffer.
void check_one_in_one_out(const LayerSetup& s, DType in, DType out);

// A device copy of `count` FP32 values (from the plan's weights on the host),
// converted to the storage type: biases are FP32 in the plan, and cuDNN and
// cuBLASLt want them in the type of the output.
cuda::DeviceBuffer upload_bias(const void* host_fp32, std::int64_t count, bool fp16);

}  // namespace anvil::runtime
