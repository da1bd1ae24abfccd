// GPU spans of the pipeline's requests (PipelineOptions::gpu_timeline): a
// pair of timing events per span, read back on the host's steady clock once
// the request's work has completed. What Nsight Systems would show of the
// executor's streams, for the ablation's Chrome trace, where no profiler runs.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "anvil/pipeline.h"
#include "cuda/handles.h"

namespace anvil::pipeline {

// One request's spans. Events are reused from request to request.
class GpuTimeline {
 public:
  // Starts a request: forgets the previous one's spans.
  void clear() { spans_.clear(); }
  // Places this request's GPU time on the host clock with an anchor event
  // recorded on `idle` (a stream with no work queued) and waited for. Event
  // times are exact relative to the anchor; the anchor is placed to within
  // that wait's latency (microseconds). Called once the request's work is
  // queued, so that the wait does not delay its first upload.
  // Anchored per request, not once per executor: with one anchor for a
  // whole ablation config, an H100 showed an upload 0.28 ms before its own
  // submit; drift between the GPU's timer and the host's clock is the likely
  // cause (not proven; the per-request anchor removes it either way).
  void anchor(cudaStream_t idle);
  // A span starts where `stream` reaches this call; returns its index.
  std::size_t begin(cudaStream_t stream, const char* lane, std::string what);
  // Span `span` ends where `stream` reaches this call.
  void end(std::size_t span, cudaStream_t stream);
  // After every recorded event completed (the request's done event).
  std::vector<GpuSpan> read() const;

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point host_time(const cuda::Event& event) const;

  struct Span {
    const char* lane;
    std::string what;
  };
  cuda::Event anchor_;
  Clock::time_point anchor_host_;
  std::vector<Span> spans_;
  std::vector<cuda::Event> events_;  // begin and end per span, grown as needed
};

}  // namespace anvil::pipeline
