#include "pass_test_util.h"

namespace anvil::passes::testing {
namespace {

const PassManager& fuse() {
  static const PassManager manager = only(make_fuse_gemm_activation());
  return manager;
}

TEST(FuseGemmActivation, GemmRelu) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{3, 8});
    ir::Attributes attrs;
    attrs.set("transB", std::int64_t{1});
    attrs.set("alpha", 0.5f);
    ir::Value* y = b.node("Gemm", {x, b.weight("w", {5, 8}), b.weight("b", {5})}, attrs);
    b.output(b.node("Relu", {y}));
  };
  ir::Graph after = expect_same_outputs(fn, fuse(), 0.0f, 0.0f);
  ASSERT_EQ(after.nodes().size(), 1u);
  const ir::Node& node = *after.nodes()[0];
  EXPECT_EQ(node.op_type, "FusedGemm");
  EXPECT_EQ(node.domain, "anvil");
  EXPECT_EQ(node.attributes.get_float("alpha", 0.0f), 0.5f);  // Gemm's own alpha survives
}

TEST(FuseGemmActivation, MatMulBiasLeakyRelu) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{4, 6});
    ir::Value* y = b.node("MatMul", {x, b.weight("w", {6, 3})});
    y = b.node("Add", {b.weight("b", {1, 3}), y});
    ir::Attributes attrs;
    attrs.set("alpha", 0.1f);
    b.output(b.node("LeakyRelu", {y}, attrs));
  };
  // Gemm adds the bias first: equal up to rounding, not bit for bit.
  ir::Graph after = expect_same_outputs(fn, fuse(), 1e-5f, 1e-6f);
  ASSERT_EQ(after.nodes().size(), 1u);
  EXPECT_EQ(after.nodes()[0]->op_type, "FusedGemm");
  EXPECT_EQ(after.nodes()[0]->attributes.get_float("activation_alpha", 0.0f), 0.1f);
}

TEST(FuseGemmActivation, LeavesUnfusablePatterns) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{4, 6});
    // A Gemm without activation; a MatMul whose Add operand is not a bias row.
    b.output(b.node("Gemm", {x, b.weight("w", {6, 2})}));
    ir::Value* m = b.node("MatMul", {x, b.weight("w2", {6, 2})});
    b.output(b.node("Add", {m, b.weight("full", {4, 2})}));
  };
  ir::Graph after = expect_same_outputs(fn, fuse(), 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "FusedGemm"), 0);
}

TEST(FuseGemmActivation, DisabledLeavesThePattern) {
  PassManager manager;
  manager.disable("fuse_gemm_activation");
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{2, 3});
    b.output(b.node("Relu", {b.node("Gemm", {x, b.weight("w", {3, 3})})}));
  };
  ir::Graph after = expect_same_outputs(fn, manager, 0.0f, 0.0f);
  EXPECT_EQ(count_of(after, "FusedGemm"), 0);
  EXPECT_EQ(count_of(after, "Relu"), 1);
}

}  // namespace
}  // namespace anvil::passes::testing
