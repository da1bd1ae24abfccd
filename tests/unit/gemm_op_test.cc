// The blocked GEMM kernel against a naive triple loop (sizes across every
// blocking boundary, strided and transposed operands, alpha, accumulation),
// and the Gemm and MatMul ops: attributes, broadcasting, shapes and macs().
#include <gtest/gtest.h>

#include <cmath>

#include "op_test_util.h"
#include "ops/gemm_kernel.h"
#include "ops/op.h"

namespace anvil {
namespace {

using testing::OpNode;
using testing::values_of;
using Floats = std::vector<float>;

Floats random_floats(std::size_t n, std::uint32_t seed) {
  Floats v(n);
  for (float& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / static_cast<float>(1 << 23) - 1.0f;
  }
  return v;
}

// c = alpha * a * b + (accumulate ? c : 0), in double.
void naive_gemm(const ops::ConstMatrix& a, const ops::ConstMatrix& b, Floats& c, float alpha,
                bool accumulate) {
  for (std::int64_t i = 0; i < a.rows; ++i)
    for (std::int64_t j = 0; j < b.cols; ++j) {
      double sum = 0.0;
      for (std::int64_t p = 0; p < a.cols; ++p)
        sum += double{a.data[i * a.row_stride + p * a.col_stride]} *
               b.data[p * b.row_stride + j * b.col_stride];
      float& out = c[static_cast<std::size_t>(i * b.cols + j)];
      out = static_cast<float>(alpha * sum + (accumulate ? out : 0.0f));
    }
}

void expect_close(const Floats& got, const Floats& want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tolerance * (1.0 + std::fabs(want[i]))) << "element " << i;
}

struct GemmCase {
  std::int64_t m, n, k;
  bool trans_a, trans_b, accumulate;
  float alpha;
};

class GemmKernel : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmKernel, MatchesNaiveLoop) {
  const GemmCase c = GetParam();
  const Floats a = random_floats(static_cast<std::size_t>(c.m * c.k), 1);
  const Floats b = random_floats(static_cast<std::size_t>(c.k * c.n), 2);
  // A transposed operand is stored k x m (or n x k) and read with swapped strides.
  ops::ConstMatrix am = c.trans_a ? ops::ConstMatrix::row_major(a.data(), c.k, c.m).transposed()
                                  : ops::ConstMatrix::row_major(a.data(), c.m, c.k);
  ops::ConstMatrix bm = c.trans_b ? ops::ConstMatrix::row_major(b.data(), c.n, c.k).transposed()
                                  : ops::ConstMatrix::row_major(b.data(), c.k, c.n);
  Floats got = random_floats(static_cast<std::size_t>(c.m * c.n), 3);
  Floats want = got;
  ops::gemm(am, bm, ops::MutableMatrix::row_major(got.data(), c.m, c.n), c.alpha, c.accumulate);
  naive_gemm(am, bm, want, c.alpha, c.accumulate);
  expect_close(got, want, 1e-5 * std::sqrt(static_cast<double>(c.k) + 1.0));
}

// Sizes straddle the 6 x 8 register tile, the 96-row and 256-deep blocks and
// the 2048-column panel.
INSTANTIATE_TEST_SUITE_P(Sizes, GemmKernel,
                         ::testing::Values(GemmCase{1, 1, 1, false, false, false, 1.0f},
                                           GemmCase{7, 9, 5, false, false, false, 1.0f},
                                           GemmCase{6, 8, 256, false, false, true, 1.0f},
                                           GemmCase{97, 33, 513, false, false, false, 0.5f},
                                           GemmCase{13, 2053, 3, false, false, true, 1.0f},
                                           GemmCase{31, 17, 300, true, false, false, 2.0f},
                                           GemmCase{19, 41, 29, false, true, true, -1.0f},
                                           GemmCase{5, 7, 0, true, true, false, 1.0f},
                                           GemmCase{4, 3, 0, false, false, true, 1.0f}));

TEST(Gemm, TransposesScalesAndBroadcastsC) {
  // A' = A^T = [[1, 2], [3, 4]], B' = B^T = [[1, 0], [1, 1]].
  const Tensor a = Tensor::from<float>({2, 2}, {1, 3, 2, 4});
  const Tensor b = Tensor::from<float>({2, 2}, {1, 1, 0, 1});
  const Tensor c = Tensor::from<float>({1, 2}, {10, 20});
  OpNode gemm("Gemm", 17, 3);
  gemm.attr("transA", std::int64_t{1}).attr("transB", std::int64_t{1});
  gemm.attr("alpha", 2.0f).attr("beta", 0.5f);
  // A'B' = [[3, 2], [7, 4]]; Y = 2 * A'B' + 0.5 * [10, 20] per row.
  EXPECT_EQ(values_of(gemm.run_one({&a, &b, &c})), (Floats{11, 14, 19, 18}));

  const Tensor scalar_c = Tensor::from<float>({}, {1});
  const Tensor column_c = Tensor::from<float>({2, 1}, {1, 2});
  OpNode plain("Gemm", 17, 3);
  // A * B = [[1, 4], [2, 6]].
  EXPECT_EQ(values_of(plain.run_one({&a, &b, &scalar_c})), (Floats{2, 5, 3, 7}));
  EXPECT_EQ(values_of(plain.run_one({&a, &b, &column_c})), (Floats{2, 5, 4, 8}));
  EXPECT_EQ(values_of(OpNode("Gemm", 17, 2).run_one({&a, &b})), (Floats{1, 4, 2, 6}));
}

