// Add, Sub, Mul, Div: broadcasting, float32 and int64, and their errors.
#include <gtest/gtest.h>

#include <limits>

#include "ops/op.h"

namespace anvil {
namespace {

// Runs a two-input node of `op_type` at opset 14.
std::vector<Tensor> run_binary(const std::string& op_type, const Tensor& a, const Tensor& b) {
  ir::Node node;
  node.op_type = op_type;
  node.name = "n";
  node.opset = 14;
  ir::Value va, vb, out;
  va.name = "a";
  vb.name = "b";
  node.inputs = {&va, &vb};
  node.outputs = {&out};
  return ops::run_node(node, {&a, &b});
}

template <typename T>
std::vector<T> values(const Tensor& t) {
  return {t.values<T>().begin(), t.values<T>().end()};
}

TEST(BinaryElementwise, BroadcastsBothWays) {
  Tensor a = Tensor::from<float>({2, 1}, {1.0f, 2.0f});
  Tensor b = Tensor::from<float>({3}, {10.0f, 20.0f, 30.0f});
  std::vector<Tensor> sum = run_binary("Add", a, b);
  EXPECT_EQ(sum[0].extents(), (Extents{2, 3}));
  EXPECT_EQ(values<float>(sum[0]), (std::vector<float>{11, 21, 31, 12, 22, 32}));
  EXPECT_EQ(values<float>(run_binary("Sub", a, b)[0]),
            (std::vector<float>{-9, -19, -29, -8, -18, -28}));
  EXPECT_EQ(values<float>(run_binary("Mul", b, a)[0]),
            (std::vector<float>{10, 20, 30, 20, 40, 60}));
  EXPECT_EQ(values<float>(run_binary("Div", b, a)[0]), (std::vector<float>{10, 20, 30, 5, 10, 15}));
}

TEST(BinaryElementwise, Int64ShapeArithmetic) {
  Tensor dims = Tensor::from<std::int64_t>({2}, {8, 512});
  Tensor scalar = Tensor::from<std::int64_t>({}, {2});
  std::vector<Tensor> product = run_binary("Mul", dims, scalar);
  EXPECT_EQ(product[0].dtype(), DType::kInt64);
  EXPECT_EQ(values<std::int64_t>(product[0]), (std::vector<std::int64_t>{16, 1024}));
  EXPECT_EQ(values<std::int64_t>(run_binary("Add", dims, scalar)[0]),
            (std::vector<std::int64_t>{10, 514}));
}

TEST(BinaryElementwise, IntegerDivisionTruncatesTowardZero) {
  // As the ONNX reference and ONNX Runtime compute it (NumPy's // would floor).
  Tensor a = Tensor::from<std::int64_t>({4}, {7, -7, 7, -7});
  Tensor b = Tensor::from<std::int64_t>({4}, {2, 2, -2, -2});
  EXPECT_EQ(values<std::int64_t>(run_binary("Div", a, b)[0]),
            (std::vector<std::int64_t>{3, -3, -3, 3}));
}

TEST(BinaryElementwise, IntegerOverflowWrapsInsteadOfTrapping) {
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  Tensor a = Tensor::from<std::int64_t>({1}, {kMin});
  Tensor minus_one = Tensor::from<std::int64_t>({1}, {-1});
  EXPECT_EQ(values<std::int64_t>(run_binary("Div", a, minus_one)[0])[0], kMin);
  EXPECT_EQ(values<std::int64_t>(run_binary("Sub", a, Tensor::from<std::int64_t>({1}, {1}))[0])[0],
            std::numeric_limits<std::int64_t>::max());
}

TEST(BinaryElementwise, IntegerDivisionByZeroIsAnError) {
  Tensor a = Tensor::from<std::int64_t>({2}, {1, 2});
  Tensor b = Tensor::from<std::int64_t>({2}, {1, 0});
  try {
    run_binary("Div", a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("division by zero"), std::string::npos) << e.what();
  }
}

TEST(BinaryElementwise, FloatDivisionByZeroIsInfinite) {
  Tensor a = Tensor::from<float>({1}, {1.0f});
  Tensor b = Tensor::from<float>({1}, {0.0f});
  EXPECT_EQ(values<float>(run_binary("Div", a, b)[0])[0], std::numeric_limits<float>::infinity());
}

TEST(BinaryElementwise, MixedDtypesNameBoth) {
  Tensor a = Tensor::from<float>({1}, {1.0f});
  Tensor b = Tensor::from<std::int64_t>({1}, {1});
  try {
    run_binary("Add", a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidModel);
    const std::string message = e.what();
    EXPECT_NE(message.find("float32"), std::string::npos) << message;
    EXPECT_NE(message.find("int64"), std::string::npos) << message;
  }
}

TEST(BinaryElementwise, OtherDtypesAreUnsupported) {
  Tensor a = Tensor::from<std::int32_t>({1}, {1});
  try {
    run_binary("Mul", a, a);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
  }
}

}  // namespace
}  // namespace anvil
