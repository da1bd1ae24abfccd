// Explicit quantization: the INT8 scales of a model that carries them itself
// as ONNX QuantizeLinear/DequantizeLinear (Q/DQ) nodes, as PyTorch, NVIDIA's
// pytorch-quantization / ModelOpt and onnxruntime's QDQ quantizer export
// them, in place of a calibration cache.
//
// strip_qdq runs on the imported graph, before the optimization passes:
//  - Weights: a Q or DQ node whose inputs are all constants (an INT8 weight
//    with its per-tensor or per-channel scale, an int32 bias, or a float
//    weight fake-quantized by Q -> DQ) is evaluated with its CPU reference
//    kernel, as fold_constants would, so the conv reads the dequantized
//    float32 weight (the INT8 lowering quantizes it again per channel).
//  - Activations: x -> QuantizeLinear(s, zero point 0, int8) ->
//    DequantizeLinear(s, 0) -> y with one constant scale s becomes x: every
//    reader of y reads x, the pair goes, and scales[x] = s. Exporters may give
//    each consumer of x its own pair; when their scales differ the largest
//    wins (a smaller one would clip values the larger was chosen to keep) and
//    a note says so. When y is a graph output, x's producer produces y
//    instead, so the output keeps its name, and the scale is y's.
//  - Anything else stays in the graph with a note saying why and what to do:
//    a non-zero zero point or uint8 (Anvil's INT8 is symmetric), a
//    per-channel or computed activation scale, a Q without matching DQs, a DQ
//    of a runtime tensor no Q produced. The lowering then refuses the model
//    ("the GPU engine has no layer for this op").
//
// The passes keep the names of the values that survive them (a FusedConv
// produces its last fused node's output), so the names in `scales` are the
// ones the optimized graph's convs read and write. Pass the scales through
// unify_residual_scales on the optimized graph before lowering.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace anvil::quant {

struct QdqScales {
  std::map<std::string, float> scales;  // value name -> INT8 scale
  std::vector<std::string> notes;       // one line per pair kept or scale conflict
  int pairs_removed = 0;                // Q -> DQ pairs on activations (one per DQ)
  int weights_folded = 0;               // DQ nodes of constants folded to float32
};

// True when `graph` has a QuantizeLinear or DequantizeLinear node.
bool has_qdq(const ir::Graph& graph);

// Removes the Q/DQ nodes of `graph` (imported: sorted, shapes inferred) as
// the file comment says and returns the scales they held; leaves the graph
// sorted, shapes inferred and free of dead nodes.
QdqScales strip_qdq(ir::Graph& graph);

// `scales` made consistent with cuDNN's INT8 residual fusion, as
// int8_activation_scales does for calibrated scales: the values a residual
// addition joins (residual_groups in quant/int8_scales.h) all get the largest
// scale any of them has. Returns scales for the values of `optimized` (the
// graph after the passes) only; groups without any scale get none.
std::map<std::string, float> unify_residual_scales(const ir::Graph& optimized,
                                                   const std::map<std::string, float>& scales);

}  // namespace anvil::quant
