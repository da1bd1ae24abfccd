#include "ops/broadcast.h"

#include <gtest/gtest.h>

#include "ops/op.h"

namespace anvil {
namespace {

using ir::Dim;
using ir::Shape;

Shape shape(std::initializer_list<Dim> dims) {
  return Shape(std::vector<Dim>(dims));
}
Dim n(std::int64_t size) {
  return Dim::known(size);
}
Dim sym(const std::string& name) {
  return Dim::named(name);
}

TEST(Broadcast, KnownShapesAlignOnTheRight) {
  EXPECT_EQ(ops::broadcast_shapes(shape({n(2), n(1), n(4)}), shape({n(3), n(1)})),
            shape({n(2), n(3), n(4)}));
  EXPECT_EQ(ops::broadcast_shapes(shape({}), shape({n(5)})), shape({n(5)}));
  EXPECT_EQ(ops::broadcast_shapes(shape({n(0), n(1)}), shape({n(3)})), shape({n(0), n(3)}));
}

TEST(Broadcast, IncompatibleKnownDimsFail) {
  EXPECT_FALSE(ops::broadcast_shapes(shape({n(2), n(3)}), shape({n(4)})).has_value());
  EXPECT_FALSE(ops::broadcast_dim(n(2), n(3)).has_value());
}

TEST(Broadcast, SymbolicDims) {
  EXPECT_EQ(ops::broadcast_dim(sym("N"), n(1)), sym("N"));
  EXPECT_EQ(ops::broadcast_dim(n(1), sym("N")), sym("N"));
  EXPECT_EQ(ops::broadcast_dim(sym("N"), sym("N")), sym("N"));
  // N can only be 1 or 8 at run time; either way the result is 8.
  EXPECT_EQ(ops::broadcast_dim(sym("N"), n(8)), n(8));
  EXPECT_EQ(ops::broadcast_dim(n(8), sym("N")), n(8));
  // N vs M could give N or M: not knowable at import.
  EXPECT_EQ(ops::broadcast_dim(sym("N"), sym("M")), Dim::unknown());
  EXPECT_EQ(ops::broadcast_dim(sym("N"), Dim::unknown()), Dim::unknown());
  EXPECT_EQ(ops::broadcast_dim(Dim::unknown(), n(1)), Dim::unknown());
  EXPECT_EQ(ops::broadcast_shapes(shape({sym("N"), n(3), n(1), n(1)}), shape({n(3), n(7), n(7)})),
            shape({sym("N"), n(3), n(7), n(7)}));
}

TEST(Broadcast, Unidirectional) {
  EXPECT_TRUE(ops::broadcasts_to(shape({n(3), n(1), n(1)}), shape({sym("N"), n(3), n(5), n(5)})));
  EXPECT_TRUE(ops::broadcasts_to(shape({}), shape({n(2)})));
  EXPECT_TRUE(ops::broadcasts_to(shape({sym("C")}), shape({n(4)})));
  EXPECT_FALSE(ops::broadcasts_to(shape({n(4)}), shape({n(3)})));
  EXPECT_FALSE(ops::broadcasts_to(shape({n(1), n(3)}), shape({n(3)})));  // higher rank
  // Unidirectional: the target never stretches.
  EXPECT_FALSE(ops::broadcasts_to(shape({n(3)}), shape({n(1)})));
}

TEST(Broadcast, StridesAreZeroOnStretchedDims) {
  EXPECT_EQ(ops::broadcast_strides({3, 1}, {2, 3, 4}), (std::vector<std::int64_t>{0, 1, 0}));
  EXPECT_EQ(ops::broadcast_strides({2, 3, 4}, {2, 3, 4}), (std::vector<std::int64_t>{12, 4, 1}));
  EXPECT_EQ(ops::broadcast_strides({}, {2, 2}), (std::vector<std::int64_t>{0, 0}));
}

TEST(Broadcast, ForEachVisitsMatchingIndices) {
  // out[i][j] = a[i][0] and b[j]: a is [2,1], b is [3].
  std::vector<std::int64_t> a_index, b_index;
  ops::for_each_broadcast({2, 3}, {2, 1}, {3}, [&](std::int64_t o, std::int64_t i, std::int64_t j) {
    EXPECT_EQ(o, static_cast<std::int64_t>(a_index.size()));
    a_index.push_back(i);
    b_index.push_back(j);
  });
  EXPECT_EQ(a_index, (std::vector<std::int64_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(b_index, (std::vector<std::int64_t>{0, 1, 2, 0, 1, 2}));
}

TEST(Broadcast, ForEachHandlesScalarsAndEmpty) {
  int calls = 0;
  ops::for_each_broadcast({}, {}, {1}, [&](std::int64_t, std::int64_t, std::int64_t) { ++calls; });
  EXPECT_EQ(calls, 1);
  ops::for_each_broadcast({0, 3}, {0, 1}, {3},
                          [&](std::int64_t, std::int64_t, std::int64_t) { ++calls; });
  EXPECT_EQ(calls, 1);
}

// Infers Add's output for two float32 inputs of the given shapes.
ops::TensorInfo infer_add(const Shape& a, const Shape& b) {
  ir::Node node;
  node.op_type = "Add";
  node.name = "add";
  node.opset = 14;
  ir::Value va, vb, out;
  va.name = "a";
  vb.name = "b";
  node.inputs = {&va, &vb};
  node.outputs = {&out};
  return ops::infer_node(node, {{DType::kFloat32, a}, {DType::kFloat32, b}}, {nullptr, nullptr})[0];
}

TEST(Broadcast, AddInfersSymbolicShapes) {
  ops::TensorInfo info =
      infer_add(shape({sym("N"), n(64), n(1), n(1)}), shape({sym("N"), n(64), n(28), n(28)}));
  EXPECT_EQ(info.dtype, DType::kFloat32);
  EXPECT_EQ(info.shape, shape({sym("N"), n(64), n(28), n(28)}));
}

TEST(Broadcast, AddRejectsIncompatibleShapesNamingBoth) {
  try {
    infer_add(shape({n(2), n(3)}), shape({n(4)}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidModel);
    EXPECT_NE(std::string(e.what()).find("[2,3] and [4]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'add'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace anvil
