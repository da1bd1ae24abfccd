// Weights as the GPU engine wants them: FP16 conversion, convolution filters
// repacked from ONNX's [K, C/groups, R, S] to KRSC with zero-padded channels,
// Gemm weights transposed to [N, K] with alpha folded in, and the plan's
// weights blob they are appended to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "anvil/types.h"
#include "core/tensor.h"
#include "plan/plan.h"

namespace anvil::builder {

// IEEE 754 binary16 bits of `value`, rounded to nearest, ties to even (the
// rounding of CUDA's __float2half_rn): magnitudes from 65520 up become
// infinity, below 2^-25 zero (keeping the sign), in between subnormals; NaN
// stays a quiet NaN.
std::uint16_t float_to_half(float value);

// The float a binary16 holds (exact: every half is a float).
float half_to_float(std::uint16_t bits);

// `n` rounded up to a multiple of `multiple`.
inline std::int64_t round_up(std::int64_t n, std::int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

// A convolution filter in the engine's layout: `values` holds
// [k_pad, r, s, c_filter] (KRSC), zero wherever it has no ONNX counterpart.
//
// How channels are padded depends on the grouping (c = the input's logical
// channels, c_pad = the channels its tensor stores, a multiple of the
// alignment):
//  - groups == 1: c_filter = c_pad, k_pad = k rounded up; the filter is zero
//    for k >= K and for c >= C.
//  - depthwise (C/groups == 1, any multiplier m = K/groups): the conv keeps one
//    group per stored channel: groups = c_pad, c_filter = 1, k_pad = c_pad * m;
//    the filters of padded groups are zero.
//  - other grouped convs whose C and K need no padding: as in ONNX (groups,
//    c_filter = C/groups, k_pad = K).
//  - other grouped convs: densified to groups = 1 with a block-diagonal filter
//    (zero across groups), so that padding stays at the end of the channels.
struct PackedFilter {
  std::vector<float> values;
  std::int64_t k_pad = 0;
  std::int64_t r = 0;
  std::int64_t s = 0;
  std::int64_t c_filter = 0;
  std::int64_t groups = 1;  // the groups the engine runs
};

// Packs ONNX filter `w` ([K, C/groups, R, S], FP32) of a conv with `groups`
// reading a tensor that stores `c_pad` channels; K is padded to `align`.
PackedFilter pack_conv_filter(const Tensor& w, std::int64_t groups, std::int64_t c_pad,
                              std::int64_t align);

// Gemm weights B ([K, N], or [N, K] when `trans_b`) as W = alpha * B^T,
// [n_pad, k_pad] row-major and zero-padded, so that the engine computes X·W^T.
std::vector<float> pack_gemm_weights(const Tensor& b, bool trans_b, float alpha, std::int64_t k_pad,
                                     std::int64_t n_pad);

// Appends `values` converted to `dtype` (kFloat32, kFloat16, kInt8 for
// values that are integers in [-127, 127], kFloat8E4M3 for values that are
// E4M3 values, quant/fp8_e4m3.h) to `blob` at
// the next multiple of plan::kWeightsAlignment, and returns where they went
// (dims must hold values.size() elements).
plan::WeightRef append_weights(std::vector<std::byte>& blob, std::span<const float> values,
                               DType dtype, std::vector<std::int64_t> dims);

}  // namespace anvil::builder
