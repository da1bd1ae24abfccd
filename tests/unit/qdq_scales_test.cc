// Explicit quantization (quant/qdq_scales.h): Q/DQ pairs on activations
// become scales, quantized weights become float constants, and what Anvil's
// symmetric INT8 cannot honor stays in the graph with a note.
#include "quant/qdq_scales.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <set>

#include "pass_test_util.h"
#include "passes/pass_manager.h"

namespace anvil::quant {
namespace {

using passes::testing::count_of;
using passes::testing::expect_close;
using passes::testing::GraphBuilder;
using passes::testing::random_inputs;
using passes::testing::run_graph;

constexpr std::int64_t kChannels = 4;

ir::Value* int8_scalar(GraphBuilder& b, std::int8_t v) {
  return b.constant("zp", Tensor::from<std::int8_t>({}, {v}));
}

ir::Attributes axis(std::int64_t a) {
  ir::Attributes attrs;
  attrs.set("axis", a);
  return attrs;
}

// x -> QuantizeLinear(scale, int8 zero point 0) -> DequantizeLinear(same).
ir::Value* fake_quant(GraphBuilder& b, ir::Value* x, float scale) {
  ir::Value* q = b.node("QuantizeLinear", {x, b.scalar("s", scale), int8_scalar(b, 0)});
  return b.node("DequantizeLinear", {q, b.scalar("s", scale), int8_scalar(b, 0)});
}

// Per-output-channel weight scales, as PyTorch exports them (axis 0).
std::vector<float> channel_scales(std::int64_t out) {
  std::vector<float> s;
  for (std::int64_t c = 0; c < out; ++c)
    s.push_back(0.004f * static_cast<float>(1 + c % 3));
  return s;
}

// DequantizeLinear of a seeded INT8 weight [out, in, 3, 3] with per-channel
// scales along axis 0 and int8 zero points 0.
ir::Value* int8_weight(GraphBuilder& b, std::int64_t out, std::int64_t in, unsigned seed) {
  Tensor w(DType::kInt8, {out, in, 3, 3});
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-60, 60);
  for (std::int64_t i = 0; i < w.element_count(); ++i)
    w.data<std::int8_t>()[i] = static_cast<std::int8_t>(dist(rng));
  const std::vector<float> s = channel_scales(out);
  return b.node(
      "DequantizeLinear",
      {b.constant("w_int8", std::move(w)), b.constant("w_scale", Tensor::from<float>({out}, s)),
       b.constant("w_zp", Tensor(DType::kInt8, {out}))},
      axis(0));
}

// DequantizeLinear of an int32 bias with scale x_scale * w_scale[c], as
// onnxruntime's QDQ quantizer writes biases.
ir::Value* int32_bias(GraphBuilder& b, std::int64_t out, float x_scale) {
  Tensor bias(DType::kInt32, {out});
  std::vector<float> s = channel_scales(out);
  for (std::int64_t c = 0; c < out; ++c) {
    bias.data<std::int32_t>()[c] = static_cast<std::int32_t>(100 * (c - 1));
    s[static_cast<std::size_t>(c)] *= x_scale;
  }
  return b.node("DequantizeLinear",
                {b.constant("b_int32", std::move(bias)),
                 b.constant("b_scale", Tensor::from<float>({out}, s))},
                axis(0));
}

ir::Value* conv3x3(GraphBuilder& b, ir::Value* x, ir::Value* w, ir::Value* bias = nullptr) {
  ir::Attributes attrs;
  attrs.set("kernel_shape", std::vector<std::int64_t>{3, 3});
  attrs.set("pads", std::vector<std::int64_t>{1, 1, 1, 1});
  std::vector<ir::Value*> inputs{x, w};
  if (bias) inputs.push_back(bias);
  return b.node("Conv", std::move(inputs), std::move(attrs));
}

constexpr float kXScale = 0.05f;  // N(0, 1) input: +-6.35 does not clip
constexpr float kAScale = 0.08f;  // a stays below 127 * 0.08: no clipping

struct ConvBlock {
  ir::Graph graph;
  std::string x, a;  // the input and the first conv's Relu output
};

// x -> [Q/DQ] -> Conv(int8 w1, int32 bias) -> Relu = a -> [Q/DQ] -> Conv(int8 w2)
// -> Relu, the bracketed pairs only when `quantize_activations`.
ConvBlock conv_block(bool quantize_activations) {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, kChannels, 6, 6});
  ir::Value* in = quantize_activations ? fake_quant(b, x, kXScale) : x;
  ir::Value* a = b.node("Relu", {conv3x3(b, in, int8_weight(b, kChannels, kChannels, 1),
                                         int32_bias(b, kChannels, kXScale))});
  ir::Value* a_in = quantize_activations ? fake_quant(b, a, kAScale) : a;
  b.output(b.node("Relu", {conv3x3(b, a_in, int8_weight(b, kChannels, kChannels, 2))}));
  ConvBlock block{.graph = {}, .x = x->name, .a = a->name};
  block.graph = b.finish();
  return block;
}

