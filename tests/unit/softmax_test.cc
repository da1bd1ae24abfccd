// Softmax: the 2-D coercion of opsets 11-12 against the single axis of 13+.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

#include "ops/op.h"

namespace anvil {
namespace {

std::vector<float> softmax(const Tensor& x, int opset, std::optional<std::int64_t> axis) {
  ir::Node node;
  node.op_type = "Softmax";
  node.name = "sm";
  node.opset = opset;
  if (axis) node.attributes.set("axis", *axis);
  ir::Value in, out;
  in.name = "x";
  node.inputs = {&in};
  node.outputs = {&out};
  std::vector<Tensor> y = ops::run_node(node, {&x});
  return {y[0].values<float>().begin(), y[0].values<float>().end()};
}

void expect_near(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-6) << "element " << i;
}

// x is [1,2,2] = {{0, ln 3}, {0, ln 3}}.
Tensor small_input() {
  const float l = static_cast<float>(std::log(3.0));
  return Tensor::from<float>({1, 2, 2}, {0.0f, l, 0.0f, l});
}

TEST(Softmax, Opset13NormalizesOneAxis) {
  // Axis 1 pairs x[0][0][j] with x[0][1][j], which are equal: 1/2 each.
  expect_near(softmax(small_input(), 13, 1), {0.5, 0.5, 0.5, 0.5});
  // Default axis -1: each row {0, ln 3} becomes {1/4, 3/4}.
  expect_near(softmax(small_input(), 13, std::nullopt), {0.25, 0.75, 0.25, 0.75});
}

TEST(Softmax, Opset11CoercesTo2D) {
  // Axis 1 flattens to [1, 4]: all four elements share one normalization.
  expect_near(softmax(small_input(), 11, 1), {0.125, 0.375, 0.125, 0.375});
  // The default axis is 1, not -1.
  expect_near(softmax(small_input(), 12, std::nullopt), {0.125, 0.375, 0.125, 0.375});
  // On the last axis both semantics agree.
  expect_near(softmax(small_input(), 11, -1), {0.25, 0.75, 0.25, 0.75});
}

TEST(Softmax, LargeInputsDoNotOverflow) {
  Tensor x = Tensor::from<float>({2}, {10000.0f, 10000.0f});
  expect_near(softmax(x, 13, std::nullopt), {0.5, 0.5});
  Tensor y = Tensor::from<float>({2}, {-10000.0f, 0.0f});
  expect_near(softmax(y, 13, std::nullopt), {0.0, 1.0});
}

TEST(Softmax, AxisOutOfRangeIsAnError) {
  try {
    softmax(small_input(), 13, 3);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidModel);
    EXPECT_NE(std::string(e.what()).find("axis 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(softmax(small_input(), 11, -4), Error);
}

}  // namespace
}  // namespace anvil
