// AveragePool: the mean over each window (1-D, 2-D and 3-D; pads, strides,
// ceil_mode, auto_pad, count_include_pad, and dilations from opset 19).
// count_include_pad=1 divides by the taps inside the input or its explicit
// padding (never the extra room ceil_mode adds), 0 by the input taps only.
#include "ops/op.h"
#include "ops/window.h"

namespace anvil::ops {
namespace {

void average_pool(const float* x, float* y, std::int64_t planes, const Window3d& window,
                  bool count_include_pad) {
  const auto& [d, h, w] = window;
  const auto d_taps = taps_per_output(d, false);
  const auto h_taps = taps_per_output(h, false);
  const auto w_taps = taps_per_output(w, false);
  const auto d_count = taps_per_output(d, count_include_pad);
  const auto h_count = taps_per_output(h, count_include_pad);
  const auto w_count = taps_per_output(w, count_include_pad);
  auto size = [](const AxisWindow::Taps& t) { return t.last - t.first; };
  for (std::int64_t plane = 0; plane < planes; ++plane, x += input_size(window)) {
    for (std::int64_t od = 0; od < d.out; ++od)
      for (std::int64_t oh = 0; oh < h.out; ++oh)
        for (std::int64_t ow = 0; ow < w.out; ++ow) {
          float sum = 0.0f;
          const auto [kw_first, kw_last] = w_taps[ow];
          for (std::int64_t kd = d_taps[od].first; kd < d_taps[od].last; ++kd)
            for (std::int64_t kh = h_taps[oh].first; kh < h_taps[oh].last; ++kh) {
              const std::int64_t id = d.start(od) + kd * d.dilation;
              const std::int64_t ih = h.start(oh) + kh * h.dilation;
              const float* row = x + (id * h.in + ih) * w.in + w.start(ow);
              for (std::int64_t kw = kw_first; kw < kw_last; ++kw)
                sum += row[kw * w.dilation];
            }
          const std::int64_t count = size(d_count[od]) * size(h_count[oh]) * size(w_count[ow]);
          // A window entirely in the padding (count 0) averages nothing.
          *y++ = count > 0 ? sum / static_cast<float>(count) : 0.0f;
        }
  }
}

class AveragePool final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32});
    const ir::Shape& x = ctx.input(0).shape;
    if (x.rank() < 3)
      ctx.fail("input X must have rank >= 3 (N, C, spatial...), got ", to_string(x));
    const std::int64_t count_include_pad = ctx.attributes().get_int("count_include_pad", 0);
    if (count_include_pad != 0 && count_include_pad != 1)
      ctx.fail("count_include_pad must be 0 or 1, got ", count_include_pad);
    const WindowAttributes window = attributes(ctx.node(), x.rank() - 2);
    ctx.set_output(0, DType::kFloat32, windowed_shape(ctx.node(), window, x, x[1]));
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Extents& e = x.extents();
    const Window3d window =
        resolve_3d(ctx.node, attributes(ctx.node, e.size() - 2), std::span(e).subspan(2));
    average_pool(x.data<float>(), ctx.outputs[0].data<float>(), e[0] * e[1], window,
                 ctx.attributes().get_int("count_include_pad", 0) == 1);
  }

 private:
  static WindowAttributes attributes(const ir::Node& node, std::size_t spatial_rank) {
    return read_window_attributes(node, spatial_rank,
                                  {.has_ceil_mode = true, .has_dilations = node.opset >= 19});
  }
};

ANVIL_REGISTER_OP(AveragePool, "AveragePool", {.min_inputs = 1, .max_inputs = 1});

}  // namespace
}  // namespace anvil::ops
