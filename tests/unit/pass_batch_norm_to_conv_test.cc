// batch_norm_to_conv: a BatchNormalization that fold_batch_norm leaves becomes
// a depthwise 1x1 Conv with the same outputs, which lowering runs as a "conv".
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "builder/lower.h"
#include "pass_test_util.h"

namespace anvil::passes::testing {
namespace {

const PassManager& bn_to_conv() {
  static const PassManager manager = only(make_batch_norm_to_conv());
  return manager;
}

ir::Node* only_node_of(const ir::Graph& graph, const std::string& op_type) {
  ir::Node* found = nullptr;
  for (const auto& node : graph.nodes()) {
    if (node->op_type != op_type) continue;
    EXPECT_EQ(found, nullptr) << "more than one " << op_type;
    found = node.get();
  }
  return found;
}

// The rewrites pass `name` made, -1 when it is not in the pipeline.
int rewrites_of(const std::vector<PassResult>& results, const std::string& name) {
  for (const PassResult& r : results)
    if (r.name == name) return r.rewrites;
  return -1;
}

void lone_batch_norm(GraphBuilder& b) {
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(6), ir::Dim::known(5),
                                         ir::Dim::known(4)}));
  b.output(b.batch_norm(x, 6));
}

TEST(BatchNormToConv, LoneBatchNormAfterTheInput) {
  ir::Graph before = build(lone_batch_norm);
  ASSERT_EQ(count_of(before, "BatchNormalization"), 1);
  ir::Graph after = expect_same_outputs(lone_batch_norm, bn_to_conv(), 1e-5f, 1e-6f);
  EXPECT_EQ(count_of(after, "BatchNormalization"), 0);
  ASSERT_EQ(after.nodes().size(), 1u);
  const ir::Node* conv = only_node_of(after, "Conv");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->attributes.get_int("group", 1), 6);
  EXPECT_EQ(conv->attributes.get_ints("kernel_shape"), (std::vector<std::int64_t>{1, 1}));
  ASSERT_EQ(conv->inputs.size(), 3u);
  EXPECT_EQ(conv->input(1)->constant->extents(), (Extents{6, 1, 1, 1}));
  EXPECT_EQ(conv->input(2)->constant->extents(), (Extents{6}));
  // The graph output keeps its name and symbolic batch.
  EXPECT_EQ(after.outputs[0]->name, before.outputs[0]->name);
  EXPECT_EQ(after.outputs[0]->producer, conv);
  EXPECT_EQ(after.outputs[0]->shape, before.outputs[0]->shape);
}

void pool_bn_relu(GraphBuilder& b) {
  ir::Value* x = b.input("x", Extents{2, 4, 8, 8});
  ir::Attributes pool;
  pool.set("kernel_shape", std::vector<std::int64_t>{2, 2});
  pool.set("strides", std::vector<std::int64_t>{2, 2});
  b.output(b.node("Relu", {b.batch_norm(b.node("MaxPool", {x}, pool), 4)}));
}

TEST(BatchNormToConv, AfterMaxPoolThenReluFusesInTheFullPipeline) {
  ir::Graph after = expect_same_outputs(pool_bn_relu, PassManager(), 1e-5f, 1e-6f);
  EXPECT_EQ(op_counts(after), (std::map<std::string, int>{{"FusedConv", 1}, {"MaxPool", 1}}));
  const ir::Node* fused = only_node_of(after, "FusedConv");
  ASSERT_NE(fused, nullptr);
  EXPECT_EQ(fused->attributes.get_int("group", 1), 4);
  EXPECT_EQ(fused->input(0)->producer->op_type, "MaxPool");
}

TEST(BatchNormToConv, DisabledInTheFullPipelineKeepsTheBatchNorm) {
  PassManager manager;
  manager.disable("batch_norm_to_conv");
  ir::Graph after = expect_same_outputs(pool_bn_relu, manager, 0.0f, 0.0f);
  EXPECT_EQ(op_counts(after),
            (std::map<std::string, int>{{"BatchNormalization", 1}, {"MaxPool", 1}, {"Relu", 1}}));
}

// The Conv's output is read by the BN and the Add: fold_batch_norm must not
// fold, so the BN becomes its own Conv.
void conv_with_two_readers(GraphBuilder& b) {
  ir::Value* x = b.input("x", Extents{1, 3, 6, 6});
  ir::Value* c = b.conv(x, 3, 4, 3, /*bias=*/true);
  b.output(b.node("Add", {b.batch_norm(c, 4), c}));
}

TEST(BatchNormToConv, AfterConvWithTwoReaders) {
  ir::Graph after = expect_same_outputs(conv_with_two_readers, bn_to_conv(), 1e-5f, 1e-6f);
  EXPECT_EQ(count_of(after, "BatchNormalization"), 0);
  EXPECT_EQ(count_of(after, "Conv"), 2);
  EXPECT_EQ(count_of(after, "Add"), 1);
  // Through the full pipeline, folding declines and the rewrite takes over.
  ir::Graph full = build(conv_with_two_readers);
  const std::vector<PassResult> results = PassManager().run(full);
  EXPECT_EQ(rewrites_of(results, "fold_batch_norm"), 0);
  EXPECT_EQ(rewrites_of(results, "batch_norm_to_conv"), 1);
  EXPECT_EQ(count_of(full, "BatchNormalization"), 0);
}

