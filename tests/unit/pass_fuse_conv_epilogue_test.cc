#include "ops/op.h"
#include "pass_test_util.h"

namespace anvil::passes::testing {
namespace {

const PassManager& fuse() {
  static const PassManager manager = only(make_fuse_conv_epilogue());
  return manager;
}

const ir::Node* fused_node(const ir::Graph& graph) {
  for (const auto& node : graph.nodes())
    if (node->op_type == "FusedConv") return node.get();
  return nullptr;
}

TEST(FuseConvEpilogue, ConvRelu) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{2, 3, 7, 7});
    b.output(b.node("Relu", {b.conv(x, 3, 4, 3, true)}));
  };
  ir::Graph after = expect_same_outputs(fn, fuse(), 0.0f, 0.0f);
  ASSERT_EQ(after.nodes().size(), 1u);
  const ir::Node* node = fused_node(after);
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->domain, "anvil");
  EXPECT_EQ(node->attributes.get_string("activation", ""), "Relu");
  EXPECT_EQ(node->inputs.size(), 3u);
  EXPECT_EQ(after.outputs[0]->name, "Relu_1_out0");  // the graph output keeps its name
}

TEST(FuseConvEpilogue, ResidualAddAndRelu) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(4),
                                           ir::Dim::known(6), ir::Dim::known(6)}));
    ir::Value* c = b.conv(x, 4, 4, 3);
    b.output(b.node("Relu", {b.node("Add", {c, x})}));
  };
  ir::Graph after = expect_same_outputs(fn, fuse(), 0.0f, 0.0f);
  ASSERT_EQ(after.nodes().size(), 1u);
  const ir::Node* node = fused_node(after);
  ASSERT_NE(node, nullptr);
  ASSERT_EQ(node->inputs.size(), 4u);
  EXPECT_EQ(node->inputs[2], nullptr);  // no bias
  EXPECT_EQ(node->inputs[3]->name, "x");
}

TEST(FuseConvEpilogue, ResidualOnTheLeftAndNoActivation) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 2, 5, 5});
    ir::Value* r = b.node("Sigmoid", {x});
    b.output(b.node("Add", {r, b.conv(x, 2, 2, 3)}));
  };
  ir::Graph after = expect_same_outputs(fn, fuse(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "FusedConv"), 1);
  EXPECT_EQ(count_of(after, "Add"), 0);
  EXPECT_EQ(count_of(after, "Sigmoid"), 1);  // the residual's producer, not an epilogue
}

TEST(FuseConvEpilogue, AddOfTwoConvsGoesToTheFirstOperand) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 2, 5, 5});
    ir::Value* main = b.conv(x, 2, 2, 3);
    ir::Value* shortcut = b.conv(x, 2, 2, 1);
    b.output(b.node("Relu", {b.node("Add", {main, shortcut})}));
  };
  ir::Graph after = expect_same_outputs(fn, fuse(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "FusedConv"), 1);
  EXPECT_EQ(count_of(after, "Conv"), 1);
  const ir::Node* node = fused_node(after);
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->attributes.get_ints("kernel_shape"), (std::vector<std::int64_t>{3, 3}));
}

TEST(FuseConvEpilogue, EachActivation) {
  const std::vector<std::string> activations = {"Relu6",       "LeakyRelu", "Sigmoid",
                                                "HardSigmoid", "HardSwish", "ClipMinOnly"};
  for (const std::string& activation : activations) {
    SCOPED_TRACE(activation);
    auto fn = [&](GraphBuilder& b) {
      ir::Value* x = b.input("x", Extents{1, 3, 6, 6});
      ir::Value* c = b.conv(x, 3, 5, 3, true);
      ir::Attributes attrs;
      if (activation == "Relu6") {
        b.output(b.node("Clip", {c, b.scalar("lo", 0.0f), b.scalar("hi", 6.0f)}));
      } else if (activation == "ClipMinOnly") {
        b.output(b.node("Clip", {c, b.scalar("lo", -0.25f)}));
      } else {
        if (activation == "LeakyRelu") attrs.set("alpha", 0.2f);
        if (activation == "HardSigmoid") attrs.set("beta", 0.4f);
        b.output(b.node(activation, {c}, attrs));
      }
    };
    ir::Graph after = expect_same_outputs(fn, fuse(), 0.0f, 0.0f);
    EXPECT_EQ(after.nodes().size(), 1u);
    EXPECT_EQ(count_of(after, "FusedConv"), 1);
  }
}

TEST(FuseConvEpilogue, LeavesPatternsWithOtherReaders) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 2, 4, 4});
    ir::Value* c = b.conv(x, 2, 2, 3);
    b.output(b.node("Relu", {c}));
    b.output(c);  // the Conv output is also a graph output
    ir::Value* c2 = b.conv(x, 2, 2, 3);
    b.output(b.node("Mul", {b.node("Relu", {c2}), c2}));  // read twice
  };
  ir::Graph after = expect_same_outputs(fn, fuse(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "FusedConv"), 0);
  EXPECT_EQ(count_of(after, "Relu"), 2);
}

TEST(FuseConvEpilogue, LeavesBroadcastingAddAndNonConstantClip) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 2, 4, 4});
    ir::Value* hi = b.input("hi", Extents{});
    b.output(b.node("Add", {b.conv(x, 2, 2, 3), b.weight("per_channel", {2, 1, 1})}));
    b.output(b.node("Clip", {b.conv(x, 2, 2, 3), b.scalar("lo", 0.0f), hi}));
  };
  ir::Graph after = expect_same_outputs(fn, fuse(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "FusedConv"), 0);
}

TEST(FuseConvEpilogue, DisabledLeavesThePattern) {
  PassManager manager;
  manager.disable("fuse_conv_epilogue");
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 2, 4, 4});
    b.output(b.node("Relu", {b.conv(x, 2, 2, 3)}));
  };
  ir::Graph after = expect_same_outputs(fn, manager, 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "FusedConv"), 0);
  EXPECT_EQ(count_of(after, "Relu"), 1);
}

// The FusedConv op itself: a malformed epilogue is an error naming the node.
TEST(FusedConvOp, RejectsBadEpilogue) {
  ir::Node node;
  node.op_type = "FusedConv";
  node.domain = "anvil";
  node.name = "fc";
  node.opset = 17;
  ir::Value x, w, r, y;
  node.inputs = {&x, &w, nullptr, &r};
  node.outputs = {&y};
  Tensor xs(DType::kFloat32, {1, 1, 3, 3});
  Tensor ws(DType::kFloat32, {1, 1, 1, 1});
  Tensor wrong(DType::kFloat32, {1, 1, 2, 3});
  try {
    ops::run_node(node, {&xs, &ws, nullptr, &wrong});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidModel);
    EXPECT_NE(std::string(e.what()).find("FusedConv 'fc'"), std::string::npos) << e.what();
  }
  Tensor rs(DType::kFloat32, {1, 1, 3, 3});
  node.attributes.set("activation", std::string("Softmax"));
  try {
    ops::run_node(node, {&xs, &ws, nullptr, &rs});
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
  }
  // Not reachable from the default domain.
  node.domain = "";
  EXPECT_THROW(ops::run_node(node, {&xs, &ws, nullptr, &rs}), Error);
}

}  // namespace
}  // namespace anvil::passes::testing
