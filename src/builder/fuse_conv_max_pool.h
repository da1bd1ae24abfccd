// A plan-level fusion run at the end of lowering (FP16 plans): ResNet's stem,
// a "conv" (7x7, stride 2, pad 3, 4 stored input channels, 64 stored output
// channels, ReLU or no activation, no residual) whose output only a "pool"
// (max, 3x3, stride 2, pad 1) reads, becomes one "conv_max_pool" layer run
// by cuda/kernels/stem_conv_pool.h. The conv's output tensor is then read by
// no layer and takes no arena memory.
//
// In an INT8 plan the pooled tensor usually feeds INT8 convs only, through
// one "quantize" layer. A conv_max_pool whose output only such a layer reads
// (no other layer, not an engine output) then writes the quantized tensor
// itself: it becomes a "conv_max_pool_int8" layer (a kind of its own, so that
// a runtime without it refuses the plan rather than writing FP16 into an
// INT8 tensor), its output the quantize layer's, params["out_scale"] the
// quantize's "scale", and the quantize layer goes. The kernel quantizes the
// very FP16 values it would have stored, so the result is bit-identical,
// without the FP16 tensor's write and re-read (which then takes no memory).
//
// The stem also reads the network's input itself where that is an FP32 NCHW
// RGB engine input whose only reader is the "reformat_in" to the stem's FP16
// NHWC tensor (fold_stem_input): the reformat layer goes, and the stem lists
// two inputs, the engine input (what it reads, converting as reformat_in
// did, to the same bits) and the FP16 tensor, now written by no layer. That
// one stays for preformatted inputs (builder/preformat_input.h): a caller
// that writes it (the pipeline's uint8 images) has the context pass the
// stem a null input 0, and the stem reads input 1 instead. On an H100 this
// saves about 0.028 ms of ResNet-18's 0.86 ms at batch 128 (INT8), the
// reformat's 0.048 ms less the 0.020 ms the stem spends converting.
#pragma once

#include "plan/plan.h"

namespace anvil::builder {

// Fuses every such conv + pool pair in `plan`, then folds every such
// quantize layer (fold_stem_quantize) and input reformat (fold_stem_input);
// returns how many pairs it fused.
int fuse_conv_max_pool(plan::Plan& plan);

// Folds each "reformat_in" whose output only a one-input conv_max_pool(_int8)
// reads into it, as above, where the reformat reads an FP32 NCHW engine
// input of 3 channels into FP16 NHWC of 4 on the stem's stream; returns how
// many.
int fold_stem_input(plan::Plan& plan);

// Folds each "quantize" layer that alone reads a conv_max_pool's output into
// that layer, as above; returns how many. Layers on different streams
// (plan/streams.h) are left alone: lowering puts every layer on stream 0.
int fold_stem_quantize(plan::Plan& plan);

}  // namespace anvil::builder
