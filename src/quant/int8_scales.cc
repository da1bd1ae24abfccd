#include "quant/int8_scales.h"

#include <algorithm>
#include <map>
#include <vector>

#include "ops/op.h"
#include "quant/calibrator.h"

namespace anvil::quant {
namespace {

// Union-find over the graph's value names.
class Groups {
 public:
  int id(const std::string& name) {
    const auto [it, added] = ids_.try_emplace(name, static_cast<int>(parent_.size()));
    if (added) parent_.push_back(it->second);
    return it->second;
  }
  int root(int i) {
    while (parent_[static_cast<std::size_t>(i)] != i)
      i = parent_[static_cast<std::size_t>(i)] =
          parent_[static_cast<std::size_t>(parent_[static_cast<std::size_t>(i)])];
    return i;
  }
  void join(const std::string& a, const std::string& b) {
    const int ra = root(id(a)), rb = root(id(b));
    parent_[static_cast<std::size_t>(std::max(ra, rb))] = std::min(ra, rb);
  }
  const std::map<std::string, int>& ids() const { return ids_; }

 private:
  std::map<std::string, int> ids_;
  std::vector<int> parent_;
};

bool is_onnx_add(const ir::Node& node) {
  return (node.domain.empty() || node.domain == "ai.onnx") && node.op_type == "Add";
}

}  // namespace

std::map<std::string, int> residual_groups(const ir::Graph& graph) {
  Groups groups;
  for (const ir::Value* v : graph.values())
    if (!v->is_constant()) groups.id(v->name);
  for (const auto& node : graph.nodes()) {
    if (node->outputs.empty()) continue;
    const std::string& out = node->outputs[0]->name;
    const bool fused_conv = node->domain == ops::kAnvilDomain && node->op_type == "FusedConv";
    if (fused_conv && node->input(3) && !node->input(3)->is_constant())
      groups.join(out, node->input(3)->name);
    if (is_onnx_add(*node))
      for (const ir::Value* in : node->inputs)
        if (in && !in->is_constant()) groups.join(out, in->name);
  }
  std::map<std::string, int> group_of;
  for (const auto& [name, id] : groups.ids())
    group_of[name] = groups.root(id);
  return group_of;
}

std::map<std::string, float> int8_activation_scales(const ir::Graph& graph,
                                                    const CalibrationTable& table) {
  const std::map<std::string, int> groups = residual_groups(graph);
  std::map<int, float> group_amax;
  for (const auto& [name, group] : groups)
    if (const auto it = table.amax.find(name); it != table.amax.end()) {
      float& amax = group_amax.try_emplace(group, 0.0f).first->second;
      amax = std::max(amax, it->second);
    }
  std::map<std::string, float> scales;
  for (const auto& [name, group] : groups)
    if (const auto it = group_amax.find(group); it != group_amax.end())
      scales[name] = int8_scale(it->second);
  return scales;
}

}  // namespace anvil::quant
