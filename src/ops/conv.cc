// Conv: N-d convolution (1-D, 2-D and 3-D run) with groups, dilations, pads,
// strides, auto_pad and an optional bias. Each group of each image is an
// im2col copy followed by one GEMM: Y[Mg, P] = W[Mg, Cg*K] * col[Cg*K, P].
#include <algorithm>
#include <vector>

#include "ops/gemm_kernel.h"
#include "ops/op.h"
#include "ops/window.h"

namespace anvil::ops {
namespace {

// The sizes a run needs, from concrete shapes.
struct ConvGeometry {
  std::int64_t batch = 0;
  std::int64_t channels = 0;  // C
  std::int64_t maps = 0;      // M
  std::int64_t group = 1;
  std::int64_t group_channels = 0;  // Cg = C / group
  std::int64_t group_maps = 0;      // Mg = M / group
  std::int64_t kernel_volume = 1;   // product of the kernel sizes
  Window3d window{};

  std::int64_t col_rows() const { return group_channels * kernel_volume; }
  std::int64_t out_volume() const { return output_size(window); }
  std::int64_t in_volume() const { return input_size(window); }
};

WindowAttributes read_conv_window(const ir::Node& node, std::size_t spatial_rank,
                                  std::vector<std::int64_t> kernel_from_weights) {
  return read_window_attributes(node, spatial_rank, {.has_ceil_mode = false},
                                std::move(kernel_from_weights));
}

ConvGeometry conv_geometry(const ir::Node& node, const Extents& x, const Extents& w,
                           std::int64_t group) {
  const std::size_t spatial = x.size() - 2;
  const Extents kernel(w.begin() + 2, w.end());
  const WindowAttributes attrs = read_conv_window(node, spatial, kernel);
  ConvGeometry g;
  g.batch = x[0];
  g.channels = x[1];
  g.maps = w[0];
  g.group = group;
  g.group_channels = x[1] / group;
  g.group_maps = w[0] / group;
  for (std::int64_t k : kernel)
    g.kernel_volume *= k;
  g.window = resolve_3d(node, attrs, std::span(x).subspan(2));
  return g;
}

// Output indices [first, last) of an axis whose input index o * stride + offset
// lies in [0, in).
std::pair<std::int64_t, std::int64_t> valid_outputs(const AxisWindow& a, std::int64_t offset) {
  auto ceil_div = [](std::int64_t n, std::int64_t d) { return n <= 0 ? 0 : (n + d - 1) / d; };
  const std::int64_t first = std::min(a.out, ceil_div(-offset, a.stride));
  const std::int64_t last =
      a.in - 1 - offset < 0 ? 0 : std::min(a.out, (a.in - 1 - offset) / a.stride + 1);
  return {first, std::max(first, last)};
}

// One row of the im2col matrix along the width axis: dst[ow] = src[ow * stride + offset],
// zero where that falls in the padding.
void fill_col_row(const float* src, const AxisWindow& a, std::int64_t offset, float* dst) {
  const auto [first, last] = valid_outputs(a, offset);
  std::fill(dst, dst + first, 0.0f);
  if (a.stride == 1) {
    std::copy(src + first + offset, src + last + offset, dst + first);
  } else {
    for (std::int64_t o = first; o < last; ++o)
      dst[o] = src[o * a.stride + offset];
  }
  std::fill(dst + last, dst + a.out, 0.0f);
}

// col[(c, kd, kh, kw), (od, oh, ow)] = x[c, od*sd - pd + kd*dd, oh*sh - ph + kh*dh, ...],
// zero in the padding.
void im2col(const float* x, const ConvGeometry& g, float* col) {
  const auto& [d, h, w] = g.window;
  for (std::int64_t c = 0; c < g.group_channels; ++c) {
    const float* plane = x + c * g.in_volume();
    for (std::int64_t kd = 0; kd < d.kernel; ++kd)
      for (std::int64_t kh = 0; kh < h.kernel; ++kh)
        for (std::int64_t kw = 0; kw < w.kernel; ++kw) {
          const std::int64_t w_offset = kw * w.dilation - w.pad_begin;
          for (std::int64_t od = 0; od < d.out; ++od) {
            const std::int64_t id = d.start(od) + kd * d.dilation;
            for (std::int64_t oh = 0; oh < h.out; ++oh, col += w.out) {
              const std::int64_t ih = h.start(oh) + kh * h.dilation;
              if (id < 0 || id >= d.in || ih < 0 || ih >= h.in) {
                std::fill(col, col + w.out, 0.0f);
                continue;
              }
              fill_col_row(plane + (id * h.in + ih) * w.in, w, w_offset, col);
            }
          }
        }
  }
}

// A 1x1 window with unit strides and no padding reads the input as is.
bool is_pointwise(const ConvGeometry& g) {
  return std::all_of(g.window.begin(), g.window.end(), [](const AxisWindow& a) {
    return a.kernel == 1 && a.stride == 1 && a.pad_begin == 0 && a.out == a.in;
  });
}

class Conv final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32});
    ctx.expect_dtype(1, {DType::kFloat32});
    if (ctx.has_input(2)) ctx.expect_dtype(2, {DType::kFloat32});
    const ir::Shape& x = ctx.input(0).shape;
    const ir::Shape& w = ctx.input(1).shape;
    if (x.rank() < 3)
      ctx.fail("input X must have rank >= 3 (N, C, spatial...), got ", to_string(x));
    if (w.rank() != x.rank())
      ctx.fail("weights W ", to_string(w), " must have the rank of X ", to_string(x));
    const std::int64_t group = read_group(ctx);
    check_channels(ctx, x, w, group);

    const std::size_t spatial = x.rank() - 2;
    // The kernel comes from kernel_shape or the weights; if neither is known
    // yet, the other attributes are still checked, against a 1-sized kernel.
    std::vector<std::int64_t> kernel;
    for (std::size_t i = 2; i < w.rank(); ++i)
      kernel.push_back(w[i].size);
    const bool kernel_known =
        ctx.attributes().has("kernel_shape") ||
        std::all_of(kernel.begin(), kernel.end(), [](std::int64_t k) { return k >= 0; });
    if (!kernel_known) kernel.assign(spatial, 1);
    const WindowAttributes window = read_conv_window(ctx.node(), spatial, kernel);
    for (std::size_t i = 0; i < spatial; ++i)
      if (w[i + 2].is_known() && w[i + 2].size != window.kernel[i])
        ctx.fail("kernel_shape ", window.kernel[i], " disagrees with weights ", to_string(w),
                 " on spatial axis ", i);

    std::vector<ir::Dim> dims{x[0], w[0]};
    for (std::size_t i = 0; i < spatial; ++i)
      dims.push_back(kernel_known ? output_dim(ctx.node(), window, i, x[i + 2])
                                  : ir::Dim::unknown());
    ctx.set_output(0, DType::kFloat32, ir::Shape(std::move(dims)));
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const ConvGeometry g =
        conv_geometry(ctx.node, x.extents(), w.extents(), ctx.attributes().get_int("group", 1));
    const float* bias = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
    const bool pointwise = is_pointwise(g);
    std::vector<float> col(pointwise ? 0 : static_cast<std::size_t>(g.col_rows() * g.out_volume()));
    const float* xs = x.data<float>();
    const float* ws = w.data<float>();
    float* ys = ctx.outputs[0].data<float>();
    const std::int64_t p = g.out_volume();
    for (std::int64_t n = 0; n < g.batch; ++n)
      for (std::int64_t grp = 0; grp < g.group; ++grp) {
        const float* x_group = xs + (n * g.channels + grp * g.group_channels) * g.in_volume();
        const std::int64_t first_map = grp * g.group_maps;
        float* y_group = ys + (n * g.maps + first_map) * p;
        if (bias)
          for (std::int64_t m = 0; m < g.group_maps; ++m)
            std::fill_n(y_group + m * p, p, bias[first_map + m]);
        if (!pointwise) im2col(x_group, g, col.data());
        gemm(ConstMatrix::row_major(ws + first_map * g.col_rows(), g.group_maps, g.col_rows()),
             ConstMatrix::row_major(pointwise ? x_group : col.data(), g.col_rows(), p),
             MutableMatrix::row_major(y_group, g.group_maps, p), 1.0f, bias != nullptr);
      }
  }

  std::int64_t macs(const InferContext& ctx) const override {
    auto x = ctx.input(0).shape.extents();
    auto w = ctx.input(1).shape.extents();
    if (!x || !w) return 0;
    const ConvGeometry g = conv_geometry(ctx.node(), *x, *w, ctx.attributes().get_int("group", 1));
    return g.batch * g.maps * g.out_volume() * g.col_rows();
  }

 private:
  static std::int64_t read_group(const InferContext& ctx) {
    const std::int64_t group = ctx.attributes().get_int("group", 1);
    if (group < 1) ctx.fail("group must be >= 1, got ", group);
    return group;
  }

  // C == Cg * group, M divisible by group, bias of M entries, where known.
  static void check_channels(const InferContext& ctx, const ir::Shape& x, const ir::Shape& w,
                             std::int64_t group) {
    if (x[1].is_known() && w[1].is_known() && x[1].size != w[1].size * group)
      ctx.fail("X has ", x[1].size, " channels but W ", to_string(w), " with group ", group,
               " expects ", w[1].size * group);
    if (w[0].is_known() && w[0].size % group != 0)
      ctx.fail("W has ", w[0].size, " output channels, not a multiple of group ", group);
    if (!ctx.has_input(2)) return;
    const ir::Shape& b = ctx.input(2).shape;
    if (b.rank() != 1 || (b[0].is_known() && w[0].is_known() && b[0].size != w[0].size))
      ctx.fail("bias B ", to_string(b), " must have one entry per output channel of W ",
               to_string(w));
  }
};

ANVIL_REGISTER_OP(Conv, "Conv", {.min_inputs = 2, .max_inputs = 3});

}  // namespace
}  // namespace anvil::ops
