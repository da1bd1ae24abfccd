// The stem fusion at the end of lowering: which conv + max pool pairs become
// one "conv_max_pool" layer, that the bypassed tensor takes no memory, and,
// in INT8 plans, which "quantize" layers of the pooled tensor it absorbs.
#include "builder/fuse_conv_max_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "builder/int8_fallback.h"
#include "builder/lower.h"
#include "builder/respecialize.h"
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

// The stem, then a 3x3 conv 64 -> 64 + Relu that runs in INT8 with the
// scales of int8_options (the stem itself reads the image: it stays FP16).
struct Int8Stem {
  ir::Graph graph;
  std::string pooled, y;  // value names: the pool's output, the 3x3 conv's
};

Int8Stem int8_stem(bool pooled_is_output = false, std::int64_t side = 32) {
  GraphBuilder b;
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(3),
                                         ir::Dim::known(side), ir::Dim::known(side)}));
  ir::Value* c = b.node("Relu", {b.conv(x, 3, 64, 7, /*bias=*/true, 1, /*stride=*/2)});
  ir::Value* pooled = max_pool(b, c);
  b.output(b.node("Relu", {b.conv(pooled, 64, 64, 3, /*bias=*/true)}));
  if (pooled_is_output) b.output(pooled);
  Int8Stem s;
  s.pooled = pooled->name;
  s.graph = b.finish();
  passes::PassManager().run(s.graph);
  for (const auto& node : s.graph.nodes())
    if (node->op_type == "FusedConv" && node->input(0)->name == s.pooled)
      s.y = node->outputs[0]->name;
  return s;
}

constexpr float kPooledScale = 0.05f;

LowerOptions int8_options(const Int8Stem& s) {
  LowerOptions o{.fp16 = true, .max_batch = 4};
  o.int8_scales = {{s.pooled, kPooledScale}, {s.y, 0.03f}};
  return o;
}

const plan::TensorDesc& tensor(const plan::Plan& p, int id) {
  return p.tensors.at(static_cast<std::size_t>(id));
}

bool touched(const plan::Plan& p, int id) {
  return std::any_of(p.layers.begin(), p.layers.end(), [&](const plan::LayerDesc& l) {
    return std::count(l.inputs.begin(), l.inputs.end(), id) +
               std::count(l.outputs.begin(), l.outputs.end(), id) >
           0;
  });
}

TEST(FuseConvMaxPool, TheStemWritesTheInt8TensorItself) {
  const Int8Stem s = int8_stem();
  ASSERT_FALSE(s.y.empty()) << "the 3x3 conv was not fused with its Relu";
  const plan::Plan p = lower_graph(s.graph, int8_options(s));
  ASSERT_EQ(kinds(p), (std::vector<std::string>{"reformat_in", "conv_max_pool_int8", "conv_int8",
                                                "dequantize", "reformat_out"}))
      << "the quantize layer of the pooled tensor is folded into the stem";
  const plan::LayerDesc& stem = p.layers[1];
  const plan::LayerDesc& conv = p.layers[2];
  ASSERT_EQ(stem.outputs.size(), 1u);
  EXPECT_EQ(tensor(p, stem.outputs[0]).dtype, DType::kInt8);
  EXPECT_EQ(tensor(p, stem.inputs[0]).dtype, DType::kFloat16);
  EXPECT_EQ(conv.inputs.at(0), stem.outputs[0]);
  const auto params = nlohmann::json::parse(stem.params);
  ASSERT_TRUE(params.contains("out_scale")) << stem.params;
  EXPECT_EQ(params["out_scale"].get<float>(), kPooledScale);
  EXPECT_EQ(nlohmann::json::parse(conv.params).at("x_scale").get<float>(), kPooledScale)
      << "the INT8 conv reads the stem's output with the scale the stem wrote it with";
  EXPECT_EQ(params["pool"]["out_h"], 8);
  EXPECT_NE(stem.name.find("quantize"), std::string::npos) << stem.name;
  // The FP16 pooled tensor is still in the plan, but no layer writes or reads
  // it, so it takes no arena memory.
  int fp16_pooled = -1;
  for (std::size_t t = 0; t < p.tensors.size(); ++t)
    if (p.tensors[t].name == s.pooled && p.tensors[t].dtype == DType::kFloat16)
      fp16_pooled = static_cast<int>(t);
  ASSERT_GE(fp16_pooled, 0) << "no FP16 tensor named " << s.pooled;
  EXPECT_FALSE(touched(p, fp16_pooled));
  for (const plan::LayerDesc& l : p.layers)
    EXPECT_EQ(l.stream, 0) << l.name;
}

