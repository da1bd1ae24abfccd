// Re-deriving a plan's geometry for other input shapes: what lets one plan
// serve every height and width of a profile with spatial ranges.
//
// A plan's tensors and layer params describe one geometry: its inputs' dims
// as lowered (lower.h), profile 0's opt shape. respecialize() walks the
// layers in order and recomputes, from concrete input dims, every tensor's
// dims and every layer's geometry params (reformat h/w; conv in/out h/w from
// its pads, strides and dilations, SAME pads again where the model asked for
// auto_pad; pool with ceil_mode as ops/window.h; conv_max_pool's conv and
// pool; global pool, quantize and dequantize h/w), exactly as lower_graph
// gives them at those dims. The batch stays as it is (-1 when dynamic).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace anvil::builder {

// Input name -> its dims (dims[0], the batch, is ignored). Inputs not named
// keep the plan's dims.
using InputDims = std::map<std::string, std::vector<std::int64_t>>;

// `plan` with the geometry of `inputs`: tensors' dims and layers' params
// recomputed, tactics and everything else kept, but no weights (`weights` is
// empty: runners read the original plan's). Throws kUnsupported naming the
// layer whose geometry cannot be re-derived (an unknown kind), and
// kInvalidArgument when the network does not run at these dims (a window
// larger than its padded input, a residual or Add whose operands' shapes
// differ at this size), naming the layer and the input dims.
plan::Plan respecialize(const plan::Plan& plan, const InputDims& inputs);

// Whether any profile lets a non-batch dim of an input vary.
bool has_spatial_ranges(const plan::Plan& plan);

// Every input's dims at `which` of `profile` ("min", "opt" or "max").
InputDims profile_dims(const plan::Plan& plan, int profile, const std::string& which);

// The activation arena (lower.h's plan_arena) large enough for every shape of
// every profile: planned at each profile's max batch and, for spatial ranges,
// its max height and width (tensor sizes grow with the input's).
std::size_t largest_arena_bytes(const plan::Plan& plan);

// Checks at build time that the plan runs at each profile's min, opt and max
// shapes (respecialize() at each), so the user learns of a layer that cannot
// follow the input's size before the plan ships. No-op without spatial ranges.
void check_spatial_profiles(const plan::Plan& plan);

}  // namespace anvil::builder
