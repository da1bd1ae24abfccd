#include "pass_test_util.h"

namespace anvil::passes::testing {
namespace {

TEST(PassManager, DefaultPipelineOrder) {
  EXPECT_EQ(PassManager().pass_names(),
            (std::vector<std::string>{"remove_identity", "fold_constants", "fold_batch_norm",
                                      "batch_norm_to_conv", "fuse_conv_epilogue",
                                      "fuse_gemm_activation"}));
}

TEST(PassManager, UnknownPassNameListsTheValidOnes) {
  PassManager manager;
  try {
    manager.disable("fold_bn");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    const std::string message = e.what();
    EXPECT_NE(message.find("'fold_bn'"), std::string::npos) << message;
    EXPECT_NE(message.find("fold_batch_norm, batch_norm_to_conv, fuse_conv_epilogue"),
              std::string::npos)
        << message;
  }
  EXPECT_FALSE(manager.is_disabled("fold_batch_norm"));
}

// A small ResNet: stem Conv-BN-Relu, a basic block with an identity shortcut,
// one with a downsampling Conv-BN shortcut, then the classifier.
void mini_resnet(GraphBuilder& b) {
  ir::Value* x = b.input("image", ir::Shape({ir::Dim::named("N"), ir::Dim::known(3),
                                             ir::Dim::known(16), ir::Dim::known(16)}));
  ir::Value* y = b.node("Relu", {b.batch_norm(b.conv(x, 3, 8, 3, false, 1, 2), 8)});
  auto block = [&](ir::Value* in, std::int64_t cin, std::int64_t cout, std::int64_t stride) {
    ir::Value* t = b.node("Relu", {b.batch_norm(b.conv(in, cin, cout, 3, false, 1, stride), cout)});
    t = b.batch_norm(b.conv(t, cout, cout, 3), cout);
    ir::Value* shortcut =
        stride == 1 ? in : b.batch_norm(b.conv(in, cin, cout, 1, false, 1, stride), cout);
    return b.node("Relu", {b.node("Add", {t, shortcut})});
  };
  y = block(y, 8, 8, 1);
  y = block(y, 8, 16, 2);
  ir::Attributes flatten;
  flatten.set("axis", std::int64_t{1});
  y = b.node("Flatten", {b.node("GlobalAveragePool", {y})}, flatten);
  ir::Attributes gemm;
  gemm.set("transB", std::int64_t{1});
  y = b.node("Gemm", {y, b.weight("fc.weight", {10, 16}), b.weight("fc.bias", {10})}, gemm);
  b.output(b.node("Identity", {y}));
}

TEST(PassManager, MiniResNetPipeline) {
  ir::Graph before = build(mini_resnet);
  ASSERT_EQ(count_of(before, "BatchNormalization"), 6);
  PassManager manager;
  ir::Graph after = expect_same_outputs(mini_resnet, manager, 1e-4f, 1e-5f);
  const auto counts = op_counts(after);
  EXPECT_EQ(
      counts,
      (std::map<std::string, int>{
          {"Conv", 1}, {"Flatten", 1}, {"FusedConv", 5}, {"Gemm", 1}, {"GlobalAveragePool", 1}}));
  EXPECT_EQ(after.outputs[0]->name, before.outputs[0]->name);
}

TEST(PassManager, ReportsRewritesAndDisabledPasses) {
  ir::Graph graph = build(mini_resnet);
  PassManager manager;
  manager.disable("fuse_conv_epilogue");
  const std::vector<PassResult> results = manager.run(graph);
  ASSERT_EQ(results.size(), 6u);
  EXPECT_EQ(results[0].rewrites, 1);  // the output Identity
  EXPECT_EQ(results[2].rewrites, 6);  // every BatchNormalization
  EXPECT_EQ(results[3].rewrites, 0);  // none left for batch_norm_to_conv
  EXPECT_TRUE(results[4].disabled);
  EXPECT_EQ(results[4].rewrites, 0);
  EXPECT_EQ(count_of(graph, "FusedConv"), 0);
  EXPECT_EQ(count_of(graph, "Relu"), 5);
  EXPECT_EQ(count_of(graph, "Add"), 2);
}

}  // namespace
}  // namespace anvil::passes::testing
