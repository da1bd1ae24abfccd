// MatMul with NumPy semantics: a 1-D A is a row vector and a 1-D B a column
// vector (the added axis is dropped from Y), and the batch axes in front of
// the last two broadcast against each other.
#include <algorithm>
#include <optional>

#include "ops/broadcast.h"
#include "ops/gemm_kernel.h"
#include "ops/op.h"

namespace anvil::ops {
namespace {

// Operand shapes as matrices: a 1-D A becomes [1, K], a 1-D B becomes [K, 1].
struct Operands {
  std::vector<ir::Dim> a, b;
};
Operands as_matrices(const ir::Shape& a, const ir::Shape& b) {
  Operands o{a.dims(), b.dims()};
  if (a.rank() == 1) o.a.insert(o.a.begin(), ir::Dim::known(1));
  if (b.rank() == 1) o.b.push_back(ir::Dim::known(1));
  return o;
}

// Right-aligned batch extents padded with 1s to `rank` axes.
Extents padded_batch(const Extents& matrix_extents, std::size_t rank) {
  Extents batch(rank, 1);
  std::copy(matrix_extents.begin(), matrix_extents.end() - 2,
            batch.end() - (matrix_extents.size() - 2));
  return batch;
}

// Element offset of each output matrix into an operand whose batch extents
// `batch` broadcast to `out_batch`, for matrices of `matrix` elements.
std::vector<std::int64_t> batch_offsets(const Extents& batch, const Extents& out_batch,
                                        std::int64_t matrix) {
  const std::vector<std::int64_t> strides = broadcast_strides(batch, out_batch);
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(element_count(out_batch)));
  std::vector<std::int64_t> index(out_batch.size(), 0);  // odometer over out_batch
  std::int64_t offset = 0;
  for (std::int64_t& o : offsets) {
    o = offset * matrix;
    for (std::size_t d = out_batch.size(); d-- > 0;) {
      offset += strides[d];
      if (++index[d] < out_batch[d]) break;
      offset -= strides[d] * out_batch[d];
      index[d] = 0;
    }
  }
  return offsets;
}

class MatMul final : public Op {
 public:
  void infer(InferContext& ctx) const override {
    ctx.expect_dtype(0, {DType::kFloat32});
    ctx.expect_dtype(1, {DType::kFloat32});
    const ir::Shape& a = ctx.input(0).shape;
    const ir::Shape& b = ctx.input(1).shape;
    if (a.rank() == 0 || b.rank() == 0) ctx.fail("operands must have rank >= 1, got scalars");
    const Operands o = as_matrices(a, b);
    const ir::Dim& k_a = o.a[o.a.size() - 1];
    const ir::Dim& k_b = o.b[o.b.size() - 2];
    if (k_a.is_known() && k_b.is_known() && k_a.size != k_b.size)
      ctx.fail("inner dimensions differ: A ", to_string(a), ", B ", to_string(b));

    const std::size_t batch_rank = std::max(o.a.size(), o.b.size()) - 2;
    std::vector<ir::Dim> dims(batch_rank);
    for (std::size_t i = 0; i < batch_rank; ++i) {
      const ir::Dim da = batch_axis(o.a, i);
      const ir::Dim db = batch_axis(o.b, i);
      const auto d = broadcast_dim(da, db);
      if (!d)
        ctx.fail("batch axes of A ", to_string(a), " and B ", to_string(b), " do not broadcast");
      dims[batch_rank - 1 - i] = *d;
    }
    if (a.rank() > 1) dims.push_back(o.a[o.a.size() - 2]);
    if (b.rank() > 1) dims.push_back(o.b.back());
    ctx.set_output(0, DType::kFloat32, ir::Shape(std::move(dims)));
  }

  void run(RunContext& ctx) const override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const Extents ea = matrix_extents(a.extents(), true);
    const Extents eb = matrix_extents(b.extents(), false);
    const std::size_t batch_rank = std::max(ea.size(), eb.size()) - 2;
    const Extents ba = padded_batch(ea, batch_rank);
    const Extents bb = padded_batch(eb, batch_rank);
    Extents out_batch(batch_rank);
    for (std::size_t i = 0; i < batch_rank; ++i)
      out_batch[i] = std::max(ba[i], bb[i]);
    const std::int64_t m = ea[ea.size() - 2], k = ea.back(), n = eb.back();
    const float* as = a.data<float>();
    const float* bs = b.data<float>();
    float* ys = ctx.outputs[0].data<float>();
    const std::int64_t batches = element_count(out_batch);
    if (element_count(bb) == 1 && element_count(ba) == batches) {
      // One shared B: stack A's matrices into one tall product.
      gemm(ConstMatrix::row_major(as, batches * m, k), ConstMatrix::row_major(bs, k, n),
           MutableMatrix::row_major(ys, batches * m, n), 1.0f, false);
      return;
    }
    const auto a_offsets = batch_offsets(ba, out_batch, m * k);
    const auto b_offsets = batch_offsets(bb, out_batch, k * n);
    for (std::size_t i = 0; i < static_cast<std::size_t>(batches); ++i)
      gemm(ConstMatrix::row_major(as + a_offsets[i], m, k),
           ConstMatrix::row_major(bs + b_offsets[i], k, n),
           MutableMatrix::row_major(ys + static_cast<std::int64_t>(i) * m * n, m, n), 1.0f, false);
  }

  std::int64_t macs(const InferContext& ctx) const override {
    auto a = ctx.input(0).shape.extents();
    auto b = ctx.input(1).shape.extents();
    if (!a || !b || a->empty() || b->empty()) return 0;
    const Extents ea = matrix_extents(*a, true);
    const Extents eb = matrix_extents(*b, false);
    const std::size_t batch_rank = std::max(ea.size(), eb.size()) - 2;
    const Extents ba = padded_batch(ea, batch_rank);
    const Extents bb = padded_batch(eb, batch_rank);
    std::int64_t batches = 1;
    for (std::size_t i = 0; i < batch_rank; ++i)
      batches *= std::max(ba[i], bb[i]);
    return batches * ea[ea.size() - 2] * ea.back() * eb.back();
  }

 private:
  // The i-th batch axis counted from the right (1 where the operand has fewer).
  static ir::Dim batch_axis(const std::vector<ir::Dim>& dims, std::size_t i) {
    return i + 2 < dims.size() ? dims[dims.size() - 3 - i] : ir::Dim::known(1);
  }

  // Extents with a 1-D operand promoted to a matrix (A: [1, K], B: [K, 1]).
  static Extents matrix_extents(const Extents& e, bool is_a) {
    if (e.size() != 1) return e;
    return is_a ? Extents{1, e[0]} : Extents{e[0], 1};
  }
};

ANVIL_REGISTER_OP(MatMul, "MatMul", {.min_inputs = 2, .max_inputs = 2});

}  // namespace
}  // namespace anvil::ops
