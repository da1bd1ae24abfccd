#include "builder/spatial_dims.h"

#include "anvil/error.h"
#include "ops/infer_shapes.h"

namespace anvil::builder {

std::map<std::string, std::vector<std::size_t>> symbolic_dims(const ir::Graph& graph) {
  std::map<std::string, std::vector<std::size_t>> out;
  for (const ir::Value* input : graph.inputs)
    for (std::size_t d = 1; d < input->shape.rank(); ++d)
      if (!input->shape[d].is_known()) out[input->name].push_back(d);
  return out;
}

void fix_input_dims(ir::Graph& graph, const InputDims& dims) {
  for (const auto& [name, values] : dims) {
    ir::Value* input = nullptr;
    for (ir::Value* v : graph.inputs)
      if (v->name == name) input = v;
    if (!input) fail(ErrorKind::kInvalidArgument, "the model has no input '", name, "'");
    if (values.size() != input->shape.rank())
      fail(ErrorKind::kInvalidArgument, "input '", name, "' has rank ", input->shape.rank(),
           " in the model; got ", values.size(), " dims");
    for (std::size_t d = 1; d < values.size(); ++d)
      input->shape[d] = ir::Dim::known(values[d]);
  }
  ops::infer_shapes(graph);
}

}  // namespace anvil::builder
