// Constant, Shape and ReduceMean.
#include <gtest/gtest.h>

#include <cmath>

#include "op_test_util.h"

namespace anvil::shape_ops_test {
namespace {

using namespace anvil::testing;

TEST(ShapeOpsConstant, EachValueAttributeKind) {
  std::vector<Tensor> y =
      OpNode("Constant", 13, 0).attr("value_ints", std::vector<std::int64_t>{4, -1}).run({});
  EXPECT_EQ(y[0].dtype(), DType::kInt64);
  EXPECT_EQ(values_of<std::int64_t>(y[0]), (std::vector<std::int64_t>{4, -1}));
  y = OpNode("Constant", 13, 0).attr("value_float", 2.5f).run({});
  EXPECT_EQ(y[0].rank(), 0u);
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{2.5f}));
  Tensor half = Tensor(DType::kFloat16, {3});
  half.bytes()[0] = std::byte{0x3c};
  y = OpNode("Constant", 13, 0).attr("value", half).run({});
  EXPECT_EQ(y[0].dtype(), DType::kFloat16);
  EXPECT_EQ(y[0].extents(), (Extents{3}));
  EXPECT_EQ(y[0].bytes()[0], std::byte{0x3c});
}

TEST(ShapeOpsConstant, RejectsTwoValuesAndStrings) {
  OpNode two("Constant", 13, 0);
  two.attr("value_int", std::int64_t{1}).attr("value_float", 1.0f);
  EXPECT_EQ(two.run_error({}), ErrorKind::kInvalidModel);
  EXPECT_EQ(OpNode("Constant", 13, 0).attr("value_string", std::string("hi")).run_error({}),
            ErrorKind::kUnsupported);
}

TEST(ShapeOpsShape, StartAndEndFromOpset15) {
  Tensor x(DType::kUInt8, {2, 3, 4, 5});
  OpNode node("Shape", 15, 1);
  node.attr("start", std::int64_t{1}).attr("end", std::int64_t{-1});
  std::vector<Tensor> y = node.run({&x});
  EXPECT_EQ(values_of<std::int64_t>(y[0]), (std::vector<std::int64_t>{3, 4}));
  OpNode clamped("Shape", 15, 1);
  clamped.attr("start", std::int64_t{-10}).attr("end", std::int64_t{10});
  EXPECT_EQ(values_of<std::int64_t>(clamped.run({&x})[0]), (std::vector<std::int64_t>{2, 3, 4, 5}));
  OpNode empty("Shape", 15, 1);
  empty.attr("start", std::int64_t{3}).attr("end", std::int64_t{1});
  EXPECT_EQ(empty.run({&x})[0].extents(), (Extents{0}));
  ops::TensorInfo info =
      OpNode("Shape", 13, 1).infer({{DType::kFloat32, shape({sym("N"), k(3)})}}, {});
  EXPECT_EQ(info.dtype, DType::kInt64);
  EXPECT_EQ(info.shape, shape({k(2)}));
}

TEST(ShapeOpsReduceMean, AxesAttributeWithAndWithoutKeepdims) {
  Tensor x = iota_f32({2, 3});
  std::vector<Tensor> y =
      OpNode("ReduceMean", 13, 1).attr("axes", std::vector<std::int64_t>{-1}).run({&x});
  EXPECT_EQ(y[0].extents(), (Extents{2, 1}));
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{1, 4}));
  OpNode flat("ReduceMean", 13, 1);
  flat.attr("axes", std::vector<std::int64_t>{0}).attr("keepdims", std::int64_t{0});
  y = flat.run({&x});
  EXPECT_EQ(y[0].extents(), (Extents{3}));
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{1.5f, 2.5f, 3.5f}));
  y = OpNode("ReduceMean", 13, 1).run({&x});
  EXPECT_EQ(y[0].extents(), (Extents{1, 1}));
  EXPECT_EQ(values_of<float>(y[0]), (std::vector<float>{2.5f}));
}

TEST(ShapeOpsReduceMean, AxesInputAndNoopFromOpset18) {
  Tensor x = iota_f32({2, 2});
  Tensor axes = i64({1}, {0});
  EXPECT_EQ(values_of<float>(OpNode("ReduceMean", 18, 2).run({&x, &axes})[0]),
            (std::vector<float>{1, 2}));
  Tensor none = i64({0}, {});
  OpNode noop("ReduceMean", 18, 2);
  noop.attr("noop_with_empty_axes", std::int64_t{1});
  EXPECT_EQ(values_of<float>(noop.run({&x, &none})[0]), values_of<float>(x));
  EXPECT_EQ(OpNode("ReduceMean", 18, 2).attr("axes", std::vector<std::int64_t>{0}).run_error({&x}),
            ErrorKind::kInvalidModel);
  Tensor ints = i64({2}, {1, 2});
  EXPECT_EQ(OpNode("ReduceMean", 13, 1).run_error({&ints}), ErrorKind::kUnsupported);
}

TEST(ShapeOpsReduceMean, KeepsSymbolicDimsThatAreNotReduced) {
  ops::TensorInfo y = OpNode("ReduceMean", 13, 1)
                          .attr("axes", std::vector<std::int64_t>{2, 3})
                          .infer({{DType::kFloat32, shape({sym("N"), k(8), k(7), k(7)})}}, {});
  EXPECT_EQ(y.shape, shape({sym("N"), k(8), k(1), k(1)}));
  Tensor empty(DType::kFloat32, {0, 2});
  std::vector<Tensor> z =
      OpNode("ReduceMean", 13, 1).attr("axes", std::vector<std::int64_t>{0}).run({&empty});
  EXPECT_TRUE(std::isnan(values_of<float>(z[0])[0]));
}

}  // namespace
}  // namespace anvil::shape_ops_test
