#include "pass_test_util.h"

namespace anvil::passes::testing {
namespace {

const PassManager& fold_bn() {
  static const PassManager manager = only(make_fold_batch_norm());
  return manager;
}

TEST(FoldBatchNorm, FoldsIntoConvWithAndWithoutBias) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{2, 3, 8, 8});
    ir::Value* y = b.batch_norm(b.conv(x, 3, 4, 3, /*bias=*/true), 4);
    y = b.node("Relu", {y});
    y = b.batch_norm(b.conv(y, 4, 6, 1), 6);  // no bias: the fold adds one
    b.output(y);
  };
  ir::Graph before = build(fn);
  ASSERT_EQ(count_of(before, "BatchNormalization"), 2);
  ir::Graph after = expect_same_outputs(fn, fold_bn(), 1e-5f, 1e-6f);
  EXPECT_EQ(count_of(after, "BatchNormalization"), 0);
  EXPECT_EQ(count_of(after, "Conv"), 2);
  EXPECT_EQ(after.nodes().size(), 3u);
  // The BN's output value survives as the graph output, produced by the Conv.
  EXPECT_EQ(after.outputs[0]->producer->op_type, "Conv");
  EXPECT_EQ(after.outputs[0]->producer->inputs.size(), 3u);
}

TEST(FoldBatchNorm, DepthwiseConv) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 4, 6, 6});
    b.output(b.batch_norm(b.conv(x, 4, 4, 3, false, /*group=*/4), 4));
  };
  ir::Graph after = expect_same_outputs(fn, fold_bn(), 1e-5f, 1e-6f);
  EXPECT_EQ(count_of(after, "BatchNormalization"), 0);
}

TEST(FoldBatchNorm, KeepsBatchNormWhenConvOutputHasAnotherReader) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 2, 5, 5});
    ir::Value* c = b.conv(x, 2, 2, 3);
    b.output(b.node("Add", {b.batch_norm(c, 2), c}));
  };
  ir::Graph after = expect_same_outputs(fn, fold_bn(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "BatchNormalization"), 1);
}

TEST(FoldBatchNorm, KeepsLoneBatchNorm) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 3, 4, 4});
    b.output(b.batch_norm(b.node("Relu", {x}), 3));
  };
  ir::Graph after = expect_same_outputs(fn, fold_bn(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "BatchNormalization"), 1);
}

TEST(FoldBatchNorm, SharedWeightsStayUntouched) {
  // Two Convs share W; only one is followed by BN.
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 2, 4, 4});
    ir::Value* w = b.weight("shared", {2, 2, 1, 1});
    ir::Attributes attrs;
    attrs.set("kernel_shape", std::vector<std::int64_t>{1, 1});
    ir::Value* c1 = b.node("Conv", {x, w}, attrs);
    ir::Value* c2 = b.node("Conv", {x, w}, attrs);
    b.output(b.batch_norm(c1, 2));
    b.output(c2);
  };
  ir::Graph after = expect_same_outputs(fn, fold_bn(), 1e-5f, 1e-6f);
  EXPECT_EQ(count_of(after, "BatchNormalization"), 0);
}

TEST(FoldBatchNorm, DisabledLeavesThePattern) {
  PassManager manager;
  manager.disable("fold_batch_norm");
  // Else batch_norm_to_conv turns the unfolded BN into a depthwise Conv.
  manager.disable("batch_norm_to_conv");
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 3, 4, 4});
    b.output(b.batch_norm(b.conv(x, 3, 3, 3), 3));
  };
  ir::Graph after = expect_same_outputs(fn, manager, 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "BatchNormalization"), 1);
  EXPECT_EQ(count_of(after, "Conv"), 1);
}

}  // namespace
}  // namespace anvil::passes::testing
