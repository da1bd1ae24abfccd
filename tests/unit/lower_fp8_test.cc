// Lowering with FP8 (LowerOptions::quantized kFloat8E4M3): the INT8 path's
// layers ("conv_int8" with element float8e4m3fn, quantize, dequantize) on
// E4M3 tensors, E4M3 filters scaled to 448, the same folded requantization,
// and FP16 for convs whose channels are not multiples of 16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "builder/int8_config.h"
#include "builder/lower.h"
#include "int8_test_net.h"
#include "quant/fp8_e4m3.h"

namespace anvil::builder {
namespace {

using json = nlohmann::json;

using testing::floats;
using testing::kinds;
using testing::layer_named;
using testing::make_net;
using testing::Net;

constexpr std::int64_t kChannels = 16;

LowerOptions fp8_options(const Net& net) {
  LowerOptions o = testing::int8_options(net);
  o.quantized = DType::kFloat8E4M3;
  return o;
}

TEST(LowerFp8, CalibratedConvsRunInFp8OnE4M3Tensors) {
  const Net net = make_net(kChannels);
  const plan::Plan p = lower_graph(net.graph, fp8_options(net));
  EXPECT_EQ(kinds(p),
            (std::vector<std::string>{"reformat_in", "conv", "quantize", "conv_int8", "conv_int8",
                                      "dequantize", "global_avg_pool", "gemm", "reformat_out"}));
  const plan::LayerDesc& quantize = p.layers[2];
  const plan::LayerDesc& conv2 = layer_named(p, net.conv2);
  const plan::LayerDesc& conv3 = layer_named(p, net.conv3);
  for (const int id : {quantize.outputs[0], conv2.outputs[0], conv3.outputs[0]})
    EXPECT_EQ(p.tensors[static_cast<std::size_t>(id)].dtype, DType::kFloat8E4M3)
        << p.tensors[static_cast<std::size_t>(id)].name;
  EXPECT_NE(p.tensors[static_cast<std::size_t>(quantize.outputs[0])].name.find(":fp8"),
            std::string::npos);
  EXPECT_EQ(p.tensors[static_cast<std::size_t>(p.layers[5].outputs[0])].dtype, DType::kFloat16);
  for (const plan::LayerDesc* l : {&conv2, &conv3})
    EXPECT_EQ(json::parse(l->params).at("element"), "float8e4m3fn") << l->name;
  EXPECT_EQ(json::parse(quantize.params).at("scale").get<float>(), 0.05f)
      << "the lowering takes the scales it is given (FP8 ones here)";
}

TEST(LowerFp8, WeightsAreE4M3PerChannelWithTheRequantizationFolded) {
  const Net net = make_net(kChannels);
  const plan::Plan p = lower_graph(net.graph, fp8_options(net));
  const plan::LayerDesc& conv2 = layer_named(p, net.conv2);
  const json params = json::parse(conv2.params);
  EXPECT_EQ(params.at("x_scale").get<float>(), 0.05f);
  EXPECT_EQ(params.at("y_scale").get<float>(), 0.03f);
  ASSERT_EQ(conv2.weights.size(), 3u);
  const plan::WeightRef& filter = conv2.weights[0];
  EXPECT_EQ(filter.dtype, DType::kFloat8E4M3);
  EXPECT_EQ(filter.dims, (std::vector<std::int64_t>{kChannels, 3, 3, kChannels}));
  EXPECT_EQ(filter.bytes, kChannels * 9 * kChannels) << "one byte per weight";
  const std::vector<float> scale = floats(p, conv2.weights[1]);
  ASSERT_EQ(scale.size(), static_cast<std::size_t>(kChannels));
  const auto* q = reinterpret_cast<const std::uint8_t*>(p.weights.data() + filter.offset);
  for (std::int64_t k = 0; k < kChannels; ++k) {
    // scale[k] = x_scale * w_scale[k] / y_scale, w_scale[k] = max|w[k]| / 448.
    const float w_scale = scale[static_cast<std::size_t>(k)] * 0.03f / 0.05f;
    float amax = 0.0f, qmax = 0.0f;
    for (std::int64_t c = 0; c < kChannels; ++c)
      for (std::int64_t rs = 0; rs < 9; ++rs) {
        const float w = net.conv2_w[static_cast<std::size_t>((k * kChannels + c) * 9 + rs)];
        const float got = quant::decode_e4m3(q[(k * 9 + rs) * kChannels + c]);  // KRSC
        amax = std::max(amax, std::fabs(w));
        qmax = std::max(qmax, std::fabs(got));
        EXPECT_EQ(got, quant::round_to_e4m3(w / w_scale))
            << "k " << k << " c " << c << " rs " << rs << ": E4M3 of w / w_scale, nearest even";
      }
    EXPECT_NEAR(w_scale * 448, amax, amax * 1e-5f) << "k " << k;
    EXPECT_EQ(qmax, 448.0f) << "each channel's largest weight maps to 448";
  }
}

TEST(LowerFp8, ChannelsNotMultiplesOf16StayFp16) {
  const Net net = make_net();  // 8 channels: FP16 pads them to 8, FP8 wants 16
  const plan::Plan p = lower_graph(net.graph, fp8_options(net));
  for (const plan::LayerDesc& l : p.layers) {
    EXPECT_NE(l.kind, "conv_int8") << l.name;
    EXPECT_NE(l.kind, "quantize") << l.name;
  }
  // The same net in INT8 (channel multiple 4) does quantize.
  const plan::Plan int8 = lower_graph(net.graph, testing::int8_options(net));
  EXPECT_EQ(layer_named(int8, net.conv2).kind, "conv_int8");
  EXPECT_FALSE(json::parse(layer_named(int8, net.conv2).params).contains("element"))
      << "INT8 plans stay as they were: no element field";
}

TEST(LowerFp8, OnlyInt8AndFp8AreQuantizedTypes) {
  const Net net = make_net(kChannels);
  LowerOptions o = fp8_options(net);
  o.quantized = DType::kFloat16;
  EXPECT_THROW(lower_graph(net.graph, o), Error);
  o = fp8_options(net);
  o.fp16 = false;
  try {
    lower_graph(net.graph, o);
    ADD_FAILURE() << "lowered FP8 layers into an FP32 plan";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("--fp8"), std::string::npos) << e.what();
  }
}

TEST(Fp8Scales, AreInt8ScalesTimes127Over448) {
  const std::map<std::string, float> fp8 = fp8_scales_from_int8({{"a", 1.0f}, {"b", 0.5f}});
  ASSERT_EQ(fp8.size(), 2u);
  EXPECT_FLOAT_EQ(fp8.at("a"), 127.0f / 448.0f);
  EXPECT_FLOAT_EQ(fp8.at("b"), 0.5f * 127.0f / 448.0f);
  // amax 448 calibrates to INT8 scale 448 / 127, so to FP8 scale 1: 448 maps to 448.
  EXPECT_FLOAT_EQ(fp8_scales_from_int8({{"x", 448.0f / 127.0f}}).at("x"), 1.0f);
}

}  // namespace
}  // namespace anvil::builder
