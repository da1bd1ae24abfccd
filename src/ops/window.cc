#include "ops/window.h"

#include <algorithm>
#include <string>

#include "anvil/error.h"

namespace anvil::ops {
namespace {

template <typename... Parts>
[[noreturn]] void fail_node(const ir::Node& node, const Parts&... parts) {
  fail(ErrorKind::kInvalidModel, node.describe(), ": ", parts...);
}

AutoPad parse_auto_pad(const ir::Node& node) {
  const std::string value = node.attributes.get_string("auto_pad", "NOTSET");
  // Some exporters write an empty string for the default.
  if (value == "NOTSET" || value.empty()) return AutoPad::kNotSet;
  if (value == "SAME_UPPER") return AutoPad::kSameUpper;
  if (value == "SAME_LOWER") return AutoPad::kSameLower;
  if (value == "VALID") return AutoPad::kValid;
  fail_node(node, "auto_pad '", value, "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
}

// An ints attribute with one entry per axis (`count` entries), each >= min_value;
// `fallback` when absent.
std::vector<std::int64_t> read_per_axis(const ir::Node& node, const std::string& name,
                                        std::size_t count, std::int64_t min_value,
                                        std::vector<std::int64_t> fallback) {
  if (!node.attributes.has(name) && fallback.size() != count)
    fail_node(node, "attribute '", name, "' is required");
  std::vector<std::int64_t> values = node.attributes.get_ints(name, std::move(fallback));
  if (values.size() != count)
    fail_node(node, name, " has ", values.size(), " entries, expected ", count);
  for (std::int64_t v : values)
    if (v < min_value) fail_node(node, name, " has entry ", v, ", expected >= ", min_value);
  return values;
}

std::int64_t dilated_kernel(const WindowAttributes& w, std::size_t axis) {
  return (w.kernel[axis] - 1) * w.dilations[axis] + 1;
}

}  // namespace

WindowAttributes read_window_attributes(const ir::Node& node, std::size_t spatial_rank,
                                        const WindowRules& rules,
                                        std::vector<std::int64_t> kernel_fallback) {
  const ir::Attributes& attrs = node.attributes;
  if (!rules.has_dilations && attrs.has("dilations"))
    fail_node(node, "attribute 'dilations' is not defined for ", node.op_type, " at opset ",
              node.opset);
  if (!rules.has_ceil_mode && attrs.has("ceil_mode"))
    fail_node(node, "attribute 'ceil_mode' is not defined for ", node.op_type);

  WindowAttributes w;
  w.kernel = read_per_axis(node, "kernel_shape", spatial_rank, 1, std::move(kernel_fallback));
  w.strides =
      read_per_axis(node, "strides", spatial_rank, 1, std::vector<std::int64_t>(spatial_rank, 1));
  w.dilations =
      read_per_axis(node, "dilations", spatial_rank, 1, std::vector<std::int64_t>(spatial_rank, 1));
  w.pads = read_per_axis(node, "pads", 2 * spatial_rank, 0,
                         std::vector<std::int64_t>(2 * spatial_rank, 0));
  w.auto_pad = parse_auto_pad(node);
  const std::int64_t ceil_mode = attrs.get_int("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) fail_node(node, "ceil_mode must be 0 or 1");
  w.ceil_mode = ceil_mode == 1;

  // Exporters sometimes write zero pads next to auto_pad; only real ones conflict.
  const bool any_pad = std::any_of(w.pads.begin(), w.pads.end(), [](auto p) { return p != 0; });
  if (w.auto_pad != AutoPad::kNotSet && any_pad)
    fail_node(node, "pads and auto_pad cannot be used together");
  return w;
}

AxisWindow resolve_axis(const ir::Node& node, const WindowAttributes& w, std::size_t axis,
                        std::int64_t in) {
  const std::size_t rank = w.spatial_rank();
  AxisWindow a{.in = in,
               .out = 0,
               .kernel = w.kernel[axis],
               .stride = w.strides[axis],
               .dilation = w.dilations[axis],
               .pad_begin = w.pads[axis],
               .pad_end = w.pads[rank + axis]};
  const std::int64_t span = dilated_kernel(w, axis);
  switch (w.auto_pad) {
    case AutoPad::kNotSet: {
      const std::int64_t room = in + a.pad_begin + a.pad_end - span;
      if (room < 0)
        fail_node(node, "window of ", span, " does not fit spatial axis ", axis, " of size ", in,
                  " with pads ", a.pad_begin, "+", a.pad_end);
      a.out = (w.ceil_mode ? (room + a.stride - 1) / a.stride : room / a.stride) + 1;
      // ceil_mode may only add a window that starts inside the input or the
      // left padding (the PyTorch and ONNX reference rule).
      if (w.ceil_mode && (a.out - 1) * a.stride >= in + a.pad_begin) --a.out;
      break;
    }
    case AutoPad::kSameUpper:
    case AutoPad::kSameLower: {
      a.out = (in + a.stride - 1) / a.stride;
      const std::int64_t total = std::max<std::int64_t>(0, (a.out - 1) * a.stride + span - in);
      // SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning.
      a.pad_begin = w.auto_pad == AutoPad::kSameUpper ? total / 2 : total - total / 2;
      a.pad_end = total - a.pad_begin;
      break;
    }
    case AutoPad::kValid:
      if (in < span)
        fail_node(node, "window of ", span, " does not fit spatial axis ", axis, " of size ", in);
      a.out = (in - span) / a.stride + 1;
      a.pad_begin = a.pad_end = 0;
      break;
  }
  return a;
}

ir::Dim output_dim(const ir::Node& node, const WindowAttributes& w, std::size_t axis,
                   const ir::Dim& in) {
  if (in.is_known()) return ir::Dim::known(resolve_axis(node, w, axis, in.size).out);
  // A window that maps every position to itself keeps a symbolic size.
  const std::size_t rank = w.spatial_rank();
  const bool unit_stride = w.strides[axis] == 1;
  const bool same = w.auto_pad == AutoPad::kSameUpper || w.auto_pad == AutoPad::kSameLower;
  const bool size_preserving = w.auto_pad == AutoPad::kNotSet &&
                               w.pads[axis] + w.pads[rank + axis] == dilated_kernel(w, axis) - 1;
  if (unit_stride && (same || size_preserving)) return in;
  return ir::Dim::unknown();
}

ir::Shape windowed_shape(const ir::Node& node, const WindowAttributes& window, const ir::Shape& x,
                         const ir::Dim& channels) {
  ANVIL_CHECK(x.rank() == window.spatial_rank() + 2);
  std::vector<ir::Dim> dims{x[0], channels};
  for (std::size_t axis = 0; axis < window.spatial_rank(); ++axis)
    dims.push_back(output_dim(node, window, axis, x[axis + 2]));
  return ir::Shape(std::move(dims));
}

Window3d resolve_3d(const ir::Node& node, const WindowAttributes& w,
                    std::span<const std::int64_t> in_spatial) {
  const std::size_t rank = w.spatial_rank();
  ANVIL_CHECK(in_spatial.size() == rank);
  if (rank > 3)
    fail(ErrorKind::kUnsupported, node.describe(), ": ", rank,
         " spatial axes; at most 3 are supported");
  Window3d out{};
  const std::size_t first = 3 - rank;
  for (std::size_t axis = 0; axis < rank; ++axis)
    out[first + axis] = resolve_axis(node, w, axis, in_spatial[axis]);
  return out;
}

}  // namespace anvil::ops
