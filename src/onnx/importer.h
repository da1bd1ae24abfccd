// ONNX import: a model file (or its bytes) becomes an IR graph, checked,
// sorted, shape-inferred and with its shape subgraphs folded to constants.
#pragma once

#include <filesystem>
#include <string_view>

#include "ir/graph.h"

namespace anvil::onnx {

// The default-domain opsets Anvil imports.
inline constexpr int kMinOpset = 11;
inline constexpr int kMaxOpset = 21;

// Imports the model at `path`. External data files are resolved next to it.
// Every problem (unreadable, corrupt or truncated file, unsupported opset or
// ops, dangling tensors, cycles, inconsistent initializers or types) is one
// anvil::Error whose message starts with the path.
ir::Graph import_model(const std::filesystem::path& path);

// Imports a model from memory; `label` names it in errors and `model_dir`
// resolves external data.
ir::Graph import_model_bytes(std::string_view bytes, const std::filesystem::path& model_dir,
                             std::string_view label);

}  // namespace anvil::onnx
