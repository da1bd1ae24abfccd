#include "passes/graph_edit.h"

#include <algorithm>

#include "ops/op.h"

namespace anvil::passes {

bool is_graph_output(const ir::Graph& graph, const ir::Value* value) {
  return std::find(graph.outputs.begin(), graph.outputs.end(), value) != graph.outputs.end();
}

bool is_graph_input(const ir::Graph& graph, const ir::Value* value) {
  return std::find(graph.inputs.begin(), graph.inputs.end(), value) != graph.inputs.end();
}

std::size_t reader_count(const ir::Graph& graph, const ir::Value* value) {
  auto count =
      static_cast<std::size_t>(std::count(graph.outputs.begin(), graph.outputs.end(), value));
  for (const auto& node : graph.nodes())
    count += static_cast<std::size_t>(std::count(node->inputs.begin(), node->inputs.end(), value));
  return count;
}

ir::Node* sole_reader(const ir::Graph& graph, const ir::Value* value) {
  if (reader_count(graph, value) != 1 || is_graph_output(graph, value)) return nullptr;
  std::vector<ir::Node*> readers = graph.consumers(value);
  return readers.size() == 1 ? readers[0] : nullptr;
}

bool is_onnx_op(const ir::Node& node, std::string_view op_type) {
  return node.op_type == op_type && (node.domain.empty() || node.domain == "ai.onnx");
}

std::optional<float> constant_scalar(const ir::Value* value) {
  if (!value || !value->is_constant() || value->dtype != DType::kFloat32 ||
      value->constant->element_count() != 1)
    return std::nullopt;
  return value->constant->data<float>()[0];
}

void fold_to_constants(ir::Node& node) {
  std::vector<const Tensor*> inputs;
  for (const ir::Value* in : node.inputs)
    inputs.push_back(in ? &*in->constant : nullptr);
  std::vector<Tensor> values = ops::run_node(node, inputs);
  for (std::size_t i = 0; i < values.size(); ++i) {
    ir::Value* out = node.outputs[i];
    out->dtype = values[i].dtype();
    out->shape = ir::Shape::of(values[i].extents());
    out->constant = std::move(values[i]);
    out->producer = nullptr;
  }
}

void detach(ir::Node& node) {
  node.inputs.clear();
  node.outputs.clear();
}

void set_output(ir::Node& node, std::size_t slot, ir::Value* value) {
  node.outputs[slot] = value;
  value->producer = &node;
}

namespace {

void infer_outputs(ir::Node& node) {
  std::vector<ops::TensorInfo> infos;
  std::vector<const Tensor*> constants;
  for (const ir::Value* in : node.inputs) {
    infos.push_back(in ? ops::TensorInfo{in->dtype, in->shape} : ops::TensorInfo{});
    constants.push_back(in && in->is_constant() ? &*in->constant : nullptr);
  }
  std::vector<ops::TensorInfo> outs = ops::infer_node(node, std::move(infos), std::move(constants));
  for (std::size_t i = 0; i < outs.size(); ++i) {
    node.outputs[i]->dtype = outs[i].dtype;
    node.outputs[i]->shape = std::move(outs[i].shape);
  }
}

}  // namespace

void refresh(ir::Graph& graph) {
  graph.sort_topologically();
  graph.remove_dead_nodes();
  for (const auto& node : graph.nodes())
    infer_outputs(*node);
}

}  // namespace anvil::passes
