// quant/fp8_e4m3.h: the host E4M3 codec every FP8 reference uses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "quant/fp8_e4m3.h"

namespace anvil::quant {
namespace {

TEST(Fp8E4M3, KnownValuesEncodeExactly) {
  EXPECT_EQ(encode_e4m3(0.0f), 0x00);
  EXPECT_EQ(encode_e4m3(-0.0f), 0x80) << "the sign of zero is kept";
  EXPECT_EQ(encode_e4m3(1.0f), 0x38) << "biased exponent 7, mantissa 0";
  EXPECT_EQ(encode_e4m3(-2.0f), 0xc0);
  EXPECT_EQ(encode_e4m3(448.0f), 0x7e) << "the largest finite value";
  EXPECT_EQ(encode_e4m3(-448.0f), 0xfe);
  EXPECT_EQ(encode_e4m3(0x1p-6f), 0x08) << "the smallest normal";
  EXPECT_EQ(encode_e4m3(0x1p-9f), 0x01) << "the smallest subnormal";
  EXPECT_EQ(encode_e4m3(0.0019531f), 0x01) << "0.0019531 rounds to 2^-9 = 0.001953125";
  EXPECT_EQ(encode_e4m3(7 * 0x1p-9f), 0x07) << "the largest subnormal";
  EXPECT_EQ(decode_e4m3(0x7e), 448.0f);
  EXPECT_EQ(decode_e4m3(0x01), 0x1p-9f);
  EXPECT_EQ(decode_e4m3(0x07), 7 * 0x1p-9f);
  EXPECT_EQ(decode_e4m3(0xb9), -1.125f);
}

TEST(Fp8E4M3, RoundsToNearestWithTiesToEven) {
  // Between 1 (mantissa 0) and 1.125 (mantissa 1): the tie goes to 1.
  EXPECT_EQ(round_to_e4m3(1.0625f), 1.0f);
  // Between 1.125 (1) and 1.25 (2): the tie goes to 1.25.
  EXPECT_EQ(round_to_e4m3(1.1875f), 1.25f);
  EXPECT_EQ(round_to_e4m3(1.07f), 1.125f) << "above the tie rounds up";
  EXPECT_EQ(round_to_e4m3(-1.1875f), -1.25f) << "symmetric in the sign";
  // Subnormal ties: 2^-10 lies between 0 and 2^-9 -> 0; 3 * 2^-10 -> 2^-8 (mantissa 2).
  EXPECT_EQ(round_to_e4m3(0x1p-10f), 0.0f);
  EXPECT_EQ(round_to_e4m3(3 * 0x1p-10f), 0x1p-8f);
  // The largest subnormal rounds up into the normals: 7.5 * 2^-9 -> 2^-6 (a tie, 8 even).
  EXPECT_EQ(round_to_e4m3(7.5f * 0x1p-9f), 0x1p-6f);
  // A carry into the next binade: 15.5 lies between 15 and 16 (mantissas 7 and 0 of the next).
  EXPECT_EQ(round_to_e4m3(15.5f), 16.0f);
  EXPECT_EQ(round_to_e4m3(1e-30f), 0.0f);
}

TEST(Fp8E4M3, SaturatesInsteadOfOverflowing) {
  EXPECT_EQ(round_to_e4m3(1000.0f), 448.0f);
  EXPECT_EQ(round_to_e4m3(-1000.0f), -448.0f);
  EXPECT_EQ(round_to_e4m3(460.0f), 448.0f) << "rounds to 448 either way";
  EXPECT_EQ(round_to_e4m3(470.0f), 448.0f) << "would round to 480, which E4M3 lacks";
  EXPECT_EQ(round_to_e4m3(std::numeric_limits<float>::infinity()), 448.0f);
  EXPECT_EQ(round_to_e4m3(-std::numeric_limits<float>::infinity()), -448.0f);
}

TEST(Fp8E4M3, NaNEncodesAs0x7FAndDecodesAsNaN) {
  EXPECT_EQ(encode_e4m3(std::numeric_limits<float>::quiet_NaN()), kE4M3NaN);
  EXPECT_EQ(encode_e4m3(-std::numeric_limits<float>::quiet_NaN()), kE4M3NaN);
  EXPECT_TRUE(std::isnan(decode_e4m3(0x7f)));
  EXPECT_TRUE(std::isnan(decode_e4m3(0xff)));
}

TEST(Fp8E4M3, EveryFiniteCodeRoundTripsAndCodesAreOrdered) {
  float previous = -1.0f;
  for (int code = 0; code < 0x7f; ++code) {
    const float v = decode_e4m3(static_cast<std::uint8_t>(code));
    EXPECT_EQ(encode_e4m3(v), code) << "value " << v;
    EXPECT_EQ(encode_e4m3(-v), code | 0x80) << "value " << -v;
    EXPECT_GT(v, previous) << "code " << code;
    previous = v;
  }
}

TEST(Fp8E4M3, UlpDistanceCountsSteps) {
  EXPECT_EQ(e4m3_ulp_distance(0x38, 0x38), 0);
  EXPECT_EQ(e4m3_ulp_distance(0x38, 0x39), 1);
  EXPECT_EQ(e4m3_ulp_distance(0x00, 0x80), 0) << "+0 and -0";
  EXPECT_EQ(e4m3_ulp_distance(0x01, 0x81), 2) << "2^-9 and -2^-9 are two steps apart";
  EXPECT_EQ(e4m3_ulp_distance(0x37, 0x38), 1) << "across a binade";
  EXPECT_GE(e4m3_ulp_distance(0x7f, 0x7e), 1000) << "NaN";
}

}  // namespace
}  // namespace anvil::quant
