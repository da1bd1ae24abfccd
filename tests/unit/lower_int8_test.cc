// Lowering with INT8 scales (LowerOptions::int8_scales): which convs become
// "conv_int8", where quantize and dequantize layers go, and the INT8 weights
// and folded requantization vectors the plan holds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "builder/lower.h"
#include "int8_test_net.h"

namespace anvil::builder {
namespace {

using json = nlohmann::json;

using testing::floats;
using testing::int8_options;
using testing::kinds;
using testing::layer_named;
using testing::make_net;
using testing::Net;

TEST(LowerInt8, CalibratedConvsRunInInt8AndTheImageConvStaysFp16) {
  ASSERT_FALSE(make_net().conv2.empty());
  const Net net = make_net();
  const plan::Plan p = lower_graph(net.graph, int8_options(net));
  EXPECT_EQ(kinds(p),
            (std::vector<std::string>{"reformat_in", "conv", "quantize", "conv_int8", "conv_int8",
                                      "global_avg_pool_int8", "gemm", "reformat_out"}))
      << "a is quantized once (0.05) for conv2's input and conv3's residual; the pool reads y "
         "as INT8";
  const plan::LayerDesc& conv3 = layer_named(p, net.conv3);
  ASSERT_EQ(conv3.inputs.size(), 2u);
  const plan::LayerDesc& quantize = p.layers[2];
  EXPECT_EQ(conv3.inputs[1], quantize.outputs[0]) << "the residual is the quantized a";
  EXPECT_EQ(layer_named(p, net.conv2).inputs[0], quantize.outputs[0]);
  EXPECT_EQ(conv3.inputs[0], layer_named(p, net.conv2).outputs[0]) << "b stays INT8";
  for (const int id : {quantize.outputs[0], conv3.outputs[0]})
    EXPECT_EQ(p.tensors[static_cast<std::size_t>(id)].dtype, DType::kInt8);
  const plan::LayerDesc& pool = p.layers[5];
  EXPECT_EQ(pool.inputs, conv3.outputs);
  EXPECT_EQ(p.tensors[static_cast<std::size_t>(pool.outputs[0])].dtype, DType::kFloat16);
  EXPECT_EQ(json::parse(quantize.params).at("scale").get<float>(), 0.05f);
  EXPECT_EQ(json::parse(pool.params).at("scale").get<float>(), 0.05f) << "y's scale";
}

TEST(LowerInt8, WeightsArePerChannelInt8WithTheRequantizationFolded) {
  const Net net = make_net();
  const plan::Plan p = lower_graph(net.graph, int8_options(net));
  const plan::LayerDesc& conv2 = layer_named(p, net.conv2);
  const json params = json::parse(conv2.params);
  EXPECT_EQ(params.at("x_scale").get<float>(), 0.05f);
  EXPECT_EQ(params.at("y_scale").get<float>(), 0.03f);
  EXPECT_EQ(params.at("activation"), "relu");
  ASSERT_EQ(conv2.weights.size(), 3u);
  const plan::WeightRef& filter = conv2.weights[0];
  EXPECT_EQ(filter.dtype, DType::kInt8);
  EXPECT_EQ(filter.dims, (std::vector<std::int64_t>{8, 3, 3, 8}));
  const std::vector<float> scale = floats(p, conv2.weights[1]);
  ASSERT_EQ(scale.size(), 8u);
  const auto* q = reinterpret_cast<const std::int8_t*>(p.weights.data() + filter.offset);
  for (int k = 0; k < 8; ++k) {
    // scale[k] = x_scale * w_scale[k] / y_scale, w_scale[k] = max|w[k]| / 127.
    const float w_scale = scale[static_cast<std::size_t>(k)] * 0.03f / 0.05f;
    float amax = 0.0f;
    int qmax = 0;
    for (int c = 0; c < 8; ++c)
      for (int rs = 0; rs < 9; ++rs) {
        const float w = net.conv2_w[static_cast<std::size_t>((k * 8 + c) * 9 + rs)];
        const int got = q[(k * 9 + rs) * 8 + c];  // KRSC
        amax = std::max(amax, std::fabs(w));
        qmax = std::max(qmax, std::abs(got));
        EXPECT_LE(std::fabs(got * w_scale - w), w_scale / 2 * 1.001f)
            << "k " << k << " c " << c << " rs " << rs;
      }
    EXPECT_NEAR(w_scale * 127, amax, amax * 1e-5f) << "k " << k;
    EXPECT_EQ(qmax, 127) << "each channel's largest weight maps to 127";
  }
}

TEST(LowerInt8, ExcludedFirstLayerAndMismatchedResidualOptions) {
  const Net net = make_net();
  LowerOptions o = int8_options(net);
  o.int8_excluded = {net.conv2};
  EXPECT_EQ(kinds(lower_graph(net.graph, o)),
            (std::vector<std::string>{"reformat_in", "conv", "conv", "quantize", "quantize",
                                      "conv_int8", "global_avg_pool_int8", "gemm", "reformat_out"}))
      << "conv2 excluded: conv3 quantizes b and its residual a itself";

  o = int8_options(net);
  o.int8_first_layer = true;
  EXPECT_EQ(
      kinds(lower_graph(net.graph, o)),
      (std::vector<std::string>{"reformat_in", "quantize", "conv_int8", "conv_int8", "conv_int8",
                                "global_avg_pool_int8", "gemm", "reformat_out"}));

  o = int8_options(net);
  o.int8_scales[net.y] = 0.07f;  // cuDNN has no INT8 engine for a scaled residual
  const plan::Plan p = lower_graph(net.graph, o);
  EXPECT_EQ(layer_named(p, net.conv3).kind, "conv");
  EXPECT_EQ(layer_named(p, net.conv2).kind, "conv_int8");

  o = int8_options(net);
  o.fp16 = false;
  try {
    lower_graph(net.graph, o);
    ADD_FAILURE() << "lowered INT8 layers into an FP32 plan";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("FP16"), std::string::npos) << e.what();
  }
}

TEST(LowerInt8, NoScalesNoInt8) {
  const Net net = make_net();
  const plan::Plan p = lower_graph(net.graph, {.fp16 = true, .max_batch = 4});
  for (const plan::LayerDesc& l : p.layers) {
    EXPECT_NE(l.kind, "conv_int8");
    EXPECT_NE(l.kind, "quantize");
  }
}

}  // namespace
}  // namespace anvil::builder
