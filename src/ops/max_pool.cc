// MaxPool: the maximum over each window (1-D, 2-D and 3-D; pads, strides,
// dilations, ceil_mode, auto_pad). Padding never wins: only input elements
// are compared. The optional Indices output is not supported.
#include <algorithm>
#include <limits>

#include "ops/op.h"
#include "ops/window.h"

namespace anvil::ops {
namespace {

template <typename T>
void max_pool(const T* x, T* y, std::int64_t planes, const Window3d& window) {
  const auto& [d, h, w] = window;
  const auto d_taps = taps_per_output(d, false);
  const auto h_taps = taps_per_output(h, false);
  const auto w_taps = taps_per_output(w, false);
  for (std::int64_t plane = 0; plane < planes; ++plane, x += input_size(window)) {
    for (std::int64_t od = 0; od < d.out; ++od)
      for (std::int64_t oh = 0; oh < h.out; ++oh)
        for (std::int64_t ow = 0; ow < w.out; ++ow) {
          // A window entirely in the padding has nothing to compare.
          T best = std::numeric_limits<T>::lowest();
          const auto [kw_first, kw_last] = w_taps[ow];
          for (std::int64_t kd = d_taps[od].first; kd < d_taps[od].last; ++kd)
            for (std::int64_t kh = h_taps[oh].first; kh < h_taps[oh].last; ++kh) {
              const std::int64_t id = d.start(od) + kd * d.dilation;
              const std::int64_t ih = h.start(oh) + kh * h.dilation;
              const T* row = x + (id * h.in + ih) * w.in + w.start(ow);
              for (std::int64_t kw = kw_first; kw < kw_last; ++kw)
                best = std::max(best, row[kw * w.dilation]);
            }
          *y++ = best;
        }
  }
}

class MaxPool final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32, DType::kUInt8, DType::kInt8});
    if (ctx.node().outputs.size() > 1)
      ctx.unsupported("the Indices output (argmax positions) is not supported");
    if (ctx.attributes().get_int("storage_order", 0) != 0)
      ctx.unsupported("storage_order=1 (column-major Indices) is not supported");
    const ir::Shape& x = ctx.input(0).shape;
    if (x.rank() < 3)
      ctx.fail("input X must have rank >= 3 (N, C, spatial...), got ", to_string(x));
    const WindowAttributes window = attributes(ctx.node(), x.rank() - 2);
    ctx.set_output(0, ctx.input(0).dtype, windowed_shape(ctx.node(), window, x, x[1]));
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Extents& e = x.extents();
    const Window3d window =
        resolve_3d(ctx.node, attributes(ctx.node, e.size() - 2), std::span(e).subspan(2));
    const std::int64_t planes = e[0] * e[1];
    Tensor& y = ctx.outputs[0];
    switch (x.dtype()) {
      case DType::kFloat32:
        return max_pool(x.data<float>(), y.data<float>(), planes, window);
      case DType::kUInt8:
        return max_pool(x.data<std::uint8_t>(), y.data<std::uint8_t>(), planes, window);
      case DType::kInt8:
        return max_pool(x.data<std::int8_t>(), y.data<std::int8_t>(), planes, window);
      default:
        ANVIL_CHECK(false);  // infer() admits no other dtype
    }
  }

 private:
  static WindowAttributes attributes(const ir::Node& node, std::size_t spatial_rank) {
    return read_window_attributes(node, spatial_rank, {.has_ceil_mode = true});
  }
};

ANVIL_REGISTER_OP(MaxPool, "MaxPool",
                  {.min_inputs = 1, .max_inputs = 1, .min_outputs = 1, .max_outputs = 2});

}  // namespace
}  // namespace anvil::ops
