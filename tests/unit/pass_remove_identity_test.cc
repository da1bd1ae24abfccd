#include "pass_test_util.h"

namespace anvil::passes::testing {
namespace {

const PassManager& remove() {
  static const PassManager manager = only(make_remove_identity());
  return manager;
}

TEST(RemoveIdentity, RemovesIdentityAndDropoutKeepingOutputNames) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{2, 3});
    ir::Value* y = b.node("Identity", {b.node("Relu", {x})});
    y = b.node("Dropout", {y}, {}, /*output_count=*/2);  // unused mask
    b.output(b.node("Identity", {b.node("Sigmoid", {y})}));
  };
  ir::Graph after = expect_same_outputs(fn, remove(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "Identity"), 0);
  EXPECT_EQ(count_of(after, "Dropout"), 0);
  EXPECT_EQ(after.nodes().size(), 2u);
  EXPECT_EQ(after.outputs[0]->name, "Identity_4_out0");
  EXPECT_EQ(after.outputs[0]->producer->op_type, "Sigmoid");
}

TEST(RemoveIdentity, KeepsWhatCannotBeRemovedWithoutRenaming) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{2, 3});
    b.output(b.node("Identity", {x}));  // graph input to graph output
    ir::Value* r = b.node("Relu", {x});
    b.output(r);
    b.output(b.node("Identity", {r}));  // its input is a graph output too
    ir::Value* d = b.node("Dropout", {x}, {}, 2);
    b.output(d->producer->outputs[1]);  // the mask is used
  };
  ir::Graph after = expect_same_outputs(fn, remove(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "Identity"), 2);
  EXPECT_EQ(count_of(after, "Dropout"), 1);
}

TEST(RemoveIdentity, DisabledLeavesThePattern) {
  PassManager manager;
  manager.disable("remove_identity");
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{4});
    b.output(b.node("Relu", {b.node("Identity", {x})}));
  };
  ir::Graph after = expect_same_outputs(fn, manager, 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "Identity"), 1);
}

}  // namespace
}  // namespace anvil::passes::testing
