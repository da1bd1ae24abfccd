#include "ops/infer_shapes.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "ops/op.h"

namespace anvil::ops {

namespace {

// The contents of a small integer tensor whose entries may be symbolic
// dimensions, e.g. Shape(x) for x of shape [N,512,1,1] is {N,512,1,1}.
struct ShapeValue {
  std::vector<ir::Dim> dims;
  bool scalar = false;
};

class ShapeFolder {
 public:
  explicit ShapeFolder(ir::Graph& graph) : graph_(graph) {}

  void run() {
    for (const auto& node : graph_.nodes()) visit(*node);
    std::vector<const ir::Node*> folded;
    for (const auto& node : graph_.nodes()) {
      bool all_constant = std::all_of(node->outputs.begin(), node->outputs.end(),
                                      [](const ir::Value* v) { return v->is_constant(); });
      if (all_constant) folded.push_back(node.get());
    }
    for (const ir::Node* node : folded)
      for (ir::Value* out : node->outputs) out->producer = nullptr;
    graph_.remove_dead_nodes();
  }

 private:
  void visit(ir::Node& node) {
    if (node.op_type == "Reshape") resolve_reshape_target(node);
    std::vector<TensorInfo> infos;
    std::vector<const Tensor*> constants;
    for (const ir::Value* in : node.inputs) {
      infos.push_back(in ? TensorInfo{in->dtype, in->shape} : TensorInfo{});
      constants.push_back(in && in->is_constant() ? &*in->constant : nullptr);
    }
    std::vector<TensorInfo> outs = infer_node(node, infos, constants);
    for (std::size_t i = 0; i < outs.size(); ++i) {
      node.outputs[i]->dtype = outs[i].dtype;
      node.outputs[i]->shape = outs[i].shape;
    }
    if (is_foldable(node, constants, outs)) {
      std::vector<Tensor> values = run_node(node, constants);
      for (std::size_t i = 0; i < values.size(); ++i) node.outputs[i]->constant = std::move(values[i]);
      return;
    }
    if (auto value = shape_value_of(node)) record(node.outputs[0], std::move(*value));
  }

  static bool is_foldable(const ir::Node& node, const std::vector<const Tensor*>& constants,
                          const std::vector<TensorInfo>& outs) {
    if (node.inputs.empty()) return true;  // Constant
    for (std::size_t i = 0; i < node.inputs.size(); ++i)
      if (node.inputs[i] && !constants[i]) return false;
    return std::all_of(outs.begin(), outs.end(), [](const TensorInfo& t) {
      return t.dtype == DType::kInt64 || t.dtype == DType::kInt32;
    });
  }

  // Records `value` for `v`, or turns `v` into a constant when fully known.
  void record(ir::Value* v, ShapeValue value) {
    bool known = std::all_of(value.dims.begin(), value.dims.end(),
                             [](const ir::Dim& d) { return d.is_known(); });
    if (!known) {
      symbolic_[v] = std::move(value);
      return;
    }
    std::vector<std::int64_t> sizes;
    for (const ir::Dim& d : value.dims) sizes.push_back(d.size);
    Extents extents = value.scalar ? Extents{} : Extents{static_cast<std::int64_t>(sizes.size())};
    v->constant = Tensor::from<std::int64_t>(extents, sizes);
  }

  std::optional<ShapeValue> lookup(const ir::Value* v) const {
    if (!v) return std::nullopt;
    if (auto it = symbolic_.find(v); it != symbolic_.end()) return it->second;
    if (v->is_constant() && v->constant->rank() <= 1 &&
        (v->dtype == DType::kInt64 || v->dtype == DType::kInt32)) {
      ShapeValue value{{}, v->constant->rank() == 0};
      for (std::int64_t x : v->constant->to_int64s()) value.dims.push_back(ir::Dim::known(x));
      return value;
    }
    return std::nullopt;
  }

  static std::optional<std::int64_t> constant_int(const ir::Value* v) {
    if (!v || !v->is_constant() || v->constant->element_count() != 1) return std::nullopt;
    if (v->dtype != DType::kInt64 && v->dtype != DType::kInt32) return std::nullopt;
    return v->constant->to_int64s()[0];
  }

  static std::optional<std::vector<std::int64_t>> constant_ints(const ir::Value* v) {
    if (!v || !v->is_constant()) return std::nullopt;
    if (v->dtype != DType::kInt64 && v->dtype != DType::kInt32) return std::nullopt;
    return v->constant->to_int64s();
  }

