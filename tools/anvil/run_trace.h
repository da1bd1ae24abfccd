// anvil run --export-trace FILE: the timed iterations as a Chrome trace
// (io/chrome_trace.h): H2D, compute and D2H of every iteration on GPU rows,
// the host's enqueue calls on a host row, and, with --dump-profile, one
// enqueue's layers laid end to end at their mean times.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "layer_profile.h"

namespace anvil::cli {

// One timed iteration of anvil run.
struct IterationTimes {
  double latency_ms, h2d_ms, compute_ms, d2h_ms, enqueue_ms;
  double gpu_start_ms;   // its start event, after the first iteration's (GPU clock)
  double host_start_ms;  // its enqueue call, after the timed run began (host clock)
};

void write_run_trace(const std::filesystem::path& path, std::int64_t batch,
                     const std::vector<IterationTimes>& iterations, const LayerProfile* profile);

}  // namespace anvil::cli
