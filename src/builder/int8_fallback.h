// Which convs of an INT8 plan an --int8 build keeps in FP16 (issue 6: INT8
// never slower than FP16). A conv falls back when its FP16 time plus the
// reformats the fallback adds beats its INT8 time: an FP16 conv between INT8
// layers needs a dequantize of its input (and residual) and a quantize of its
// output for the INT8 convs that read it, and saves the dequantize its output
// had for float readers (an input the stem kernel writes needs none: the
// stem writes FP16 or INT8 alike). Each reformat is costed at its bytes over the GPU's
// peak memory bandwidth, a lower bound of its time: on ResNet-50 (H100,
// 2026-11-26) the rule that ignored them kept 14 convs in FP16 that were at
// most 0.022 ms faster there, and their reformats cost 1.9 ms (docs/INT8.md).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace anvil::builder {

struct Int8Fallback {
  std::string layer;
  std::string why;  // "NAME: INT8 x ms, FP16 y ms + reformats z ms at batch B" (FP8 for FP8 layers)
};

// The conv_int8 layers of `plan` (lowered with every eligible conv in INT8)
// to keep in FP16 at `batch` images, from the tuned times of each conv by
// layer name in this plan (`int8_ms`) and in the FP16 plan (`fp16_ms`), and
// the device's memory bandwidth in bytes per ms (0: reformats cost nothing).
// Layers missing from either map stay in INT8.
std::vector<Int8Fallback> int8_fallbacks(const plan::Plan& plan, std::int64_t batch,
                                         const std::map<std::string, float>& int8_ms,
                                         const std::map<std::string, float>& fp16_ms,
                                         double bytes_per_ms);

}  // namespace anvil::builder
