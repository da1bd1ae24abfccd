// Conv against a naive direct loop (groups, dilations, strides, pads, 1-D to
// 3-D), its shape inference and errors, and macs().
#include <gtest/gtest.h>

#include <cmath>

#include "op_test_util.h"
#include "ops/op.h"

namespace anvil {
namespace {

using testing::OpNode;
using Ints = std::vector<std::int64_t>;

// Deterministic values in [-1, 1).
Tensor random_tensor(Extents extents, std::uint32_t seed) {
  Tensor t(DType::kFloat32, std::move(extents));
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.element_count(); ++i) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = static_cast<float>(seed >> 8) / static_cast<float>(1 << 23) - 1.0f;
  }
  return t;
}

struct Params {
  Ints strides{1, 1, 1}, dilations{1, 1, 1}, pads_begin{0, 0, 0};
  std::int64_t group = 1;
};

// The definition, one output element at a time, for 3 spatial axes:
// y[n, m, o] = b[m] + sum over c in m's group and k of x[n, c, o * s - p + k * d] * w[m, c, k].
Tensor naive_conv3d(const Tensor& x, const Tensor& w, const Tensor* b, const Params& p,
                    const Extents& out_spatial) {
  const Extents& xe = x.extents();
  const Extents& we = w.extents();
  const std::int64_t cg = we[1], mg = we[0] / p.group;
  Extents ye{xe[0], we[0], out_spatial[0], out_spatial[1], out_spatial[2]};
  Tensor y(DType::kFloat32, ye);
  auto at = [](const Extents& e, std::int64_t a, std::int64_t b_, std::int64_t c, std::int64_t d,
               std::int64_t f) { return (((a * e[1] + b_) * e[2] + c) * e[3] + d) * e[4] + f; };
  const float* xs = x.data<float>();
  const float* ws = w.data<float>();
  float* ys = y.data<float>();
  for (std::int64_t n = 0; n < ye[0]; ++n)
    for (std::int64_t m = 0; m < ye[1]; ++m)
      for (std::int64_t od = 0; od < ye[2]; ++od)
        for (std::int64_t oh = 0; oh < ye[3]; ++oh)
          for (std::int64_t ow = 0; ow < ye[4]; ++ow) {
            double sum = b ? b->data<float>()[m] : 0.0;
            for (std::int64_t c = 0; c < cg; ++c)
              for (std::int64_t kd = 0; kd < we[2]; ++kd)
                for (std::int64_t kh = 0; kh < we[3]; ++kh)
                  for (std::int64_t kw = 0; kw < we[4]; ++kw) {
                    const std::int64_t id =
                        od * p.strides[0] - p.pads_begin[0] + kd * p.dilations[0];
                    const std::int64_t ih =
                        oh * p.strides[1] - p.pads_begin[1] + kh * p.dilations[1];
                    const std::int64_t iw =
                        ow * p.strides[2] - p.pads_begin[2] + kw * p.dilations[2];
                    if (id < 0 || id >= xe[2] || ih < 0 || ih >= xe[3] || iw < 0 || iw >= xe[4])
                      continue;
                    const std::int64_t ci = (m / mg) * cg + c;
                    sum += double{xs[at(xe, n, ci, id, ih, iw)]} * ws[at(we, m, c, kd, kh, kw)];
                  }
            ys[at(ye, n, m, od, oh, ow)] = static_cast<float>(sum);
          }
  return y;
}

// Extents with 1s inserted after N and C up to 3 spatial axes.
Extents as_3d(const Extents& e) {
  Extents out(e.begin(), e.begin() + 2);
  out.insert(out.end(), 5 - e.size(), 1);
  out.insert(out.end(), e.begin() + 2, e.end());
  return out;
}

void expect_near_all(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.element_count(), want.element_count());
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  for (std::int64_t i = 0; i < got.element_count(); ++i)
    ASSERT_NEAR(g[i], w[i], 1e-4 + 1e-4 * std::fabs(w[i])) << "element " << i;
}

