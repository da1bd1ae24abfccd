// The configs of `anvil bench --ablation` (the rows of the TensorRT
// optimization guide's table), each running the same job: the data's batches
// through an engine, with the guide's output processing on the host.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ablation_data.h"
#include "ablation_report.h"

namespace anvil {
class Engine;
}

namespace anvil::cli {

struct AblationEngines {
  std::shared_ptr<const Engine> fp32;          // configs 0-2
  std::shared_ptr<const Engine> fp16;          // configs 3-7, 9 and 11
  std::shared_ptr<const Engine> int8;          // configs 10 and 12
  std::shared_ptr<const Engine> two_profiles;  // config 8: small batches and full ones
  std::int64_t small_batch = 0;                // config 8's small batch (profile 0's opt)
};

struct ConfigSettings {
  int timed = 3;                   // the last `timed` of the data's batches are timed
  int repeats = 5;                 // times the timed batches run (the median is reported)
  double duration_s = 2;           // the throughput run, at least one round
  int round_batches = 16;          // throughput rounds: batches prepared untimed, then timed
  std::int64_t chunk_images = 32;  // configs 11 and 12: images per chunk
  int idle_poll_us = 0;            // configs 5-12: PipelineOptions::idle_poll_us
};

// Host-to-device GB/s over parts of a buffer: the slowest and the fastest.
struct H2dRange {
  double min = 0, max = 0;  // 0: not measured
};

struct ConfigResult {
  double timed_ms = 0;                // the median of timed_runs_ms
  std::vector<double> timed_runs_ms;  // each run of the timed batches
  double images_per_s = 0;
  std::size_t device_bytes = 0;
  // The job's own pinned data set, uploaded a batch at a time before the
  // run: the PCIe rate its uploads can reach, which was seen to differ from
  // job to job and from the 64 MiB figure (docs/PERFORMANCE.md, 2026-11-27).
  H2dRange input_h2d_gb_per_s;
  // Top-1 class of every image, per batch of the data (the first run of
  // each), and of config 8's small batches (the first small_batch images).
  std::vector<std::vector<std::int32_t>> top1, top1_small;
  // One more run of the timed batches, recorded for the trace (the pipeline
  // configs with PipelineOptions::gpu_timeline), and its time.
  std::vector<TraceSpan> spans;
  double traced_ms = 0;
};

// Runs `config` (1..12; 0 the baseline): every batch once, then the last
// settings.timed of them settings.repeats times, each run timed, once more
// recorded for the trace, then the throughput run. kInvalidArgument for
// a config without an engine in `engines`.
ConfigResult run_ablation_config(int config, const AblationEngines& engines,
                                 const AblationData& data, const ConfigSettings& settings);

// Top-1 of each image of each batch from plain synchronous runs of `engine`
// (one context, the best profile for the batch), the reference every config
// must match. `images` > 0 runs only each batch's first `images` images.
std::vector<std::vector<std::int32_t>> plain_top1(const Engine& engine,
                                                  const std::vector<std::vector<float>>& batches,
                                                  std::int64_t batch, std::int64_t images = 0);

// Host-to-device bandwidth from pinned memory in GB/s: the best of several
// 64 MiB copies.
double measure_h2d_gb_per_s();

// Each of `parts` equal parts of page-locked `host` uploaded once (after one
// warm-up copy), in GB/s.
H2dRange h2d_gb_per_s_per_part(std::span<const std::byte> host, std::size_t parts);

}  // namespace anvil::cli
