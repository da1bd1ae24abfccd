// A plan-level fusion run at the end of lowering (FP16 plans): ResNet's stem,
// a "conv" (7x7, stride 2, pad 3, 4 stored input channels, 64 stored output
// channels, ReLU or no activation, no residual) whose output only a "pool"
// (max, 3x3, stride 2, pad 1) reads, becomes one "conv_max_pool" layer run
// by cuda/kernels/stem_conv_pool.h. The conv's output tensor is then read by
// no layer and takes no arena memory.
#pragma once

#include "plan/plan.h"

namespace anvil::builder {

// Fuses every such pair in `plan`; returns how many.
int fuse_conv_max_pool(plan::Plan& plan);

}  // namespace anvil::builder