TEST(Conv, GroupsDilationsStridesAndAsymmetricPadsMatchTheDefinition) {
  const Tensor x = random_tensor({2, 6, 11, 13}, 1);
  const Tensor w = random_tensor({9, 2, 3, 2}, 2);
  const Tensor b = random_tensor({9}, 3);
  OpNode conv("Conv", 17, 3);
  conv.attr("group", std::int64_t{3})
      .attr("dilations", Ints{2, 3})
      .attr("strides", Ints{2, 1})
      .attr("pads", Ints{2, 1, 0, 3});
  const Tensor y = conv.run_one({&x, &w, &b});
  // H: (11 + 2 + 0 - 5) / 2 + 1 = 5; W: (13 + 1 + 3 - 4) / 1 + 1 = 14.
  ASSERT_EQ(y.extents(), (Extents{2, 9, 5, 14}));
  const Params p{.strides = {1, 2, 1}, .dilations = {1, 2, 3}, .pads_begin = {0, 2, 1}, .group = 3};
  const Tensor want = naive_conv3d(x.reshaped(as_3d(x.extents())), w.reshaped(as_3d(w.extents())),
                                   &b, p, {1, 5, 14});
  expect_near_all(y, want);
}

TEST(Conv, DepthwiseMatchesTheDefinition) {
  const Tensor x = random_tensor({1, 8, 10, 9}, 4);
  const Tensor w = random_tensor({8, 1, 3, 3}, 5);
  OpNode conv("Conv", 17, 2);
  conv.attr("group", std::int64_t{8}).attr("pads", Ints{1, 1, 1, 1}).attr("strides", Ints{2, 2});
  const Tensor y = conv.run_one({&x, &w});
  ASSERT_EQ(y.extents(), (Extents{1, 8, 5, 5}));
  const Params p{.strides = {1, 2, 2}, .pads_begin = {0, 1, 1}, .group = 8};
  expect_near_all(y, naive_conv3d(x.reshaped(as_3d(x.extents())), w.reshaped(as_3d(w.extents())),
                                  nullptr, p, {1, 5, 5}));
}

TEST(Conv, OneAndThreeSpatialAxes) {
  const Tensor x1 = random_tensor({2, 4, 20}, 6);
  const Tensor w1 = random_tensor({6, 2, 3}, 7);
  OpNode conv1("Conv", 17, 2);
  conv1.attr("group", std::int64_t{2}).attr("dilations", Ints{3}).attr("pads", Ints{1, 2});
  const Tensor y1 = conv1.run_one({&x1, &w1});
  ASSERT_EQ(y1.extents(), (Extents{2, 6, 17}));
  expect_near_all(
      y1, naive_conv3d(x1.reshaped(as_3d(x1.extents())), w1.reshaped(as_3d(w1.extents())), nullptr,
                       {.dilations = {1, 1, 3}, .pads_begin = {0, 0, 1}, .group = 2}, {1, 1, 17}));

  const Tensor x3 = random_tensor({1, 2, 5, 6, 7}, 8);
  const Tensor w3 = random_tensor({3, 2, 3, 2, 3}, 9);
  const Tensor b3 = random_tensor({3}, 10);
  OpNode conv3("Conv", 17, 3);
  conv3.attr("strides", Ints{1, 2, 2}).attr("pads", Ints{1, 0, 1, 1, 1, 0});
  const Tensor y3 = conv3.run_one({&x3, &w3, &b3});
  ASSERT_EQ(y3.extents(), (Extents{1, 3, 5, 3, 3}));
  expect_near_all(
      y3, naive_conv3d(x3, w3, &b3, {.strides = {1, 2, 2}, .pads_begin = {1, 0, 1}}, {5, 3, 3}));
}

TEST(Conv, SameLowerPutsTheOddPadFirst) {
  const Tensor x = random_tensor({1, 2, 6, 7}, 11);
  const Tensor w = random_tensor({3, 2, 2, 2}, 12);
  OpNode same("Conv", 17, 2), explicit_pads("Conv", 17, 2);
  same.attr("auto_pad", std::string("SAME_LOWER"));
  // Output 6 x 7 needs one pad per axis; SAME_LOWER puts it at the beginning.
  explicit_pads.attr("pads", Ints{1, 1, 0, 0});
  const Tensor y = same.run_one({&x, &w});
  ASSERT_EQ(y.extents(), (Extents{1, 3, 6, 7}));
  expect_near_all(y, explicit_pads.run_one({&x, &w}));
}

