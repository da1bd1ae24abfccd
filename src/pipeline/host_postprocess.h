// The pipeline's per-image pre- and post-processing on the host: uint8 image
// normalization, softmax and top-k. The CPU executor uses them; they are also
// the reference the GPU executor's kernels are tested against.
#pragma once

#include <cstdint>
#include <span>

#include "anvil/pipeline.h"

namespace anvil::pipeline {

// Converts one H x W x 3 RGB image to 3 x H x W floats:
// (pixel / 255 - mean[c]) / stddev[c]. `out` holds 3 * H * W floats.
void normalize_uint8_image(std::span<const std::uint8_t> hwc, std::int64_t height,
                           std::int64_t width, const float (&mean)[3], const float (&stddev)[3],
                           std::span<float> out);
// The same for one 3 x H x W image given as R, G and B planes.
void normalize_uint8_planar_image(std::span<const std::uint8_t> chw, std::int64_t height,
                                  std::int64_t width, const float (&mean)[3],
                                  const float (&stddev)[3], std::span<float> out);

// Replaces `values` by their softmax (max-subtracted, so large logits do not
// overflow). A NaN, or a maximum of +-infinity, makes every value NaN.
void softmax_in_place(std::span<float> values);

// The `out.size()` largest of `scores` with their indices, largest first; ties
// go to the lower index and NaNs rank below every number, so the order is
// fully determined. `out.size()` must not exceed `scores.size()`.
void top_k(std::span<const float> scores, std::span<Classification> out);

}  // namespace anvil::pipeline