TEST(Qdq, StripsAConvBlocksPairsAndFoldsItsWeights) {
  ConvBlock block = conv_block(true);
  ASSERT_TRUE(has_qdq(block.graph));
  const QdqScales result = strip_qdq(block.graph);
  EXPECT_EQ(result.scales, (std::map<std::string, float>{{block.x, kXScale}, {block.a, kAScale}}));
  EXPECT_EQ(result.pairs_removed, 2);
  EXPECT_EQ(result.weights_folded, 3) << "two int8 weights and one int32 bias";
  EXPECT_TRUE(result.notes.empty()) << result.notes.front();
  EXPECT_FALSE(has_qdq(block.graph));
  EXPECT_EQ(count_of(block.graph, "Conv"), 2);
  std::set<std::string> conv_inputs;
  for (const auto& node : block.graph.nodes())
    if (node->op_type == "Conv") {
      conv_inputs.insert(node->input(0)->name);
      for (std::size_t i = 1; i < node->inputs.size(); ++i) {
        ASSERT_TRUE(node->input(i)->is_constant()) << node->describe() << " input " << i;
        EXPECT_EQ(node->input(i)->dtype, DType::kFloat32);
      }
    }
  EXPECT_EQ(conv_inputs, (std::set<std::string>{block.x, block.a}));
}

TEST(Qdq, TheStrippedGraphIsTheGraphWithoutActivationRounding) {
  ConvBlock quantized = conv_block(true);
  ConvBlock stripped = conv_block(true);
  strip_qdq(stripped.graph);
  const ConvBlock unquantized = conv_block(false);
  const auto inputs = random_inputs(quantized.graph);
  const std::vector<Tensor> want = run_graph(unquantized.graph, inputs);
  const std::vector<Tensor> got = run_graph(stripped.graph, inputs);
  // The weights dequantize through the same reference kernel either way.
  expect_close(want, got, 0.0f, 0.0f);

  // Against the Q/DQ graph, which rounds x and a to their steps: rounding
  // moves each by at most half a step; a conv with weights w moves an output
  // by at most max_k sum |w[k]| times its input's error, and Relu by no more
  // than its input's. (Neither x nor a reaches 127 steps, so nothing clips.)
  std::vector<float> gain;  // per conv, in graph order
  for (const auto& node : stripped.graph.nodes())
    if (node->op_type == "Conv") {
      const Tensor& w = *node->input(1)->constant;
      const std::int64_t per_filter = w.element_count() / w.extents()[0];
      float worst_l1 = 0.0f;
      for (std::int64_t k = 0; k < w.extents()[0]; ++k) {
        float l1 = 0.0f;
        for (std::int64_t i = 0; i < per_filter; ++i)
          l1 += std::fabs(w.data<float>()[k * per_filter + i]);
        worst_l1 = std::max(worst_l1, l1);
      }
      gain.push_back(worst_l1);
    }
  ASSERT_EQ(gain.size(), 2u);
  const float bound = gain[1] * (gain[0] * kXScale / 2 + kAScale / 2) * 1.001f;
  const std::vector<Tensor> fake_quantized = run_graph(quantized.graph, inputs);
  float worst = 0.0f;
  for (std::size_t i = 0; i < got[0].values<float>().size(); ++i)
    worst = std::max(worst,
                     std::fabs(got[0].values<float>()[i] - fake_quantized[0].values<float>()[i]));
  EXPECT_GT(worst, 0.0f) << "the Q/DQ graph rounds, so some output must differ";
  EXPECT_LE(worst, bound) << "worst difference from the Q/DQ graph, gains " << gain[0] << ", "
                          << gain[1];
  // The rounding errors are independent and mostly cancel: in practice the
  // outputs stay within a few of a's steps.
  EXPECT_LE(worst, 3 * kAScale) << "worst difference from the Q/DQ graph";
}

