// builder/int8_fallback.h: a conv of an INT8 plan goes back to FP16 only
// when its FP16 time plus the reformats that adds beats its INT8 time.
#include "builder/int8_fallback.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "builder/lower.h"
#include "int8_test_net.h"

namespace anvil::builder {
namespace {

using testing::int8_options;
using testing::make_net;
using testing::Net;

std::vector<std::string> names(const std::vector<Int8Fallback>& fallbacks) {
  std::vector<std::string> out;
  for (const Int8Fallback& f : fallbacks)
    out.push_back(f.layer);
  return out;
}

// The plan: reformat_in, conv (conv1, FP16: it reads the image), quantize
// (a), conv_int8 (conv2: a -> b), conv_int8 (conv3: b + a -> y),
// global_avg_pool_int8 (y, read as INT8), gemm, reformat_out.
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
  // conv3 in FP16: b needs a dequantize (one tensor of the same size, 1 ms);
  // the pool reads y in either precision.
  EXPECT_TRUE(int8_fallbacks(p, 1, {{net.conv3, 2.0f}}, {{net.conv3, 1.5f}}, bytes_per_ms).empty())
      << "1.5 ms + 1 ms of reformat is slower than 2 ms";
  EXPECT_EQ(names(int8_fallbacks(p, 1, {{net.conv3, 2.0f}}, {{net.conv3, 0.99f}}, bytes_per_ms)),
            std::vector<std::string>{net.conv3});
  EXPECT_TRUE(int8_fallbacks(p, 1, {{net.conv3, 2.0f}}, {}, bytes_per_ms).empty())
      << "a layer without an FP16 time stays INT8";
}

}  // namespace
}  // namespace anvil::builder
