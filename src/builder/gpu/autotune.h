// The GPU half of `anvil build`: for every conv, conv_int8 and gemm layer of a
// lowered plan, build the library's candidate configurations (cuDNN heuristics
// A and B plus fallbacks; cuBLASLt heuristic algorithms, also for 1x1 stride-1
// convs, whose identities carry runtime::kCublasLtPrefix; where no fused cuDNN
// engine keeps the layer's numerics, the conv alone plus our epilogue kernel,
// runtime::kUnfusedPrefix; for conv_int8, cuDNN's INT8 engine configs as
// cuda::QuantizedConv::identity() names them, "i32:..." or "f32:..."), time each
// with CUDA events at the profile's opt batch on the layer's real weights and
// random activations (INT8 integers in the real channels for conv_int8), check
// the fastest against the CPU reference of the layer
// (builder/gpu/verify_tactic.h; a wrong one is dropped for the next-fastest)
// and store it as the layer's tactic. A conv_int8 layer no INT8 engine runs
// fails the build with a message that suggests keeping it in FP16. A timing cache
// file makes a rebuild skip the timing of layers it has seen on this GPU and
// these library versions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace anvil::builder {

struct AutotuneOptions {
  std::int64_t batch = 1;              // the profile's opt batch
  int profile = 0;                     // which profile's tactics to set (plan/profiles.h)
  int iterations = 10;                 // timed runs per candidate
  std::filesystem::path timing_cache;  // empty: none
  // Called after each tuned layer with (layers done, layers to tune).
  std::function<void(int, int)> progress;
  // Told why a candidate was dropped (it failed the numerical check); null:
  // written to stderr.
  std::function<void(const std::string&)> log = nullptr;
};

struct LayerTactic {
  std::string layer;
  std::string kind;
  std::string identity;
  // The winner's time at the opt batch: for a conv_int8 layer, comparable with
  // the same layer's conv ms in an FP16 build (the INT8-vs-FP16 choice).
  float ms = 0.0f;
  int candidates = 0;  // how many were timed (0: from the timing cache)
  // Faster candidates that failed the numerical check, with why.
  std::vector<std::string> rejected;
};

struct CandidateTiming {
  std::string identity;  // as stored in a tactic
  float ms = 0.0f;
};

// Every candidate of one conv, conv_int8 or gemm layer of `plan`, timed at `batch`
// images, fastest first; unchecked. For tests and diagnostics.
std::vector<CandidateTiming> time_candidates(const plan::Plan& plan, const plan::LayerDesc& layer,
                                             std::int64_t batch, int iterations);

// Sets the tactic for options.profile (plan/profiles.h) of every conv,
// conv_int8 and gemm layer of `plan` (whose target must be this GPU) and returns what it chose.
std::vector<LayerTactic> autotune(plan::Plan& plan, const AutotuneOptions& options);

// This machine's GPU and library versions, for a plan's target header.
plan::TargetInfo current_target();

}  // namespace anvil::builder