TEST(Qdq, ScalesNameTheFusedConvsValuesAfterThePasses) {
  ConvBlock block = conv_block(true);
  const QdqScales result = strip_qdq(block.graph);
  passes::PassManager().run(block.graph);
  ASSERT_EQ(count_of(block.graph, "FusedConv"), 2);
  std::vector<const ir::Node*> fused;
  for (const auto& node : block.graph.nodes())
    if (node->op_type == "FusedConv") fused.push_back(node.get());
  EXPECT_EQ(fused[0]->input(0)->name, block.x);
  EXPECT_EQ(fused[0]->outputs[0]->name, block.a) << "Conv + Relu writes the Relu's value";
  EXPECT_EQ(fused[1]->input(0)->name, block.a);
  EXPECT_EQ(result.scales.at(fused[0]->input(0)->name), kXScale);
  EXPECT_EQ(result.scales.at(fused[0]->outputs[0]->name), kAScale);
  EXPECT_EQ(result.scales.at(fused[1]->input(0)->name), kAScale);
}

TEST(Qdq, FoldsFakeQuantizedFloatWeights) {
  const auto build = [] {
    GraphBuilder b;
    ir::Value* x = b.input("x", Extents{1, kChannels, 5, 5});
    const std::vector<float> s = channel_scales(kChannels);
    ir::Value* w = b.weight("w", {kChannels, kChannels, 3, 3}, 0.3f);
    ir::Value* q = b.node("QuantizeLinear",
                          {w, b.constant("w_scale", Tensor::from<float>({kChannels}, s)),
                           b.constant("w_zp", Tensor(DType::kInt8, {kChannels}))},
                          axis(0));
    ir::Value* dq = b.node("DequantizeLinear",
                           {q, b.constant("w_scale", Tensor::from<float>({kChannels}, s)),
                            b.constant("w_zp", Tensor(DType::kInt8, {kChannels}))},
                           axis(0));
    b.output(conv3x3(b, x, dq));
    return b.finish();
  };
  const ir::Graph original = build();
  ir::Graph stripped = build();
  const QdqScales result = strip_qdq(stripped);
  EXPECT_EQ(result.weights_folded, 1);
  EXPECT_EQ(result.pairs_removed, 0);
  EXPECT_TRUE(result.scales.empty());
  EXPECT_FALSE(has_qdq(stripped));
  ASSERT_EQ(stripped.nodes().size(), 1u);
  ASSERT_TRUE(stripped.nodes()[0]->input(1)->is_constant());
  const auto inputs = random_inputs(original);
  expect_close(run_graph(original, inputs), run_graph(stripped, inputs), 0.0f, 0.0f);
}

TEST(Qdq, DuplicatedPairsKeepTheLargestScale) {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, kChannels, 6, 6});
  b.output(conv3x3(b, fake_quant(b, x, 0.02f), int8_weight(b, kChannels, kChannels, 1)));
  b.output(conv3x3(b, fake_quant(b, x, 0.05f), int8_weight(b, kChannels, kChannels, 2)));
  ir::Graph graph = b.finish();
  const QdqScales result = strip_qdq(graph);
  EXPECT_EQ(result.scales, (std::map<std::string, float>{{"x", 0.05f}}));
  EXPECT_EQ(result.pairs_removed, 2);
  EXPECT_FALSE(has_qdq(graph));
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("largest"), std::string::npos) << result.notes[0];
  for (const auto& node : graph.nodes())
    EXPECT_EQ(node->input(0)->name, "x") << node->describe();
}

