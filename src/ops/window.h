// Sliding-window geometry shared by Conv and the pooling ops: reading and
// checking kernel_shape, strides, dilations, pads, auto_pad and ceil_mode, and
// computing output sizes and effective padding per spatial axis.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "ir/graph.h"
#include "ir/shape.h"

namespace anvil::ops {

enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };

// Which window attributes an op defines (the others must be absent).
struct WindowRules {
  bool has_ceil_mode = false;
  bool has_dilations = true;
};

// The attributes as written in the node, one entry per spatial axis.
struct WindowAttributes {
  std::vector<std::int64_t> kernel;
  std::vector<std::int64_t> strides;
  std::vector<std::int64_t> dilations;
  std::vector<std::int64_t> pads;  // all begins, then all ends (ONNX order)
  AutoPad auto_pad = AutoPad::kNotSet;
  bool ceil_mode = false;

  std::size_t spatial_rank() const { return kernel.size(); }
};

// Reads and checks the window attributes for `spatial_rank` axes. The kernel
// comes from kernel_shape, else from `kernel_fallback` (Conv's weight shape);
// kInvalidModel if neither gives one entry per axis, naming the node.
WindowAttributes read_window_attributes(const ir::Node& node, std::size_t spatial_rank,
                                        const WindowRules& rules,
                                        std::vector<std::int64_t> kernel_fallback = {});

// The concrete geometry of one spatial axis.
struct AxisWindow {
  std::int64_t in = 1;
  std::int64_t out = 1;
  std::int64_t kernel = 1;
  std::int64_t stride = 1;
  std::int64_t dilation = 1;
  std::int64_t pad_begin = 0;
  std::int64_t pad_end = 0;  // explicit padding only; ceil_mode never widens it

  // The first input index the window of output index o reads (may be < 0).
  std::int64_t start(std::int64_t o) const { return o * stride - pad_begin; }

  // The kernel taps [first, last) of output index o that read inside the
  // input (0 <= start + tap * dilation < in); empty when none do.
  struct Taps {
    std::int64_t first = 0;
    std::int64_t last = 0;
  };
  Taps taps_inside(std::int64_t o) const { return taps_within(o, 0, in); }
  // Like taps_inside(), but counting the explicit padding as inside too
  // (what AveragePool's count_include_pad divides by).
  Taps taps_inside_padding(std::int64_t o) const {
    return taps_within(o, -pad_begin, in + pad_end);
  }

 private:
  // The taps whose input index lies in [low, high).
  Taps taps_within(std::int64_t o, std::int64_t low, std::int64_t high) const {
    const std::int64_t s = start(o);
    Taps t;
    t.first = s >= low ? 0 : (low - s + dilation - 1) / dilation;
    t.last = s >= high ? 0 : std::min(kernel, (high - 1 - s) / dilation + 1);
    t.first = std::min(t.first, kernel);
    t.last = std::max(t.last, t.first);
    return t;
  }
};

// Output size and padding of `axis` for an input of size `in`; kInvalidModel
// (naming the node) when the window does not fit the padded input.
AxisWindow resolve_axis(const ir::Node& node, const WindowAttributes& window, std::size_t axis,
                        std::int64_t in);

// The output dimension of `axis` for a possibly symbolic input dimension.
ir::Dim output_dim(const ir::Node& node, const WindowAttributes& window, std::size_t axis,
                   const ir::Dim& in);

// The output shape [N, channels, spatial outputs...] of a window over x = [N, C, spatial...].
ir::Shape windowed_shape(const ir::Node& node, const WindowAttributes& window, const ir::Shape& x,
                         const ir::Dim& channels);

// The output shape of a global pool over x = [N, C, spatial...]: every spatial extent 1.
inline ir::Shape global_pooled_shape(const ir::Shape& x) {
  std::vector<ir::Dim> dims(x.rank(), ir::Dim::known(1));
  for (std::size_t i = 0; i < std::min<std::size_t>(2, x.rank()); ++i)
    dims[i] = x[i];
  return ir::Shape(std::move(dims));
}

// The geometry of up to three spatial axes, right-aligned in a depth, height,
// width triple whose unused leading axes have size 1, so kernels can use three
// fixed loops for 1-D, 2-D and 3-D alike.
using Window3d = std::array<AxisWindow, 3>;
// kUnsupported beyond three spatial axes.
Window3d resolve_3d(const ir::Node& node, const WindowAttributes& window,
                    std::span<const std::int64_t> in_spatial);

// taps_inside(o), or taps_inside_padding(o), for every output index o of an axis.
inline std::vector<AxisWindow::Taps> taps_per_output(const AxisWindow& a, bool include_padding) {
  std::vector<AxisWindow::Taps> taps(static_cast<std::size_t>(a.out));
  for (std::int64_t o = 0; o < a.out; ++o)
    taps[static_cast<std::size_t>(o)] =
        include_padding ? a.taps_inside_padding(o) : a.taps_inside(o);
  return taps;
}

// Product of the output sizes of a Window3d.
inline std::int64_t output_size(const Window3d& w) {
  return w[0].out * w[1].out * w[2].out;
}
// Product of the input sizes of a Window3d.
inline std::int64_t input_size(const Window3d& w) {
  return w[0].in * w[1].in * w[2].in;
}

}  // namespace anvil::ops
