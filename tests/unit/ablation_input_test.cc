// The input `anvil bench --ablation` reads from the model file
// (tools/anvil/ablation_input.h): an image input [N, C, H, W] is taken, and
// anything it cannot feed is one clear error naming the model.
#include "../../tools/anvil/ablation_input.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "../fuzz/onnx_model_builder.h"

namespace anvil::cli {
namespace {

using testing::InputDim;
using testing::ModelBuilder;

// inputs (name -> dims) -> Relu of the first -> y, written to `dir`.
std::string write_model(const testing::ScratchDir& dir,
                        const std::vector<std::pair<std::string, std::vector<InputDim>>>& inputs) {
  ModelBuilder b;
  for (const auto& [name, dims] : inputs)
    b.input(name, dims);
  b.output("y");
  b.node("Relu", {inputs.front().first}, {"y"}, "relu");
  return dir.write("model.onnx", b.bytes()).string();
}

Error error_of(const std::string& model) {
  try {
    ablation_input(model);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << model << " was accepted";
  return Error(ErrorKind::kInternal, "accepted");
}

TEST(AblationInput, ReadsTheImageInputsNameAndSize) {
  const testing::ScratchDir dir("anvil_AblationInput_Reads");
  const std::string model = write_model(
      dir, {{"images", {std::string("N"), std::int64_t{3}, std::int64_t{8}, std::int64_t{6}}}});
  const AblationInput input = ablation_input(model);
  EXPECT_EQ(input.name, "images");
  EXPECT_EQ(input.channels, 3);
  EXPECT_EQ(input.height, 8);
  EXPECT_EQ(input.width, 6);
}

TEST(AblationInput, InputsItCannotFeedAreErrorsNamingTheModel) {
  const testing::ScratchDir dir("anvil_AblationInput_Errors");
  struct Case {
    const char* what;
    std::vector<std::pair<std::string, std::vector<InputDim>>> inputs;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"two inputs",
       {{"a", {std::int64_t{1}, std::int64_t{3}, std::int64_t{4}, std::int64_t{4}}},
        {"b", {std::int64_t{1}}}},
       "one input, it has 2"},
      {"rank 2", {{"x", {std::string("N"), std::int64_t{3}}}}, "[N,C,H,W]"},
      {"symbolic height",
       {{"x", {std::string("N"), std::int64_t{3}, std::string("H"), std::int64_t{4}}}},
       "'x' is [N,3,H,4]"},
  };
  for (const Case& c : cases) {
    const std::string model = write_model(dir, c.inputs);
    const Error e = error_of(model);
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported) << c.what << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(model), std::string::npos) << c.what << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << c.what << ": " << e.what();
  }
}

TEST(AblationInput, AMissingFileIsTheImportersError) {
  const testing::ScratchDir dir("anvil_AblationInput_Missing");
  const std::string model = (dir.path() / "absent.onnx").string();
  const Error e = error_of(model);
  EXPECT_NE(std::string(e.what()).find("absent.onnx"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace anvil::cli
