#include "pipeline/gpu/gpu_timeline.h"

#include <utility>

namespace anvil::pipeline {

void GpuTimeline::anchor(cudaStream_t idle) {
  // The anchor runs between the two readings (the stream is idle); their
  // midpoint is off by at most half the round trip.
  const Clock::time_point before = Clock::now();
  anchor_.record(idle);
  anchor_.synchronize();
  anchor_host_ = before + (Clock::now() - before) / 2;
}

std::size_t GpuTimeline::begin(cudaStream_t stream, const char* lane, std::string what) {
  const std::size_t span = spans_.size();
  spans_.push_back({lane, std::move(what)});
  while (events_.size() < 2 * spans_.size())
    events_.emplace_back(true);
  events_[2 * span].record(stream);
  return span;
}

void GpuTimeline::end(std::size_t span, cudaStream_t stream) {
  events_.at(2 * span + 1).record(stream);
}

GpuTimeline::Clock::time_point GpuTimeline::host_time(const cuda::Event& event) const {
  const std::chrono::duration<double, std::milli> since(cuda::Event::elapsed_ms(anchor_, event));
  return anchor_host_ + std::chrono::duration_cast<Clock::duration>(since);
}

std::vector<GpuSpan> GpuTimeline::read() const {
  std::vector<GpuSpan> spans;
  spans.reserve(spans_.size());
  for (std::size_t i = 0; i < spans_.size(); ++i)
    spans.push_back(
        {spans_[i].lane, spans_[i].what, host_time(events_[2 * i]), host_time(events_[2 * i + 1])});
  return spans;
}

}  // namespace anvil::pipeline
