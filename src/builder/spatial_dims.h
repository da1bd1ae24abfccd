// Building for input heights and widths that vary: the model-side half of
// spatial optimization profiles (builder/respecialize.h is the plan side).
//
// A model exported with symbolic H and W (dynamic_axes {2: "H", 3: "W"}) is
// lowered at one concrete geometry, profile 0's opt shape: fix_input_dims()
// gives its inputs those dims and infers every shape again, so that passes
// and lowering see a static network (the batch stays symbolic).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "builder/respecialize.h"
#include "ir/graph.h"

namespace anvil::builder {

// For each graph input, which of its non-batch dims (1..) the model leaves
// unknown or symbolic. Inputs with none are absent.
std::map<std::string, std::vector<std::size_t>> symbolic_dims(const ir::Graph& graph);

// Gives each input named in `dims` its dims 1.. (dims[0], the batch, is
// ignored: the model's stays), then infers the graph's shapes again.
// kInvalidArgument for an input the graph lacks or another rank, naming it.
void fix_input_dims(ir::Graph& graph, const InputDims& dims);

}  // namespace anvil::builder
