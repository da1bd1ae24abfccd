// Profiles whose height and width vary: which profile holds a whole input
// shape, the nearest one, the ranges as errors print them, and what plan
// validation accepts (a spatial range whose profile 0 opt is the lowered
// geometry) and refuses.
#include <gtest/gtest.h>

#include "anvil/error.h"
#include "plan/plan.h"
#include "plan/profiles.h"
#include "plan_test_util.h"

namespace anvil::plan {
namespace {

using Dims = std::vector<std::int64_t>;

Profile spatial(Dims min, Dims opt, Dims max) {
  Profile p;
  p.inputs["input"] = {std::move(min), std::move(opt), std::move(max)};
  return p;
}

Plan two_spatial_profiles() {
  Plan plan = testing::small_plan();
  plan.profiles = {spatial({1, 3, 4, 4}, {4, 3, 8, 8}, {8, 3, 16, 16}),
                   spatial({1, 3, 12, 12}, {2, 3, 24, 24}, {4, 3, 32, 32})};
  return plan;
}

TEST(SpatialProfiles, HoldsChecksEveryDim) {
  const Plan plan = two_spatial_profiles();
  EXPECT_TRUE(holds(plan.profiles[0], "input", Dims{1, 3, 4, 16}));
  EXPECT_TRUE(holds(plan.profiles[0], "input", Dims{8, 3, 16, 16}));
  EXPECT_FALSE(holds(plan.profiles[0], "input", Dims{1, 3, 3, 8}));   // height under min
  EXPECT_FALSE(holds(plan.profiles[0], "input", Dims{1, 3, 8, 17}));  // width over max
  EXPECT_FALSE(holds(plan.profiles[0], "input", Dims{9, 3, 8, 8}));   // batch over max
  EXPECT_FALSE(holds(plan.profiles[0], "input", Dims{1, 4, 8, 8}));   // channels
  EXPECT_FALSE(holds(plan.profiles[0], "input", Dims{1, 3, 8}));      // rank
  EXPECT_FALSE(holds(plan.profiles[0], "other", Dims{1, 3, 8, 8}));
}

TEST(SpatialProfiles, BestProfileHoldsTheShapeAndIsNearest) {
  const Plan plan = two_spatial_profiles();
  EXPECT_EQ(best_profile(plan, "input", Dims{2, 3, 8, 8}), 0);
  EXPECT_EQ(best_profile(plan, "input", Dims{2, 3, 30, 20}), 1);  // only profile 1 holds it
  EXPECT_EQ(best_profile(plan, "input", Dims{8, 3, 30, 20}), -1);
  // Both hold 2x3x14x14: the batch decides first (profile 1's opt batch is 2).
  EXPECT_EQ(best_profile(plan, "input", Dims{2, 3, 14, 14}), 1);
  EXPECT_EQ(best_profile(plan, "input", Dims{4, 3, 14, 14}), 0);
}

TEST(SpatialProfiles, DescribeShowsTheRanges) {
  const Plan plan = two_spatial_profiles();
  EXPECT_EQ(describe_shapes(plan, "input"),
            "profile 0: [1..8]x3x[4..16]x[4..16] (opt 4x3x8x8); "
            "profile 1: [1..4]x3x[12..32]x[12..32] (opt 2x3x24x24)");
}

TEST(SpatialProfiles, ValidationAcceptsSpatialRanges) {
  const Plan plan = two_spatial_profiles();
  const Plan back = deserialize_plan(serialize_plan(plan), "m.plan");
  EXPECT_EQ(back.profiles, plan.profiles);
}

TEST(SpatialProfiles, ValidationRefusesOtherVaryingDims) {
  Plan plan = two_spatial_profiles();
  // Profile 0's opt must be the geometry the tensors describe (8x8).
  plan.profiles[0] = spatial({1, 3, 4, 4}, {4, 3, 12, 8}, {8, 3, 16, 16});
  EXPECT_THROW(serialize_plan(plan), Error);
  // Channels never vary.
  plan = two_spatial_profiles();
  plan.profiles[0] = spatial({1, 2, 4, 4}, {4, 3, 8, 8}, {8, 3, 16, 16});
  EXPECT_THROW(serialize_plan(plan), Error);
  // A range must be ordered.
  plan = two_spatial_profiles();
  plan.profiles[1] = spatial({1, 3, 40, 12}, {2, 3, 24, 24}, {4, 3, 32, 32});
  EXPECT_THROW(serialize_plan(plan), Error);
}

}  // namespace
}  // namespace anvil::plan
