// Reshape, Flatten, Squeeze and Unsqueeze: the ops that change only the shape.
#include <gtest/gtest.h>

#include "op_test_util.h"

namespace anvil::shape_ops_test {
namespace {

using namespace anvil::testing;

TEST(ShapeOpsReshape, ZeroCopiesSymbolicBatchAndMinusOneIsExact) {
  OpNode node("Reshape", 14, 2);
  Tensor target = i64({2}, {0, -1});
  ops::TensorInfo y = node.infer(
      {{DType::kFloat32, shape({sym("N"), k(512), k(7), k(7)})}, {DType::kInt64, shape({k(2)})}},
      {nullptr, &target});
  EXPECT_EQ(y.dtype, DType::kFloat32);
  EXPECT_EQ(y.shape, shape({sym("N"), k(25088)}));
}

TEST(ShapeOpsReshape, MinusOneBecomesTheOnlyUnknownDimWhenTheRestCancel) {
  OpNode node("Reshape", 14, 2);
  Tensor target = i64({2}, {-1, 12});
  ops::TensorInfo in{DType::kFloat32, shape({sym("N"), k(3), k(4)})};
  EXPECT_EQ(node.infer({in, {DType::kInt64, shape({k(2)})}}, {nullptr, &target}).shape,
            shape({sym("N"), k(12)}));
  Tensor other = i64({2}, {2, -1});
  EXPECT_EQ(node.infer({in, {DType::kInt64, shape({k(2)})}}, {nullptr, &other}).shape,
            shape({k(2), ir::Dim::unknown()}));
}

TEST(ShapeOpsReshape, TargetKnownOnlyAtRunTimeGivesUnknownDims) {
  OpNode node("Reshape", 14, 2);
  ops::TensorInfo y =
      node.infer({{DType::kFloat32, shape({sym("N"), k(6)})}, {DType::kInt64, shape({k(3)})}}, {});
  EXPECT_EQ(y.shape, shape({ir::Dim::unknown(), ir::Dim::unknown(), ir::Dim::unknown()}));
}

TEST(ShapeOpsReshape, RunsOnInt64DataWithZeroAndMinusOne) {
  OpNode node("Reshape", 14, 2);
  Tensor x = i64({2, 3, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  Tensor target = i64({3}, {0, -1, 1});
  std::vector<Tensor> y = node.run({&x, &target});
  EXPECT_EQ(y[0].extents(), (Extents{2, 6, 1}));
  EXPECT_EQ(values_of<std::int64_t>(y[0]), values_of<std::int64_t>(x));
}

TEST(ShapeOpsReshape, AllowZeroMakesZeroLiteral) {
  Tensor x(DType::kFloat32, {2, 0});
  Tensor target = i64({2}, {0, 5});
  EXPECT_EQ(
      OpNode("Reshape", 14, 2).attr("allowzero", std::int64_t{1}).run({&x, &target})[0].extents(),
      (Extents{0, 5}));
  // Without allowzero the 0 copies 2, and 2x5 elements do not fit 0.
  EXPECT_EQ(OpNode("Reshape", 14, 2).run_error({&x, &target}), ErrorKind::kInvalidModel);
}

TEST(ShapeOpsReshape, RejectsTwoMinusOnesAndWrongCounts) {
  Tensor x = iota_f32({2, 3});
  Tensor two = i64({2}, {-1, -1});
  Tensor wrong = i64({2}, {4, -1});
  Tensor mismatch = i64({2}, {4, 2});
  OpNode node("Reshape", 14, 2);
  EXPECT_EQ(node.run_error({&x, &two}), ErrorKind::kInvalidModel);
  EXPECT_EQ(node.run_error({&x, &wrong}), ErrorKind::kInvalidModel);
  EXPECT_EQ(node.run_error({&x, &mismatch}), ErrorKind::kInvalidModel);
}

TEST(ShapeOpsFlatten, KeepsASymbolicBatchWhenItIsTheOuterProduct) {
  ops::TensorInfo in{DType::kFloat32, shape({sym("N"), k(3), k(4), k(5)})};
  EXPECT_EQ(OpNode("Flatten", 13, 1).infer({in}, {}).shape, shape({sym("N"), k(60)}));
  EXPECT_EQ(OpNode("Flatten", 13, 1).attr("axis", std::int64_t{-1}).infer({in}, {}).shape,
            shape({ir::Dim::unknown(), k(5)}));
  EXPECT_EQ(OpNode("Flatten", 13, 1).attr("axis", std::int64_t{0}).infer({in}, {}).shape,
            shape({k(1), ir::Dim::unknown()}));
  Tensor x(DType::kUInt8, {2, 3, 4});
  EXPECT_EQ(OpNode("Flatten", 13, 1).attr("axis", std::int64_t{3}).run({&x})[0].extents(),
            (Extents{24, 1}));
  EXPECT_EQ(OpNode("Flatten", 13, 1).attr("axis", std::int64_t{4}).run_error({&x}),
            ErrorKind::kInvalidModel);
}

TEST(ShapeOpsSqueeze, AxesAttributeBeforeOpset13AndInputAfter) {
  ops::TensorInfo in{DType::kFloat32, shape({sym("N"), k(3), k(1)})};
  EXPECT_EQ(
      OpNode("Squeeze", 11, 1).attr("axes", std::vector<std::int64_t>{-1}).infer({in}, {}).shape,
      shape({sym("N"), k(3)}));
  Tensor axes = i64({1}, {2});
  EXPECT_EQ(
      OpNode("Squeeze", 13, 2).infer({in, {DType::kInt64, shape({k(1)})}}, {nullptr, &axes}).shape,
      shape({sym("N"), k(3)}));
}

TEST(ShapeOpsSqueeze, WithoutAxesNeedsKnownDimsAndRejectsNonOneAxes) {
  ops::TensorInfo in{DType::kFloat32, shape({sym("N"), k(1), k(3)})};
  try {
    OpNode("Squeeze", 13, 1).infer({in}, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("Squeeze 'n'"), std::string::npos) << e.what();
  }
  Tensor x = i64({1, 2, 1}, {7, 8});
  std::vector<Tensor> y = OpNode("Squeeze", 13, 1).run({&x});
  EXPECT_EQ(y[0].extents(), (Extents{2}));
  EXPECT_EQ(values_of<std::int64_t>(y[0]), (std::vector<std::int64_t>{7, 8}));
  Tensor axes = i64({1}, {1});
  EXPECT_EQ(OpNode("Squeeze", 13, 2).run_error({&x, &axes}), ErrorKind::kInvalidModel);
}

TEST(ShapeOpsUnsqueeze, InsertsOnesAtNegativeAndUnsortedOutputAxes) {
  Tensor x = i64({3, 4}, std::vector<std::int64_t>(12, 5));
  Tensor axes = i64({2}, {-1, 0});
  EXPECT_EQ(OpNode("Unsqueeze", 13, 2).run({&x, &axes})[0].extents(), (Extents{1, 3, 4, 1}));
  ops::TensorInfo in{DType::kInt64, shape({sym("N"), k(4)})};
  EXPECT_EQ(
      OpNode("Unsqueeze", 11, 1).attr("axes", std::vector<std::int64_t>{1}).infer({in}, {}).shape,
      shape({sym("N"), k(1), k(4)}));
  Tensor repeated = i64({2}, {1, -3});  // both are output axis 1
  EXPECT_EQ(OpNode("Unsqueeze", 13, 2).run_error({&x, &repeated}), ErrorKind::kInvalidModel);
}

TEST(ShapeOpsUnsqueeze, AxesFedAtRunTimeGiveRankOnly) {
  ops::TensorInfo y = OpNode("Unsqueeze", 13, 2)
                          .infer({{DType::kFloat32, shape({k(3)})}, {DType::kInt64, shape({k(2)})}},
                                 {nullptr, nullptr});
  EXPECT_EQ(y.shape.rank(), 3u);
  EXPECT_FALSE(y.shape[0].is_known());
}

}  // namespace
}  // namespace anvil::shape_ops_test