TEST(Gemm, RejectsMismatchedShapes) {
  const Tensor a = Tensor::from<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor b = Tensor::from<float>({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(OpNode("Gemm", 17, 2).run_error({&a, &b}), ErrorKind::kInvalidModel);
  const Tensor b_ok = Tensor::from<float>({3, 1}, {1, 2, 3});
  const Tensor c_bad = Tensor::from<float>({3}, {1, 2, 3});
  EXPECT_EQ(OpNode("Gemm", 17, 3).run_error({&a, &b_ok, &c_bad}), ErrorKind::kInvalidModel);
}

TEST(Gemm, Macs) {
  OpNode gemm("Gemm", 17, 3);
  gemm.attr("transB", std::int64_t{1});
  EXPECT_EQ(gemm.macs({{3, 2048}, {1000, 2048}, {1000}}), std::int64_t{3} * 2048 * 1000);
}

TEST(MatMul, VectorOperandsDropTheirAxis) {
  const Tensor v = Tensor::from<float>({2}, {1, 2});
  const Tensor m = Tensor::from<float>({2, 2, 3}, {1, 2, 3, 4, 5, 6, 0, 1, 0, 1, 0, 1});
  OpNode matmul("MatMul", 17, 2);
  const Tensor vm = matmul.run_one({&v, &m});
  EXPECT_EQ(vm.extents(), (Extents{2, 3}));
  EXPECT_EQ(values_of(vm), (Floats{9, 12, 15, 2, 1, 2}));
  const Tensor dot = matmul.run_one({&v, &v});
  EXPECT_EQ(dot.extents(), Extents{});
  EXPECT_EQ(values_of(dot), (Floats{5}));
}

TEST(MatMul, BroadcastsBatchAxes) {
  const Floats av = random_floats(2 * 1 * 3 * 4, 5), bv = random_floats(3 * 4 * 2, 6);
  const Tensor a = Tensor::from<float>({2, 1, 3, 4}, av);
  const Tensor b = Tensor::from<float>({3, 4, 2}, bv);
  const Tensor y = OpNode("MatMul", 17, 2).run_one({&a, &b});
  ASSERT_EQ(y.extents(), (Extents{2, 3, 3, 2}));
  const Floats got = values_of(y);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j) {
      Floats want(6);
      naive_gemm(ops::ConstMatrix::row_major(av.data() + i * 12, 3, 4),
                 ops::ConstMatrix::row_major(bv.data() + j * 8, 4, 2), want, 1.0f, false);
      expect_close(Floats(got.begin() + static_cast<std::ptrdiff_t>((i * 3 + j) * 6),
                          got.begin() + static_cast<std::ptrdiff_t>((i * 3 + j + 1) * 6)),
                   want, 1e-6);
    }
}

TEST(MatMul, InfersSymbolicShapesAndRejectsMismatches) {
  OpNode matmul("MatMul", 17, 2);
  const ir::Shape a({ir::Dim::named("N"), ir::Dim::named("T"), ir::Dim::known(64)});
  const auto out = ops::infer_node(
      matmul.node(), {{DType::kFloat32, a}, {DType::kFloat32, ir::Shape::of({64, 10})}},
      {nullptr, nullptr});
  EXPECT_EQ(out[0].shape,
            ir::Shape({ir::Dim::named("N"), ir::Dim::named("T"), ir::Dim::known(10)}));

  const Tensor x = Tensor::from<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(matmul.run_error({&x, &x}), ErrorKind::kInvalidModel);
  const Tensor b2 = Tensor::from<float>({2, 3, 1}, {1, 2, 3, 4, 5, 6});
  const Tensor a3 = Tensor::from<float>({3, 2, 3}, Floats(18, 1.0f));
  EXPECT_EQ(matmul.run_error({&a3, &b2}), ErrorKind::kInvalidModel);  // batch 3 vs 2
}

TEST(MatMul, Macs) {
  OpNode matmul("MatMul", 17, 2);
  EXPECT_EQ(matmul.macs({{8, 1, 5, 6}, {3, 6, 7}}), std::int64_t{8} * 3 * 5 * 6 * 7);
  EXPECT_EQ(matmul.macs({{6}, {6}}), 6);
}

}  // namespace
}  // namespace anvil