TEST(Qdq, AGraphOutputPairKeepsTheOutputsName) {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, kChannels, 6, 6});
  ir::Value* a = b.node("Relu", {conv3x3(b, x, int8_weight(b, kChannels, kChannels, 1))});
  ir::Value* y = fake_quant(b, a, kAScale);
  b.output(y);
  const std::string y_name = y->name;
  ir::Graph graph = b.finish();
  const QdqScales result = strip_qdq(graph);
  EXPECT_EQ(result.scales, (std::map<std::string, float>{{y_name, kAScale}}));
  EXPECT_FALSE(has_qdq(graph));
  ASSERT_EQ(graph.outputs.size(), 1u);
  EXPECT_EQ(graph.outputs[0]->name, y_name);
  ASSERT_NE(graph.outputs[0]->producer, nullptr);
  EXPECT_EQ(graph.outputs[0]->producer->op_type, "Relu");
  EXPECT_NO_THROW(run_graph(graph, random_inputs(graph)));
}

TEST(QdqUnifyResidualScales, AResidualBlockSharesTheLargestScale) {
  // x -> Conv -> Relu = a -> Conv; + x -> Relu = y -> Conv, with Q/DQ on
  // every conv input and on the residual (two pairs on x).
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, kChannels, 6, 6});
  ir::Value* a = b.node("Relu", {conv3x3(b, fake_quant(b, x, 0.04f), int8_weight(b, 4, 4, 1))});
  ir::Value* c2 = conv3x3(b, fake_quant(b, a, 0.05f), int8_weight(b, 4, 4, 2));
  ir::Value* y = b.node("Relu", {b.node("Add", {c2, fake_quant(b, x, 0.06f)})});
  b.output(conv3x3(b, fake_quant(b, y, 0.08f), int8_weight(b, 4, 4, 3)));
  const std::string a_name = a->name, y_name = y->name;
  ir::Graph graph = b.finish();

  const QdqScales result = strip_qdq(graph);
  EXPECT_EQ(result.scales,
            (std::map<std::string, float>{{"x", 0.06f}, {a_name, 0.05f}, {y_name, 0.08f}}));
  EXPECT_EQ(result.notes.size(), 1u) << "x's two pairs differ";
  passes::PassManager().run(graph);
  const ir::Node* block = nullptr;
  for (const auto& node : graph.nodes())
    if (node->op_type == "FusedConv" && node->input(3)) block = node.get();
  ASSERT_NE(block, nullptr) << "the passes did not fuse the residual block";
  EXPECT_EQ(block->input(3)->name, "x");
  EXPECT_EQ(block->outputs[0]->name, y_name);

  const std::map<std::string, float> unified = unify_residual_scales(graph, result.scales);
  EXPECT_EQ(unified.at("x"), 0.08f) << "the residual takes its output's larger scale";
  EXPECT_EQ(unified.at(y_name), 0.08f);
  EXPECT_EQ(unified.at(a_name), 0.05f) << "joined to nothing";
  EXPECT_EQ(unified.size(), 3u) << "values with no scale in any group get none";
}

TEST(QdqUnifyResidualScales, GivesAnAddsUnscaledMembersTheGroupsScale) {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, 2, 3, 3});
  ir::Value* r = b.input("r", Extents{1, 2, 3, 3});
  ir::Value* sum = b.node("Add", {x, r});
  b.output(b.node("Relu", {sum}));
  const std::string sum_name = sum->name;
  const ir::Graph graph = b.finish();
  const auto unified = unify_residual_scales(graph, {{"x", 0.1f}, {"r", 0.3f}, {"gone", 1.0f}});
  EXPECT_EQ(unified, (std::map<std::string, float>{{"x", 0.3f}, {"r", 0.3f}, {sum_name, 0.3f}}));
}

// A pair Anvil's symmetric per-tensor INT8 cannot honor.
struct KeptCase {
  const char* name;
  const char* note;  // a phrase the note must contain
  std::function<ir::Value*(GraphBuilder&, ir::Value*)> quantize;
};

void PrintTo(const KeptCase& c, std::ostream* os) {
  *os << c.name;
}

