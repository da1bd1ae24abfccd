// The INT8 scales an engine gives its activations, from a calibration table
// (quant/calibration_cache.h) and the optimized graph the builder lowers.
//
// Each value's scale is int8_scale(amax) (quant/calibrator.h), except that
// the values a residual addition joins share one: cuDNN fuses "+ residual"
// into an INT8 convolution only unscaled (docs/INT8.md: no engine for a
// residual scale other than 1), so a conv that adds a residual must write
// with its residual's scale. Joined are a FusedConv's residual (input 3) and
// its output, and an Add's inputs and output; joins chain, so a ResNet
// stage's block outputs end up in one group. A group's scale comes from the
// largest amax the table has for any member (TensorRT unifies element-wise
// adds the same way), and every member gets it. Values of groups the table
// says nothing about get no scale: they stay in FP16.
#pragma once

#include <map>
#include <string>

#include "ir/graph.h"
#include "quant/calibration_cache.h"

namespace anvil::quant {

// The groups described above: every non-constant value of `graph` -> its
// group's id (equal ids, one group). quant::unify_residual_scales
// (quant/qdq_scales.h) groups a Q/DQ model's scales with it too.
std::map<std::string, int> residual_groups(const ir::Graph& graph);

// Value name -> INT8 scale.
std::map<std::string, float> int8_activation_scales(const ir::Graph& graph,
                                                    const CalibrationTable& table);

}  // namespace anvil::quant
