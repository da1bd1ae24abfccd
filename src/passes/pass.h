// A graph optimization pass: a named rewrite of the IR that keeps the graph's
// outputs the same (up to float rounding where a pass says so).
//
// A pass matches its pattern cheaply, then rewrites in place and returns how
// many rewrites it made. It may leave nodes detached (no inputs, no outputs)
// and new values without shapes: the PassManager sorts the graph, drops dead
// nodes and re-infers shapes after every pass that changed something.
#pragma once

#include <string_view>

#include "ir/graph.h"

namespace anvil::passes {

class Pass {
 public:
  virtual ~Pass() = default;
  // The name used by --disable-pass, e.g. "fold_batch_norm".
  virtual std::string_view name() const = 0;
  // Rewrites `graph` (shapes inferred, topologically sorted); returns the
  // number of rewrites, 0 when the pattern was not found.
  virtual int run(ir::Graph& graph) const = 0;
};

}  // namespace anvil::passes
