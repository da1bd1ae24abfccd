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

TEST(FuseConvMaxPool, FusesResNetsStemInFp16) {
  const plan::Plan p = lower_graph(stem(), {.fp16 = true, .max_batch = 4});
  ASSERT_EQ(kinds(p), (std::vector<std::string>{"conv_max_pool", "reformat_out"}));
  const plan::LayerDesc& fused = p.layers[0];
  const auto params = nlohmann::json::parse(fused.params);
  EXPECT_EQ(params["activation"], "relu");
  EXPECT_EQ(params["pool"]["out_h"], 8);
  EXPECT_EQ(fused.weights.size(), 2u);
  EXPECT_NE(fused.name.find(" + "), std::string::npos) << fused.name;
  // Arena: the FP16 input storage (for a caller that preformats the input)
  // and nothing of the 16x16x64 conv output.
  ASSERT_EQ(fused.inputs.size(), 2u);
  EXPECT_EQ(plan_arena(p, 4).arena_bytes, tensor_bytes(tensor(p, fused.inputs[1]), 4) +
                                              tensor_bytes(tensor(p, fused.outputs[0]), 4));
}

// The stem reads the engine's FP32 NCHW input itself (fold_stem_input): the
// input reformat goes; the FP16 tensor it wrote stays as the stem's input 1,
// written by no layer, for a caller that preformats the input.
TEST(FuseConvMaxPool, TheStemReadsTheEngineInputItself) {
  const plan::Plan p = lower_graph(stem(), {.fp16 = true, .max_batch = 4});
  const plan::LayerDesc& fused = p.layers.at(0);
  ASSERT_EQ(fused.inputs.size(), 2u);
  ASSERT_EQ(p.io.at(0).name, "x");
  EXPECT_EQ(fused.inputs[0], p.io[0].tensor_id);
  const plan::TensorDesc& rgb = tensor(p, fused.inputs[0]);
  EXPECT_EQ(rgb.dtype, DType::kFloat32);
  EXPECT_EQ(rgb.layout, "NCHW");
  const plan::TensorDesc& stored = tensor(p, fused.inputs[1]);
  EXPECT_EQ(stored.dtype, DType::kFloat16);
  EXPECT_EQ(stored.layout, "NHWC");
  EXPECT_EQ(stored.channel_padding_to, std::optional<std::int64_t>(4));
  for (const plan::LayerDesc& l : p.layers)
    EXPECT_EQ(std::count(l.outputs.begin(), l.outputs.end(), fused.inputs[1]), 0) << l.name;
  plan::Plan again = p;
  EXPECT_EQ(fold_stem_input(again), 0) << "folded once";

  // Not where the reformat's output has another reader, or the reformat runs
  // on another stream.
  plan::Plan unfolded = lower_graph(stem(), {.fp16 = true, .max_batch = 4});
  unfolded.layers[0].inputs = {unfolded.layers[0].inputs[1]};
  plan::LayerDesc reformat;
  reformat.name = "reformat_in:x";
  reformat.kind = "reformat_in";
  reformat.inputs = {p.io[0].tensor_id};
  reformat.outputs = {unfolded.layers[0].inputs[0]};
  unfolded.layers.insert(unfolded.layers.begin(), reformat);
  plan::Plan other_stream = unfolded;
  other_stream.layers[0].stream = 1;
  EXPECT_EQ(fold_stem_input(other_stream), 0);
  plan::Plan two_readers = unfolded;
  plan::LayerDesc reader = two_readers.layers.back();
  reader.name = "another";
  reader.inputs = {reformat.outputs[0]};
  two_readers.layers.push_back(reader);
  EXPECT_EQ(fold_stem_input(two_readers), 0);
  EXPECT_EQ(fold_stem_input(unfolded), 1);
  EXPECT_EQ(kinds(unfolded), kinds(p));
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

TEST(FuseConvMaxPool, TheStemWritesTheInt8TensorItself) {
  const Int8Stem s = int8_stem();
  ASSERT_FALSE(s.y.empty()) << "the 3x3 conv was not fused with its Relu";
  const plan::Plan p = lower_graph(s.graph, int8_options(s));
  ASSERT_EQ(kinds(p), (std::vector<std::string>{"conv_max_pool_int8", "conv_int8", "dequantize",
                                                "reformat_out"}))
      << "the quantize layer of the pooled tensor is folded into the stem";
  const plan::LayerDesc& stem = p.layers[0];
  const plan::LayerDesc& conv = p.layers[1];
  ASSERT_EQ(stem.outputs.size(), 1u);
  EXPECT_EQ(tensor(p, stem.outputs[0]).dtype, DType::kInt8);
  ASSERT_EQ(stem.inputs.size(), 2u) << "the stem reads the engine input itself";
  EXPECT_EQ(tensor(p, stem.inputs[0]).dtype, DType::kFloat32);
  EXPECT_EQ(tensor(p, stem.inputs[1]).dtype, DType::kFloat16);
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
  ASSERT_EQ(k.at(0), "conv_max_pool");
  EXPECT_EQ(std::count(k.begin(), k.end(), "quantize"), 1) << ::testing::PrintToString(k);
  const plan::LayerDesc& stem = p.layers[0];
  EXPECT_EQ(tensor(p, stem.outputs.at(0)).dtype, DType::kFloat16);
  EXPECT_FALSE(nlohmann::json::parse(stem.params).contains("out_scale")) << stem.params;
}

// fold_stem_quantize on its own, from the plan above with the pooled
// tensor's float reader (the output reformat) cut away.
TEST(FuseConvMaxPool, FoldsOnlyAUsableQuantizeOnTheSameStream) {
  const Int8Stem s = int8_stem(/*pooled_is_output=*/true);
  const plan::Plan lowered = lower_graph(s.graph, int8_options(s));
  const int pooled = lowered.layers.at(0).outputs.at(0);
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
  ASSERT_EQ(got.layers.at(0).kind, "conv_max_pool_int8");
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
  const plan::LayerDesc& conv = p.layers.at(1);
  ASSERT_EQ(conv.kind, "conv_int8");
  const std::vector<Int8Fallback> f =
      int8_fallbacks(p, 4, {{conv.name, 1.0f}}, {{conv.name, 1.001f}}, 1000.0);
  ASSERT_EQ(f.size(), 1u) << "the stem's INT8 output was counted as a reformat";
  EXPECT_EQ(f[0].layer, conv.name);
}

}  // namespace
}  // namespace anvil::builder
