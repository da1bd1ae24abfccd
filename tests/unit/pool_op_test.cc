// MaxPool, AveragePool and the global pools on small hand-checked inputs:
// the ceil_mode rule, count_include_pad, dilations, and the errors.
#include <gtest/gtest.h>

#include "op_test_util.h"
#include "ops/op.h"

namespace anvil {
namespace {

using testing::OpNode;
using testing::values_of;
using Ints = std::vector<std::int64_t>;
using Floats = std::vector<float>;

TEST(MaxPool, CeilModeDropsAWindowStartingInTheRightPadding) {
  // Length 3, kernel 1, stride 2, right pad 1: ceil gives 3 windows, but the
  // third would start at index 4, inside the right padding.
  OpNode pool("MaxPool", 17, 1);
  pool.attr("kernel_shape", Ints{1}).attr("strides", Ints{2}).attr("pads", Ints{0, 1});
  pool.attr("ceil_mode", std::int64_t{1});
  const Tensor y = pool.run_one(Tensor::from<float>({1, 1, 3}, {5, 6, 7}));
  EXPECT_EQ(y.extents(), (Extents{1, 1, 2}));
  EXPECT_EQ(values_of(y), (Floats{5, 7}));
}

TEST(MaxPool, CeilModeKeepsAPartialWindowInsideTheInput) {
  OpNode pool("MaxPool", 17, 1);
  pool.attr("kernel_shape", Ints{2, 2}).attr("strides", Ints{2, 2});
  pool.attr("ceil_mode", std::int64_t{1});
  const Tensor x = Tensor::from<float>({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Tensor y = pool.run_one(x);
  EXPECT_EQ(y.extents(), (Extents{1, 1, 2, 2}));
  EXPECT_EQ(values_of(y), (Floats{5, 6, 8, 9}));
}

TEST(MaxPool, DilationsAndPaddingNeverWin) {
  OpNode pool("MaxPool", 17, 1);
  pool.attr("kernel_shape", Ints{2}).attr("dilations", Ints{2}).attr("pads", Ints{1, 1});
  // Windows read indices {-1, 1}, {0, 2}, {1, 3}, {2, 4}: padding is skipped.
  const Tensor y = pool.run_one(Tensor::from<float>({1, 1, 4}, {-4, -3, -2, -1}));
  EXPECT_EQ(values_of(y), (Floats{-3, -2, -1, -2}));
}

TEST(MaxPool, Uint8) {
  OpNode pool("MaxPool", 12, 1);
  pool.attr("kernel_shape", Ints{2}).attr("strides", Ints{2});
  const Tensor x = Tensor::from<std::uint8_t>({1, 1, 4}, {3, 250, 7, 1});
  EXPECT_EQ(values_of<std::uint8_t>(pool.run_one(x)), (std::vector<std::uint8_t>{250, 7}));
}

TEST(MaxPool, Errors) {
  const Tensor x = Tensor::from<float>({1, 1, 4}, {1, 2, 3, 4});
  OpNode with_indices("MaxPool", 17, 1, 2);
  with_indices.attr("kernel_shape", Ints{2});
  EXPECT_EQ(with_indices.run_error({&x}), ErrorKind::kUnsupported);
  OpNode column_major("MaxPool", 17, 1);
  column_major.attr("kernel_shape", Ints{2}).attr("storage_order", std::int64_t{1});
  EXPECT_EQ(column_major.run_error({&x}), ErrorKind::kUnsupported);
  EXPECT_EQ(OpNode("MaxPool", 17, 1).run_error({&x}), ErrorKind::kInvalidModel);  // no kernel_shape
  OpNode bad_auto_pad("MaxPool", 17, 1);
  bad_auto_pad.attr("kernel_shape", Ints{2}).attr("auto_pad", std::string("SAME"));
  EXPECT_EQ(bad_auto_pad.run_error({&x}), ErrorKind::kInvalidModel);
  OpNode zero_stride("MaxPool", 17, 1);
  zero_stride.attr("kernel_shape", Ints{2}).attr("strides", Ints{0});
  EXPECT_EQ(zero_stride.run_error({&x}), ErrorKind::kInvalidModel);
}

TEST(AveragePool, CountIncludePadChoosesTheDivisor) {
  const Tensor x = Tensor::from<float>({1, 1, 4}, {1, 2, 3, 4});
  OpNode exclude("AveragePool", 17, 1), include("AveragePool", 17, 1);
  for (OpNode* p : {&exclude, &include})
    p->attr("kernel_shape", Ints{3}).attr("pads", Ints{1, 1});
  include.attr("count_include_pad", std::int64_t{1});
  EXPECT_EQ(values_of(exclude.run_one(x)), (Floats{1.5f, 2, 3, 3.5f}));
  const Floats got = values_of(include.run_one(x));
  const Floats want{1, 2, 3, 7.0f / 3.0f};
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_FLOAT_EQ(got[i], want[i]);
}

TEST(AveragePool, CeilModeRoomIsNotCountedAsPadding) {
  // The third window covers index 4 and one position past the input that
  // only ceil_mode added: it averages one element even with count_include_pad.
  OpNode pool("AveragePool", 17, 1);
  pool.attr("kernel_shape", Ints{2}).attr("strides", Ints{2});
  pool.attr("ceil_mode", std::int64_t{1}).attr("count_include_pad", std::int64_t{1});
  EXPECT_EQ(values_of(pool.run_one(Tensor::from<float>({1, 1, 5}, {1, 2, 3, 4, 5}))),
            (Floats{1.5f, 3.5f, 5}));
}

TEST(AveragePool, DilationsOnlyFromOpset19) {
  const Tensor x = Tensor::from<float>({1, 1, 5}, {1, 2, 3, 4, 5});
  OpNode old_pool("AveragePool", 18, 1), new_pool("AveragePool", 19, 1);
  for (OpNode* p : {&old_pool, &new_pool})
    p->attr("kernel_shape", Ints{2}).attr("dilations", Ints{2});
  EXPECT_EQ(old_pool.run_error({&x}), ErrorKind::kInvalidModel);
  EXPECT_EQ(values_of(new_pool.run_one(x)), (Floats{2, 3, 4}));
}

TEST(AveragePool, ThreeSpatialAxes) {
  OpNode pool("AveragePool", 17, 1);
  pool.attr("kernel_shape", Ints{2, 2, 2});
  Tensor x(DType::kFloat32, {1, 1, 2, 2, 2});
  for (int i = 0; i < 8; ++i)
    x.data<float>()[i] = static_cast<float>(i);
  const Tensor y = pool.run_one(x);
  EXPECT_EQ(y.extents(), (Extents{1, 1, 1, 1, 1}));
  EXPECT_EQ(values_of(y), (Floats{3.5f}));
}

TEST(GlobalPools, ReduceEverySpatialPosition) {
  const Tensor x = Tensor::from<float>({1, 2, 2, 2}, {1, 2, 3, 6, -1, -2, -3, -4});
  const Tensor avg = OpNode("GlobalAveragePool", 17, 1).run_one(x);
  EXPECT_EQ(avg.extents(), (Extents{1, 2, 1, 1}));
  EXPECT_EQ(values_of(avg), (Floats{3, -2.5f}));
  const Tensor max = OpNode("GlobalMaxPool", 17, 1).run_one(x);
  EXPECT_EQ(max.extents(), (Extents{1, 2, 1, 1}));
  EXPECT_EQ(values_of(max), (Floats{6, -1}));
}

TEST(GlobalPools, KeepSymbolicBatch) {
  OpNode pool("GlobalAveragePool", 17, 1);
  const ir::Shape x(
      {ir::Dim::named("N"), ir::Dim::known(8), ir::Dim::named("H"), ir::Dim::named("W")});
  const auto out = ops::infer_node(pool.node(), {{DType::kFloat32, x}}, {nullptr});
  EXPECT_EQ(out[0].shape, ir::Shape({ir::Dim::named("N"), ir::Dim::known(8), ir::Dim::known(1),
                                     ir::Dim::known(1)}));
}

}  // namespace
}  // namespace anvil
