// Building a GPU plan from an ONNX model: the concepts TensorRT users know.
//
//   anvil::BuilderConfig config;
//   config.fp16 = true;
//   config.profile.set_dimensions("input", {1, 3, 224, 224},    // min
//                                          {16, 3, 224, 224},   // opt: tactics tuned here
//                                          {32, 3, 224, 224});  // max
//   anvil::BuildReport report;
//   std::vector<std::byte> plan = anvil::Builder().build_serialized("model.onnx", config, &report);
//   auto engine = anvil::Engine::deserialize(plan, "model.plan");
//
// Building imports the model, runs the optimization passes, lowers it to GPU
// layers and autotunes every conv and gemm layer on this machine's GPU (the
// plan runs only on GPUs of the same compute capability).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anvil/types.h"

namespace anvil {

// The shapes one input accepts: every dim of min <= opt <= max. The batch
// may vary, and so may an image's (NCHW) height and width where the model
// leaves them symbolic (exported with dynamic_axes {0: "N", 2: "H", 3: "W"}):
// the plan is lowered at profile 0's opt shape and the runtime re-derives
// every layer's geometry for the others. Channels stay fixed.
struct ShapeRange {
  std::vector<std::int64_t> min, opt, max;
};

// Shape ranges keyed by input name (TensorRT's IOptimizationProfile). A
// dynamic-batch input the profile does not name takes the batch range of one
// it names (1..1 when it is empty): the engine runs one batch for all inputs.
class OptimizationProfile {
 public:
  // Sets `input`'s range; checks what needs no model: equal non-zero ranks,
  // dims >= 1 and min <= opt <= max in every dim (kInvalidArgument). Which
  // dims may vary is the model's to say (Builder::build_serialized). Errors
  // name the input. Replaces an earlier range.
  void set_dimensions(std::string_view input, std::span<const std::int64_t> min,
                      std::span<const std::int64_t> opt, std::span<const std::int64_t> max);
  // The batch range of every dynamic-batch input the profile does not name
  // with set_dimensions (the usual CNN case: one image input), without
  // spelling out its shape. kInvalidArgument unless 1 <= min <= opt <= max.
  void set_batch_range(std::int64_t min, std::int64_t opt, std::int64_t max);
  const std::optional<BatchRange>& batch_range() const { return batch_; }
  // The range set for `input`, or null.
  const ShapeRange* dimensions(std::string_view input) const;
  // Every range set, by input name.
  const std::map<std::string, ShapeRange, std::less<>>& inputs() const { return inputs_; }
  bool empty() const { return inputs_.empty() && !batch_; }