TEST(Conv, PointwiseConvIsAMatrixProduct) {
  const Tensor x = Tensor::from<float>({1, 2, 1, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor w = Tensor::from<float>({2, 2, 1, 1}, {1, 0, 1, -1});
  const Tensor b = Tensor::from<float>({2}, {0.5f, 0});
  const Tensor y = OpNode("Conv", 17, 3).run_one({&x, &w, &b});
  const auto v = y.values<float>();
  EXPECT_EQ(std::vector<float>(v.begin(), v.end()),
            (std::vector<float>{1.5f, 2.5f, 3.5f, -3, -3, -3}));
}

TEST(Conv, InfersSymbolicShapes) {
  OpNode conv("Conv", 17, 3);
  conv.attr("pads", Ints{1, 1, 1, 1});
  const ir::Shape x(
      {ir::Dim::named("N"), ir::Dim::known(3), ir::Dim::named("H"), ir::Dim::known(32)});
  const auto out = ops::infer_node(conv.node(),
                                   {{DType::kFloat32, x},
                                    {DType::kFloat32, ir::Shape::of({16, 3, 3, 3})},
                                    {DType::kFloat32, ir::Shape::of({16})}},
                                   {nullptr, nullptr, nullptr});
  // A 3x3 window with pad 1 and stride 1 keeps H symbolic.
  EXPECT_EQ(out[0].shape, ir::Shape({ir::Dim::named("N"), ir::Dim::known(16), ir::Dim::named("H"),
                                     ir::Dim::known(32)}));
}

TEST(Conv, RejectsInconsistentModels) {
  const Tensor x = random_tensor({1, 4, 5, 5}, 13);
  const Tensor w = random_tensor({2, 3, 3, 3}, 14);  // 3 input channels, X has 4
  EXPECT_EQ(OpNode("Conv", 17, 2).run_error({&x, &w}), ErrorKind::kInvalidModel);

  const Tensor w_ok = random_tensor({2, 4, 3, 3}, 15);
  OpNode wrong_kernel("Conv", 17, 2);
  wrong_kernel.attr("kernel_shape", Ints{2, 2});
  EXPECT_EQ(wrong_kernel.run_error({&x, &w_ok}), ErrorKind::kInvalidModel);

  OpNode wrong_pads("Conv", 17, 2);
  wrong_pads.attr("pads", Ints{1, 1});
  EXPECT_EQ(wrong_pads.run_error({&x, &w_ok}), ErrorKind::kInvalidModel);

  const Tensor big_w = random_tensor({2, 4, 7, 7}, 16);  // larger than the input
  EXPECT_EQ(OpNode("Conv", 17, 2).run_error({&x, &big_w}), ErrorKind::kInvalidModel);

  const Tensor x4 = random_tensor({1, 1, 2, 2, 2, 2}, 17);
  const Tensor w4 = random_tensor({1, 1, 1, 1, 1, 1}, 18);
  EXPECT_EQ(OpNode("Conv", 17, 2).run_error({&x4, &w4}), ErrorKind::kUnsupported);
}

TEST(Conv, MacsCountMultiplyAccumulates) {
  OpNode conv("Conv", 17, 3);
  conv.attr("pads", Ints{1, 1, 1, 1});
  std::vector<ops::TensorInfo> inputs{{DType::kFloat32, ir::Shape::of({3, 64, 56, 56})},
                                      {DType::kFloat32, ir::Shape::of({64, 64, 3, 3})},
                                      {DType::kFloat32, ir::Shape::of({64})}};
  const ops::InferContext ctx(conv.node(), inputs, {nullptr, nullptr, nullptr});
  const ops::Op& op = *ops::find_op("Conv")->op;
  EXPECT_EQ(op.macs(ctx), std::int64_t{3} * 64 * 56 * 56 * 64 * 9);

  OpNode depthwise("Conv", 17, 2);
  depthwise.attr("group", std::int64_t{32}).attr("strides", Ints{2, 2});
  std::vector<ops::TensorInfo> dw_inputs{{DType::kFloat32, ir::Shape::of({1, 32, 16, 16})},
                                         {DType::kFloat32, ir::Shape::of({32, 1, 3, 3})}};
  const ops::InferContext dw_ctx(depthwise.node(), dw_inputs, {nullptr, nullptr});
  // Output 7 x 7; each output element reads 1 channel x 9 taps.
  EXPECT_EQ(op.macs(dw_ctx), std::int64_t{32} * 7 * 7 * 9);
}

}  // namespace
}  // namespace anvil
