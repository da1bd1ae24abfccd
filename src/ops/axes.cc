#include "ops/axes.h"

namespace anvil::ops {

std::size_t normalize_axis(const InferContext& ctx, std::int64_t axis, std::size_t rank,
                           std::string_view what) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r)
    ctx.fail(what, " ", axis, " is out of range for an input of rank ", rank, " (valid: ", -r,
             " to ", r - 1, ")");
  return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

std::vector<std::size_t> normalize_axes(const InferContext& ctx, std::span<const std::int64_t> axes,
                                        std::size_t rank, std::string_view what) {
  std::vector<std::size_t> out;
  std::vector<bool> seen(rank, false);
  for (std::int64_t axis : axes) {
    const std::size_t a = normalize_axis(ctx, axis, rank, what);
    if (seen[a]) ctx.fail(what, " name axis ", a, " more than once");
    seen[a] = true;
    out.push_back(a);
  }
  return out;
}

std::vector<std::int64_t> int_list_input(const InferContext& ctx, std::size_t i,
                                         std::string_view what) {
  ctx.expect_dtype(i, {DType::kInt64, DType::kInt32});
  const Tensor& t = ctx.require_constant(i, what);
  if (t.rank() > 1)
    ctx.fail("input ", i, " (", what, ") must be 1-D, got ", to_string(t.extents()));
  return t.to_int64s();
}

std::int64_t unknown_list_length(const InferContext& ctx, std::size_t i, std::string_view what) {
  ctx.expect_dtype(i, {DType::kInt64, DType::kInt32});
  const ir::Shape& shape = ctx.input(i).shape;
  if (shape.rank() != 1) ctx.fail("input ", i, " (", what, ") must be 1-D, got ", to_string(shape));
  if (!shape[0].is_known() || shape[0].size > kMaxRank)
    ctx.unsupported("input ", i, " (", what,
                    ") must be a constant or have a known length (at most ", kMaxRank,
                    ") at import, got length ", to_string(shape[0]));
  return shape[0].size;
}

std::optional<std::vector<std::int64_t>> axes_argument(const InferContext& ctx, int input_since,
                                                       std::size_t input_index) {
  if (ctx.opset() < input_since) {
    if (ctx.input_count() > input_index)
      ctx.fail("axes is an attribute before opset ", input_since, ", not an input");
    if (!ctx.attributes().has("axes")) return std::nullopt;
    return ctx.attributes().get_ints("axes");
  }
  if (ctx.attributes().has("axes"))
    ctx.fail("axes is an input since opset ", input_since, ", not an attribute");
  if (!ctx.has_input(input_index)) return std::nullopt;
  return int_list_input(ctx, input_index, "axes");
}

std::int64_t checked_mul(const InferContext& ctx, std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) ctx.fail("dimension product ", a, " * ", b, " overflows");
  return out;
}

ir::Dim dim_product(const InferContext& ctx, std::span<const ir::Dim> dims) {
  std::int64_t known = 1;
  const ir::Dim* unknown = nullptr;
  int unknown_count = 0;
  for (const ir::Dim& d : dims) {
    if (d.is_known()) {
      known = checked_mul(ctx, known, d.size);
    } else {
      unknown = &d;
      ++unknown_count;
    }
  }
  if (unknown_count == 0 || known == 0) return ir::Dim::known(known);
  if (unknown_count == 1 && known == 1) return *unknown;
  return ir::Dim::unknown();
}

ir::Dim dim_sum(const InferContext& ctx, std::span<const ir::Dim> dims) {
  std::int64_t known = 0;
  const ir::Dim* unknown = nullptr;
  int unknown_count = 0;
  for (const ir::Dim& d : dims) {
    if (d.is_known()) {
      if (__builtin_add_overflow(known, d.size, &known))
        ctx.fail("dimension sum overflows at ", d.size);
    } else {
      unknown = &d;
      ++unknown_count;
    }
  }
  if (unknown_count == 0) return ir::Dim::known(known);
  if (unknown_count == 1 && known == 0) return *unknown;
  return ir::Dim::unknown();
}

InferContext concrete_context(const RunContext& ctx) {
  std::vector<TensorInfo> infos;
  for (const Tensor* t : ctx.inputs)
    infos.push_back(t ? TensorInfo{t->dtype(), ir::Shape::of(t->extents())} : TensorInfo{});
  return InferContext(ctx.node, std::move(infos), ctx.inputs);
}

}  // namespace anvil::ops
