// Valid models the importer must read faithfully: initializer encodings,
// Constant nodes, symbolic dimensions, node order, shape-subgraph folding.
#include "onnx/importer.h"

#include <gtest/gtest.h>

#include "../fuzz/onnx_model_builder.h"
#include "ops/op.h"

namespace anvil {
namespace {

using anvil::testing::flatten_model;
using anvil::testing::InputDim;
using anvil::testing::kOnnxDouble;
using anvil::testing::kOnnxFloat;
using anvil::testing::kOnnxInt32;
using anvil::testing::kOnnxInt64;
using anvil::testing::ModelBuilder;
using anvil::testing::relu_model;
using anvil::testing::tensor_proto;

ir::Graph import(const ModelBuilder& b) {
  return onnx::import_model_bytes(b.bytes(), "/nonexistent-anvil-test-dir", "test model");
}

template <typename T>
std::vector<T> values_of(const ir::Value* v) {
  if (!v || !v->is_constant()) return {};
  return {v->constant->values<T>().begin(), v->constant->values<T>().end()};
}

// The op types that are not registered yet, so tests needing them can skip.
std::string missing_ops(std::initializer_list<const char*> op_types) {
  std::string missing;
  for (const char* op : op_types)
    if (!ops::find_op(op)) missing += cat(missing.empty() ? "" : ", ", op);
  return missing;
}

TEST(Importer, RawDataInitializers) {
  ModelBuilder b = relu_model();
  b.raw_f32("w", {2, 3}, {1, 2, 3, 4, 5, -6});
  b.raw_i64("idx", {2}, {-1, std::int64_t{1} << 40});
  b.output("w").output("idx", kOnnxInt64);
  ir::Graph graph = import(b);
  const ir::Value* w = graph.find_value("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::kFloat32);
  EXPECT_EQ(w->shape, ir::Shape::of({2, 3}));
  EXPECT_EQ(values_of<float>(w), (std::vector<float>{1, 2, 3, 4, 5, -6}));
  EXPECT_EQ(values_of<std::int64_t>(graph.find_value("idx")),
            (std::vector<std::int64_t>{-1, std::int64_t{1} << 40}));
}

TEST(Importer, TypedFieldInitializers) {
  ModelBuilder b = relu_model();
  auto f = tensor_proto("f", kOnnxFloat, {3});
  for (float v : {0.5f, -1.0f, 2.0f})
    f.add_float_data(v);
  auto i64 = tensor_proto("i64", kOnnxInt64, {2, 1});
  for (std::int64_t v : {7, -9})
    i64.add_int64_data(v);
  auto i32 = tensor_proto("i32", kOnnxInt32, {2});
  for (std::int32_t v : {3, -4})
    i32.add_int32_data(v);
  auto f64 = tensor_proto("f64", kOnnxDouble, {});
  f64.add_double_data(0.25);
  for (const auto& t : {f, i64, i32, f64}) {
    b.initializer(t);
    b.output(t.name(), t.data_type());
  }
  ir::Graph graph = import(b);
  EXPECT_EQ(values_of<float>(graph.find_value("f")), (std::vector<float>{0.5f, -1.0f, 2.0f}));
  EXPECT_EQ(values_of<std::int64_t>(graph.find_value("i64")), (std::vector<std::int64_t>{7, -9}));
  EXPECT_EQ(graph.find_value("i64")->shape, ir::Shape::of({2, 1}));
  EXPECT_EQ(values_of<std::int32_t>(graph.find_value("i32")), (std::vector<std::int32_t>{3, -4}));
  EXPECT_EQ(values_of<double>(graph.find_value("f64")), (std::vector<double>{0.25}));
  EXPECT_EQ(graph.find_value("f64")->shape.rank(), 0u);
}

TEST(Importer, ConstantNodeBecomesAConstantValue) {
  if (auto missing = missing_ops({"Constant"}); !missing.empty())
    GTEST_SKIP() << "ops not registered yet: " << missing;
  ModelBuilder b;
  b.output("y");
  auto value = tensor_proto("", kOnnxFloat, {3});
  for (float v : {-1.0f, 0.0f, 4.0f})
    value.add_float_data(v);
  testing::add_tensor_attribute(b.node("Constant", {}, {"c"}, "const"), "value", value);
  b.node("Relu", {"c"}, {"y"}, "relu");
  ir::Graph graph = import(b);
  const ir::Value* c = graph.find_value("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(values_of<float>(c), (std::vector<float>{-1.0f, 0.0f, 4.0f}));
  EXPECT_EQ(c->producer, nullptr);
  ASSERT_EQ(graph.nodes().size(), 1u) << "the folded Constant node should be gone";
  EXPECT_EQ(graph.nodes()[0]->op_type, "Relu");
}

// Old exporters (IR < 4) list initializers among the graph inputs too; they
// stay constants and are not inputs the caller must feed.
TEST(Importer, InitializerListedAsGraphInputIsNotARuntimeInput) {
  ModelBuilder b = relu_model();
  b.input("w", {std::int64_t{2}});
  b.raw_f32("w", {2}, {1, 2});
  b.output("w");
  ir::Graph graph = import(b);
  ASSERT_EQ(graph.inputs.size(), 1u);
  EXPECT_EQ(graph.inputs[0]->name, "x");
  EXPECT_TRUE(graph.find_value("w")->is_constant());
}

TEST(Importer, SymbolicDimStaysSymbolic) {
  ir::Graph graph = import(relu_model());
  ASSERT_EQ(graph.inputs.size(), 1u);
  EXPECT_EQ(graph.inputs[0]->shape.rank(), 2u);
  EXPECT_EQ(graph.inputs[0]->shape[0].symbol, "N");
  EXPECT_FALSE(graph.inputs[0]->shape[0].is_known());
  EXPECT_EQ(graph.inputs[0]->shape[1], ir::Dim::known(3));
  ASSERT_EQ(graph.outputs.size(), 1u);
  EXPECT_EQ(graph.outputs[0]->dtype, DType::kFloat32);
  EXPECT_EQ(graph.outputs[0]->shape, graph.inputs[0]->shape);
}

TEST(Importer, UnnamedDimIsUnknown) {
  ModelBuilder b = relu_model();
  b.graph()
      .mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(0)
      ->Clear();
  ir::Graph graph = import(b);
  EXPECT_EQ(graph.inputs[0]->shape[0], ir::Dim::unknown());
}

TEST(Importer, NodesListedOutOfOrderAreSorted) {
  ModelBuilder b;
  b.input("x", {std::int64_t{4}}).output("y");
  b.node("Relu", {"h2"}, {"y"}, "third");
  b.node("Relu", {"h1"}, {"h2"}, "second");
  b.node("Relu", {"x"}, {"h1"}, "first");
  ir::Graph graph = import(b);
  ASSERT_EQ(graph.nodes().size(), 3u);
  EXPECT_EQ(graph.nodes()[0]->name, "first");
  EXPECT_EQ(graph.nodes()[1]->name, "second");
  EXPECT_EQ(graph.nodes()[2]->name, "third");
  EXPECT_EQ(graph.outputs[0]->producer, graph.nodes()[2].get());
}

TEST(Importer, UnnamedNodesGetGeneratedNames) {
  ModelBuilder b;
  b.input("x", {std::int64_t{4}}).output("y");
  b.node("Relu", {"x"}, {"h"});
  b.node("Relu", {"h"}, {"y"});
  ir::Graph graph = import(b);
  ASSERT_EQ(graph.nodes().size(), 2u);
  EXPECT_EQ(graph.nodes()[0]->name, "Relu_0");
  EXPECT_EQ(graph.nodes()[1]->name, "Relu_1");
}

TEST(Importer, OpsetBoundsAreAccepted) {
  for (int opset : {onnx::kMinOpset, onnx::kMaxOpset}) {
    ir::Graph graph = import(relu_model(opset));
    EXPECT_EQ(graph.opset, opset);
    EXPECT_EQ(graph.nodes()[0]->opset, opset);
  }
}

TEST(Importer, AiOnnxDomainIsTheDefaultDomain) {
  ModelBuilder b = relu_model();
  b.model().mutable_opset_import(0)->set_domain("ai.onnx");
  b.graph().mutable_node(0)->set_domain("ai.onnx");
  ir::Graph graph = import(b);
  EXPECT_EQ(graph.opset, 17);
  EXPECT_EQ(graph.nodes()[0]->domain, "");
}

TEST(Importer, ImportsFromAFile) {
  testing::ScratchDir dir("anvil_Importer_ImportsFromAFile");
  ir::Graph graph = onnx::import_model(dir.write("relu.onnx", relu_model().bytes()));
  ASSERT_EQ(graph.nodes().size(), 1u);
  EXPECT_EQ(graph.nodes()[0]->describe(), "Relu 'relu'");
}

// PyTorch's flatten for a dynamic batch becomes a plain Reshape(x, {0,-1}).
TEST(Importer, ShapeSubgraphFoldsToConstantReshapeTarget) {
  if (auto missing = missing_ops({"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"});
      !missing.empty())
    GTEST_SKIP() << "ops not registered yet: " << missing;
  ir::Graph graph = import(flatten_model(
      {InputDim{std::string("N")}, InputDim{std::string("C")}, InputDim{1}, InputDim{1}}));
  ASSERT_EQ(graph.nodes().size(), 1u);
  const ir::Node& reshape = *graph.nodes()[0];
  EXPECT_EQ(reshape.op_type, "Reshape");
  ASSERT_NE(reshape.input(1), nullptr);
  EXPECT_EQ(values_of<std::int64_t>(reshape.input(1)), (std::vector<std::int64_t>{0, -1}));
  for (const char* gone : {"shape", "gather", "unsqueeze", "concat"})
    for (const auto& node : graph.nodes())
      EXPECT_NE(node->name, gone);
  EXPECT_EQ(graph.outputs[0]->shape.rank(), 2u);
  EXPECT_EQ(graph.outputs[0]->shape[0].symbol, "N");
}

// With a static input the whole shape subgraph is plain constant arithmetic.
TEST(Importer, StaticShapeSubgraphFoldsAway) {
  if (auto missing = missing_ops({"Shape", "Gather", "Unsqueeze", "Concat", "Reshape"});
      !missing.empty())
    GTEST_SKIP() << "ops not registered yet: " << missing;
  ir::Graph graph = import(flatten_model({InputDim{2}, InputDim{8}, InputDim{1}, InputDim{1}}));
  ASSERT_EQ(graph.nodes().size(), 1u) << "only the Reshape should remain";
  EXPECT_EQ(graph.nodes()[0]->op_type, "Reshape");
  EXPECT_TRUE(graph.nodes()[0]->input(1)->is_constant());
  EXPECT_EQ(graph.outputs[0]->shape, ir::Shape::of({2, 8}));
}

}  // namespace
}  // namespace anvil
