// The stem fusion at the end of lowering: which conv + max pool pairs become
// one "conv_max_pool" layer, and that the bypassed tensor takes no memory.
#include "builder/fuse_conv_max_pool.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "builder/lower.h"
#include "pass_test_util.h"
#include "passes/pass_manager.h"

namespace anvil::builder {
namespace {

using passes::testing::GraphBuilder;

ir::Value* max_pool(GraphBuilder& b, ir::Value* x, std::int64_t kernel = 3) {
  ir::Attributes attrs;
  attrs.set("kernel_shape", std::vector<std::int64_t>{kernel, kernel});
  attrs.set("pads", std::vector<std::int64_t>{1, 1, 1, 1});
  attrs.set("strides", std::vector<std::int64_t>{2, 2});
  return b.node("MaxPool", {x}, std::move(attrs));
}

// Input [N, 3, 32, 32] -> 7x7/2 conv to `out` channels + Relu -> 3x3/2 max pool.
ir::Graph stem(std::int64_t out = 64, std::int64_t pool_kernel = 3, bool second_reader = false) {
  GraphBuilder b;
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(3), ir::Dim::known(32),
                                         ir::Dim::known(32)}));
  ir::Value* c = b.node("Relu", {b.conv(x, 3, out, 7, /*bias=*/true, 1, /*stride=*/2)});
  b.output(max_pool(b, c, pool_kernel));
  if (second_reader) b.output(b.node("Relu", {c}));
  ir::Graph g = b.finish();
  passes::PassManager().run(g);
  return g;
}

std::vector<std::string> kinds(const plan::Plan& p) {
  std::vector<std::string> out;
  for (const plan::LayerDesc& l : p.layers)
    out.push_back(l.kind);
  return out;
}

TEST(FuseConvMaxPool, FusesResNetsStemInFp16) {
  const plan::Plan p = lower_graph(stem(), {.fp16 = true, .max_batch = 4});
  ASSERT_EQ(kinds(p), (std::vector<std::string>{"reformat_in", "conv_max_pool", "reformat_out"}));
  const plan::LayerDesc& fused = p.layers[1];
  const auto params = nlohmann::json::parse(fused.params);
  EXPECT_EQ(params["activation"], "relu");
  EXPECT_EQ(params["pool"]["out_h"], 8);
  EXPECT_EQ(fused.weights.size(), 2u);
  EXPECT_NE(fused.name.find(" + "), std::string::npos) << fused.name;
  // Arena: the input reformat's output and nothing of the 16x16x64 conv output.
  const plan::TensorDesc& in = p.tensors[static_cast<std::size_t>(fused.inputs[0])];
  EXPECT_EQ(
      plan_arena(p, 4).arena_bytes,
      tensor_bytes(in, 4) + tensor_bytes(p.tensors[static_cast<std::size_t>(fused.outputs[0])], 4));
}

TEST(FuseConvMaxPool, LeavesOtherShapesAndFp32Alone) {
  EXPECT_EQ(kinds(lower_graph(stem(), {.fp16 = false, .max_batch = 4})),
            (std::vector<std::string>{"reformat_in", "conv", "pool", "reformat_out"}));
  EXPECT_EQ(kinds(lower_graph(stem(), {.fp16 = true, .max_batch = 4, .fuse_conv_max_pool = false})),
            (std::vector<std::string>{"reformat_in", "conv", "pool", "reformat_out"}));
  EXPECT_EQ(kinds(lower_graph(stem(32), {.fp16 = true, .max_batch = 4}))[1], "conv");
  EXPECT_EQ(kinds(lower_graph(stem(64, 2), {.fp16 = true, .max_batch = 4}))[1], "conv");
}

TEST(FuseConvMaxPool, KeepsAConvOutputThatAnotherLayerReads) {
  const plan::Plan p =
      lower_graph(stem(64, 3, /*second_reader=*/true), {.fp16 = true, .max_batch = 4});
  for (const plan::LayerDesc& l : p.layers)
    EXPECT_NE(l.kind, "conv_max_pool");
}

}  // namespace
}  // namespace anvil::builder
