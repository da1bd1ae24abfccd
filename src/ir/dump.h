// A readable text form of a graph, one line per node, for debugging and
// `anvil inspect --dump`:
//
//   graph "torch_jit" opset 17
//     input  %input: float32[N,3,224,224]
//     %conv1_out: float32[N,64,112,112] = Conv "conv1"(%input, $conv1.weight{64x3x7x7})
//     {kernel_shape=[7,7], strides=[2,2]} output %output
#pragma once

#include <string>

#include "ir/graph.h"

namespace anvil::ir {

std::string dump(const Graph& graph);

}  // namespace anvil::ir
