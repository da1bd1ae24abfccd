// MaxPool, AveragePool and the global pools on small hand-checked inputs:
// the ceil_mode rule, count_include_pad, dilations, and the errors.
#include <gtest/gtest.h>

#include <deque>
#include <optional>

#include "ops/op.h"

namespace anvil {
namespace {

using Ints = std::vector<std::int64_t>;
using Floats = std::vector<float>;

struct PoolNode {
  ir::Node node;
  std::deque<ir::Value> values;

  PoolNode(std::string op_type, int opset = 17, std::size_t outputs = 1) {
    node.op_type = std::move(op_type);
    node.name = "pool";
    node.opset = opset;
    node.inputs.push_back(&values.emplace_back());
    node.inputs.back()->name = "x";
    for (std::size_t i = 0; i < outputs; ++i)
      node.outputs.push_back(&values.emplace_back());
  }
  PoolNode& attr(const std::string& name, ir::AttributeValue value) {
    node.attributes.set(name, std::move(value));
    return *this;
  }
  Tensor run(const Tensor& x) const { return ops::run_node(node, {&x}).at(0); }
  std::optional<ErrorKind> run_error(const Tensor& x) const {
    try {
      run(x);
    } catch (const Error& e) {
      return e.kind();
    }
    return std::nullopt;
  }
};

template <typename T = float>
std::vector<T> values_of(const Tensor& t) {
  const auto v = t.values<T>();
  return {v.begin(), v.end()};
}

TEST(MaxPool, CeilModeDropsAWindowStartingInTheRightPadding) {
  // Length 3, kernel 1, stride 2, right pad 1: ceil gives 3 windows, but the
  // third would start at index 4, inside the right padding.
  PoolNode pool("MaxPool");
  pool.attr("kernel_shape", Ints{1}).attr("strides", Ints{2}).attr("pads", Ints{0, 1});
  pool.attr("ceil_mode", std::int64_t{1});
  const Tensor y = pool.run(Tensor::from<float>({1, 1, 3}, {5, 6, 7}));
  EXPECT_EQ(y.extents(), (Extents{1, 1, 2}));
  EXPECT_EQ(values_of(y), (Floats{5, 7}));
}

TEST(MaxPool, CeilModeKeepsAPartialWindowInsideTheInput) {
  PoolNode pool("MaxPool");
  pool.attr("kernel_shape", Ints{2, 2}).attr("strides", Ints{2, 2});
  pool.attr("ceil_mode", std::int64_t{1});
  const Tensor x = Tensor::from<float>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Tensor y = pool.run(x);
  EXPECT_EQ(y.extents(), (Extents{1, 1, 2, 2}));
  EXPECT_EQ(values_of(y), (Floats{5, 6, 8, 9}));
}

TEST(MaxPool, DilationsAndPaddingNeverWin) {
  PoolNode pool("MaxPool");
  pool.attr("kernel_shape", Ints{2}).attr("dilations", Ints{2}).attr("pads", Ints{1, 1});
  // Windows read indices {-1, 1}, {0, 2}, {1, 3}, {2, 4}: padding is skipped.
  const Tensor y = pool.run(Tensor::from<float>({1, 1, 4}, {-4, -3, -2, -1}));
  EXPECT_EQ(values_of(y), (Floats{-3, -2, -1, -2}));
}

TEST(MaxPool, Uint8) {
  PoolNode pool("MaxPool", 12);
  pool.attr("kernel_shape", Ints{2}).attr("strides", Ints{2});
  const Tensor x = Tensor::from<std::uint8_t>({1, 1, 4}, {3, 250, 7, 1});
  EXPECT_EQ(values_of<std::uint8_t>(pool.run(x)), (std::vector<std::uint8_t>{250, 7}));
}

TEST(MaxPool, Errors) {
  const Tensor x = Tensor::from<float>({1, 1, 4}, {1, 2, 3, 4});
  PoolNode with_indices("MaxPool", 17, 2);
  with_indices.attr("kernel_shape", Ints{2});
  EXPECT_EQ(with_indices.run_error(x), ErrorKind::kUnsupported);
  PoolNode column_major("MaxPool");
  column_major.attr("kernel_shape", Ints{2}).attr("storage_order", std::int64_t{1});
  EXPECT_EQ(column_major.run_error(x), ErrorKind::kUnsupported);
  EXPECT_EQ(PoolNode("MaxPool").run_error(x), ErrorKind::kInvalidModel);  // no kernel_shape
  PoolNode bad_auto_pad("MaxPool");
  bad_auto_pad.attr("kernel_shape", Ints{2}).attr("auto_pad", std::string("SAME"));
  EXPECT_EQ(bad_auto_pad.run_error(x), ErrorKind::kInvalidModel);
  PoolNode zero_stride("MaxPool");
  zero_stride.attr("kernel_shape", Ints{2}).attr("strides", Ints{0});
  EXPECT_EQ(zero_stride.run_error(x), ErrorKind::kInvalidModel);
}

TEST(AveragePool, CountIncludePadChoosesTheDivisor) {
  const Tensor x = Tensor::from<float>({1, 1, 4}, {1, 2, 3, 4});
  PoolNode exclude("AveragePool"), include("AveragePool");
  for (PoolNode* p : {&exclude, &include})
    p->attr("kernel_shape", Ints{3}).attr("pads", Ints{1, 1});
  include.attr("count_include_pad", std::int64_t{1});
  EXPECT_EQ(values_of(exclude.run(x)), (Floats{1.5f, 2, 3, 3.5f}));
  const Floats got = values_of(include.run(x));
  const Floats want{1, 2, 3, 7.0f / 3.0f};
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_FLOAT_EQ(got[i], want[i]);
}

TEST(AveragePool, CeilModeRoomIsNotCountedAsPadding) {
  // The third window covers index 4 and one position past the input that
  // only ceil_mode added: it averages one element even with count_include_pad.
  PoolNode pool("AveragePool");
  pool.attr("kernel_shape", Ints{2}).attr("strides", Ints{2});
  pool.attr("ceil_mode", std::int64_t{1}).attr("count_include_pad", std::int64_t{1});
  EXPECT_EQ(values_of(pool.run(Tensor::from<float>({1, 1, 5}, {1, 2, 3, 4, 5}))),
            (Floats{1.5f, 3.5f, 5}));
}

TEST(AveragePool, DilationsOnlyFromOpset19) {
  const Tensor x = Tensor::from<float>({1, 1, 5}, {1, 2, 3, 4, 5});
  PoolNode old_pool("AveragePool", 18), new_pool("AveragePool", 19);
  for (PoolNode* p : {&old_pool, &new_pool})
    p->attr("kernel_shape", Ints{2}).attr("dilations", Ints{2});
  EXPECT_EQ(old_pool.run_error(x), ErrorKind::kInvalidModel);
  EXPECT_EQ(values_of(new_pool.run(x)), (Floats{2, 3, 4}));
}

TEST(AveragePool, ThreeSpatialAxes) {
  PoolNode pool("AveragePool");
  pool.attr("kernel_shape", Ints{2, 2, 2});
  Tensor x(DType::kFloat32, {1, 1, 2, 2, 2});
  for (int i = 0; i < 8; ++i)
    x.data<float>()[i] = static_cast<float>(i);
  const Tensor y = pool.run(x);
  EXPECT_EQ(y.extents(), (Extents{1, 1, 1, 1, 1}));
  EXPECT_EQ(values_of(y), (Floats{3.5f}));
}

TEST(GlobalPools, ReduceEverySpatialPosition) {
  const Tensor x = Tensor::from<float>({1, 2, 2, 2}, {1, 2, 3, 6, -1, -2, -3, -4});
  const Tensor avg = PoolNode("GlobalAveragePool").run(x);
  EXPECT_EQ(avg.extents(), (Extents{1, 2, 1, 1}));
  EXPECT_EQ(values_of(avg), (Floats{3, -2.5f}));
  const Tensor max = PoolNode("GlobalMaxPool").run(x);
  EXPECT_EQ(max.extents(), (Extents{1, 2, 1, 1}));
  EXPECT_EQ(values_of(max), (Floats{6, -1}));
}

TEST(GlobalPools, KeepSymbolicBatch) {
  PoolNode pool("GlobalAveragePool");
  const ir::Shape x(
      {ir::Dim::named("N"), ir::Dim::known(8), ir::Dim::named("H"), ir::Dim::named("W")});
  const auto out = ops::infer_node(pool.node, {{DType::kFloat32, x}}, {nullptr});
  EXPECT_EQ(out[0].shape, ir::Shape({ir::Dim::named("N"), ir::Dim::known(8), ir::Dim::known(1),
                                     ir::Dim::known(1)}));
}

}  // namespace
}  // namespace anvil
