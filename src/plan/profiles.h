// A plan's optimization profiles as the runtime uses them: the batch range of
// each (the engine runs one batch for all inputs), which profile suits a
// batch or a whole input shape (profiles may also give an image's height and
// width a range: builder/respecialize.h), and the tactic a layer was tuned to
// under each profile.
//
// A layer's tactic (LayerDesc::tactic, JSON) is {"identity": ..., "ms": ...}
// for profile 0, plus, in plans of several profiles, "profiles": [{"identity":
// ..., "ms": ...}, ...] with one entry per profile (entry 0 equal to the top).
// An entry may also hold "compiled": {"shape": ..., "cudnn": ...}
// (CompiledTactic).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anvil/types.h"
#include "plan/plan.h"

namespace anvil::plan {

using anvil::BatchRange;

// The batch range of every profile, in order. A plan without profiles, or
// with a profile whose inputs disagree on the batch or whose range is not
// 1 <= min <= opt <= max, is kInvalidArgument naming `label`.
std::vector<BatchRange> batch_ranges(const Plan& plan, std::string_view label);

// The profile whose range holds `batch` with the opt batch nearest to it (the
// lower index on a tie), or -1 when none holds it.
int best_profile(const std::vector<BatchRange>& ranges, std::int64_t batch);

// "profile 0: batch 1..32 (opt 16); profile 1: batch 64..192 (opt 128)", for errors.
std::string describe(const std::vector<BatchRange>& ranges);

// Whether `profile` holds `dims` for `input`: same rank, min <= dims <= max
// in every dim (an input the profile does not name: false).
bool holds(const Profile& profile, std::string_view input, std::span<const std::int64_t> dims);

// The profile that holds `dims` for `input` with its opt nearest to them (the
// batch first, then the other dims; the lower index on a tie), or -1. For
// plans whose profiles vary more than the batch (height and width).
int best_profile(const Plan& plan, std::string_view input, std::span<const std::int64_t> dims);

// Every profile's range for `input`, for errors:
// "profile 0: [1..16]x3x[160..288]x[160..288] (opt 8x3x224x224); profile 1: ..."
std::string describe_shapes(const Plan& plan, std::string_view input);

// The tactic identity `layer` was tuned to under `profile`, or nothing when the
// layer has none (untuned, or no entry for that profile).
std::optional<std::string> tactic_identity(const LayerDesc& layer, int profile);

// Sets `layer`'s tactic for `profile` (0 first; later ones append in order).
void set_tactic(LayerDesc& layer, int profile, const std::string& identity, float ms);

// A tactic as the library compiled it at the profile's opt shape (a conv_int8
// layer's cuDNN plan: cuda::QuantizedConv::serialize), so that a runtime at
// that shape restores it instead of compiling it again. `shape` is the
// problem it was compiled for, in the library wrapper's describe() words:
// the runtime uses `cudnn` only for the same problem.
struct CompiledTactic {
  std::string shape;
  std::string cudnn;
};

// The compiled tactic of `layer` under `profile`, or nothing (none stored,
// or not a pair of strings).
std::optional<CompiledTactic> tactic_compiled(const LayerDesc& layer, int profile);

// Attaches `compiled` to the tactic of `profile`, which set_tactic set.
void set_tactic_compiled(LayerDesc& layer, int profile, const CompiledTactic& compiled);

}  // namespace anvil::plan
