// Gather, Concat and Transpose: the ops that rearrange elements of any dtype.
#include <gtest/gtest.h>

#include "op_test_util.h"

namespace anvil::shape_ops_test {
namespace {

using namespace anvil::testing;

TEST(ShapeOpsGather, NegativeIndicesOnInt64DataAlongAxis1) {
  Tensor x = i64({2, 3}, {10, 11, 12, 20, 21, 22});
  Tensor indices = i64({2}, {-1, 0});
  std::vector<Tensor> y =
      OpNode("Gather", 13, 2).attr("axis", std::int64_t{-1}).run({&x, &indices});
  EXPECT_EQ(y[0].extents(), (Extents{2, 2}));
  EXPECT_EQ(values_of<std::int64_t>(y[0]), (std::vector<std::int64_t>{12, 10, 22, 20}));
}

TEST(ShapeOpsGather, ScalarAndTwoDimensionalInt32Indices) {
  Tensor shape_vec = i64({4}, {1, 3, 224, 224});
  Tensor zero = i64({}, {0});
  std::vector<Tensor> y = OpNode("Gather", 13, 2).run({&shape_vec, &zero});
  EXPECT_EQ(y[0].rank(), 0u);
  EXPECT_EQ(values_of<std::int64_t>(y[0]), (std::vector<std::int64_t>{1}));
  Tensor x = iota_f32({3, 2});
  Tensor idx = Tensor::from<std::int32_t>({2, 2}, {2, 0, -2, 2});
  y = OpNode("Gather", 13, 2).run({&x, &idx});
  EXPECT_EQ(y[0].extents(), (Extents{2, 2, 2}));
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{4, 5, 0, 1, 2, 3, 4, 5}));
}

TEST(ShapeOpsGather, RejectsOutOfRangeIndicesAndKeepsSymbols) {
  Tensor x = iota_f32({3});
  Tensor bad = i64({1}, {3}), bad_negative = i64({1}, {-4});
  EXPECT_EQ(OpNode("Gather", 13, 2).run_error({&x, &bad}), ErrorKind::kInvalidModel);
  EXPECT_EQ(OpNode("Gather", 13, 2).run_error({&x, &bad_negative}), ErrorKind::kInvalidModel);
  ops::TensorInfo y = OpNode("Gather", 13, 2)
                          .attr("axis", std::int64_t{1})
                          .infer({{DType::kFloat32, shape({sym("N"), k(5), k(7)})},
                                  {DType::kInt64, shape({k(2), k(3)})}},
                                 {});
  EXPECT_EQ(y.shape, shape({sym("N"), k(2), k(3), k(7)}));
}

TEST(ShapeOpsConcat, Int64VectorsAlongNegativeAxis) {
  Tensor a = i64({1}, {-1}), b = i64({2}, {3, 4});
  std::vector<Tensor> y = OpNode("Concat", 13, 2).attr("axis", std::int64_t{-1}).run({&a, &b});
  EXPECT_EQ(values_of<std::int64_t>(y[0]), (std::vector<std::int64_t>{-1, 3, 4}));
}

TEST(ShapeOpsConcat, InterleavesChunksAlongAnInnerAxis) {
  Tensor a = iota_f32({2, 1}), b = f32({2, 2}, {10, 11, 12, 13});
  Tensor empty(DType::kFloat32, {2, 0});
  std::vector<Tensor> y =
      OpNode("Concat", 13, 3).attr("axis", std::int64_t{1}).run({&a, &empty, &b});
  EXPECT_EQ(y[0].extents(), (Extents{2, 3}));
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{0, 10, 11, 1, 12, 13}));
}

TEST(ShapeOpsConcat, SymbolicDimsAndMismatches) {
  OpNode node("Concat", 13, 2);
  node.attr("axis", std::int64_t{0});
  ops::TensorInfo n{DType::kFloat32, shape({sym("N"), k(3)})};
  ops::TensorInfo zero{DType::kFloat32, shape({k(0), sym("C")})};
  ops::TensorInfo two{DType::kFloat32, shape({k(2), k(3)})};
  EXPECT_EQ(node.infer({n, zero}, {}).shape, shape({sym("N"), k(3)}));
  EXPECT_EQ(node.infer({n, two}, {}).shape, shape({ir::Dim::unknown(), k(3)}));
  Tensor a = iota_f32({1, 3}), b = iota_f32({1, 4});
  Tensor c = i64({1, 3}, {1, 2, 3});
  EXPECT_EQ(node.run_error({&a, &b}), ErrorKind::kInvalidModel);
  EXPECT_EQ(node.run_error({&a, &c}), ErrorKind::kInvalidModel);
}

TEST(ShapeOpsTranspose, DefaultReversesAndPermMovesBytesOfAnyDtype) {
  Tensor x = Tensor::from<std::uint8_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  std::vector<Tensor> y = OpNode("Transpose", 13, 1).run({&x});
  EXPECT_EQ(y[0].extents(), (Extents{3, 2}));
  EXPECT_EQ(values_of<std::uint8_t>(y[0]), (std::vector<std::uint8_t>{1, 4, 2, 5, 3, 6}));
  Tensor z = iota_f32({2, 2, 3});
  y = OpNode("Transpose", 13, 1).attr("perm", std::vector<std::int64_t>{1, 2, 0}).run({&z});
  EXPECT_EQ(y[0].extents(), (Extents{2, 3, 2}));
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11}));
}

TEST(ShapeOpsTranspose, SymbolsFollowThePermAndBadPermsFail) {
  ops::TensorInfo in{DType::kFloat32, shape({sym("N"), k(3), k(5)})};
  EXPECT_EQ(OpNode("Transpose", 13, 1)
                .attr("perm", std::vector<std::int64_t>{2, 0, 1})
                .infer({in}, {})
                .shape,
            shape({k(5), sym("N"), k(3)}));
  Tensor x = iota_f32({2, 2});
  EXPECT_EQ(
      OpNode("Transpose", 13, 1).attr("perm", std::vector<std::int64_t>{0, 0}).run_error({&x}),
      ErrorKind::kInvalidModel);
  EXPECT_EQ(OpNode("Transpose", 13, 1).attr("perm", std::vector<std::int64_t>{1}).run_error({&x}),
            ErrorKind::kInvalidModel);
}

}  // namespace
}  // namespace anvil::shape_ops_test
