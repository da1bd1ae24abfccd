// The weights side of a quantized (INT8 or FP8 E4M3) convolution: symmetric
// per-output-channel quantization of a filter, and the requantization (input, weight and output
// scales, bias) folded into the two per-channel FP32 vectors the convolution's
// epilogue applies (docs/INT8.md, cuda/cudnn_quantized_conv.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "anvil/types.h"

namespace anvil::quant {

// The largest magnitude a quantized element takes: 127 for kInt8 (symmetric,
// -128 unused), 448 for kFloat8E4M3; kInvalidArgument for any other dtype.
float quantized_max(DType element);

// A filter of `rows` output channels quantized per row: real = scales[k] * values[...].
struct Int8Filter {
  std::vector<float> values;  // INT8: integers in [-127, 127]; FP8: E4M3 values; input order
  std::vector<float> scales;  // one per row: max|w[k]| / quantized_max, 1 for an all-zero row
};

// Quantizes `w` (rows of equal length, e.g. KRSC) symmetrically per row:
// q = clamp(rint(w / scale), -127, 127), rint half to even. -128 is never
// used, so that negating a weight is exact, as in TensorRT's symmetric scheme.
// kInvalidArgument if `rows` does not divide w.size() or a weight is not finite.
// With element kFloat8E4M3: q = e4m3(w / scale) (quant/fp8_e4m3.h: nearest,
// ties to even, saturating), each a value FP8 stores exactly.
Int8Filter quantize_filter(std::span<const float> w, std::int64_t rows,
                           DType element = DType::kInt8);

// The epilogue vectors of an INT8 convolution, k_pad entries each, zero past
// the k_real channels: scale[k] = x_scale * w_scales[k or 0] / y_scale and
// bias[k] = b[k] / y_scale, so that y = act(acc * scale[k] + bias[k]) is the
// output in y's INT8 units (ReLU commutes with a positive scale). w_scales has
// 1 (per-tensor) or k_real entries, b 0 (no bias) or k_real; y_scale is 1 for
// a float output. kInvalidArgument for scales that are not > 0 or sizes that
// do not fit.
struct Int8Requantization {
  std::vector<float> scale, bias;
};
Int8Requantization fold_requantization(float x_scale, const std::vector<float>& w_scales,
                                       const std::vector<float>& b, float y_scale,
                                       std::int64_t k_real, std::int64_t k_pad);

}  // namespace anvil::quant
