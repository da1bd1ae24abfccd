// The shape ops inside imported models: symbolic batch dimensions flow
// through them, shape subgraphs fold at import, and the reference runtime
// re-infers concrete shapes at run time.
#include <gtest/gtest.h>

#include <limits>

#include "../fuzz/onnx_model_builder.h"
#include "onnx/importer.h"
#include "op_test_util.h"
#include "reference/reference_runtime.h"

namespace anvil::shape_ops_test {
namespace {

using namespace anvil::testing;

using anvil::testing::add_float_attribute;
using anvil::testing::add_int_attribute;
using anvil::testing::add_ints_attribute;
using anvil::testing::InputDim;
using anvil::testing::ModelBuilder;

// x[N,3,2,2] -> Pad(H begin 1, W end 1, value 1.5 from a Constant node)
// -> Reshape(_, Concat([-1], Slice(Shape(_), 1:))) -> Transpose(0,2,3,1)
// -> ReduceMean(axes 1,2, keepdims 0) -> y[N,3].
ModelBuilder padded_mean_model() {
  ModelBuilder b(13);
  b.input("x", {InputDim{std::string("N")}, InputDim{3}, InputDim{2}, InputDim{2}}).output("y");
  b.raw_i64("pads", {8}, {0, 0, 1, 0, 0, 0, 0, 1});
  b.raw_i64("one", {1}, {1});
  b.raw_i64("to_end", {1}, {std::numeric_limits<std::int64_t>::max()});
  b.raw_i64("minus_one", {1}, {-1});
  add_float_attribute(b.node("Constant", {}, {"value"}, "value"), "value_float", 1.5f);
  b.node("Pad", {"x", "pads", "value"}, {"padded"}, "pad");
  b.node("Shape", {"padded"}, {"shape"}, "shape");
  b.node("Slice", {"shape", "one", "to_end"}, {"tail"}, "slice");
  add_int_attribute(b.node("Concat", {"minus_one", "tail"}, {"target"}, "concat"), "axis", 0);
  b.node("Reshape", {"padded", "target"}, {"same"}, "reshape");
  add_ints_attribute(b.node("Transpose", {"same"}, {"nhwc"}, "transpose"), "perm", {0, 2, 3, 1});
  auto& mean = b.node("ReduceMean", {"nhwc"}, {"y"}, "mean");
  add_ints_attribute(mean, "axes", {1, 2});
  add_int_attribute(mean, "keepdims", 0);
  return b;
}

TEST(ShapeOpsImport, SymbolicBatchFlowsThroughAndShapeSubgraphFolds) {
  ir::Graph graph =
      onnx::import_model_bytes(padded_mean_model().bytes(), "/nonexistent-anvil-test-dir", "m");
  EXPECT_EQ(graph.outputs[0]->shape, shape({sym("N"), k(3)}));
  // The shape subgraph is evaluated at import: the Reshape's target is known.
  const ir::Value* target = graph.find_value("target");
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(target->is_constant());
  EXPECT_EQ(values_of<std::int64_t>(*target->constant), (std::vector<std::int64_t>{-1, 3, 3, 3}));
  EXPECT_EQ(graph.find_value("same")->shape, shape({sym("N"), k(3), k(3), k(3)}));
  std::vector<std::string> op_types;
  for (const auto& node : graph.nodes())
    op_types.push_back(node->op_type);
  EXPECT_EQ(op_types, (std::vector<std::string>{"Pad", "Reshape", "Transpose", "ReduceMean"}));
}

TEST(ShapeOpsImport, RunsWithAConcreteBatch) {
  ir::Graph graph =
      onnx::import_model_bytes(padded_mean_model().bytes(), "/nonexistent-anvil-test-dir", "m");
  Tensor x = iota_f32({2, 3, 2, 2});
  std::vector<Tensor> y = reference::ReferenceRuntime(graph).run({{"x", x}});
  ASSERT_EQ(y[0].extents(), (Extents{2, 3}));
  // Each 3x3 padded plane holds the 4 values of x's plane and 5 pads of 1.5.
  for (std::int64_t plane = 0; plane < 6; ++plane) {
    const float sum = static_cast<float>(4 * plane * 4 + 0 + 1 + 2 + 3);
    EXPECT_NEAR(y[0].data<float>()[plane], (sum + 5 * 1.5f) / 9, 1e-5) << "plane " << plane;
  }
}

}  // namespace
}  // namespace anvil::shape_ops_test
