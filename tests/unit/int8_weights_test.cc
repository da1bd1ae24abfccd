// quant/int8_weights.h: per-channel filter quantization and the requantization
// folded into an INT8 convolution's epilogue.
#include "quant/int8_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "anvil/error.h"
#include "quant/fp8_e4m3.h"

namespace anvil::quant {
namespace {

TEST(QuantizeFilter, ScalesEachRowByItsLargestMagnitude) {
  // Row 0: amax 254 -> scale 2; row 1 is all zeros; row 2: amax 127 -> scale 1.
  const std::vector<float> w{254.0f, -127.0f, 1.0f, 0.0f, 0.0f, 0.0f, -127.0f, 63.5f, 64.5f};
  const Int8Filter q = quantize_filter(w, 3);
  ASSERT_EQ(q.scales.size(), 3u);
  EXPECT_EQ(q.scales[0], 2.0f);
  EXPECT_EQ(q.scales[1], 1.0f) << "an all-zero row keeps a usable scale";
  EXPECT_EQ(q.scales[2], 1.0f);
  EXPECT_EQ(q.values, (std::vector<float>{127, -64, 0, 0, 0, 0, -127, 64, 64}))
      << "rint rounds half to even: -63.5 -> -64, 0.5 -> 0, 63.5 -> 64, 64.5 -> 64";
}

TEST(QuantizeFilter, NeverUsesMinus128AndRefusesWhatIsNotAFilter) {
  const Int8Filter q = quantize_filter(std::vector<float>{-1.0f, 1.0f}, 1);
  EXPECT_EQ(q.values, (std::vector<float>{-127, 127}));
  EXPECT_THROW(quantize_filter(std::vector<float>{1, 2, 3}, 2), Error);
  const std::vector<float> nan{1.0f, std::numeric_limits<float>::quiet_NaN()};
  try {
    quantize_filter(nan, 1);
    ADD_FAILURE() << "accepted a NaN weight";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("channel 0"), std::string::npos) << e.what();
  }
}

TEST(FoldRequantization, FoldsScalesAndBiasIntoTwoVectors) {
  const Int8Requantization q = fold_requantization(0.5f, {2.0f, 4.0f}, {1.0f, -3.0f}, 0.25f, 2, 4);
  EXPECT_EQ(q.scale, (std::vector<float>{4.0f, 8.0f, 0.0f, 0.0f}));
  EXPECT_EQ(q.bias, (std::vector<float>{4.0f, -12.0f, 0.0f, 0.0f}));
  const Int8Requantization per_tensor = fold_requantization(0.5f, {2.0f}, {}, 1.0f, 3, 4);
  EXPECT_EQ(per_tensor.scale, (std::vector<float>{1.0f, 1.0f, 1.0f, 0.0f}));
  EXPECT_EQ(per_tensor.bias, (std::vector<float>(4, 0.0f)));
  for (auto bad : {std::vector<float>{1.0f, 2.0f, 3.0f}, std::vector<float>{}}) {
    try {
      fold_requantization(0.5f, bad, {}, 1.0f, 2, 4);
      ADD_FAILURE() << "accepted " << bad.size() << " weight scales for K = 2";
    } catch (const anvil::Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    }
  }
  EXPECT_THROW(fold_requantization(0.0f, {1.0f}, {}, 1.0f, 2, 4), anvil::Error);
  EXPECT_THROW(fold_requantization(1.0f, {1.0f}, {}, 1.0f, 5, 4), anvil::Error);
}

TEST(QuantizeFilterFp8, ScalesEachRowToE4M3Max) {
  // Row 0: amax 896 -> scale 2; row 1 zeros; row 2: amax 4.48 -> scale 0.01.
  const std::vector<float> w{896.0f, -2.0f, 3.0f, 0.0f, 0.0f, 0.0f, 4.48f, -1.0f, 0.0019531f};
  const Int8Filter q = quantize_filter(w, 3, DType::kFloat8E4M3);
  ASSERT_EQ(q.scales.size(), 3u);
  EXPECT_EQ(q.scales[0], 2.0f);
  EXPECT_EQ(q.scales[1], 1.0f) << "an all-zero row keeps a usable scale";
  EXPECT_FLOAT_EQ(q.scales[2], 4.48f / 448.0f);
  EXPECT_EQ(q.values[0], 448.0f);
  EXPECT_EQ(q.values[1], -1.0f);
  EXPECT_EQ(q.values[2], 1.5f);
  EXPECT_EQ(q.values[6], 448.0f);
  EXPECT_EQ(q.values[7], round_to_e4m3(-1.0f / q.scales[2]));
  for (const float v : q.values)
    EXPECT_EQ(round_to_e4m3(v), v) << "every quantized weight is an E4M3 value";
  EXPECT_EQ(quantized_max(DType::kInt8), 127.0f);
  EXPECT_EQ(quantized_max(DType::kFloat8E4M3), 448.0f);
  EXPECT_THROW(quantized_max(DType::kFloat16), Error);
  EXPECT_THROW(quantize_filter(w, 3, DType::kInt32), Error);
}

}  // namespace
}  // namespace anvil::quant
