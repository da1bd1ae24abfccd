#include "reference/reference_runtime.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "ops/op.h"

namespace anvil::reference {

ReferenceRuntime::ReferenceRuntime(const ir::Graph& graph) : graph_(graph) {
  const auto& nodes = graph.nodes();
  std::unordered_map<const ir::Value*, std::size_t> last_reader;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    for (const ir::Value* in : nodes[i]->inputs)
      if (in) last_reader[in] = i;
  std::unordered_set<const ir::Value*> kept(graph.outputs.begin(), graph.outputs.end());
  release_after_.resize(nodes.size());
  for (const auto& [value, index] : last_reader)
    if (!value->is_constant() && !kept.count(value)) release_after_[index].push_back(value);
}

void ReferenceRuntime::check_inputs(const std::map<std::string, Tensor>& inputs) const {
  for (const auto& [name, tensor] : inputs) {
    const ir::Value* value = graph_.find_value(name);
    bool is_input = value && std::find(graph_.inputs.begin(), graph_.inputs.end(), value) !=
                                 graph_.inputs.end();
    if (!is_input) {
      std::string expected;
      for (const ir::Value* in : graph_.inputs)
        expected += (expected.empty() ? "" : ", ") + in->name;
      fail(ErrorKind::kInvalidArgument, "'", name,
           "' is not an input of the model; its inputs are: ", expected);
    }
  }
  for (const ir::Value* in : graph_.inputs) {
    auto it = inputs.find(in->name);
    if (it == inputs.end())
      fail(ErrorKind::kInvalidArgument, "input '", in->name, "' ", to_string(in->shape),
           " was not given");
    const Tensor& t = it->second;
    if (t.dtype() != in->dtype)
      fail(ErrorKind::kInvalidArgument, "input '", in->name, "' must be ", to_string(in->dtype),
           ", got ", to_string(t.dtype()));
    bool same = t.rank() == in->shape.rank();
    for (std::size_t d = 0; same && d < t.rank(); ++d)
      same = !in->shape[d].is_known() || in->shape[d].size == t.extents()[d];
    if (!same)
      fail(ErrorKind::kInvalidArgument, "input '", in->name, "' must have shape ",
           to_string(in->shape), ", got ", to_string(t.extents()));
  }
}

std::vector<Tensor> ReferenceRuntime::run(const std::map<std::string, Tensor>& inputs,
                                          const ValueObserver& observer) const {
  check_inputs(inputs);
  std::unordered_map<const ir::Value*, Tensor> live;
  for (const ir::Value* in : graph_.inputs)
    live[in] = inputs.at(in->name);
  auto lookup = [&](const ir::Value* v) -> const Tensor* {
    if (!v) return nullptr;
    if (v->is_constant()) return &*v->constant;
    auto it = live.find(v);
    ANVIL_CHECK(it != live.end());
    return &it->second;
  };

  const auto& nodes = graph_.nodes();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const ir::Node& node = *nodes[i];
    std::vector<const Tensor*> args;
    for (const ir::Value* in : node.inputs)
      args.push_back(lookup(in));
    std::vector<Tensor> outputs = ops::run_node(node, args);
    for (std::size_t o = 0; o < outputs.size(); ++o) {
      if (observer && node.outputs[o]) observer(*node.outputs[o], outputs[o]);
      live[node.outputs[o]] = std::move(outputs[o]);
    }
    for (const ir::Value* dead : release_after_[i])
      live.erase(dead);
  }

  std::vector<Tensor> results;
  for (const ir::Value* out : graph_.outputs)
    results.push_back(*lookup(out));
  return results;
}

}  // namespace anvil::reference
