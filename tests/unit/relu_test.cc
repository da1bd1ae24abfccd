#include <gtest/gtest.h>

#include "ops/op.h"

namespace anvil {
namespace {

TEST(Relu, ClampsNegativesToZero) {
  ir::Node node;
  node.op_type = "Relu";
  node.name = "r";
  node.opset = 17;
  ir::Value in, out;
  node.inputs = {&in};
  node.outputs = {&out};
  Tensor x = Tensor::from<float>({4}, {-1.5f, 0.0f, 2.0f, -0.0f});
  std::vector<Tensor> y = ops::run_node(node, {&x});
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0].extents(), Extents{4});
  EXPECT_EQ(std::vector<float>(y[0].values<float>().begin(), y[0].values<float>().end()),
            (std::vector<float>{0.0f, 0.0f, 2.0f, 0.0f}));
}

}  // namespace
}  // namespace anvil
