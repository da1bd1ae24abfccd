// anvil run on a plan file: the GPU engine with trtexec-style timing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anvil::cli {

struct PlanRunOptions {
  std::string plan;
  std::int64_t batch = 1;
  // The input's whole shape (--shapes), batch included; empty: `batch`, and
  // the chosen profile's opt for any other dim that varies (height, width).
  std::vector<std::int64_t> shape;
  std::string shape_input;  // the input --shapes named
  int profile = -1;         // the optimization profile; -1: the best for the shape
  double warmup_ms = 200;
  double duration_s = 3;
  int iterations = 0;  // > 0 overrides duration_s
  bool no_data_transfers = false;
  std::string export_times;
  bool dump_profile = false;  // then a per-layer profile after the timed run
  std::string export_trace;   // a Chrome trace of the timed run (and the profile)
  bool cuda_graph = false;    // replay the enqueue as a CUDA graph
  int top = 5;
  unsigned seed = 0;
};

// True when the file starts with the plan magic.
bool is_plan_file(const std::string& path);

void run_plan(const PlanRunOptions& options);

}  // namespace anvil::cli
