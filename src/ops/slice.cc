// Slice (opset 10+ form): inputs data, starts, ends and optional axes and
// steps (int64 or int32). Negative starts/ends count from the end and are
// clamped to the dimension (so INT64_MAX means "to the end"); negative steps
// walk backwards. Any data dtype.
#include <algorithm>
#include <limits>

#include "ops/axes.h"
#include "ops/strided_copy.h"

namespace anvil::ops {
namespace {

// What one entry of starts/ends/axes/steps asks for, before clamping.
struct AxisRequest {
  std::size_t axis = 0;
  std::int64_t start = 0, end = 0, step = 1;
};

// Where a dimension's slice begins in the input and how many elements it takes.
struct AxisRange {
  std::int64_t start = 0, step = 1, count = 0;
};

// Exporters write "to the end" as INT64_MAX (or INT32_MAX for int32 inputs):
// a bound this large covers any dimension a tensor can have in practice,
// which keeps a symbolic dimension of a full slice such as x[:, 1:][:, :].
constexpr std::int64_t kHuge = std::numeric_limits<std::int32_t>::max();

AxisRange resolve(const AxisRequest& r, std::int64_t size) {
  std::int64_t start = r.start < 0 ? r.start + size : r.start;
  std::int64_t end = r.end < 0 ? r.end + size : r.end;
  if (size == 0) return {0, r.step, 0};
  if (r.step > 0) {
    start = std::clamp<std::int64_t>(start, 0, size);
    end = std::clamp<std::int64_t>(end, 0, size);
    return {start, r.step, end > start ? (end - start - 1) / r.step + 1 : 0};
  }
  start = std::clamp<std::int64_t>(start, 0, size - 1);
  end = std::clamp<std::int64_t>(end, -1, size - 1);
  // -step overflows for INT64_MIN; any step that large takes one element.
  const std::int64_t stride = r.step == std::numeric_limits<std::int64_t>::min()
                                  ? std::numeric_limits<std::int64_t>::max()
                                  : -r.step;
  return {start, r.step, start > end ? (start - end - 1) / stride + 1 : 0};
}

// The output size along a dimension of unknown size: the dimension itself
// when the slice takes all of it, in either direction.
ir::Dim resolve_unknown(const AxisRequest& r, const ir::Dim& dim) {
  const bool forward_all = r.step == 1 && r.start == 0 && r.end >= kHuge;
  const bool backward_all = r.step == -1 && (r.start == -1 || r.start >= kHuge) && r.end <= -kHuge;
  return forward_all || backward_all ? dim : ir::Dim::unknown();
}

class Slice final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    const TensorInfo& x = ctx.input(0);
    for (std::size_t i = 1; i < ctx.input_count(); ++i)
      if (ctx.has_input(i)) ctx.expect_dtype(i, {DType::kInt64, DType::kInt32});
    std::vector<ir::Dim> dims = x.shape.dims();
    if (!arguments_known(ctx)) {
      for (std::size_t axis : axes_if_known(ctx))
        dims[axis] = ir::Dim::unknown();
      ctx.set_output(0, x.dtype, ir::Shape(std::move(dims)));
      return;
    }
    for (const AxisRequest& r : requests(ctx)) {
      if (dims[r.axis].is_known())
        dims[r.axis] = ir::Dim::known(resolve(r, dims[r.axis].size).count);
      else
        dims[r.axis] = resolve_unknown(r, dims[r.axis]);
    }
    ctx.set_output(0, x.dtype, ir::Shape(std::move(dims)));
  }

  void run(RunContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.outputs[0];
    std::vector<AxisRange> ranges(x.rank());
    for (std::size_t d = 0; d < x.rank(); ++d)
      ranges[d] = {0, 1, x.extents()[d]};
    for (const AxisRequest& r : requests(concrete_context(ctx)))
      ranges[r.axis] = resolve(r, x.extents()[r.axis]);
    const std::vector<std::int64_t> strides = row_major_strides(x.extents());
    std::vector<std::int64_t> src_strides(x.rank());
    std::int64_t offset = 0;
    for (std::size_t d = 0; d < x.rank(); ++d) {
      offset += ranges[d].start * strides[d];
      src_strides[d] = ranges[d].step * strides[d];
    }
    const std::size_t element_size = size_of(x.dtype());
    if (y.element_count() == 0) return;
    copy_strided(x.bytes() + offset * static_cast<std::int64_t>(element_size), src_strides,
                 y.bytes(), row_major_strides(y.extents()), y.extents(), element_size);
  }

 private:
  static bool arguments_known(const InferContext& ctx) {
    for (std::size_t i = 1; i < ctx.input_count(); ++i)
      if (ctx.has_input(i) && !ctx.constant(i)) return false;
    return true;
  }

  // The dimensions a slice with unknown bounds may change: those named by a
  // known axes input, else all of them.
  static std::vector<std::size_t> axes_if_known(const InferContext& ctx) {
    const std::size_t rank = ctx.input(0).shape.rank();
    if (ctx.has_input(3) && ctx.constant(3))
      return normalize_axes(ctx, int_list_input(ctx, 3, "axes"), rank);
    std::vector<std::size_t> all(rank);
    for (std::size_t d = 0; d < rank; ++d)
      all[d] = d;
    return all;
  }

  static std::vector<AxisRequest> requests(const InferContext& ctx) {
    const std::size_t rank = ctx.input(0).shape.rank();
    const std::vector<std::int64_t> starts = int_list_input(ctx, 1, "starts");
    const std::vector<std::int64_t> ends = int_list_input(ctx, 2, "ends");
    const std::size_t n = starts.size();
    std::vector<std::int64_t> axes_given(n), steps(n, 1);
    for (std::size_t i = 0; i < n; ++i)
      axes_given[i] = static_cast<std::int64_t>(i);
    if (ctx.has_input(3)) axes_given = int_list_input(ctx, 3, "axes");
    if (ctx.has_input(4)) steps = int_list_input(ctx, 4, "steps");
    if (ends.size() != n || axes_given.size() != n || steps.size() != n)
      ctx.fail("starts, ends, axes and steps must have the same length, got ", n, ", ", ends.size(),
               ", ", axes_given.size(), ", ", steps.size());
    const std::vector<std::size_t> axes = normalize_axes(ctx, axes_given, rank);
    std::vector<AxisRequest> out;
    for (std::size_t i = 0; i < n; ++i) {
      if (steps[i] == 0) ctx.fail("steps[", i, "] is 0");
      out.push_back({axes[i], starts[i], ends[i], steps[i]});
    }
    return out;
  }
};

ANVIL_REGISTER_OP(Slice, "Slice", {.min_inputs = 3, .max_inputs = 5});

}  // namespace
}  // namespace anvil::ops
