// Pad (opset 11+ form): inputs data, pads ([begin of each axis..., end of
// each axis...], int64), an optional scalar constant_value of data's dtype
// and, from opset 18, optional axes the pads refer to. Negative pads crop.
// Only mode "constant" is supported; reflect, edge and wrap are not.
#include <algorithm>
#include <cstring>

#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

// How much one dimension grows (or, when negative, shrinks) at each end.
struct AxisPads {
  std::int64_t begin = 0, end = 0;
};

class Pad final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const TensorInfo& x = ctx.input(0);
    check_mode(ctx);
    check_constant_value(ctx);
    std::vector<ir::Dim> dims = x.shape.dims();
    if (!ctx.constant(1) || (ctx.has_input(3) && !ctx.constant(3))) {
      ctx.expect_dtype(1, {DType::kInt64, DType::kInt32});
      for (ir::Dim& d : dims)
        d = ir::Dim::unknown();
      ctx.set_output(0, x.dtype, ir::Shape(std::move(dims)));
      return;
    }
    const std::vector<AxisPads> pads = axis_pads(ctx);
    for (std::size_t d = 0; d < dims.size(); ++d)
      dims[d] = padded(ctx, dims[d], pads[d], d);
    ctx.set_output(0, x.dtype, ir::Shape(std::move(dims)));
  }

  void run(RunContext& ctx) const override {
    const std::vector<AxisPads> pads = axis_pads(concrete_context(ctx));
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.outputs[0];
    fill(y, ctx.has_input(2) ? ctx.inputs[2] : nullptr);
    // The part of the input that survives cropping, and where it lands.
    const std::size_t rank = x.rank();
    std::vector<std::int64_t> src_begin(rank), dst_begin(rank), extents(rank);
    for (std::size_t d = 0; d < rank; ++d) {
      const std::int64_t crop_begin = std::max<std::int64_t>(0, -pads[d].begin);
      const std::int64_t crop_end = std::max<std::int64_t>(0, -pads[d].end);
      src_begin[d] = crop_begin;
      dst_begin[d] = std::max<std::int64_t>(0, pads[d].begin);
      extents[d] = std::max<std::int64_t>(0, x.extents()[d] - crop_begin - crop_end);
      if (extents[d] == 0) return;
    }
    const std::vector<std::int64_t> src_strides = row_major_strides(x.extents());
    const std::vector<std::int64_t> dst_strides = row_major_strides(y.extents());
    std::int64_t src_offset = 0, dst_offset = 0;
    for (std::size_t d = 0; d < rank; ++d) {
      src_offset += src_begin[d] * src_strides[d];
      dst_offset += dst_begin[d] * dst_strides[d];
    }
    const auto element_size = static_cast<std::int64_t>(size_of(x.dtype()));
    copy_strided(x.bytes() + src_offset * element_size, src_strides,
                 y.bytes() + dst_offset * element_size, dst_strides, extents,
                 static_cast<std::size_t>(element_size));
  }

 private:
  static void check_mode(const InferContext& ctx) {
    const std::string mode = ctx.attributes().get_string("mode", "constant");
    if (mode == "constant") return;
    if (mode == "reflect" || mode == "edge" || (mode == "wrap" && ctx.opset() >= 19))
      ctx.unsupported("mode '", mode, "' is not supported (only 'constant')");
    ctx.fail("unknown mode '", mode, "'");
  }

  static void check_constant_value(const InferContext& ctx) {
    if (!ctx.has_input(2)) return;
    const TensorInfo& value = ctx.input(2);
    if (value.dtype != ctx.input(0).dtype)
      ctx.fail("constant_value has dtype ", to_string(value.dtype), ", data has ",
               to_string(ctx.input(0).dtype));
    const ir::Dim count = dim_product(ctx, value.shape.dims());
    if (value.shape.rank() > 1 || (count.is_known() && count.size != 1))
      ctx.fail("constant_value must be a scalar, got shape ", to_string(value.shape));
  }

  // Begin and end pads of every dimension of the input.
  static std::vector<AxisPads> axis_pads(const InferContext& ctx) {
    const std::size_t rank = ctx.input(0).shape.rank();
    std::vector<std::size_t> axes(rank);
    for (std::size_t d = 0; d < rank; ++d)
      axes[d] = d;
    if (ctx.has_input(3)) {
      if (ctx.opset() < 18) ctx.fail("the axes input exists from opset 18");
      axes = normalize_axes(ctx, int_list_input(ctx, 3, "axes"), rank);
    }
    const std::vector<std::int64_t> pads = int_list_input(ctx, 1, "pads");
    if (pads.size() != 2 * axes.size())
      ctx.fail("pads has ", pads.size(), " entries, expected ", 2 * axes.size(),
               " (a begin and an end for each of ", axes.size(), " axes)");
    std::vector<AxisPads> out(rank);
    for (std::size_t i = 0; i < axes.size(); ++i)
      out[axes[i]] = {pads[i], pads[i + axes.size()]};
    return out;
  }

  static ir::Dim padded(const InferContext& ctx, const ir::Dim& dim, const AxisPads& p,
                        std::size_t axis) {
    std::int64_t grow = 0, size = 0;
    if (__builtin_add_overflow(p.begin, p.end, &grow)) ctx.fail("pads of axis ", axis, " overflow");
    if (!dim.is_known()) return grow == 0 ? dim : ir::Dim::unknown();
    if (__builtin_add_overflow(dim.size, grow, &size) || size < 0)
      ctx.fail("pads ", p.begin, ", ", p.end, " of axis ", axis, " do not fit a dimension of size ",
               dim.size);
    return ir::Dim::known(size);
  }

  // Sets every element of y to the scalar `value` (zero when omitted).
  static void fill(Tensor& y, const Tensor* value) {
    const std::size_t element_size = size_of(y.dtype());
    std::byte* out = y.bytes();
    const std::size_t bytes = y.byte_size();
    if (!value || value->element_count() == 0) {
      if (bytes != 0) std::memset(out, 0, bytes);
      return;
    }
    for (std::size_t i = 0; i < bytes; i += element_size)
      std::memcpy(out + i, value->bytes(), element_size);
  }
};

ANVIL_REGISTER_OP(Pad, "Pad", {.min_inputs = 2, .max_inputs = 4});

}  // namespace
}  // namespace anvil::ops
