// The plan's JSON metadata: missing or mistyped fields are named, and tables
// that reference each other (tensor ids, weight ranges, IO names, profiles)
// are cross-checked on read and on write.
#include "plan/plan_metadata.h"

#include <gtest/gtest.h>

#include <string>

#include "anvil/error.h"
#include "plan/plan.h"
#include "plan/plan_container.h"
#include "plan_test_util.h"

namespace anvil::plan {
namespace {

using anvil::testing::small_plan;

constexpr std::string_view kLabel = "model.plan";

// The error raised when reading a plan file holding `metadata` and the small
// plan's weights; empty when it reads fine.
std::string error_reading(const std::string& metadata,
                          ErrorKind kind = ErrorKind::kInvalidArgument) {
  const auto bytes = pack_plan_file(metadata, small_plan().weights);
  try {
    deserialize_plan(bytes, kLabel);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_TRUE(std::string_view(e.what()).starts_with(kLabel)) << e.what();
    return e.what();
  }
  return "";
}

std::string error_reading(const Plan& plan) {
  return error_reading(to_metadata(plan));
}

// `text` with the one occurrence of `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " occurs twice";
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

const std::string& metadata() {
  static const std::string text = to_metadata(small_plan());
  return text;
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(PlanMetadata, TheSmallPlanReads) {
  EXPECT_EQ(error_reading(metadata()), "");
}

TEST(PlanMetadata, MalformedJsonIsNamed) {
  EXPECT_HAS(error_reading(metadata().substr(0, metadata().size() / 2)),
             "plan metadata is not valid JSON");
  EXPECT_HAS(error_reading("[1, 2"), "not valid JSON");
  EXPECT_HAS(error_reading("\"just a string\""), "field '(root)' must be an object");
}

TEST(PlanMetadata, DeepNestingIsRefusedBeforeParsing) {
  EXPECT_HAS(error_reading(std::string(100000, '[') + std::string(100000, ']')),
             "nests deeper than 64 levels");
}

TEST(PlanMetadata, MissingFieldsAreNamedWithTheirPath) {
  EXPECT_HAS(error_reading(replaced(metadata(), "\"cc_major\"", "\"ccmajor\"")),
             "field 'target.cc_major' is missing");
  EXPECT_HAS(error_reading(replaced(metadata(), "\"anvil_version\"", "\"version\"")),
             "field 'anvil_version' is missing");
  EXPECT_HAS(
      error_reading(replaced(metadata(), "\"tactic\":{\"algo_id\"", "\"tactics\":{\"algo_id\"")),
      "field 'layers[1].tactic' is missing");
}

TEST(PlanMetadata, MistypedFieldsAreNamedWithTheirPath) {
  EXPECT_HAS(error_reading(replaced(metadata(), "\"is_input\":false", "\"is_input\":\"no\"")),
             "field 'io[1].is_input' must be true or false, found string");
  EXPECT_HAS(error_reading(replaced(metadata(), "\"offset\":2048", "\"offset\":2048.5")),
             "field 'layers[1].weights[0].offset' must be an integer, found number");
  EXPECT_HAS(error_reading(replaced(metadata(), "\"dtype\":\"float16\"", "\"dtype\":\"float17\"")),
             "field 'tensors[1].dtype' names no known dtype");
  EXPECT_HAS(error_reading(replaced(metadata(), "\"cc_minor\":0", "\"cc_minor\":4294967296")),
             "field 'target.cc_minor' is out of range");
  EXPECT_HAS(error_reading(replaced(metadata(), "\"workspace_bytes\":67108864",
                                    "\"workspace_bytes\":18446744073709551615")),
             "field 'options.workspace_bytes' is out of range");
  EXPECT_HAS(error_reading(replaced(metadata(), "\"profiles\":[", "\"profiles\":[7,")),
             "field 'profiles[0]' must be an object, found number");
}

TEST(PlanMetadata, AWeightRefPastTheBlobIsRefused) {
  Plan plan = small_plan();
  plan.layers[1].weights[0].offset = 2688 - 320;  // aligned, but its 640 bytes run past the end
  EXPECT_HAS(
      error_reading(plan),
      "layer 'fc' weight 0 (640 bytes at offset 2368) lies outside the 2688-byte weights blob");
  plan.layers[1].weights[0].offset = std::numeric_limits<std::int64_t>::max() - 3;
  EXPECT_HAS(error_reading(plan), "lies outside");
  plan.layers[1].weights[0].offset = -4;
  EXPECT_HAS(error_reading(plan), "lies outside");
  // And the writer refuses to produce such a file in the first place.
  EXPECT_THROW(serialize_plan(plan), Error);
}

TEST(PlanMetadata, WeightBytesMustMatchTheirDims) {
  Plan plan = small_plan();
  plan.layers[0].weights[1].dims = {15};
  EXPECT_HAS(error_reading(plan), "layer 'conv1' weight 1 holds 64 bytes");
  plan.layers[0].weights[1].dims = {1LL << 40, 1LL << 40};
  EXPECT_HAS(error_reading(plan), "layer 'conv1' weight 1");
  plan.layers[0].weights[1].dims = {16};
  plan.layers[0].weights[1].offset = 1790;
  EXPECT_HAS(error_reading(plan), "not aligned");
}

TEST(PlanMetadata, LayerTensorIdsMustExist) {
  Plan plan = small_plan();
  plan.layers[1].inputs = {7};
  EXPECT_HAS(error_reading(plan),
             "layer 'fc' reads tensor 7, not a tensor id (the plan has 3 tensors)");
  plan = small_plan();
  plan.layers[0].outputs = {-1};
  EXPECT_HAS(error_reading(plan), "layer 'conv1' writes tensor -1");
  plan = small_plan();
  plan.io[1].tensor_id = 3;
  EXPECT_HAS(error_reading(plan), "IO 'logits' binds tensor 3");
  plan = small_plan();
  plan.tensors[2].id = 5;
  EXPECT_HAS(error_reading(plan), "tensors[2] has id 5; ids must be 0..2 in order");
}

TEST(PlanMetadata, IoNamesMustBeUnique) {
  Plan plan = small_plan();
  plan.io[1].name = "input";
  EXPECT_HAS(error_reading(plan), "IO name 'input' is bound twice");
  plan = small_plan();
  plan.io.pop_back();
  EXPECT_HAS(error_reading(plan), "at least one input and one output");
}

TEST(PlanMetadata, LayerNamesMustBeUnique) {
  Plan plan = small_plan();
  plan.layers[1].name = "conv1";
  EXPECT_HAS(error_reading(plan), "layer name 'conv1' is empty or used twice");
}

TEST(PlanMetadata, TensorShapesMustFitTheirLayout) {
  Plan plan = small_plan();
  plan.tensors[2].layout = "NCW";
  EXPECT_HAS(error_reading(plan), "tensor 'logits' has layout \"NCW\"");
  plan = small_plan();
  plan.tensors[2].dims = {-1, 10, 1};
  EXPECT_HAS(error_reading(plan), "tensor 'logits' has 3 dims, layout NC needs 2");
  plan = small_plan();
  plan.tensors[1].dims[2] = -1;
  EXPECT_HAS(error_reading(plan), "tensor 'conv1_out' has dim 2 = -1");
  plan = small_plan();
  plan.tensors[0].channel_padding_to = 2;
  EXPECT_HAS(error_reading(plan), "tensor 'input' pads 3 channels to 2");
}

TEST(PlanMetadata, ProfilesMustCoverDynamicInputsWithOrderedRanges) {
  Plan plan = small_plan();
  plan.profiles.clear();
  EXPECT_HAS(error_reading(plan), "input 'input' has a dynamic batch but no profile");
  plan = small_plan();
  plan.profiles.push_back({});
  EXPECT_HAS(error_reading(plan), "profile 1 lacks the dynamic input 'input'");
  plan = small_plan();
  plan.profiles[0].inputs["input"].max[0] = 2;
  EXPECT_HAS(error_reading(plan), "profile 0 input 'input' dim 0: min 1, opt 4, max 2");
  plan = small_plan();
  plan.profiles[0].inputs["input"].opt[1] = 4;
  EXPECT_HAS(error_reading(plan), "profile 0 input 'input' dim 1");
  plan = small_plan();
  plan.profiles[0].inputs["logits"] = plan.profiles[0].inputs["input"];
  EXPECT_HAS(error_reading(plan), "profile 0 names 'logits', which is not an input");
}

TEST(PlanMetadata, ParamsMustBeJsonObjects) {
  Plan plan = small_plan();
  plan.layers[0].params = "{\"pads\": [1,";
  EXPECT_THROW(serialize_plan(plan), Error);
  plan.layers[0].params = "[1, 2]";
  try {
    serialize_plan(plan);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "layer 'conv1' params must be a JSON object");
  }
  EXPECT_HAS(error_reading(replaced(metadata(), "\"params\":{\"trans_b\":true}", "\"params\":3")),
             "field 'layers[1].params' must be an object, found number");
}

TEST(PlanMetadata, UnknownFieldsAreIgnored) {
  // Format 1 writers may add fields that older format-1 readers can skip.
  EXPECT_EQ(
      error_reading(replaced(metadata(), "\"anvil_version\"", "\"note\":[1],\"anvil_version\"")),
      "");
}

}  // namespace
}  // namespace anvil::plan
