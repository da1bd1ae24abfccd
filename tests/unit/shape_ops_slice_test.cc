// Slice and Pad: the ops that cut or extend dimensions.
#include <gtest/gtest.h>

#include <limits>

#include "op_test_util.h"

namespace anvil::shape_ops_test {
namespace {

using namespace anvil::testing;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();

TEST(ShapeOpsSlice, NegativeStepWalksBackwardsFromTheClampedStart) {
  Tensor x = i64({10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor starts = i64({1}, {kMax}), ends = i64({1}, {kMin}), axes = i64({1}, {0}),
         steps = i64({1}, {-3});
  std::vector<Tensor> y = OpNode("Slice", 13, 5).run({&x, &starts, &ends, &axes, &steps});
  EXPECT_EQ(values_of<std::int64_t>(y[0]), (std::vector<std::int64_t>{9, 6, 3, 0}));
}

TEST(ShapeOpsSlice, NegativeStepsOnTwoAxes) {
  Tensor x = iota_f32({3, 4});
  Tensor starts = i64({2}, {-1, 2}), ends = i64({2}, {0, -10}), steps = i64({2}, {-1, -2});
  std::vector<Tensor> y = OpNode("Slice", 13, 5).run({&x, &starts, &ends, nullptr, &steps});
  EXPECT_EQ(y[0].extents(), (Extents{2, 2}));
  // Rows 2, 1; columns 2, 0.
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{10, 8, 6, 4}));
}

TEST(ShapeOpsSlice, HugeEndsClampAndInt32BoundsWork) {
  Tensor x = iota_f32({2, 5});
  Tensor starts = Tensor::from<std::int32_t>({1}, {1});
  Tensor ends = Tensor::from<std::int32_t>({1}, {std::numeric_limits<std::int32_t>::max()});
  Tensor axes = Tensor::from<std::int32_t>({1}, {-1});
  std::vector<Tensor> y = OpNode("Slice", 13, 4).run({&x, &starts, &ends, &axes});
  EXPECT_EQ(y[0].extents(), (Extents{2, 4}));
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{1, 2, 3, 4, 6, 7, 8, 9}));
  Tensor far = i64({1}, {100}), farther = i64({1}, {200});
  EXPECT_EQ(OpNode("Slice", 13, 3).run({&x, &far, &farther})[0].extents(), (Extents{0, 5}));
}

TEST(ShapeOpsSlice, SymbolicDimSurvivesOnlyAFullSlice) {
  OpNode node("Slice", 13, 4);
  ops::TensorInfo in{DType::kFloat32, shape({sym("N"), k(10)})};
  ops::TensorInfo vec{DType::kInt64, shape({k(2)})};
  Tensor starts = i64({2}, {0, 2}), ends = i64({2}, {kMax, -1}), axes = i64({2}, {0, 1});
  EXPECT_EQ(node.infer({in, vec, vec, vec}, {nullptr, &starts, &ends, &axes}).shape,
            shape({sym("N"), k(7)}));
  Tensor from_one = i64({2}, {1, 2});
  EXPECT_EQ(node.infer({in, vec, vec, vec}, {nullptr, &from_one, &ends, &axes}).shape,
            shape({ir::Dim::unknown(), k(7)}));
  // Bounds known only at run time: the sliced axes become unknown.
  Tensor axis1 = i64({1}, {1});
  ops::TensorInfo one{DType::kInt64, shape({k(1)})};
  EXPECT_EQ(node.infer({in, one, one, one}, {nullptr, nullptr, nullptr, &axis1}).shape,
            shape({sym("N"), ir::Dim::unknown()}));
}

TEST(ShapeOpsSlice, RejectsZeroStepsAndMismatchedLengths) {
  Tensor x = iota_f32({4});
  Tensor starts = i64({1}, {0}), ends = i64({1}, {4}), axes = i64({1}, {0});
  Tensor zero = i64({1}, {0}), two_ends = i64({2}, {1, 2});
  EXPECT_EQ(OpNode("Slice", 13, 5).run_error({&x, &starts, &ends, &axes, &zero}),
            ErrorKind::kInvalidModel);
  EXPECT_EQ(OpNode("Slice", 13, 3).run_error({&x, &starts, &two_ends}), ErrorKind::kInvalidModel);
}

TEST(ShapeOpsPad, ConstantValueWithNegativePadsCropping) {
  Tensor x = iota_f32({2, 3});
  Tensor pads = i64({4}, {1, -1, 0, 1});
  Tensor value = f32({}, {-5});
  std::vector<Tensor> y = OpNode("Pad", 13, 3).run({&x, &pads, &value});
  EXPECT_EQ(y[0].extents(), (Extents{3, 3}));
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{-5, -5, -5, 1, 2, -5, 4, 5, -5}));
}

TEST(ShapeOpsPad, AxesInputFromOpset18OnInt64Data) {
  Tensor x = i64({2, 2}, {1, 2, 3, 4});
  Tensor pads = i64({2}, {1, 0});
  Tensor axes = i64({1}, {-1});
  std::vector<Tensor> y = OpNode("Pad", 18, 4).run({&x, &pads, nullptr, &axes});
  EXPECT_EQ(y[0].extents(), (Extents{2, 3}));
  EXPECT_EQ(values_of<std::int64_t>(y[0]), (std::vector<std::int64_t>{0, 1, 2, 0, 3, 4}));
  EXPECT_EQ(OpNode("Pad", 13, 4).run_error({&x, &pads, nullptr, &axes}), ErrorKind::kInvalidModel);
}

TEST(ShapeOpsPad, OtherModesAreUnsupportedAndSymbolicDimsKeepWhenUnpadded) {
  Tensor x = iota_f32({2});
  Tensor pads = i64({2}, {1, 1});
  EXPECT_EQ(OpNode("Pad", 13, 2).attr("mode", std::string("edge")).run_error({&x, &pads}),
            ErrorKind::kUnsupported);
  Tensor crop_all = i64({2}, {-2, -1});
  EXPECT_EQ(OpNode("Pad", 13, 2).run_error({&x, &crop_all}), ErrorKind::kInvalidModel);
  Tensor pads2 = i64({4}, {0, 1, 0, 1});
  ops::TensorInfo in{DType::kFloat32, shape({sym("N"), k(3)})};
  EXPECT_EQ(
      OpNode("Pad", 13, 2).infer({in, {DType::kInt64, shape({k(4)})}}, {nullptr, &pads2}).shape,
      shape({sym("N"), k(5)}));
}

}  // namespace
}  // namespace anvil::shape_ops_test
