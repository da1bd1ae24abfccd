#include "pass_test_util.h"

namespace anvil::passes::testing {
namespace {

const PassManager& fold() {
  static const PassManager manager = only(make_fold_constants());
  return manager;
}

TEST(FoldConstants, EvaluatesConstantSubgraphs) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{2, 4});
    // Relu(c) * 2 + d: three float nodes on constants, which import leaves.
    ir::Value* k = b.node("Mul", {b.node("Relu", {b.weight("c", {4})}), b.scalar("two", 2.0f)});
    k = b.node("Add", {k, b.weight("d", {4})});
    b.output(b.node("Add", {x, k}));
  };
  ir::Graph before = build(fn);
  ASSERT_EQ(before.nodes().size(), 4u);
  ir::Graph after = expect_same_outputs(fn, fold(), 0.0f, 0.0f);
  ASSERT_EQ(after.nodes().size(), 1u);
  const ir::Node& add = *after.nodes()[0];
  ASSERT_TRUE(add.inputs[1]->is_constant());
  EXPECT_EQ(add.inputs[1]->producer, nullptr);
  EXPECT_EQ(add.inputs[1]->shape, ir::Shape::of({4}));
}

TEST(FoldConstants, LeavesNodesProducingGraphOutputs) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{3});
    b.output(b.node("Relu", {x}));
    b.output(b.node("Sigmoid", {b.weight("c", {3})}));
  };
  ir::Graph after = expect_same_outputs(fn, fold(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "Sigmoid"), 1);
}

TEST(FoldConstants, DisabledLeavesThePattern) {
  PassManager manager;
  manager.disable("fold_constants");
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{3});
    b.output(b.node("Add", {x, b.node("Relu", {b.weight("c", {3})})}));
  };
  ir::Graph after = expect_same_outputs(fn, manager, 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "Relu"), 1);
}

}  // namespace
}  // namespace anvil::passes::testing
