// builder/int8_fallback.h: a conv of an INT8 plan goes back to FP16 only
// when its FP16 time plus the reformats that adds beats its INT8 time.
#include "builder/int8_fallback.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "builder/lower.h"
#include "pass_test_util.h"
#include "passes/pass_manager.h"

namespace anvil::builder {
namespace {

using passes::testing::GraphBuilder;

// x -> conv1 + relu = a -> conv2 + relu = b -> conv3 + a, relu = y -> GAP ->
// Flatten -> Gemm, optimized (each conv fused with its epilogue).
struct Net {
  ir::Graph graph;
  std::string x, a, b, y;           // value names
  std::string conv1, conv2, conv3;  // node names after fusion
  std::vector<float> conv2_w;       // ONNX [8, 8, 3, 3]
};

Net make_net() {
  GraphBuilder g;
  ir::Value* x = g.input("x", ir::Shape::of(Extents{1, 4, 8, 8}));
  ir::Value* a = g.node("Relu", {g.conv(x, 4, 8, 3, /*bias=*/true)});
  ir::Value* b = g.node("Relu", {g.conv(a, 8, 8, 3, /*bias=*/true)});
  ir::Value* sum = g.node("Add", {g.conv(b, 8, 8, 3, /*bias=*/true), a});
  ir::Value* y = g.node("Relu", {sum});
  ir::Value* pooled = g.node("Flatten", {g.node("GlobalAveragePool", {y})});
  ir::Attributes gemm;
  gemm.set("transB", std::int64_t{1});
  g.output(g.node("Gemm", {pooled, g.weight("fc.w", {10, 8}), g.weight("fc.b", {10})}, gemm));
  Net net;
  net.graph = g.finish();
  passes::PassManager().run(net.graph);
  for (const auto& node : net.graph.nodes()) {
    if (node->op_type != "FusedConv") continue;
    const std::string& in = node->input(0)->name;
    if (in == x->name) {
      net.conv1 = node->name;
      net.a = node->outputs[0]->name;
    } else if (node->input(3)) {
      net.conv3 = node->name;
      net.y = node->outputs[0]->name;
    } else {
      net.conv2 = node->name;
      net.b = node->outputs[0]->name;
      const Tensor& w = *node->input(1)->constant;
      net.conv2_w.assign(w.data<float>(), w.data<float>() + w.element_count());
    }
  }
  net.x = x->name;
  return net;
}

// a and y share a scale: conv3 adds a to its INT8 result unscaled.
LowerOptions int8_options(const Net& net) {
  LowerOptions o{.fp16 = true, .max_batch = 4};
  o.int8_scales = {{net.x, 0.02f}, {net.a, 0.05f}, {net.b, 0.03f}, {net.y, 0.05f}};
  return o;
}

std::vector<std::string> names(const std::vector<Int8Fallback>& fallbacks) {
  std::vector<std::string> out;
  for (const Int8Fallback& f : fallbacks)
    out.push_back(f.layer);
  return out;
}

// The plan: reformat_in, conv (conv1, FP16: it reads the image), quantize
// (a), conv_int8 (conv2: a -> b), conv_int8 (conv3: b + a -> y), dequantize
// (y), global_avg_pool, gemm, reformat_out.
TEST(Int8Fallback, WithoutABandwidthTheFasterPrecisionWins) {
  const Net net = make_net();
  const plan::Plan p = lower_graph(net.graph, int8_options(net));
  const std::map<std::string, float> int8{{net.conv2, 2.0f}, {net.conv3, 1.0f}};
  const std::map<std::string, float> fp16{{net.conv2, 1.9f}, {net.conv3, 1.1f}};
  const std::vector<Int8Fallback> f = int8_fallbacks(p, 4, int8, fp16, 0.0);
  EXPECT_EQ(names(f), std::vector<std::string>{net.conv2});
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f[0].why.find("at batch 4"), std::string::npos) << f[0].why;
}

TEST(Int8Fallback, TheReformatsAFallbackAddsCount) {
  const Net net = make_net();
  const plan::Plan p = lower_graph(net.graph, int8_options(net));
  // conv2 in FP16 still reads a's FP16 form (a quantize made its INT8 one),
  // but conv3 then needs b quantized: 1 image (the model's fixed batch) x
  // 8x8 pixels x 8 channels, 3 bytes each (read FP16, write INT8) = 1536
  // bytes, 1 ms at 1536 bytes/ms.
  const double bytes_per_ms = 8 * 8 * 8 * 3;
  const std::map<std::string, float> int8{{net.conv2, 2.0f}};
  EXPECT_TRUE(int8_fallbacks(p, 1, int8, {{net.conv2, 1.5f}}, bytes_per_ms).empty())
      << "1.5 ms + 1 ms of reformat is slower than 2 ms";
  EXPECT_EQ(names(int8_fallbacks(p, 1, int8, {{net.conv2, 0.5f}}, bytes_per_ms)),
            std::vector<std::string>{net.conv2});
  // conv3 in FP16: b needs a dequantize (one tensor of the same size), and
  // y's dequantize goes away: no net reformat, the faster precision wins.
  EXPECT_EQ(names(int8_fallbacks(p, 1, {{net.conv3, 2.0f}}, {{net.conv3, 1.99f}}, bytes_per_ms)),
            std::vector<std::string>{net.conv3});
  EXPECT_TRUE(int8_fallbacks(p, 1, {{net.conv3, 2.0f}}, {}, bytes_per_ms).empty())
      << "a layer without an FP16 time stays INT8";
}

}  // namespace
}  // namespace anvil::builder