TEST(FuseConvMaxPool, KeepsTheQuantizeWhenAFloatLayerAlsoReadsThePooledTensor) {
  const Int8Stem s = int8_stem(/*pooled_is_output=*/true);
  const plan::Plan p = lower_graph(s.graph, int8_options(s));
  const std::vector<std::string> k = kinds(p);
  ASSERT_EQ(k.at(1), "conv_max_pool");
  EXPECT_EQ(std::count(k.begin(), k.end(), "quantize"), 1) << ::testing::PrintToString(k);
  const plan::LayerDesc& stem = p.layers[1];
  EXPECT_EQ(tensor(p, stem.outputs.at(0)).dtype, DType::kFloat16);
  EXPECT_FALSE(nlohmann::json::parse(stem.params).contains("out_scale")) << stem.params;
}

// fold_stem_quantize on its own, from the plan above with the pooled
// tensor's float reader (the output reformat) cut away.
TEST(FuseConvMaxPool, FoldsOnlyAUsableQuantizeOnTheSameStream) {
  const Int8Stem s = int8_stem(/*pooled_is_output=*/true);
  const plan::Plan lowered = lower_graph(s.graph, int8_options(s));
  const int pooled = lowered.layers.at(1).outputs.at(0);
  auto only_quantize_reads = [&] {
    plan::Plan p = lowered;
    std::erase_if(p.layers, [&](const plan::LayerDesc& l) {
      return l.kind == "reformat_out" && l.inputs == std::vector<int>{pooled};
    });
    return p;
  };
  auto quantize_of = [&](plan::Plan& p) -> plan::LayerDesc& {
    return *std::find_if(p.layers.begin(), p.layers.end(),
                         [](const plan::LayerDesc& l) { return l.kind == "quantize"; });
  };

  plan::Plan p = only_quantize_reads();
  const std::size_t before = p.layers.size();
  EXPECT_EQ(fold_stem_quantize(p), 1);
  EXPECT_EQ(p.layers.size(), before - 1);
  EXPECT_EQ(fold_stem_quantize(p), 0) << "a folded stem folds nothing more";

  p = lowered;
  EXPECT_EQ(fold_stem_quantize(p), 0) << "the output reformat reads the FP16 tensor too";

  p = only_quantize_reads();
  quantize_of(p).stream = 1;
  EXPECT_EQ(fold_stem_quantize(p), 0) << "a quantize on another stream";

  for (const double bad : {0.0, -0.05, 1e300}) {
    p = only_quantize_reads();
    auto params = nlohmann::json::parse(quantize_of(p).params);
    params["scale"] = bad;
    quantize_of(p).params = params.dump();
    EXPECT_EQ(fold_stem_quantize(p), 0) << "scale " << bad;
  }

  p = only_quantize_reads();
  auto params = nlohmann::json::parse(quantize_of(p).params);
  params["c_pad"] = 32;
  quantize_of(p).params = params.dump();
  EXPECT_EQ(fold_stem_quantize(p), 0) << "a quantize of another geometry";
}

// A plan with spatial ranges re-derives the INT8 stem's geometry for other
// input sizes (builder/respecialize.h) as it does the FP16 stem's.
TEST(FuseConvMaxPool, TheInt8StemRespecializesAsLowered) {
  const Int8Stem s32 = int8_stem(false, 32), s48 = int8_stem(false, 48);
  const plan::Plan want = lower_graph(s48.graph, int8_options(s48));
  const plan::Plan got =
      respecialize(lower_graph(s32.graph, int8_options(s32)), {{"x", {1, 3, 48, 48}}});
  ASSERT_EQ(kinds(got), kinds(want));
  ASSERT_EQ(got.layers.at(1).kind, "conv_max_pool_int8");
  for (std::size_t i = 0; i < want.layers.size(); ++i)
    EXPECT_EQ(nlohmann::json::parse(got.layers[i].params),
              nlohmann::json::parse(want.layers[i].params))
        << want.layers[i].name;
  ASSERT_EQ(got.tensors.size(), want.tensors.size());
  for (std::size_t t = 0; t < want.tensors.size(); ++t)
    EXPECT_EQ(got.tensors[t].dims, want.tensors[t].dims) << want.tensors[t].name;
}

// The conv after a stem that writes INT8 may go back to FP16 without a
// reformat of its input: the stem then writes FP16 (builder/int8_fallback.h).
// Its output's dequantize goes too, so with DRAM this slow (1000 bytes a ms)
// FP16 wins even a little slower than INT8.
TEST(FuseConvMaxPool, AFallbackAfterTheInt8StemCountsNoInputReformat) {
  const Int8Stem s = int8_stem();
  const plan::Plan p = lower_graph(s.graph, int8_options(s));
  const plan::LayerDesc& conv = p.layers.at(2);
  ASSERT_EQ(conv.kind, "conv_int8");
  const std::vector<Int8Fallback> f =
      int8_fallbacks(p, 4, {{conv.name, 1.0f}}, {{conv.name, 1.001f}}, 1000.0);
  ASSERT_EQ(f.size(), 1u) << "the stem's INT8 output was counted as a reformat";
  EXPECT_EQ(f[0].layer, conv.name);
}

}  // namespace
}  // namespace anvil::builder
