// Shared by QuantizeLinear and DequantizeLinear: checking the scale (input 1)
// and zero point (input 2) against x (input 0), and finding which scale each
// element of x uses.
//
// A scalar (or one-element) scale quantizes the whole tensor; a 1-D scale of
// length x.shape[axis] (opset 13+, axis default 1) gives one scale per index
// along `axis`, the per-channel weights PyTorch and NVIDIA's tools export.
// Blocked quantization (opset 21 block_size) is not supported.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/axes.h"
#include "ops/op.h"

namespace anvil::ops {

// x viewed as [outer, channels, inner]; element i uses scale channel_of(i).
// channels == 1 for a per-tensor scale.
struct QuantLayout {
  std::int64_t channels = 1;
  std::int64_t inner = 1;

  std::int64_t channel_of(std::int64_t i) const { return (i / inner) % channels; }
};

// Validates the scale and zero point of a quantization node against x and its
// attributes; errors name the node.
inline void check_quant_params(const InferContext& ctx) {
  if (ctx.opset() >= 21) {
    const std::int64_t block_size = ctx.attributes().get_int("block_size", 0);
    if (block_size != 0)
      ctx.unsupported("blocked quantization (block_size ", block_size, ") is not supported");
  }
  ctx.expect_dtype(1, {DType::kFloat32});
  const ir::Shape& x = ctx.input(0).shape;
  const ir::Shape& scale = ctx.input(1).shape;
  if (scale.rank() > 1) ctx.fail("the scale must be a scalar or 1-D, got shape ", to_string(scale));
  if (ctx.has_input(2)) {
    const ir::Shape& zero_point = ctx.input(2).shape;
    const auto s = scale.extents(), z = zero_point.extents();
    if (zero_point.rank() > 1 || (s && z && element_count(*s) != element_count(*z)))
      ctx.fail("the zero point's shape ", to_string(zero_point), " does not match the scale's ",
               to_string(scale));
  }
  // One-element scales are per-tensor whatever `axis` says.
  if (scale.rank() == 0 || (scale[0].is_known() && scale[0].size == 1)) return;
  if (ctx.opset() < 13 && scale[0].is_known())
    ctx.fail("a scale of ", scale[0].size, " elements (per-axis) needs opset 13, the model has ",
             ctx.opset());
  const std::size_t axis = normalize_axis(ctx, ctx.attributes().get_int("axis", 1), x.rank());
  if (scale[0].is_known() && x[axis].is_known() && scale[0].size != x[axis].size)
    ctx.fail("the scale has ", scale[0].size, " elements but x has ", x[axis].size, " along axis ",
             axis, " (shape ", to_string(x), ")");
}

// The layout of a run whose node check_quant_params accepted.
inline QuantLayout quant_layout(const RunContext& ctx) {
  const Extents& x = ctx.input(0).extents();
  if (ctx.input(1).element_count() == 1) return {};
  const auto rank = static_cast<std::int64_t>(x.size());
  std::int64_t axis = ctx.attributes().get_int("axis", 1);
  if (axis < 0) axis += rank;
  QuantLayout layout{.channels = x[static_cast<std::size_t>(axis)]};
  for (std::int64_t d = axis + 1; d < rank; ++d)
    layout.inner *= x[static_cast<std::size_t>(d)];
  return layout;
}

// Rounds halfway cases to the even neighbour, as ONNX requires, without
// depending on the floating-point environment's rounding mode.
inline float round_half_to_even(float v) {
  const float r = std::round(v);  // halfway cases away from zero
  if (std::abs(v - r) == 0.5f) return 2.0f * std::round(v / 2.0f);
  return r;
}

// round(v) + zero_point, saturated to T's range. NaN maps to the zero point:
// converting it to an integer would be undefined behaviour.
template <typename T>
T quantize_value(float v, T zero_point) {
  if (std::isnan(v)) return zero_point;
  const float q = round_half_to_even(v) + static_cast<float>(zero_point);
  return static_cast<T>(std::clamp(q, static_cast<float>(std::numeric_limits<T>::min()),
                                   static_cast<float>(std::numeric_limits<T>::max())));
}

}  // namespace anvil::ops
