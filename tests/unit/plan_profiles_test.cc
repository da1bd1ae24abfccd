// A plan's profiles as the runtime reads them: batch ranges, the profile for a
// batch, and per-profile tactics with their compiled plans.
#include <gtest/gtest.h>

#include "anvil/error.h"
#include "plan/profiles.h"

namespace anvil::plan {
namespace {

Profile profile(std::int64_t min, std::int64_t opt, std::int64_t max) {
  Profile p;
  p.inputs["input"] = {{min, 3, 8, 8}, {opt, 3, 8, 8}, {max, 3, 8, 8}};
  return p;
}

TEST(PlanProfiles, BatchRangesInOrder) {
  Plan plan;
  plan.profiles = {profile(1, 16, 32), profile(64, 128, 192)};
  const std::vector<BatchRange> r = batch_ranges(plan, "m.plan");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].min, 1);
  EXPECT_EQ(r[0].opt, 16);
  EXPECT_EQ(r[1].max, 192);
  EXPECT_EQ(describe(r), "profile 0: batch 1..32 (opt 16); profile 1: batch 64..192 (opt 128)");
}

TEST(PlanProfiles, BadRangesNameThePlan) {
  Plan plan;
  EXPECT_THROW(batch_ranges(plan, "m.plan"), Error);
  plan.profiles = {profile(8, 4, 16)};
  try {
    batch_ranges(plan, "m.plan");
    FAIL() << "min > opt accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("m.plan"), std::string::npos) << e.what();
  }
  plan.profiles = {profile(1, 4, 16)};
  plan.profiles[0].inputs["second"] = {{2, 5}, {4, 5}, {16, 5}};  // another min batch
  EXPECT_THROW(batch_ranges(plan, "m.plan"), Error);
}

TEST(PlanProfiles, BestProfileHoldsTheBatchWithTheNearestOpt) {
  const std::vector<BatchRange> r = {{1, 16, 32}, {64, 128, 192}, {16, 32, 64}};
  EXPECT_EQ(best_profile(r, 1), 0);
  EXPECT_EQ(best_profile(r, 20), 0);  // |16-20| < |32-20|
  EXPECT_EQ(best_profile(r, 30), 2);  // opt 32
  EXPECT_EQ(best_profile(r, 64), 2);  // 64 is in 1 and 2: |32-64| < |128-64|
  EXPECT_EQ(best_profile(r, 100), 1);
  EXPECT_EQ(best_profile(r, 193), -1);
  EXPECT_EQ(best_profile(r, 0), -1);
  EXPECT_EQ(best_profile({{1, 8, 8}, {1, 8, 8}}, 8), 0);  // a tie: the lower index
}

TEST(PlanProfiles, TacticsPerProfile) {
  LayerDesc layer;
  layer.name = "conv1";
  EXPECT_EQ(tactic_identity(layer, 0), std::nullopt);  // "{}": untuned
  set_tactic(layer, 0, "eng1", 0.5f);
  EXPECT_EQ(tactic_identity(layer, 0), "eng1");
  EXPECT_EQ(tactic_identity(layer, 1), std::nullopt);  // a single-profile plan
  set_tactic(layer, 1, "eng2", 0.25f);
  set_tactic(layer, 2, "cublaslt:ab", 0.125f);
  EXPECT_EQ(tactic_identity(layer, 0), "eng1");
  EXPECT_EQ(tactic_identity(layer, 1), "eng2");
  EXPECT_EQ(tactic_identity(layer, 2), "cublaslt:ab");
  EXPECT_EQ(tactic_identity(layer, 3), std::nullopt);
  EXPECT_EQ(tactic_identity(layer, -1), std::nullopt);
  EXPECT_THROW(set_tactic(layer, 5, "eng9", 1.0f), Error);  // out of order
  // Profile 0 again starts over.
  set_tactic(layer, 0, "eng7", 0.5f);
  EXPECT_EQ(tactic_identity(layer, 0), "eng7");
  EXPECT_EQ(tactic_identity(layer, 1), std::nullopt);
}

// The compiled plan rides with its profile's entry: set after the tactic,
// kept when later profiles are added, dropped when profile 0 starts over.
TEST(PlanProfiles, CompiledTacticsPerProfile) {
  LayerDesc layer;
  layer.name = "layer1.0.conv1";
  EXPECT_THROW(set_tactic_compiled(layer, 0, {"int8 conv x[8,...]", "{}"}), Error);  // no tactic
  set_tactic(layer, 0, "i32:eng4:24=26", 0.05f);
  EXPECT_EQ(tactic_compiled(layer, 0), std::nullopt);
  set_tactic_compiled(layer, 0, {"shape at 128", "{\"cudnnVersion\":91400}"});
  auto zero = tactic_compiled(layer, 0);
  ASSERT_TRUE(zero);
  EXPECT_EQ(zero->shape, "shape at 128");
  EXPECT_EQ(zero->cudnn, "{\"cudnnVersion\":91400}");
  EXPECT_EQ(tactic_compiled(layer, 1), std::nullopt);

  set_tactic(layer, 1, "i32:eng4:24=2", 0.01f);  // profile 0's entry moves into the list
  ASSERT_TRUE(tactic_compiled(layer, 0));
  EXPECT_EQ(tactic_compiled(layer, 0)->shape, "shape at 128");
  EXPECT_EQ(tactic_compiled(layer, 1), std::nullopt);
  set_tactic_compiled(layer, 1, {"shape at 16", "text 16"});
  EXPECT_EQ(tactic_compiled(layer, 1)->cudnn, "text 16");
  EXPECT_EQ(tactic_identity(layer, 1), "i32:eng4:24=2");
  EXPECT_THROW(set_tactic_compiled(layer, 2, {"s", "t"}), Error);

  set_tactic(layer, 0, "i32:eng4:24=28", 0.05f);
  EXPECT_EQ(tactic_compiled(layer, 0), std::nullopt);

  // Written by hand or damaged: anything but two strings is no compiled plan.
  layer.tactic = R"({"identity": "e", "compiled": {"shape": "s", "cudnn": 7}})";
  EXPECT_EQ(tactic_compiled(layer, 0), std::nullopt);
  layer.tactic = R"({"identity": "e", "compiled": "text"})";
  EXPECT_EQ(tactic_compiled(layer, 0), std::nullopt);
  layer.tactic = "not json";
  EXPECT_EQ(tactic_compiled(layer, 0), std::nullopt);
}

}  // namespace
}  // namespace anvil::plan
