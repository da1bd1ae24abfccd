// The CPU reference runtime: executes an IR graph with the plain FP32 kernels
// of each op. It is the oracle for the GPU engine and the runtime used where
// no GPU is present. Correctness first: no fusion, no layout tricks.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace anvil::reference {

// Sees every node output right after its node ran, while the tensor is still
// alive (the runtime frees intermediates as soon as their last reader ran):
// how calibration collects activation statistics without keeping them all.
// Graph inputs are not reported (the caller has them). The tensor is only
// valid during the call.
using ValueObserver = std::function<void(const ir::Value& value, const Tensor& tensor)>;

class ReferenceRuntime {
 public:
  // The graph must outlive the runtime and stay unchanged while it is used.
  explicit ReferenceRuntime(const ir::Graph& graph);

  // Runs the graph on `inputs` (by graph input name) and returns the graph
  // outputs in order. A missing or unknown input, a wrong dtype or a shape
  // that contradicts the model's is an Error naming the input. `observer`, if
  // set, is called for every node output in execution order (see above).
  std::vector<Tensor> run(const std::map<std::string, Tensor>& inputs,
                          const ValueObserver& observer = {}) const;

 private:
  void check_inputs(const std::map<std::string, Tensor>& inputs) const;

  const ir::Graph& graph_;
  // For each node (by position), the values whose last reader it is.
  std::vector<std::vector<const ir::Value*>> release_after_;
};

}  // namespace anvil::reference
