// builder/fold_output_reformat.h: a classifier's FC layer writes the graph's
// FP32 output itself where nothing else reads its result and no padding is
// dropped; elsewhere the output keeps its reformat_out.
#include "builder/fold_output_reformat.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "builder/lower.h"
#include "int8_test_net.h"
#include "pass_test_util.h"
#include "passes/pass_manager.h"

namespace anvil::builder {
namespace {

using passes::testing::GraphBuilder;
using testing::kinds;

// x[N,8,4,4] -> GAP -> Flatten -> Gemm to `classes`, then `head` (the
// outputs; by default the Gemm's result alone).
ir::Graph classifier(std::int64_t classes,
                     const std::function<void(GraphBuilder&, ir::Value*)>& head = {}) {
  ir::Graph g = passes::testing::build([&](GraphBuilder& b) {
    ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(8),
                                           ir::Dim::known(4), ir::Dim::known(4)}));
    ir::Value* y = b.node("Flatten", {b.node("GlobalAveragePool", {x})});
    ir::Attributes gemm;
    gemm.set("transB", std::int64_t{1});
    ir::Value* logits =
        b.node("Gemm", {y, b.weight("fc.w", {classes, 8}), b.weight("fc.b", {classes})}, gemm);
    if (head)
      head(b, logits);
    else
      b.output(logits);
  });
  passes::PassManager().run(g);
  return g;
}

const plan::TensorDesc& tensor(const plan::Plan& p, int id) {
  return p.tensors.at(static_cast<std::size_t>(id));
}

TEST(FoldOutputReformat, TheGemmWritesTheFp32OutputInFp16AndFp32Plans) {
  for (const bool fp16 : {true, false}) {
    SCOPED_TRACE(fp16 ? "fp16" : "fp32");
    const plan::Plan p = lower_graph(classifier(16), {.fp16 = fp16, .max_batch = 4});
    EXPECT_EQ(kinds(p),
              (std::vector<std::string>{"reformat_in", "global_avg_pool", "gemm_output"}));
    ASSERT_EQ(p.io.size(), 2u);
    ASSERT_FALSE(p.io[1].is_input);
    EXPECT_EQ(p.layers.back().outputs, std::vector<int>{p.io[1].tensor_id});
    const plan::TensorDesc& out = tensor(p, p.io[1].tensor_id);
    EXPECT_EQ(out.dtype, DType::kFloat32);
    EXPECT_EQ(out.dims, (std::vector<std::int64_t>{-1, 16}));
  }
}

TEST(FoldOutputReformat, PaddedClassesKeepTheReformat) {
  // 10 classes are stored as 16 (FP16) or 12 (FP32): the reformat drops the rest.
  for (const bool fp16 : {true, false}) {
    const plan::Plan p = lower_graph(classifier(10), {.fp16 = fp16, .max_batch = 4});
    EXPECT_EQ(kinds(p),
              (std::vector<std::string>{"reformat_in", "global_avg_pool", "gemm", "reformat_out"}));
  }
}

TEST(FoldOutputReformat, AResultOtherLayersReadKeepsTheReformat) {
  // The logits are an output and also feed a Relu, the second output.
  const plan::Plan p = lower_graph(classifier(16,
                                              [](GraphBuilder& b, ir::Value* logits) {
                                                b.output(logits);
                                                b.output(b.node("Relu", {logits}));
                                              }),
                                   {.fp16 = true, .max_batch = 4});
  EXPECT_EQ(kinds(p), (std::vector<std::string>{"reformat_in", "global_avg_pool", "gemm", "eltwise",
                                                "reformat_out", "reformat_out"}));
}

TEST(FoldOutputReformat, TwoOutputsOfOneResultKeepBothReformats) {
  const plan::Plan p = lower_graph(classifier(16,
                                              [](GraphBuilder& b, ir::Value* logits) {
                                                b.output(logits);
                                                b.output(b.node("Identity", {logits}));
                                              }),
                                   {.fp16 = true, .max_batch = 4});
  EXPECT_EQ(kinds(p), (std::vector<std::string>{"reformat_in", "global_avg_pool", "gemm",
                                                "reformat_out", "reformat_out"}));
}

// The plan before the fold: reformat_in, global_avg_pool, gemm, reformat_out.
plan::Plan unfolded(std::int64_t classes = 16) {
  return lower_graph(classifier(classes),
                     {.fp16 = true, .max_batch = 4, .fold_output_reformat = false});
}

TEST(FoldOutputReformat, FoldsByHandWhatLoweringFolds) {
  plan::Plan p = unfolded();
  ASSERT_EQ(kinds(p),
            (std::vector<std::string>{"reformat_in", "global_avg_pool", "gemm", "reformat_out"}));
  const int user = p.layers[3].outputs[0];
  EXPECT_EQ(fold_output_reformat(p), 1);
  EXPECT_EQ(kinds(p), (std::vector<std::string>{"reformat_in", "global_avg_pool", "gemm_output"}));
  EXPECT_EQ(p.layers[2].outputs, std::vector<int>{user});
  EXPECT_EQ(fold_output_reformat(p), 0) << "nothing left to fold";
}

TEST(FoldOutputReformat, OnlyAGemmOnTheReformatsStreamFolds) {
  plan::Plan p = unfolded();
  p.layers[2].stream = 1;
  EXPECT_EQ(fold_output_reformat(p), 0);
  p = unfolded();
  p.layers[2].kind = "eltwise";  // not a gemm: its writer stays as it is
  EXPECT_EQ(fold_output_reformat(p), 0);
  EXPECT_EQ(p.layers.back().kind, "reformat_out");
}

TEST(FoldOutputReformat, AGemmWhoseParamsPadItsRowsKeepsTheReformat) {
  plan::Plan p = unfolded();
  nlohmann::json params = nlohmann::json::parse(p.layers[2].params);
  params["n"] = 15;  // as if the reformat dropped a padded column
  p.layers[2].params = params.dump();
  EXPECT_EQ(fold_output_reformat(p), 0);
}

}  // namespace
}  // namespace anvil::builder
