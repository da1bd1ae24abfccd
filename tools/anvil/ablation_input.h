// The model input `anvil bench --ablation` feeds (header-only, so that the
// unit tests read it without the CUDA-only bench): read from the ONNX file,
// so any set of configs can run (config 10 alone builds no FP16 engine to
// ask for its input).
#pragma once

#include <cstdint>
#include <string>

#include "anvil/error.h"
#include "ir/graph.h"
#include "onnx/importer.h"

namespace anvil::cli {

struct AblationInput {
  std::string name;
  std::int64_t channels = 0, height = 0, width = 0;
};

// The model's one input, [N, C, H, W] with C, H and W known; kUnsupported
// naming the model otherwise (the importer's own errors for a bad file).
inline AblationInput ablation_input(const std::string& model) {
  const ir::Graph graph = onnx::import_model(model);
  if (graph.inputs.size() != 1)
    fail(ErrorKind::kUnsupported, model, ": anvil bench --ablation needs a model with one input, ",
         "it has ", graph.inputs.size());
  const ir::Value& input = *graph.inputs[0];
  const ir::Shape& shape = input.shape;
  if (shape.rank() != 4 || !shape[1].is_known() || !shape[2].is_known() || !shape[3].is_known())
    fail(ErrorKind::kUnsupported, model, ": anvil bench --ablation needs an input [N,C,H,W] with ",
         "C, H and W known; '", input.name, "' is ", ir::to_string(shape));
  return {input.name, shape[1].size, shape[2].size, shape[3].size};
}

}  // namespace anvil::cli
