// Static cost of a graph at concrete input shapes: the numbers `anvil
// inspect` reports.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ir/graph.h"

namespace anvil::ops {

struct GraphCost {
  std::int64_t macs = 0;                           // multiply-accumulates of one execution
  std::map<std::string, std::int64_t> macs_by_op;  // by op type
};

// Infers concrete shapes with every symbolic input dimension named in
// `symbols` bound to its size (e.g. {"N", 8}) and sums each node's macs().
// An input dimension that stays unknown is an Error naming the input.
GraphCost estimate_cost(const ir::Graph& graph, const std::map<std::string, std::int64_t>& symbols);

}  // namespace anvil::ops
