// CUDA graphs: RAII owners of cudaGraph_t / cudaGraphExec_t and stream
// capture that reports failure as a reason instead of an exception, so the
// runtime can fall back to plain launches (TensorRT samples' TrtCudaGraph).
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <utility>

#include "anvil/error.h"
#include "cuda/handles.h"

namespace anvil::cuda {

struct GraphRelease {
  void operator()(cudaGraph_t g) const { cudaGraphDestroy(g); }
};
struct GraphExecRelease {
  void operator()(cudaGraphExec_t g) const { cudaGraphExecDestroy(g); }
};

// A captured graph and its executable instance.
using Graph = Owned<cudaGraph_t, GraphRelease>;
using GraphExec = Owned<cudaGraphExec_t, GraphExecRelease>;

// An instantiated graph, or why there is none.
struct CaptureResult {
  GraphExec exec;
  std::string failure;  // empty on success
};

// Enqueues the graph on `stream`: no allocation, no synchronization.
void launch_graph(const GraphExec& exec, cudaStream_t stream);

// True while `stream` is being captured (by us or by the caller).
bool is_capturing(cudaStream_t stream);

namespace detail {
// Starts a thread-local capture on `stream`; the failure reason, or "".
std::string begin_capture(cudaStream_t stream);
// Ends the capture and instantiates the graph (an empty exec and the reason
// on failure). `record_failure` is the reason recording failed, if it did:
// the capture is still ended so the stream leaves capture mode.
CaptureResult end_capture(cudaStream_t stream, std::string record_failure);
}  // namespace detail

// Captures what `record()` enqueues on `stream` into a graph and instantiates
// it; nothing runs. Never throws for a failed capture (an illegal stream such
// as the legacy default stream, a call that may not be captured, an error
// thrown by `record`): the result then holds the reason, the stream is out of
// capture mode and CUDA's last error is cleared, so later launches are clean.
template <typename Record>
CaptureResult capture_graph(cudaStream_t stream, Record&& record) {
  std::string failure = detail::begin_capture(stream);
  if (!failure.empty()) return {GraphExec(), std::move(failure)};
  try {
    std::forward<Record>(record)();
  } catch (const Error& e) {
    failure = e.what();
  }
  return detail::end_capture(stream, std::move(failure));
}

}  // namespace anvil::cuda
