// Conversion of ONNX TensorProto messages (initializers, Constant values,
// test data files) into host tensors.
#pragma once

#include <filesystem>
#include <string>

#include "anvil/types.h"
#include "core/tensor.h"

namespace anvil::onnx {

class TensorProto;

// The Anvil dtype of an ONNX TensorProto.DataType code; kUndefined when Anvil
// does not handle that type.
DType dtype_from_onnx(int onnx_type);

// Decodes `proto`'s data (raw_data, typed fields or external data resolved
// against `model_dir`). `what` names the tensor in errors ("initializer 'w'").
// External data paths must stay inside `model_dir`.
Tensor to_tensor(const TensorProto& proto, const std::filesystem::path& model_dir,
                 const std::string& what);

// Reads a file holding one serialized TensorProto (ONNX test data layout:
// test_data_set_0/input_0.pb). Returns the tensor and sets `name` if given.
Tensor read_tensor_file(const std::filesystem::path& path, std::string* name = nullptr);

// Reads a whole file; an Error naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace anvil::onnx
