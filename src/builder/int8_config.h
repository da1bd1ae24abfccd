// What an INT8 build (BuilderConfig::int8) takes from its inputs before any
// lowering: the activation scales from the calibration cache, checked to be
// this model's, and the conv layers the user keeps in FP16.
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace anvil::builder {

// The INT8 scale of each value of `graph` (optimized as it will be lowered)
// from the calibration cache at `cache`, made by `anvil calibrate` for the
// model file `model` (quant::int8_activation_scales). Errors name the cache:
// kIo if it cannot be read, kInvalidArgument if it is malformed, was made for
// another model (its fingerprint's model hash differs), or names none of the
// values a convolution reads.
std::map<std::string, float> int8_scales_for(const std::filesystem::path& model,
                                             const ir::Graph& graph,
                                             const std::filesystem::path& cache);

// --fp8 needs FP8 tensor cores: compute capability 8.9 (Ada) or later
// (Hopper is 9.0). kUnsupported naming `gpu` otherwise, before a build that
// would find no FP8 engine for any conv.
void require_fp8_gpu(const std::string& gpu, int cc_major, int cc_minor);

// FP8 E4M3 scales from INT8 ones: both are amax over the largest magnitude,
// so fp8 = int8 * 127 / 448. The calibration cache and Q/DQ models give
// INT8 scales; --fp8 converts them with this.
std::map<std::string, float> fp8_scales_from_int8(const std::map<std::string, float>& int8);

// `names` as a set, each checked to name a convolution of `graph`;
// kInvalidArgument lists every name that does not, with the conv names the
// graph has.
std::set<std::string> fp16_layer_names(const ir::Graph& graph,
                                       const std::vector<std::string>& names);

}  // namespace anvil::builder