class QdqKept : public ::testing::TestWithParam<KeptCase> {};

TEST_P(QdqKept, StaysInTheGraphWithANote) {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, kChannels, 6, 6});
  b.output(conv3x3(b, GetParam().quantize(b, x), int8_weight(b, kChannels, kChannels, 1)));
  ir::Graph graph = b.finish();
  const QdqScales result = strip_qdq(graph);
  EXPECT_TRUE(result.scales.empty());
  EXPECT_EQ(result.pairs_removed, 0);
  EXPECT_EQ(result.weights_folded, 1);
  EXPECT_EQ(count_of(graph, "QuantizeLinear") + count_of(graph, "DequantizeLinear"), 2)
      << "the activation's nodes stay, the weight's DQ folds";
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find(GetParam().note), std::string::npos) << result.notes[0];
  EXPECT_NE(result.notes[0].find("re-export"), std::string::npos) << result.notes[0];
}

INSTANTIATE_TEST_SUITE_P(
    QdqUnsupported, QdqKept,
    ::testing::Values(
        KeptCase{
            "NonZeroZeroPoint", "zero point is 3",
            [](GraphBuilder& b, ir::Value* x) {
              ir::Value* q = b.node("QuantizeLinear", {x, b.scalar("s", 0.05f), int8_scalar(b, 3)});
              return b.node("DequantizeLinear", {q, b.scalar("s", 0.05f), int8_scalar(b, 3)});
            }},
        KeptCase{"Uint8", "uint8",
                 [](GraphBuilder& b, ir::Value* x) {
                   ir::Value* q = b.node("QuantizeLinear", {x, b.scalar("s", 0.05f)});
                   return b.node("DequantizeLinear", {q, b.scalar("s", 0.05f)});
                 }},
        KeptCase{"PerChannelActivation", "per-channel",
                 [](GraphBuilder& b, ir::Value* x) {
                   const std::vector<float> s(kChannels, 0.05f);
                   ir::Value* q = b.node("QuantizeLinear",
                                         {x, b.constant("s", Tensor::from<float>({kChannels}, s)),
                                          b.constant("zp", Tensor(DType::kInt8, {kChannels}))});
                   return b.node("DequantizeLinear",
                                 {q, b.constant("s", Tensor::from<float>({kChannels}, s)),
                                  b.constant("zp", Tensor(DType::kInt8, {kChannels}))});
                 }},
        KeptCase{
            "DequantizeWithAnotherScale", "has scale 0.1",
            [](GraphBuilder& b, ir::Value* x) {
              ir::Value* q = b.node("QuantizeLinear", {x, b.scalar("s", 0.05f), int8_scalar(b, 0)});
              return b.node("DequantizeLinear", {q, b.scalar("s", 0.1f), int8_scalar(b, 0)});
            }},
        KeptCase{
            "QuantizedOutputReadByAnotherOp", "only a DequantizeLinear may",
            [](GraphBuilder& b, ir::Value* x) {
              ir::Value* q = b.node("QuantizeLinear", {x, b.scalar("s", 0.05f), int8_scalar(b, 0)});
              // The Identity stands in for an integer layer reading q itself.
              b.output(b.node("Identity", {q}));
              return b.node("DequantizeLinear", {q, b.scalar("s", 0.05f), int8_scalar(b, 0)});
            }}),
    [](const ::testing::TestParamInfo<KeptCase>& param_info) { return param_info.param.name; });

TEST(Qdq, ADequantizeOfAQuantizedGraphInputStaysWithANote) {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, kChannels, 6, 6});
  x->dtype = DType::kInt8;
  ir::Value* dq = b.node("DequantizeLinear", {x, b.scalar("s", 0.05f), int8_scalar(b, 0)});
  b.output(conv3x3(b, dq, int8_weight(b, kChannels, kChannels, 1)));
  ir::Graph graph = b.finish();
  const QdqScales result = strip_qdq(graph);
  EXPECT_EQ(count_of(graph, "DequantizeLinear"), 1);
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("no QuantizeLinear produces"), std::string::npos)
      << result.notes[0];
}

}  // namespace
}  // namespace anvil::quant
