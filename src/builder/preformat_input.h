// Preformatted inputs: a caller that makes the engine's storage of an input
// itself (e.g. cuda::kernels::images_to_engine_storage, uint8 images to FP16
// NHWC in one pass) writes it straight into the context's arena, and the
// runtime skips the input's "reformat_in" layer (ExecutionContext::
// set_input_preformatted). The plan-side checks of that live here, apart
// from the GPU runtime, so that they are unit tested without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "plan/plan.h"

namespace anvil::builder {

// The one layer that reads an engine input and the storage tensor a caller
// may write instead: a reformat_in and its output (the layer is skipped
// when the input is preformatted), or a stem that reads the input itself
// and lists the storage as its input 1 (builder/fuse_conv_max_pool.h: the
// context then passes it a null input 0; nothing is skipped).
struct PreformatSite {
  int input_tensor = -1;
  int layer = -1;  // the reader's index in plan.layers
  int storage = -1;
  bool skip_layer = true;  // a reformat_in, left out when preformatted
};

// The site of `input`. kInvalidArgument when the plan has no such input
// (listing its inputs); kUnsupported, naming the input, when not exactly one
// layer reads it or that layer is neither of the above.
PreformatSite preformat_site(const plan::Plan& plan, std::string_view input);

// Where the input-consumed event goes when the layers in `skipped` (reformat
// layers of preformatted inputs, listed by their sites) do not run: after
// the last layer that reads an engine input or a skipped layer's storage,
// whose input the caller may overwrite then. -1: before the first layer (no
// layer reads one); plan.layers.size(): after the last layer, once every
// stream has joined (a storage reader runs on an auxiliary stream, so no
// point on stream 0 follows it).
std::ptrdiff_t input_consumed_after(const plan::Plan& plan, std::span<const PreformatSite> skipped);

// The caller writes a preformatted storage before the enqueue starts, while
// the arena planner has it live only from its site's layer on: a tensor of
// a layer that runs before that layer may share its bytes. The id of such a
// tensor at `offsets` (plan_arena at `batch`), or -1 when none does (always
// so when the reformat layer runs first).
int storage_clash(const plan::Plan& plan, const PreformatSite& site,
                  std::span<const std::size_t> offsets, std::int64_t batch);

}  // namespace anvil::builder
