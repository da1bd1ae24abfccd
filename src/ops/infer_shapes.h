// Graph-level shape inference, run by the importer.
#pragma once

#include "ir/graph.h"

namespace anvil::ops {

// Infers every value's dtype and shape in topological order (the graph must be
// sorted), and folds what is known at import:
//  - nodes whose inputs are all constant and whose outputs are integer tensors
//    (shape arithmetic) are evaluated with their CPU kernels;
//  - the shape subgraphs PyTorch exports (Shape -> Gather -> Unsqueeze ->
//    Concat -> Reshape) are tracked symbolically, so a Reshape whose target
//    depends on a dynamic batch gets a constant target using 0 (copy) and -1;
//  - nodes left without readers are removed.
// Errors name the node at fault.
void infer_shapes(ir::Graph& graph);

}  // namespace anvil::ops