  // The symbolic value of node's first output, for the ops of shape subgraphs.
  std::optional<ShapeValue> shape_value_of(const ir::Node& node) const {
    const std::string& op = node.op_type;
    if (op == "Shape") return shape_of(node);
    if (op == "Gather") return gather(node);
    if (op == "Unsqueeze" || op == "Squeeze") {
      auto in = lookup(node.input(0));
      if (!in || node.outputs[0]->shape.rank() > 1) return std::nullopt;
      in->scalar = node.outputs[0]->shape.rank() == 0;
      return in;
    }
    if (op == "Concat") {
      ShapeValue out;
      for (const ir::Value* in : node.inputs) {
        auto part = lookup(in);
        if (!part) return std::nullopt;
        out.dims.insert(out.dims.end(), part->dims.begin(), part->dims.end());
      }
      return out;
    }
    if (op == "Slice") return slice(node);
    return std::nullopt;
  }

  static std::optional<ShapeValue> shape_of(const ir::Node& node) {
    const ir::Shape& shape = node.input(0)->shape;
    const auto rank = static_cast<std::int64_t>(shape.rank());
    auto clamp = [&](std::int64_t i) { return std::clamp(i < 0 ? i + rank : i, std::int64_t{0}, rank); };
    const std::int64_t start = clamp(node.attributes.get_int("start", 0));
    const std::int64_t end = clamp(node.attributes.get_int("end", rank));
    ShapeValue out;
    for (std::int64_t i = start; i < end; ++i) out.dims.push_back(shape[static_cast<std::size_t>(i)]);
    return out;
  }

  std::optional<ShapeValue> gather(const ir::Node& node) const {
    auto data = lookup(node.input(0));
    auto indices = constant_ints(node.input(1));
    if (!data || data->scalar || !indices || node.input(1)->constant->rank() > 1) return std::nullopt;
    const auto n = static_cast<std::int64_t>(data->dims.size());
    ShapeValue out{{}, node.input(1)->constant->rank() == 0};
    for (std::int64_t i : *indices) {
      if (i < -n || i >= n) return std::nullopt;  // the op's own checks report it
      out.dims.push_back(data->dims[static_cast<std::size_t>(i < 0 ? i + n : i)]);
    }
    return out;
  }

  std::optional<ShapeValue> slice(const ir::Node& node) const {
    auto data = lookup(node.input(0));
    auto starts = constant_ints(node.input(1));
    auto ends = constant_ints(node.input(2));
    if (!data || data->scalar || !starts || !ends || starts->size() != 1 || ends->size() != 1)
      return std::nullopt;
    if (node.input(3) && constant_int(node.input(3)).value_or(1) != 0 &&
        constant_int(node.input(3)).value_or(1) != -1)
      return std::nullopt;
    if (node.input(4) && constant_int(node.input(4)).value_or(0) != 1) return std::nullopt;
    const auto n = static_cast<std::int64_t>(data->dims.size());
    auto clamp = [&](std::int64_t i) { return std::clamp(i < 0 ? i + n : i, std::int64_t{0}, n); };
    ShapeValue out;
    for (std::int64_t i = clamp((*starts)[0]); i < clamp((*ends)[0]); ++i)
      out.dims.push_back(data->dims[static_cast<std::size_t>(i)]);
    return out;
  }

  // Reshape(x, target) with a symbolic target: a target entry equal to x's
  // dimension at the same position becomes 0 (copy), one remaining unknown
  // entry becomes -1 (infer). Leaves the node alone if that does not resolve.
  void resolve_reshape_target(ir::Node& node) {
    const ir::Value* data = node.input(0);
    auto target = lookup(node.input(1));
    if (!data || !target || node.input(1)->is_constant()) return;
    if (node.attributes.get_int("allowzero", 0) != 0) return;
    std::vector<std::int64_t> sizes;
    int unresolved = 0;
    bool has_infer = false;
    for (std::size_t i = 0; i < target->dims.size(); ++i) {
      const ir::Dim& d = target->dims[i];
      if (d.is_known()) {
        sizes.push_back(d.size);
        has_infer |= d.size == -1;
      } else if (i < data->shape.rank() && !d.symbol.empty() && data->shape[i] == d) {
        sizes.push_back(0);
      } else {
        sizes.push_back(-1);
        ++unresolved;
      }
    }
    if (unresolved > 1 || (unresolved == 1 && has_infer)) return;
    node.inputs[1] = graph_.add_constant(
        node.name + "_shape",
        Tensor::from<std::int64_t>({static_cast<std::int64_t>(sizes.size())}, sizes));
  }

  ir::Graph& graph_;
  std::unordered_map<const ir::Value*, ShapeValue> symbolic_;
};

}  // namespace

void infer_shapes(ir::Graph& graph) { ShapeFolder(graph).run(); }

}  // namespace anvil::ops
