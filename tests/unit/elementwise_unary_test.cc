// Activations and pass-through ops: LeakyRelu, Sigmoid, Tanh, HardSigmoid,
// HardSwish, Clip, PRelu, Identity, Dropout.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <limits>

#include "ops/op.h"

namespace anvil {
namespace {

// A node whose inputs are given as tensors (null for an omitted input).
class TestNode {
 public:
  TestNode(std::string op_type, int opset, int outputs = 1) {
    node_.op_type = std::move(op_type);
    node_.name = "n";
    node_.opset = opset;
    for (int i = 0; i < outputs; ++i)
      node_.outputs.push_back(&values_.emplace_back());
  }
  TestNode& attr(const std::string& name, ir::AttributeValue value) {
    node_.attributes.set(name, std::move(value));
    return *this;
  }
  std::vector<Tensor> run(const std::vector<const Tensor*>& inputs) {
    node_.inputs.clear();
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i]) {
        node_.inputs.push_back(nullptr);
        continue;
      }
      node_.inputs.push_back(&values_.emplace_back());
      node_.inputs.back()->name = cat("in", i);
    }
    return ops::run_node(node_, inputs);
  }

 private:
  ir::Node node_;
  std::deque<ir::Value> values_;  // stable addresses
};

std::vector<float> floats(const Tensor& t) {
  return {t.values<float>().begin(), t.values<float>().end()};
}

// Runs `op_type` on x at opset 17 and returns its output values.
std::vector<float> unary(const std::string& op_type, std::initializer_list<float> x) {
  Tensor in = Tensor::from<float>({static_cast<std::int64_t>(x.size())}, x);
  return floats(TestNode(op_type, 17).run({&in})[0]);
}

TEST(Activations, LeakyReluDefaultsToAlphaOneHundredth) {
  EXPECT_EQ(unary("LeakyRelu", {-2.0f, 0.0f, 3.0f}), (std::vector<float>{-0.02f, 0.0f, 3.0f}));
  Tensor x = Tensor::from<float>({1}, {-2.0f});
  EXPECT_EQ(floats(TestNode("LeakyRelu", 16).attr("alpha", 0.5f).run({&x})[0])[0], -1.0f);
}

TEST(Activations, SigmoidSaturatesWithoutOverflow) {
  std::vector<float> y = unary("Sigmoid", {-200.0f, 0.0f, 200.0f, 1.0f});
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.5f);
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_NEAR(y[3], 1.0 / (1.0 + std::exp(-1.0)), 1e-7);
}

TEST(Activations, Tanh) {
  std::vector<float> y = unary("Tanh", {-1.0f, 0.0f, 30.0f});
  EXPECT_NEAR(y[0], std::tanh(-1.0), 1e-7);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 1.0f);
}

TEST(Activations, HardSigmoidDefaultsAndAttributes) {
  std::vector<float> y = unary("HardSigmoid", {-5.0f, 0.0f, 1.0f, 5.0f});
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.5f);
  EXPECT_NEAR(y[2], 0.7f, 1e-7);
  EXPECT_EQ(y[3], 1.0f);
  Tensor x = Tensor::from<float>({1}, {1.0f});
  auto z = TestNode("HardSigmoid", 11).attr("alpha", 0.25f).attr("beta", 0.125f).run({&x});
  EXPECT_EQ(floats(z[0])[0], 0.375f);
}

TEST(Activations, MistypedAttributeIsAnError) {
  Tensor x = Tensor::from<float>({1}, {1.0f});
  EXPECT_THROW(TestNode("LeakyRelu", 17).attr("alpha", std::int64_t{1}).run({&x}), Error);
}

TEST(Activations, HardSwish) {
  std::vector<float> y = unary("HardSwish", {-4.0f, -1.5f, 0.0f, 1.5f, 4.0f});
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_NEAR(y[1], -1.5f * 0.25f, 1e-7);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_NEAR(y[3], 1.5f * 0.75f, 1e-7);
  EXPECT_EQ(y[4], 4.0f);
}

TEST(Clip, OmittedMinClipsOnlyFromAbove) {
  Tensor x = Tensor::from<float>({4}, {-1e30f, -1.0f, 0.5f, 2.0f});
  Tensor max = Tensor::from<float>({}, {1.0f});
  std::vector<Tensor> y = TestNode("Clip", 13).run({&x, nullptr, &max});
  EXPECT_EQ(floats(y[0]), (std::vector<float>{-1e30f, -1.0f, 0.5f, 1.0f}));
}

TEST(Clip, MinOnlyAndNoBounds) {
  Tensor x = Tensor::from<float>({3}, {-2.0f, 0.0f, 2.0f});
  Tensor min = Tensor::from<float>({}, {-1.0f});
  EXPECT_EQ(floats(TestNode("Clip", 11).run({&x, &min})[0]), (std::vector<float>{-1, 0, 2}));
  EXPECT_EQ(floats(TestNode("Clip", 11).run({&x})[0]), (std::vector<float>{-2, 0, 2}));
}

