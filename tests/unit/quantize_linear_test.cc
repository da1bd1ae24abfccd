// QuantizeLinear and DequantizeLinear on hand-computed cases: rounding, saturation,
// per-channel scales, int32 biases, the errors of malformed nodes, and a
// Q -> DQ round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "op_test_util.h"

namespace anvil {
namespace {

using testing::f32;
using testing::OpNode;
using testing::values_of;

template <typename T>
Tensor tensor(Extents extents, std::vector<T> v) {
  return Tensor::from<T>(std::move(extents), std::span<const T>(v));
}

Tensor scalar_f32(float v) {
  return f32({}, {v});
}

// The message of the error running `node` throws; fails the test if none.
std::string error_message(const OpNode& node, const std::vector<const Tensor*>& inputs,
                          ErrorKind expected) {
  try {
    node.run(inputs);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return {};
}

TEST(QuantizeLinear, RoundsHalfwayCasesToEven) {
  const OpNode q("QuantizeLinear", 13, 3);
  const Tensor x = f32({8}, {0.5f, 1.5f, 2.5f, 3.5f, -0.5f, -1.5f, -2.5f, 1.25f});
  const Tensor scale = scalar_f32(0.5f);  // x / scale: 1, 3, 5, 7, -1, -3, -5, 2.5
  const Tensor zero_point = tensor<std::uint8_t>({}, {100});
  const Tensor y = q.run_one({&x, &scale, &zero_point});
  ASSERT_EQ(y.dtype(), DType::kUInt8);
  EXPECT_EQ(values_of<std::uint8_t>(y),
            (std::vector<std::uint8_t>{101, 103, 105, 107, 99, 97, 95, 102}));

  const Tensor ties = f32({6}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f});
  const Tensor one = scalar_f32(1.0f);
  const Tensor zero = tensor<std::int8_t>({}, {0});
  EXPECT_EQ(values_of<std::int8_t>(q.run_one({&ties, &one, &zero})),
            (std::vector<std::int8_t>{0, 2, 2, 0, -2, -2}));
}

TEST(QuantizeLinear, SaturatesAtBothEnds) {
  const OpNode q("QuantizeLinear", 13, 3);
  const Tensor x = f32({6}, {-1000.0f, 1000.0f, -129.0f, 127.4f, -INFINITY, INFINITY});
  const Tensor one = scalar_f32(1.0f);
  const Tensor i8_zero = tensor<std::int8_t>({}, {0});
  EXPECT_EQ(values_of<std::int8_t>(q.run_one({&x, &one, &i8_zero})),
            (std::vector<std::int8_t>{-128, 127, -128, 127, -128, 127}));
  // The zero point shifts before saturating: 250 + 10 clamps to 255.
  const Tensor y = f32({4}, {-10.0f, -11.0f, 245.0f, 250.0f});
  const Tensor u8_zero = tensor<std::uint8_t>({}, {10});
  EXPECT_EQ(values_of<std::uint8_t>(q.run_one({&y, &one, &u8_zero})),
            (std::vector<std::uint8_t>{0, 0, 255, 255}));
}

TEST(QuantizeLinear, DefaultsToUint8WithZeroPointZero) {
  const OpNode q("QuantizeLinear", 13, 2);
  const Tensor x = f32({3}, {-1.0f, 3.0f, 600.0f});
  const Tensor scale = scalar_f32(2.0f);
  const Tensor y = q.run_one({&x, &scale});
  ASSERT_EQ(y.dtype(), DType::kUInt8);
  EXPECT_EQ(values_of<std::uint8_t>(y), (std::vector<std::uint8_t>{0, 2, 255}));
}

TEST(QuantizeLinear, QuantizesInt32Inputs) {
  const OpNode q("QuantizeLinear", 13, 3);
  const Tensor x = tensor<std::int32_t>({3}, {-7, 6, 10});
  const Tensor scale = scalar_f32(4.0f);  // -1.75, 1.5, 2.5
  const Tensor zero = tensor<std::int8_t>({}, {1});
  EXPECT_EQ(values_of<std::int8_t>(q.run_one({&x, &scale, &zero})),
            (std::vector<std::int8_t>{-1, 3, 3}));
}

TEST(QuantizeLinear, PerChannelAlongAxis1ByDefault) {
  const OpNode q("QuantizeLinear", 13, 3);
  const Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor scale = f32({3}, {1.0f, 2.0f, 0.5f});
  const Tensor zero = tensor<std::int8_t>({3}, {0, 10, -10});
  EXPECT_EQ(values_of<std::int8_t>(q.run_one({&x, &scale, &zero})),
            (std::vector<std::int8_t>{1, 11, -4, 4, 12, 2}));
}

TEST(QuantizeLinear, PerChannelAlongAxis0) {
  OpNode q("QuantizeLinear", 13, 3);
  q.attr("axis", std::int64_t{0});
  const Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor scale = f32({2}, {1.0f, 4.0f});
  const Tensor zero = tensor<std::uint8_t>({2}, {0, 100});
  EXPECT_EQ(values_of<std::uint8_t>(q.run_one({&x, &scale, &zero})),
            (std::vector<std::uint8_t>{1, 2, 3, 101, 101, 102}));  // 5/4 -> 1, 6/4 = 1.5 -> 2
}

TEST(QuantizeLinear, NegativeAxisCountsFromTheEnd) {
  OpNode q("QuantizeLinear", 13, 2);
  q.attr("axis", std::int64_t{-2});  // axis 1 of [2, 2, 2]
  const Tensor x = f32({2, 2, 2}, {1, 1, 1, 1, 2, 2, 2, 2});
  const Tensor scale = f32({2}, {1.0f, 0.25f});
  EXPECT_EQ(values_of<std::uint8_t>(q.run_one({&x, &scale})),
            (std::vector<std::uint8_t>{1, 1, 4, 4, 2, 2, 8, 8}));
}

TEST(QuantizeLinear, Opset21OutputDtypeWithoutZeroPoint) {
  OpNode q("QuantizeLinear", 21, 2);
  q.attr("output_dtype", std::int64_t{3});  // TensorProto.INT8
  const Tensor x = f32({2}, {-3.0f, 3.0f});
  const Tensor scale = scalar_f32(1.0f);
  const Tensor y = q.run_one({&x, &scale});
  ASSERT_EQ(y.dtype(), DType::kInt8);
  EXPECT_EQ(values_of<std::int8_t>(y), (std::vector<std::int8_t>{-3, 3}));
}

TEST(QuantizeLinear, InfersShapeAndDtypeAtImport) {
  const OpNode q("QuantizeLinear", 17, 3);
  const ops::TensorInfo out =
      q.infer({{DType::kFloat32, testing::shape({testing::sym("N"), testing::k(3)})},
               {DType::kFloat32, testing::shape({testing::k(3)})},
               {DType::kInt8, testing::shape({testing::k(3)})}},
              {});
  EXPECT_EQ(out.dtype, DType::kInt8);
  EXPECT_EQ(out.shape, testing::shape({testing::sym("N"), testing::k(3)}));
}

TEST(DequantizeLinear, SubtractsZeroPointAndScales) {
  const OpNode dq("DequantizeLinear", 13, 3);
  const Tensor x = tensor<std::uint8_t>({4}, {0, 3, 128, 255});
  const Tensor scale = scalar_f32(0.5f);
  const Tensor zero = tensor<std::uint8_t>({}, {128});
  const Tensor y = dq.run_one({&x, &scale, &zero});
  ASSERT_EQ(y.dtype(), DType::kFloat32);
  EXPECT_EQ(values_of(y), (std::vector<float>{-64.0f, -62.5f, 0.0f, 63.5f}));
}

TEST(DequantizeLinear, PerChannelInt8AlongAxis0) {
  OpNode dq("DequantizeLinear", 13, 3);
  dq.attr("axis", std::int64_t{0});
  const Tensor x = tensor<std::int8_t>({2, 2}, {-128, 127, -128, 127});
  const Tensor scale = f32({2}, {1.0f, 0.5f});
  const Tensor zero = tensor<std::int8_t>({2}, {0, -1});
  EXPECT_EQ(values_of(dq.run_one({&x, &scale, &zero})),
            (std::vector<float>{-128.0f, 127.0f, -63.5f, 64.0f}));
}

TEST(DequantizeLinear, Int32BiasesDoNotOverflow) {
  OpNode dq("DequantizeLinear", 13, 3);
  dq.attr("axis", std::int64_t{0});
  const Tensor x = tensor<std::int32_t>({3}, {-1000, 7, 2147483647});
  const Tensor scale = f32({3}, {0.25f, 0.5f, 1.0f});
  const Tensor zero = tensor<std::int32_t>({3}, {0, 0, -1});  // 2^31 - 1 - (-1) = 2^31
  EXPECT_EQ(values_of(dq.run_one({&x, &scale, &zero})),
            (std::vector<float>{-250.0f, 3.5f, 2147483648.0f}));
  const OpNode no_zero("DequantizeLinear", 13, 2);
  const Tensor one = scalar_f32(0.125f);
  EXPECT_EQ(values_of(no_zero.run_one({&x, &one})),
            (std::vector<float>{-125.0f, 0.875f, 268435456.0f}));
}

TEST(QuantizationErrors, ScaleLengthMustMatchTheAxisDimension) {
  const OpNode q("QuantizeLinear", 13, 2);
  const Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor scale = f32({2}, {1.0f, 1.0f});  // axis 1 has 3 elements
  const std::string message = error_message(q, {&x, &scale}, ErrorKind::kInvalidModel);
  EXPECT_NE(message.find("QuantizeLinear 'n'"), std::string::npos) << message;
  EXPECT_NE(message.find("axis 1"), std::string::npos) << message;
}

TEST(QuantizationErrors, ZeroPointDtypeMustMatchX) {
  const OpNode dq("DequantizeLinear", 13, 3);
  const Tensor x = tensor<std::int8_t>({2}, {1, 2});
  const Tensor scale = scalar_f32(1.0f);
  const Tensor zero = tensor<std::uint8_t>({}, {0});
  const std::string message = error_message(dq, {&x, &scale, &zero}, ErrorKind::kInvalidModel);
  EXPECT_NE(message.find("DequantizeLinear 'n'"), std::string::npos) << message;
  EXPECT_NE(message.find("uint8"), std::string::npos) << message;
}

TEST(QuantizationErrors, MalformedNodesAreInvalid) {
  const OpNode q("QuantizeLinear", 13, 3);
  const Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor scale = f32({3}, {1, 1, 1});
  const Tensor int32_zero = tensor<std::int32_t>({3}, {0, 0, 0});
  EXPECT_EQ(q.run_error({&x, &scale, &int32_zero}), ErrorKind::kInvalidModel);
  const Tensor short_zero = tensor<std::int8_t>({2}, {0, 0});
  EXPECT_EQ(q.run_error({&x, &scale, &short_zero}), ErrorKind::kInvalidModel);
  const Tensor matrix_scale = f32({1, 3}, {1, 1, 1});
  EXPECT_EQ(q.run_error({&x, &matrix_scale, nullptr}), ErrorKind::kInvalidModel);

  OpNode bad_axis("QuantizeLinear", 13, 2);
  bad_axis.attr("axis", std::int64_t{2});
  EXPECT_EQ(bad_axis.run_error({&x, &scale}), ErrorKind::kInvalidModel);
  // Per-axis scales arrived in opset 13.
  const OpNode old("QuantizeLinear", 11, 2);
  EXPECT_EQ(old.run_error({&x, &scale}), ErrorKind::kInvalidModel);

  OpNode contradiction("QuantizeLinear", 21, 3);
  contradiction.attr("output_dtype", std::int64_t{2});  // uint8, but the zero point is int8
  const Tensor int8_zero = tensor<std::int8_t>({3}, {0, 0, 0});
  EXPECT_EQ(contradiction.run_error({&x, &scale, &int8_zero}), ErrorKind::kInvalidModel);
}

TEST(QuantizationErrors, UnhandledFeaturesAreUnsupported) {
  const Tensor x = f32({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  const Tensor scale = f32({2, 2}, {1, 1, 1, 1});
  OpNode blocked("QuantizeLinear", 21, 2);
  blocked.attr("block_size", std::int64_t{2});
  EXPECT_NE(error_message(blocked, {&x, &scale}, ErrorKind::kUnsupported).find("block_size"),
            std::string::npos);

  OpNode int4("QuantizeLinear", 21, 2);
  int4.attr("output_dtype", std::int64_t{22});  // TensorProto.INT4
  const Tensor one = scalar_f32(1.0f);
  EXPECT_NE(error_message(int4, {&x, &one}, ErrorKind::kUnsupported).find("output_dtype 22"),
            std::string::npos);

  const OpNode dq("DequantizeLinear", 19, 2);
  const Tensor q = tensor<std::uint8_t>({2}, {1, 2});
  const Tensor half_scale(DType::kFloat16, {});
  EXPECT_EQ(dq.run_error({&q, &half_scale}), ErrorKind::kUnsupported);
  const Tensor i64_x = testing::i64({2}, {1, 2});
  EXPECT_EQ(dq.run_error({&i64_x, &one}), ErrorKind::kUnsupported);
}

// Quantizing then dequantizing is off by at most half a step inside the range.
TEST(QuantizationRoundTrip, ErrorIsAtMostHalfAScale) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const Extents extents{4, 3, 5};
  Tensor x(DType::kFloat32, extents);
  for (std::int64_t i = 0; i < x.element_count(); ++i)
    x.data<float>()[i] = uniform(rng);

  // Per-tensor uint8 covering [-1, 1], and per-channel int8 along axis 1.
  const Tensor tensor_scale = scalar_f32(2.0f / 255.0f);
  const Tensor tensor_zero = tensor<std::uint8_t>({}, {128});
  const Tensor channel_scale = f32({3}, {1.0f / 127.0f, 1.0f / 64.0f, 1.0f / 100.0f});
  const Tensor channel_zero = tensor<std::int8_t>({3}, {0, 0, 0});
  struct Case {
    const Tensor* scale;
    const Tensor* zero;
  };
  for (const Case& c : {Case{&tensor_scale, &tensor_zero}, Case{&channel_scale, &channel_zero}}) {
    const OpNode q("QuantizeLinear", 13, 3), dq("DequantizeLinear", 13, 3);
    const Tensor quantized = q.run_one({&x, c.scale, c.zero});
    const std::vector<float> back = values_of(dq.run_one({&quantized, c.scale, c.zero}));
    const std::int64_t inner = 5, channels = c.scale->element_count();
    for (std::int64_t i = 0; i < x.element_count(); ++i) {
      const float step = c.scale->data<float>()[(i / inner) % channels];
      EXPECT_LE(std::abs(back[i] - x.data<float>()[i]), step / 2 * (1 + 1e-5f)) << "element " << i;
    }
  }
}

}  // namespace
}  // namespace anvil