 private:
  std::map<std::string, ShapeRange, std::less<>> inputs_;
  std::optional<BatchRange> batch_;
};

enum class LogSeverity { kWarning, kInfo };

// How to build (TensorRT's IBuilderConfig). The defaults build an FP32 plan
// with TF32 tensor cores for batch 1.
struct BuilderConfig {
  bool fp16 = false;  // FP16 weights and activations, FP32 accumulation
  bool tf32 = true;   // lets FP32 convs and gemms use TF32 tensor cores
  std::int64_t workspace_bytes = std::int64_t{256} << 20;  // recorded in the plan
  std::filesystem::path timing_cache;                      // read and updated; empty: none
  std::vector<std::string> disabled_passes;                // optimization passes to skip, by name
  OptimizationProfile profile;                             // profile 0
  // Profiles 1, 2, ... (TensorRT's further addOptimizationProfile calls), for
  // example batches 1-32 in `profile` and 64-192 here: each gets its own
  // tactics, tuned at its opt batch, and a context selects one.
  std::vector<OptimizationProfile> additional_profiles;
  // Auxiliary streams per context (TensorRT's max_aux_streams): layers that
  // depend on neither the layer before them nor an engine input, such as a
  // ResNet block's downsample shortcut, run on one of them, joined with
  // events. 0: every layer on the caller's stream. At most 8.
  int aux_streams = 0;
  // INT8 (TensorRT's kINT8 flag; needs fp16, which the layers INT8 does not
  // cover keep). A convolution runs in INT8 where the calibration cache (or
  // the model's own Q/DQ pairs) gives its input and output a scale, cuDNN has
  // an INT8 engine for it, and INT8 beats FP16 at the opt batch counting the
  // quantize/dequantize layers an FP16 conv would add (timed per layer; the
  // others stay FP16 and BuildReport::int8_fallbacks says why). Depthwise and
  // grouped convs, activations other than ReLU, and the gemm stay FP16.
  bool int8 = false;
  // FP8 E4M3 (Hopper, cuDNN's FP8 engines): the INT8 path above with E4M3
  // tensors and weights instead of INT8 ones, from the same calibration
  // cache (or Q/DQ scales): activation scale amax / 448 (the cache's INT8
  // scale * 127 / 448), weight scale max|w[k]| / 448 per output channel. A
  // conv also needs its channel counts padded to multiples of 16. Needs fp16;
  // excludes int8. The per-layer fallback to FP16, fp16_layers and
  // int8_first_layer apply as for int8. A GPU below compute capability 8.9
  // (no FP8 tensor cores) is kUnsupported, named.
  bool fp8 = false;
  // `anvil calibrate`'s cache for this model (quant/calibration_cache.h):
  // required with int8 or fp8; one made for another model is refused.
  std::filesystem::path calibration_cache;
  // Conv layers (their ONNX node names) kept in FP16 (--layer-precision NAME:fp16).
  std::vector<std::string> fp16_layers;
  // The conv that reads the image input also in INT8 (off: it stays FP16, as
  // the input's few channels make INT8 slow there and cost accuracy).
  bool int8_first_layer = false;
  int autotune_iterations = 10;  // timed runs per candidate tactic
  // Called after each autotuned layer with (layers done, layers to tune).
  std::function<void(int done, int total)> progress;
  // Build messages: kInfo what each pass did, kWarning a tactic dropped by its
  // numerical check. Null: warnings go to stderr, info is dropped.
  std::function<void(LogSeverity, std::string_view)> log;
};

// What one optimization pass did.
struct PassReport {
  std::string name;
  int rewrites = 0;
  bool disabled = false;
};

// The tactic the autotuner chose for one conv or gemm layer.
struct LayerTacticReport {
  std::string layer;
  std::string kind;
  std::string tactic;                 // the library configuration's identity
  float ms = 0.0f;                    // its time at the opt batch
  int candidates = 0;                 // how many were timed (0: from the timing cache)
  std::vector<std::string> rejected;  // faster candidates that failed the numerical check
  int profile = 0;                    // the optimization profile it was tuned for
};

// What a build made, for summaries (`anvil build` prints it).
struct BuildReport {
  std::string gpu_name;
  double seconds = 0;                                        // import to serialized plan
  std::int64_t min_batch = 1, opt_batch = 1, max_batch = 1;  // profile 0
  std::vector<BatchRange> profiles;                          // every profile's
  std::vector<PassReport> passes;
  std::vector<std::string> layer_kinds;  // one per plan layer, in execution order
  std::vector<int> layer_streams;        // each layer's stream (0: the caller's)
  std::vector<LayerTacticReport> tactics;
  std::size_t weight_bytes = 0;
  std::size_t arena_bytes = 0;  // activations of one context at the largest max shape
  // INT8 builds: convs that had INT8 scales but stay FP16 because INT8 was
  // slower there, each "NAME: INT8 x ms, FP16 y ms + reformats z ms at batch B".
  std::vector<std::string> int8_fallbacks;
};

// Builds plans (TensorRT's IBuilder). Stateless: one may build many plans,
// from any number of threads one build at a time per GPU (timings interfere).
class Builder {
 public:
  // Builds `onnx_path` into plan bytes for Engine::deserialize (or a .plan
  // file). The model and the profile are checked before the GPU is needed:
  // kInvalidArgument / kUnsupported name the input at fault (a profile input
  // the model lacks, another rank, a range for a dim the model fixes, a
  // symbolic height and width without a range in every profile, a batch
  // other than a fixed-batch model's), and, for height and width ranges, a
  // layer that cannot follow them or a profile shape the network cannot run
  // (checked at every profile's min, opt and max). Each profile is tuned at
  // its opt shape. Without a GPU: kGpu; in an Anvil built without CUDA:
  // kUnsupported. Fills `report` when given.
  std::vector<std::byte> build_serialized(const std::filesystem::path& onnx_path,
                                          const BuilderConfig& config,
                                          BuildReport* report = nullptr) const;
};

}  // namespace anvil