TEST(Clip, MinAboveMaxGivesMax) {
  Tensor x = Tensor::from<float>({3}, {-2.0f, 0.0f, 2.0f});
  Tensor min = Tensor::from<float>({}, {1.0f});
  Tensor max = Tensor::from<float>({}, {0.5f});
  EXPECT_EQ(floats(TestNode("Clip", 13).run({&x, &min, &max})[0]),
            (std::vector<float>{0.5f, 0.5f, 0.5f}));
}

TEST(Clip, Int8) {
  Tensor x = Tensor::from<std::int8_t>({3}, {-128, 5, 127});
  Tensor max = Tensor::from<std::int8_t>({}, {6});
  std::vector<Tensor> y = TestNode("Clip", 13).run({&x, nullptr, &max});
  EXPECT_EQ(std::vector<std::int8_t>(y[0].values<std::int8_t>().begin(),
                                     y[0].values<std::int8_t>().end()),
            (std::vector<std::int8_t>{-128, 5, 6}));
}

TEST(Clip, BoundMustMatchDtypeAndBeScalar) {
  Tensor x = Tensor::from<float>({2}, {0.0f, 1.0f});
  Tensor int_min = Tensor::from<std::int64_t>({}, {0});
  Tensor vector_min = Tensor::from<float>({2}, {0.0f, 1.0f});
  EXPECT_THROW(TestNode("Clip", 13).run({&x, &int_min}), Error);
  EXPECT_THROW(TestNode("Clip", 13).run({&x, &vector_min}), Error);
}

TEST(Clip, Opset6AttributesAreRejected) {
  Tensor x = Tensor::from<float>({1}, {0.0f});
  try {
    TestNode("Clip", 11).attr("min", 0.0f).run({&x});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidModel);
  }
}

TEST(PRelu, PerChannelSlope) {
  Tensor x = Tensor::from<float>({1, 2, 1, 2}, {-1.0f, 1.0f, -1.0f, 1.0f});
  Tensor slope = Tensor::from<float>({2, 1, 1}, {0.5f, 0.25f});
  EXPECT_EQ(floats(TestNode("PRelu", 16).run({&x, &slope})[0]),
            (std::vector<float>{-0.5f, 1.0f, -0.25f, 1.0f}));
}

TEST(PRelu, SlopeMustBroadcastToInput) {
  Tensor x = Tensor::from<float>({1, 3}, {1, 2, 3});
  Tensor slope = Tensor::from<float>({2}, {1, 2});
  EXPECT_THROW(TestNode("PRelu", 16).run({&x, &slope}), Error);
}

TEST(Identity, CopiesAnyDtype) {
  Tensor x = Tensor::from<std::int64_t>({2}, {-5, 7});
  std::vector<Tensor> y = TestNode("Identity", 16).run({&x});
  EXPECT_EQ(y[0].dtype(), DType::kInt64);
  EXPECT_EQ(std::vector<std::int64_t>(y[0].values<std::int64_t>().begin(),
                                      y[0].values<std::int64_t>().end()),
            (std::vector<std::int64_t>{-5, 7}));
}

TEST(Dropout, InferenceIsIdentityWithTrueMask) {
  Tensor x = Tensor::from<float>({2}, {1.5f, -2.0f});
  Tensor ratio = Tensor::from<float>({}, {0.3f});
  std::vector<Tensor> y = TestNode("Dropout", 13, 2).run({&x, &ratio});
  EXPECT_EQ(floats(y[0]), (std::vector<float>{1.5f, -2.0f}));
  ASSERT_EQ(y[1].dtype(), DType::kBool);
  EXPECT_TRUE(y[1].values<bool>()[0] && y[1].values<bool>()[1]);
}

TEST(Dropout, TrainingModeIsUnsupportedUnlessRatioIsZero) {
  Tensor x = Tensor::from<float>({2}, {1.5f, -2.0f});
  Tensor on = Tensor::from<bool>({}, {true});
  Tensor half = Tensor::from<float>({}, {0.5f});
  Tensor zero = Tensor::from<float>({}, {0.0f});
  try {
    TestNode("Dropout", 13).run({&x, &half, &on});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("training_mode"), std::string::npos) << e.what();
  }
  EXPECT_EQ(floats(TestNode("Dropout", 13).run({&x, &zero, &on})[0]),
            (std::vector<float>{1.5f, -2.0f}));
}

TEST(Dropout, Opset11TakesOneInput) {
  Tensor x = Tensor::from<float>({1}, {1.0f});
  Tensor ratio = Tensor::from<float>({}, {0.5f});
  EXPECT_EQ(floats(TestNode("Dropout", 11).attr("ratio", 0.2f).run({&x})[0]),
            (std::vector<float>{1.0f}));
  EXPECT_THROW(TestNode("Dropout", 11).run({&x, &ratio}), Error);
}

TEST(Dropout, RatioOutOfRangeIsAnError) {
  Tensor x = Tensor::from<float>({1}, {1.0f});
  Tensor ratio = Tensor::from<float>({}, {1.0f});
  EXPECT_THROW(TestNode("Dropout", 13).run({&x, &ratio}), Error);
}

}  // namespace
}  // namespace anvil