TEST(BatchNormToConv, FoldingIsPreferredInTheFullPipeline) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 3, 6, 6});
    b.output(b.batch_norm(b.conv(x, 3, 4, 3), 4));
  };
  ir::Graph graph = build(fn);
  const std::vector<PassResult> results = PassManager().run(graph);
  EXPECT_EQ(rewrites_of(results, "fold_batch_norm"), 1);
  EXPECT_EQ(rewrites_of(results, "batch_norm_to_conv"), 0);
  EXPECT_EQ(op_counts(graph), (std::map<std::string, int>{{"Conv", 1}}));
}

TEST(BatchNormToConv, KeepsBatchNormWithNonConstantParameters) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{1, 3, 4, 4});
    // Any sign is fine for scale and mean (unlike var): random inputs.
    ir::Value* scale = b.input("scale", Extents{3});
    ir::Value* mean = b.input("mean", Extents{3});
    b.output(b.node("BatchNormalization",
                    {x, scale, b.weight("bias", {3}), mean, b.positive("var", 3)}));
  };
  ir::Graph after = expect_same_outputs(fn, bn_to_conv(), 0.0f, 0.0f);
  EXPECT_EQ(op_counts(after), (std::map<std::string, int>{{"BatchNormalization", 1}}));
}

// var in [0.5, 1.5]: an epsilon of 0.75 changes every scale by far more than
// the tolerance, so dropping it or using the default would show.
constexpr float kEpsilon = 0.75f;

TEST(BatchNormToConv, HonorsEpsilon) {
  auto fn = [](GraphBuilder& b) {
    ir::Value* x = b.input("x", Extents{2, 5, 3, 3});
    ir::Attributes attrs;
    attrs.set("epsilon", kEpsilon);
    b.output(b.node("BatchNormalization",
                    {x, b.positive("scale", 5), b.weight("bias", {5}), b.weight("mean", {5}),
                     b.positive("var", 5)},
                    attrs));
  };
  ir::Graph before = build(fn);
  const ir::Node& bn = *before.nodes().front();
  ir::Graph after = expect_same_outputs(fn, bn_to_conv(), 1e-5f, 1e-6f);
  const ir::Node* conv = only_node_of(after, "Conv");
  ASSERT_NE(conv, nullptr);
  const float* w = conv->input(1)->constant->data<float>();
  const float* b = conv->input(2)->constant->data<float>();
  for (std::int64_t c = 0; c < 5; ++c) {
    const float scale = bn.input(1)->constant->data<float>()[c];
    const float bias = bn.input(2)->constant->data<float>()[c];
    const float mean = bn.input(3)->constant->data<float>()[c];
    const float var = bn.input(4)->constant->data<float>()[c];
    const float a = scale / std::sqrt(var + kEpsilon);
    EXPECT_NEAR(w[c], a, 1e-6f) << c;
    EXPECT_NEAR(b[c], bias - mean * a, 1e-5f) << c;
    EXPECT_GT(std::fabs(w[c] - scale / std::sqrt(var + 1e-5f)), 1e-2f) << c;
  }
}

TEST(BatchNormToConv, KeepsBatchNormOfRankOtherThanFour) {
  // [N, C] after a Gemm and [N, C, L]: the GPU runs no such Conv.
  auto fn = [](GraphBuilder& b) {
    b.output(b.batch_norm(b.input("nc", Extents{2, 5}), 5));
    b.output(b.batch_norm(b.input("ncl", Extents{2, 3, 7}), 3));
  };
  ir::Graph after = expect_same_outputs(fn, bn_to_conv(), 0.0f, 0.0f);
  EXPECT_EQ(op_counts(after), (std::map<std::string, int>{{"BatchNormalization", 2}}));
}

TEST(BatchNormToConv, LowersToADepthwiseConvLayer) {
  ir::Graph graph = build(lone_batch_norm);
  PassManager().run(graph);
  const ir::Node* conv = only_node_of(graph, "Conv");
  ASSERT_NE(conv, nullptr);
  const plan::Plan p = builder::lower_graph(graph, {.fp16 = false, .max_batch = 2});
  std::map<std::string, int> kinds;
  for (const auto& l : p.layers)
    ++kinds[l.kind];
  EXPECT_EQ(kinds,
            (std::map<std::string, int>{{"conv", 1}, {"reformat_in", 1}, {"reformat_out", 1}}));
  ASSERT_EQ(p.layers.size(), 3u);
  const plan::LayerDesc& layer = p.layers[1];
  ASSERT_EQ(layer.kind, "conv");
  const auto params = nlohmann::json::parse(layer.params);
  EXPECT_EQ(params["c"], 6);
  EXPECT_EQ(params["c_pad"], 8);  // FP32 pads 6 channels to 8
  EXPECT_EQ(params["groups"], params["c_pad"]);
  EXPECT_EQ(params["k_pad"], 8);
  EXPECT_EQ(params["r"], 1);
  EXPECT_EQ(params["s"], 1);
  EXPECT_EQ(params["has_bias"], true);
  EXPECT_EQ(params["activation"], "none");
  // The packed filter holds one scale per stored channel, zero for padding.
  ASSERT_EQ(layer.weights.size(), 2u);
  EXPECT_EQ(layer.weights[0].dims, (std::vector<std::int64_t>{8, 1, 1, 1}));
  std::vector<float> filter(8);
  std::memcpy(filter.data(), p.weights.data() + layer.weights[0].offset, 8 * sizeof(float));
  for (std::size_t c = 0; c < 8; ++c)
    EXPECT_EQ(filter[c], c < 6 ? conv->input(1)->constant->data<float>()[c] : 0.0f) << c;
}

}  // namespace
}  // namespace anvil::passes::testing
