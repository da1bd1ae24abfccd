#include "cuda/graph.h"

#include "cuda/check.h"

namespace anvil::cuda {

namespace {

std::string describe(const char* call, cudaError_t status) {
  return cat(call, " failed: ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ")");
}

}  // namespace

void launch_graph(const GraphExec& exec, cudaStream_t stream) {
  ANVIL_GPU_CHECK(cudaGraphLaunch(exec.get(), stream));
}

bool is_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  ANVIL_GPU_CHECK(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

namespace detail {

std::string begin_capture(cudaStream_t stream) {
  const cudaError_t status = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (status == cudaSuccess) return {};
  cudaGetLastError();  // not sticky: clear it so the next launch check does not see it
  return describe("cudaStreamBeginCapture", status);
}

CaptureResult end_capture(cudaStream_t stream, std::string record_failure) {
  cudaGraph_t raw = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &raw);
  Graph graph(raw);
  if (!record_failure.empty() || ended != cudaSuccess) {
    cudaGetLastError();
    return {GraphExec(), !record_failure.empty()
                             ? cat("capturing the enqueue failed: ", record_failure)
                             : describe("cudaStreamEndCapture", ended)};
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph.get(), 0);
  if (instantiated != cudaSuccess) {
    cudaGetLastError();
    return {GraphExec(), describe("cudaGraphInstantiate", instantiated)};
  }
  return {GraphExec(exec), {}};
}

}  // namespace detail

}  // namespace anvil::cuda
