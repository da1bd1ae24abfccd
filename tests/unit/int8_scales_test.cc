// INT8 activation scales (quant/int8_scales.h): amax / 127 per value, one
// scale for the values a residual addition joins.
#include "quant/int8_scales.h"

#include <gtest/gtest.h>

#include "pass_test_util.h"
#include "passes/pass_manager.h"
#include "quant/calibrator.h"

namespace anvil::quant {
namespace {

using passes::testing::GraphBuilder;

struct Block {
  ir::Graph graph;
  std::string x, a, conv2, sum, y;  // value names
};

// x -> Conv -> Relu = a -> Conv = conv2; conv2 + x = sum -> Relu = y.
Block residual_block() {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, 4, 6, 6});
  ir::Value* a = b.node("Relu", {b.conv(x, 4, 4, 3, /*bias=*/true)});
  ir::Value* conv2 = b.conv(a, 4, 4, 3, /*bias=*/true);
  ir::Value* sum = b.node("Add", {conv2, x});
  ir::Value* y = b.node("Relu", {sum});
  b.output(y);
  Block block;
  block.x = x->name;
  block.a = a->name;
  block.conv2 = conv2->name;
  block.sum = sum->name;
  block.y = y->name;
  block.graph = b.finish();
  return block;
}

CalibrationTable table(std::map<std::string, float> amax) {
  CalibrationTable t;
  t.amax = std::move(amax);
  return t;
}

TEST(Int8Scales, AnAddJoinsItsInputsAndOutput) {
  const Block b = residual_block();
  const auto scales = int8_activation_scales(b.graph, table({{b.x, 2.0f}, {b.conv2, 4.0f}}));
  EXPECT_EQ(scales.at(b.x), int8_scale(4.0f));
  EXPECT_EQ(scales.at(b.conv2), int8_scale(4.0f));
  EXPECT_EQ(scales.at(b.sum), int8_scale(4.0f));  // no amax of its own: the group's
  EXPECT_FALSE(scales.contains(b.a)) << "no amax and no group with one";
  EXPECT_FALSE(scales.contains(b.y)) << "a Relu joins nothing";
}

TEST(Int8Scales, AFusedConvSharesItsResidualsScale) {
  Block b = residual_block();
  passes::PassManager().run(b.graph);
  const ir::Node* fused = nullptr;
  for (const auto& node : b.graph.nodes())
    if (node->op_type == "FusedConv" && node->input(3)) fused = node.get();
  ASSERT_NE(fused, nullptr) << "the pass manager did not fuse the residual block";
  const std::string out = fused->outputs[0]->name;
  const std::string residual = fused->input(3)->name;
  const std::string first = fused->input(0)->name;
  const auto scales =
      int8_activation_scales(b.graph, table({{residual, 2.0f}, {out, 3.0f}, {first, 1.0f}}));
  EXPECT_EQ(scales.at(out), int8_scale(3.0f));
  EXPECT_EQ(scales.at(residual), int8_scale(3.0f));
  EXPECT_EQ(scales.at(first), int8_scale(1.0f)) << "the conv's own input is not joined";
}

TEST(Int8Scales, AnEmptyTableGivesNoScales) {
  EXPECT_TRUE(int8_activation_scales(residual_block().graph, table({})).empty());
}

}  // namespace
}  // namespace anvil::quant
