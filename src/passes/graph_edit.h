// Small graph queries and edits shared by the passes.
#pragma once

#include <cstddef>
#include <optional>

#include "ir/graph.h"

namespace anvil::passes {

bool is_graph_output(const ir::Graph& graph, const ir::Value* value);
bool is_graph_input(const ir::Graph& graph, const ir::Value* value);

// How many input slots of nodes read `value`, plus one per graph output it is.
std::size_t reader_count(const ir::Graph& graph, const ir::Value* value);

// The one node reading `value` (through one input slot), when `value` has
// exactly that one reader and is not a graph output; else null.
ir::Node* sole_reader(const ir::Graph& graph, const ir::Value* value);

// True for a node of the default ONNX domain with this op type.
bool is_onnx_op(const ir::Node& node, std::string_view op_type);

// A float32 constant holding one element, read as a float.
std::optional<float> constant_scalar(const ir::Value* value);

// Disconnects `node` from the graph (no inputs, no outputs), so that the next
// refresh() removes it. Its former outputs keep their other links.
void detach(ir::Node& node);

// Runs `node`, whose inputs are all constants (or absent), on the CPU
// reference and makes each of its outputs the constant it computes, with no
// producer: the node is left without outputs in use, for the caller to detach.
void fold_to_constants(ir::Node& node);

// Makes `node` produce `value` in place of its output `slot`.
void set_output(ir::Node& node, std::size_t slot, ir::Value* value);

// Restores the invariants passes rely on: topological order, no dead nodes or
// values, and every node output's dtype and shape inferred from its inputs.
void refresh(ir::Graph& graph);

}  // namespace anvil::passes
