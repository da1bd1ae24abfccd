#include "ops/cost.h"

#include <unordered_map>

#include "ops/op.h"

namespace anvil::ops {

GraphCost estimate_cost(const ir::Graph& graph,
                        const std::map<std::string, std::int64_t>& symbols) {
  std::unordered_map<const ir::Value*, TensorInfo> infos;
  for (const ir::Value* in : graph.inputs) {
    ir::Shape shape = in->shape;
    for (ir::Dim& d : shape.dims()) {
      if (d.is_known()) continue;
      auto it = symbols.find(d.symbol);
      if (it == symbols.end())
        fail(ErrorKind::kInvalidArgument, "input '", in->name, "' ", to_string(in->shape),
             ": give a size for dimension '", to_string(d), "'");
      d = ir::Dim::known(it->second);
    }
    infos[in] = TensorInfo{in->dtype, shape};
  }
  GraphCost cost;
  for (const auto& node : graph.nodes()) {
    std::vector<TensorInfo> in_infos;
    std::vector<const Tensor*> constants;
    for (const ir::Value* in : node->inputs) {
      constants.push_back(in && in->is_constant() ? &*in->constant : nullptr);
      if (!in)
        in_infos.emplace_back();
      else if (in->is_constant())
        in_infos.push_back({in->dtype, in->shape});
      else
        in_infos.push_back(infos.at(in));
    }
    InferContext ctx(*node, in_infos, constants);
    const OpEntry* entry = find_op(*node);
    std::vector<TensorInfo> outs = infer_node(*node, in_infos, constants);
    for (std::size_t i = 0; i < outs.size(); ++i) {
      infos[node->outputs[i]] = outs[i];
      ctx.set_output(i, outs[i].dtype, outs[i].shape);
    }
    const std::int64_t macs = entry->op->macs(ctx);
    cost.macs += macs;
    if (macs) cost.macs_by_op[node->op_type] += macs;
  }
  return cost;
}

}  // namespace anvil::ops
