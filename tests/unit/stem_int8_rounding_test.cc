// The stem kernel's choice of INT8 rounding (StemShape::int8_by_reciprocal):
// stem_int8_rounds_by_reciprocal must say no wherever some FP16 value rounds
// differently by reciprocal than by division. Host-side only.
#if ANVIL_HAVE_CUDA

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cuda/kernels/stem_conv_pool.h"

namespace anvil {
namespace {

using cuda::kernels::stem_int8_rounds_by_reciprocal;

TEST(StemInt8Rounding, SaysNoWhereAHalfRoundsDifferently) {
  // 2.25 is a half; 2.25 / 0.3f rounds to 7.4999995 (-> 7), while 2.25
  // times fl(1 / 0.3f) rounds to 7.5 (-> 8, half to even).
  const float scale = 0.3f;
  ASSERT_NE(std::nearbyint(2.25f * (1.0f / scale)), std::nearbyint(2.25f / scale));
  EXPECT_FALSE(stem_int8_rounds_by_reciprocal(scale));
}

TEST(StemInt8Rounding, SaysYesForScalesWhereEveryHalfAgrees) {
  // Each checked against all 63,488 finite halves and both infinities.
  for (const float scale : {0.01f, 0.0625f, 0.37f, 0.1f, 0.5f, 1.0f / 127.0f})
    EXPECT_TRUE(stem_int8_rounds_by_reciprocal(scale)) << "scale " << scale;
}

TEST(StemInt8Rounding, SaysNoForScalesWithoutANormalReciprocal) {
  for (const float scale : {0.0f, -0.5f, std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), 0x1p-127f, 0x1p126f})
    EXPECT_FALSE(stem_int8_rounds_by_reciprocal(scale)) << "scale " << scale;
}

}  // namespace
}  // namespace anvil

#endif  // ANVIL_HAVE_CUDA
