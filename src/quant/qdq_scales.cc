#include "quant/qdq_scales.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "anvil/error.h"
#include "ops/op.h"
#include "passes/graph_edit.h"
#include "quant/int8_scales.h"

namespace anvil::quant {
namespace {

using passes::detach;
using passes::is_graph_input;
using passes::is_graph_output;
using passes::is_onnx_op;

// What the notes of kept pairs end with: the ways out the user has.
constexpr const char* kWhatToDo =
    "; re-export with symmetric per-tensor INT8 activation quantization (signed int8, zero point "
    "0, one constant scale), as pytorch-quantization and ModelOpt do by default, or export the "
    "float model and calibrate it (anvil calibrate)";

bool is_quantize(const ir::Node& node) {
  return is_onnx_op(node, "QuantizeLinear");
}
bool is_dequantize(const ir::Node& node) {
  return is_onnx_op(node, "DequantizeLinear");
}

// Evaluates the Q and DQ nodes of constants (quantized weights and biases)
// with their reference kernels, as fold_constants does; returns how many
// nodes folded and adds the DQs among them to `weights_folded`.
int fold_constant_qdq(ir::Graph& graph, int& weights_folded) {
  int folded = 0;
  // Topological order: a folded Q's DQ sees a constant in the same sweep.
  for (const auto& node : graph.nodes()) {
    if (node->outputs.empty() || (!is_quantize(*node) && !is_dequantize(*node))) continue;
    const bool constant = std::all_of(node->inputs.begin(), node->inputs.end(),
                                      [](const ir::Value* v) { return !v || v->is_constant(); });
    const bool feeds_output = is_graph_output(graph, node->outputs[0]);
    if (!constant || feeds_output) continue;
    passes::fold_to_constants(*node);
    if (is_dequantize(*node)) ++weights_folded;
    detach(*node);
    ++folded;
  }
  return folded;
}

// The one-element constant scale `value` holds in `scale`, else why not.
std::string read_scale(const ir::Value* value, float& scale) {
  if (!value->is_constant()) return cat("its scale '", value->name, "' is computed at run time");
  if (value->constant->element_count() != 1)
    return cat("its scale has ", value->constant->element_count(),
               " elements (per-channel), but an INT8 activation takes one scale per tensor");
  scale = value->constant->data<float>()[0];
  if (!(std::isfinite(scale) && scale > 0.0f))
    return cat("its scale is ", scale, ", not a positive finite number");
  return {};
}

// Why the zero point `value` (null when omitted) is not a constant 0, or "".
std::string check_zero_point(const ir::Value* value) {
  if (!value) return {};
  if (!value->is_constant())
    return cat("its zero point '", value->name, "' is computed at run time");
  const Tensor& zp = *value->constant;
  for (std::int64_t i = 0; i < zp.element_count(); ++i) {
    const std::int64_t z = zp.dtype() == DType::kInt8 ? std::int64_t{zp.data<std::int8_t>()[i]}
                                                      : std::int64_t{zp.data<std::uint8_t>()[i]};
    if (z != 0)
      return cat("its zero point is ", z, ", but Anvil's INT8 layers are symmetric (zero point 0)");
  }
  return {};
}

// A QuantizeLinear of a runtime tensor and the DequantizeLinears reading it.
struct Pair {
  ir::Node* q = nullptr;
  std::vector<ir::Node*> dqs;
  float scale = 0.0f;
};

// Why `q` and its readers cannot be removed, or "" with `pair` filled in.
std::string why_kept(const ir::Graph& graph, ir::Node& q, Pair& pair) {
  const ir::Value* x = q.input(0);
  const ir::Value* out = q.outputs[0];
  if (x->is_constant()) return "it quantizes a constant that is a graph output";
  if (x->dtype != DType::kFloat32)
    return cat("it quantizes a ", to_string(x->dtype), " tensor, not float32");
  if (std::string why = read_scale(q.input(1), pair.scale); !why.empty()) return why;
  if (out->dtype != DType::kInt8)
    return cat("it outputs ", to_string(out->dtype),
               (q.input(2) ? "" : " (no zero point given: ONNX's default is uint8)"),
               ", but Anvil's INT8 layers take signed int8");
  if (std::string why = check_zero_point(q.input(2)); !why.empty()) return why;
  if (is_graph_output(graph, out)) return cat("its output '", out->name, "' is a graph output");
  pair.q = &q;
  pair.dqs.clear();
  for (ir::Node* reader : graph.consumers(out)) {
    if (!is_dequantize(*reader) || reader->input(0) != out || reader->input(1) == out ||
        reader->input(2) == out)
      return cat(reader->describe(), " reads its output, and only a DequantizeLinear may");
    float scale = 0.0f;
    if (std::string why = read_scale(reader->input(1), scale); !why.empty())
      return cat("the ", reader->describe(), " reading it: ", why);
    if (scale != pair.scale)
      return cat("the ", reader->describe(), " reading it has scale ", scale, ", not ", pair.scale);
    if (std::string why = check_zero_point(reader->input(2)); !why.empty())
      return cat("the ", reader->describe(), " reading it: ", why);
    pair.dqs.push_back(reader);
  }
  if (pair.dqs.empty()) return "no DequantizeLinear reads its output";
  const auto outputs = std::count_if(pair.dqs.begin(), pair.dqs.end(), [&](const ir::Node* dq) {
    return is_graph_output(graph, dq->outputs[0]);
  });
  const bool x_renamable = x->producer && !is_graph_input(graph, x) && !is_graph_output(graph, x);
  if (outputs > 1 || (outputs == 1 && !x_renamable))
    return cat("its DequantizeLinear output is a graph output that '", x->name,
               "' cannot stand in for");
  return {};
}

using FoundScales = std::map<const ir::Value*, std::vector<float>>;

// Makes x's producer produce the graph output y in place of x.
ir::Value* rename(ir::Graph& graph, ir::Value* x, ir::Value* y, FoundScales& found) {
  ir::Node* producer = x->producer;
  graph.replace_all_uses(x, y);
  for (std::size_t i = 0; i < producer->outputs.size(); ++i)
    if (producer->outputs[i] == x) passes::set_output(*producer, i, y);
  x->producer = nullptr;
  if (const auto it = found.find(x); it != found.end()) {
    auto& moved = found[y];
    moved.insert(moved.end(), it->second.begin(), it->second.end());
    found.erase(x);
  }
  return y;
}

void remove_pair(ir::Graph& graph, const Pair& pair, FoundScales& found) {
  ir::Value* x = pair.q->inputs[0];
  for (ir::Node* dq : pair.dqs) {
    ir::Value* y = dq->outputs[0];
    if (is_graph_output(graph, y))
      x = rename(graph, x, y, found);
    else
      graph.replace_all_uses(y, x);
    detach(*dq);
  }
  detach(*pair.q);
  found[x].push_back(pair.scale);
}

}  // namespace

bool has_qdq(const ir::Graph& graph) {
  return std::any_of(graph.nodes().begin(), graph.nodes().end(),
                     [](const auto& node) { return is_quantize(*node) || is_dequantize(*node); });
}

QdqScales strip_qdq(ir::Graph& graph) {
  QdqScales result;
  bool changed = fold_constant_qdq(graph, result.weights_folded) > 0;
  FoundScales found;
  for (const auto& node : graph.nodes()) {
    if (node->outputs.empty() || !is_quantize(*node) || !node->input(0)) continue;
    Pair pair;
    if (std::string why = why_kept(graph, *node, pair); !why.empty()) {
      result.notes.push_back(cat(node->describe(), " on '", node->input(0)->name, "' kept: ", why,
                                 kWhatToDo, ". Until then the GPU engine has no layer for it."));
      continue;
    }
    remove_pair(graph, pair, found);
    result.pairs_removed += static_cast<int>(pair.dqs.size());
    changed = true;
  }
  for (const auto& node : graph.nodes()) {
    if (node->outputs.empty() || !is_dequantize(*node) || !node->input(0)) continue;
    const ir::Value* x = node->input(0);
    if (x->producer && is_quantize(*x->producer)) continue;  // noted with its Q
    result.notes.push_back(cat(node->describe(), " on '", x->name, "' (", to_string(x->dtype),
                               ") kept: no QuantizeLinear produces its input, so it reads "
                               "quantized data Anvil's layers cannot take",
                               kWhatToDo, ", feeding float32 inputs."));
  }
  for (const auto& [value, scales] : found) {
    const float largest = *std::max_element(scales.begin(), scales.end());
    result.scales[value->name] = largest;
    if (std::any_of(scales.begin(), scales.end(), [&](float s) { return s != largest; })) {
      std::string all;
      for (const float s : scales)
        all += cat(all.empty() ? "" : ", ", s);
      result.notes.push_back(cat("'", value->name, "' has Q/DQ pairs with different scales (", all,
                                 "); using the largest, ", largest,
                                 ", since a smaller one would clip values the larger keeps"));
    }
  }
  if (changed) passes::refresh(graph);
  return result;
}

std::map<std::string, float> unify_residual_scales(const ir::Graph& optimized,
                                                   const std::map<std::string, float>& scales) {
  const std::map<std::string, int> groups = residual_groups(optimized);
  std::map<int, float> group_scale;
  for (const auto& [name, group] : groups)
    if (const auto it = scales.find(name); it != scales.end()) {
      float& scale = group_scale.try_emplace(group, 0.0f).first->second;
      scale = std::max(scale, it->second);
    }
  std::map<std::string, float> unified;
  for (const auto& [name, group] : groups)
    if (const auto it = group_scale.find(group); it != group_scale.end())
      unified[name] = it->second;
  return unified;
}

}  // namespace anvil::quant
