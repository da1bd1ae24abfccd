// Gemm: Y = alpha * A' * B' + beta * C, where A' is A or its transpose
// (transA), B' likewise (transB), and the optional C broadcasts
// unidirectionally to Y's [M, N].
#include <algorithm>

#include "ops/gemm_kernel.h"
#include "ops/op.h"

namespace anvil::ops {
namespace {

// C's extents right-aligned to [rows, cols] (1 where C has fewer axes).
std::pair<std::int64_t, std::int64_t> c_extents(const Extents& c) {
  const std::int64_t cols = c.empty() ? 1 : c.back();
  const std::int64_t rows = c.size() == 2 ? c[0] : 1;
  return {rows, cols};
}

class Gemm final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32});
    ctx.expect_dtype(1, {DType::kFloat32});
    if (ctx.has_input(2)) ctx.expect_dtype(2, {DType::kFloat32});
    ctx.expect_rank(0, 2);
    ctx.expect_rank(1, 2);
    const ir::Shape& a = ctx.input(0).shape;
    const ir::Shape& b = ctx.input(1).shape;
    const bool trans_a = ctx.attributes().get_int("transA", 0) != 0;
    const bool trans_b = ctx.attributes().get_int("transB", 0) != 0;
    const ir::Dim& m = a[trans_a ? 1 : 0];
    const ir::Dim& k_a = a[trans_a ? 0 : 1];
    const ir::Dim& k_b = b[trans_b ? 1 : 0];
    const ir::Dim& n = b[trans_b ? 0 : 1];
    if (k_a.is_known() && k_b.is_known() && k_a.size != k_b.size)
      ctx.fail("inner dimensions differ: A ", to_string(a), (trans_a ? " (transposed)" : ""),
               " and B ", to_string(b), (trans_b ? " (transposed)" : ""));
    if (ctx.has_input(2)) check_c(ctx, m, n);
    ctx.set_output(0, DType::kFloat32, ir::Shape({m, n}));
  }

  void run(RunContext& ctx) const override {
    const ir::Attributes& attrs = ctx.attributes();
    const float alpha = attrs.get_float("alpha", 1.0f);
    const float beta = attrs.get_float("beta", 1.0f);
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    ConstMatrix am = ConstMatrix::row_major(a.data<float>(), a.extents()[0], a.extents()[1]);
    ConstMatrix bm = ConstMatrix::row_major(b.data<float>(), b.extents()[0], b.extents()[1]);
    if (attrs.get_int("transA", 0) != 0) am = am.transposed();
    if (attrs.get_int("transB", 0) != 0) bm = bm.transposed();
    Tensor& y = ctx.outputs[0];
    const MutableMatrix ym = MutableMatrix::row_major(y.data<float>(), am.rows, bm.cols);
    // As in BLAS, beta = 0 ignores C entirely.
    const bool add_c = ctx.has_input(2) && beta != 0.0f;
    if (add_c) fill_with_c(ctx.input(2), beta, ym);
    gemm(am, bm, ym, alpha, add_c);
  }

  std::int64_t macs(const InferContext& ctx) const override {
    auto a = ctx.input(0).shape.extents();
    auto b = ctx.input(1).shape.extents();
    if (!a || !b || a->size() != 2 || b->size() != 2) return 0;
    const bool trans_b = ctx.attributes().get_int("transB", 0) != 0;
    return (*a)[0] * (*a)[1] * (*b)[trans_b ? 0 : 1];
  }

 private:
  // C must broadcast to [M, N]: rank <= 2, each axis 1 or matching.
  static void check_c(const InferContext& ctx, const ir::Dim& m, const ir::Dim& n) {
    const ir::Shape& c = ctx.input(2).shape;
    auto fits = [](const ir::Dim& d, const ir::Dim& target) {
      return !d.is_known() || !target.is_known() || d.size == 1 || d.size == target.size;
    };
    const bool ok = c.rank() <= 2 && (c.rank() < 1 || fits(c[c.rank() - 1], n)) &&
                    (c.rank() < 2 || fits(c[0], m));
    if (!ok)
      ctx.fail("C ", to_string(c), " does not broadcast to the output [", to_string(m), ",",
               to_string(n), "]");
  }

  static void fill_with_c(const Tensor& c, float beta, const MutableMatrix& y) {
    const auto [rows, cols] = c_extents(c.extents());
    const float* cs = c.data<float>();
    for (std::int64_t i = 0; i < y.rows; ++i) {
      const float* c_row = cs + (rows == 1 ? 0 : i) * cols;
      float* y_row = y.data + i * y.row_stride;
      if (cols == 1) {
        std::fill_n(y_row, y.cols, beta * c_row[0]);
      } else {
        for (std::int64_t j = 0; j < y.cols; ++j)
          y_row[j] = beta * c_row[j];
      }
    }
  }
};

ANVIL_REGISTER_OP(Gemm, "Gemm", {.min_inputs = 2, .max_inputs = 3});

}  // namespace
}  // namespace anvil::ops
