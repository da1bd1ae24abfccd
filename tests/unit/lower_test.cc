// Lowering an optimized graph to a plan: FP16 conversion, filter packing,
// layer params, tensors, weights and errors, on small graphs built here and
// on the generated ResNet-18 and MobileNetV2.
#include "builder/lower.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "builder/weights.h"
#include "generated_models.h"
#include "onnx/importer.h"
#include "pass_test_util.h"
#include "passes/pass_manager.h"
#include "plan/streams.h"

namespace anvil::builder {
namespace {

using json = nlohmann::json;
using passes::testing::GraphBuilder;

// ---- FP16 conversion ------------------------------------------------------------

float from_bits(std::uint32_t bits) {
  return std::bit_cast<float>(bits);
}

TEST(FloatToHalf, KnownValues) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);  // the largest half
  EXPECT_EQ(float_to_half(65519.99f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // the tie rounds to even: infinity
  EXPECT_EQ(float_to_half(1e30f), 0x7c00);
  EXPECT_EQ(float_to_half(-INFINITY), 0xfc00);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);  // the smallest normal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // the smallest subnormal
  EXPECT_EQ(float_to_half(1e-7f), 0x0002);                  // 1.68 units of 2^-24
  EXPECT_EQ(float_to_half(1e-8f), 0x0000);                  // 0.17 units: zero
  EXPECT_EQ(float_to_half(-1e-8f), 0x8000);
  EXPECT_EQ(float_to_half(6.0e-5f), 0x03ef);  // a subnormal: 1006.63 units
  const std::uint16_t nan = float_to_half(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
}

TEST(FloatToHalf, TiesRoundToEven) {
  const float ulp = std::ldexp(1.0f, -10);               // of a half in [1, 2)
  EXPECT_EQ(float_to_half(1.0f + ulp / 2), 0x3c00);      // tie, down to even
  EXPECT_EQ(float_to_half(1.0f + 3 * ulp / 2), 0x3c02);  // tie, up to even
  EXPECT_EQ(float_to_half(std::nextafter(1.0f + ulp / 2, 2.0f)), 0x3c01);
  EXPECT_EQ(float_to_half(std::nextafter(1.0f + 3 * ulp / 2, 0.0f)), 0x3c01);
  // Subnormal ties: 0.5 and 1.5 units of 2^-24.
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002);
  EXPECT_EQ(float_to_half(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  // The mantissa carry bumps the exponent: 2047.5 -> 2048.
  EXPECT_EQ(float_to_half(2047.5f), 0x6800);
}

TEST(FloatToHalf, EveryHalfRoundTrips) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float f = half_to_float(bits);
    if ((bits & 0x7c00) == 0x7c00 && (bits & 0x3ff) != 0) {
      EXPECT_TRUE(std::isnan(f)) << h;
      continue;
    }
    ASSERT_EQ(float_to_half(f), bits) << "half 0x" << std::hex << h;
  }
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(half_to_float(0x3555), from_bits(0x3eaaa000));  // 0.333251953125
}

// Halfway between two adjacent halves goes to the even one; anything off the
// midpoint goes to the nearer one: checked against the exact midpoints.
TEST(FloatToHalf, NearestOnEitherSideOfEveryMidpoint) {
  for (std::uint16_t h = 0; h < 0x7bff; ++h) {
    const float lo = half_to_float(h);
    const float hi = half_to_float(static_cast<std::uint16_t>(h + 1));
    const float mid = lo + (hi - lo) / 2;  // exact in float
    ASSERT_EQ(float_to_half(std::nextafter(mid, 0.0f)), h);
    ASSERT_EQ(float_to_half(std::nextafter(mid, INFINITY)), h + 1);
    ASSERT_EQ(float_to_half(mid), (h & 1) ? h + 1 : h);
  }
}

// ---- Weight packing -------------------------------------------------------------

// A tensor whose every element is its flat index.
Tensor iota_tensor(const Extents& extents) {
  Tensor t(DType::kFloat32, extents);
  for (std::int64_t i = 0; i < t.element_count(); ++i)
    t.data<float>()[i] = static_cast<float>(i + 1);  // + 1: zero means padding
  return t;
}

TEST(PackConvFilter, DenseIsKrscWithZeroPadding) {
  const Tensor w = iota_tensor({2, 3, 2, 2});  // K=2, C=3, R=S=2
  const PackedFilter f = pack_conv_filter(w, 1, 8, 8);
  EXPECT_EQ(f.k_pad, 8);
  EXPECT_EQ(f.c_filter, 8);
  EXPECT_EQ(f.groups, 1);
  ASSERT_EQ(f.values.size(), 8u * 2 * 2 * 8);
  for (int k = 0; k < 8; ++k)
    for (int r = 0; r < 2; ++r)
      for (int s = 0; s < 2; ++s)
        for (int c = 0; c < 8; ++c) {
          const float expected =
              k < 2 && c < 3 ? w.data<float>()[((k * 3 + c) * 2 + r) * 2 + s] : 0;
          ASSERT_EQ(f.values[static_cast<std::size_t>(((k * 2 + r) * 2 + s) * 8 + c)], expected)
              << k << " " << r << " " << s << " " << c;
        }
}

TEST(PackConvFilter, DepthwiseGetsOneGroupPerStoredChannel) {
  const Tensor w = iota_tensor({6, 1, 3, 3});  // C = groups = 3, multiplier 2
  const PackedFilter f = pack_conv_filter(w, 3, 8, 8);
  EXPECT_EQ(f.groups, 8);
  EXPECT_EQ(f.c_filter, 1);
  EXPECT_EQ(f.k_pad, 16);
  for (int k = 0; k < 16; ++k)
    for (int rs = 0; rs < 9; ++rs)
      ASSERT_EQ(f.values[static_cast<std::size_t>(k * 9 + rs)],
                k < 6 ? w.data<float>()[k * 9 + rs] : 0.0f);
}

TEST(PackConvFilter, GroupedConvs) {
  // Aligned channels: kept as ONNX groups them.
  const PackedFilter kept = pack_conv_filter(iota_tensor({16, 4, 1, 1}), 2, 8, 8);
  EXPECT_EQ(kept.groups, 2);
  EXPECT_EQ(kept.c_filter, 4);
  EXPECT_EQ(kept.k_pad, 16);
  EXPECT_EQ(kept.values[5 * 4 + 3], 5 * 4 + 3 + 1);
  // Unaligned (C=6, K=4, 2 groups): densified, block diagonal.
  const Tensor w = iota_tensor({4, 3, 1, 1});
  const PackedFilter dense = pack_conv_filter(w, 2, 8, 8);
  EXPECT_EQ(dense.groups, 1);
  EXPECT_EQ(dense.c_filter, 8);
  EXPECT_EQ(dense.k_pad, 8);
  for (int k = 0; k < 8; ++k)
    for (int c = 0; c < 8; ++c) {
      const bool inside = k < 4 && c < 6 && c / 3 == k / 2;
      ASSERT_EQ(dense.values[static_cast<std::size_t>(k * 8 + c)],
                inside ? w.data<float>()[k * 3 + c % 3] : 0.0f)
          << k << " " << c;
    }
}

TEST(PackGemmWeights, FoldsTransposeAndAlpha) {
  const Tensor b = iota_tensor({3, 2});  // [K=3, N=2], transB = 0
  const std::vector<float> w = pack_gemm_weights(b, false, 2.0f, 4, 4);
  ASSERT_EQ(w.size(), 16u);
  for (int n = 0; n < 4; ++n)
    for (int k = 0; k < 4; ++k)
      EXPECT_EQ(w[static_cast<std::size_t>(n * 4 + k)],
                n < 2 && k < 3 ? 2.0f * b.data<float>()[k * 2 + n] : 0.0f);
  const std::vector<float> t = pack_gemm_weights(b.reshaped({2, 3}), true, 1.0f, 4, 4);
  EXPECT_EQ(t[1 * 4 + 2], b.data<float>()[1 * 3 + 2]);
}

TEST(AppendWeights, AlignsAndConverts) {
  std::vector<std::byte> blob(3);
  const std::vector<float> values{1.0f, -2.0f, 65504.0f};
  const plan::WeightRef ref = append_weights(blob, values, DType::kFloat16, {3});
  EXPECT_EQ(ref.offset, 256);
  EXPECT_EQ(ref.bytes, 6);
  ASSERT_EQ(blob.size(), 262u);
  std::uint16_t h[3];
  std::memcpy(h, blob.data() + 256, 6);
  EXPECT_EQ(h[0], 0x3c00);
  EXPECT_EQ(h[1], 0xc000);
  EXPECT_EQ(h[2], 0x7bff);
}

// ---- Small graphs -----------------------------------------------------------------

const plan::LayerDesc* layer_named(const plan::Plan& p, const std::string& name) {
  for (const auto& l : p.layers)
    if (l.name == name) return &l;
  return nullptr;
}

std::map<std::string, int> kind_counts(const plan::Plan& p) {
  std::map<std::string, int> counts;
  for (const auto& l : p.layers)
    ++counts[l.kind];
  return counts;
}

ir::Attributes ints(const std::string& name, std::vector<std::int64_t> values,
                    ir::Attributes attrs = {}) {
  attrs.set(name, std::move(values));
  return attrs;
}

// x[N,3,8,8] -> Conv 3x3 (bias) -> Relu -> MaxPool 3/2 ceil -> GAP -> Flatten -> Gemm.
void classifier_network(GraphBuilder& b) {
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(3), ir::Dim::known(8),
                                         ir::Dim::known(8)}));
  ir::Value* y = b.node("Relu", {b.conv(x, 3, 5, 3, /*bias=*/true)});
  ir::Attributes pool = ints("kernel_shape", {3, 3}, ints("strides", {2, 2}));
  pool.set("ceil_mode", std::int64_t{1});
  y = b.node("MaxPool", {y}, pool);
  y = b.node("Flatten", {b.node("GlobalAveragePool", {y})});
  ir::Attributes gemm;
  gemm.set("transB", std::int64_t{1});
  gemm.set("alpha", 2.0f);
  gemm.set("beta", 0.5f);
  b.output(b.node("Gemm", {y, b.weight("fc.w", {10, 5}), b.weight("fc.b", {10})}, gemm));
}

ir::Graph small_classifier() {
  ir::Graph g = passes::testing::build(classifier_network);
  passes::PassManager().run(g);
  return g;
}

TEST(LowerGraph, SmallClassifierFp16) {
  const ir::Graph g = small_classifier();
  const plan::Plan p = lower_graph(g, {.fp16 = true, .tf32 = true, .max_batch = 8});
  EXPECT_EQ(kind_counts(p), (std::map<std::string, int>{{"conv", 1},
                                                        {"gemm", 1},
                                                        {"global_avg_pool", 1},
                                                        {"pool", 1},
                                                        {"reformat_in", 1},
                                                        {"reformat_out", 1}}));
  ASSERT_EQ(p.layers.front().kind, "reformat_in");
  ASSERT_EQ(p.layers.back().kind, "reformat_out");
  // User-facing tensors: NCHW and NC float32, dynamic batch.
  ASSERT_EQ(p.io.size(), 2u);
  const plan::TensorDesc& in = p.tensors[static_cast<std::size_t>(p.io[0].tensor_id)];
  EXPECT_EQ(in.layout, "NCHW");
  EXPECT_EQ(in.dims, (std::vector<std::int64_t>{-1, 3, 8, 8}));
  EXPECT_EQ(in.dtype, DType::kFloat32);
  const plan::TensorDesc& out = p.tensors[static_cast<std::size_t>(p.io[1].tensor_id)];
  EXPECT_EQ(out.layout, "NC");
  EXPECT_EQ(out.dims, (std::vector<std::int64_t>{-1, 10}));
  ASSERT_EQ(p.profiles.size(), 1u);
  EXPECT_EQ(p.profiles[0].inputs.at("x").max, (std::vector<std::int64_t>{8, 3, 8, 8}));

  const plan::LayerDesc& conv = p.layers[1];
  ASSERT_EQ(conv.kind, "conv");
  const json cp = json::parse(conv.params);
  EXPECT_EQ(cp["c"], 3);
  EXPECT_EQ(cp["c_pad"], 4);  // an RGB-like input pads to 4, even in FP16
  EXPECT_EQ(cp["k"], 5);
  EXPECT_EQ(cp["k_pad"], 8);
  EXPECT_EQ(cp["activation"], "relu");
  EXPECT_EQ(cp["has_bias"], true);
  EXPECT_EQ(cp["out_h"], 8);
  const plan::TensorDesc& conv_out = p.tensors[static_cast<std::size_t>(conv.outputs[0])];
  EXPECT_EQ(conv_out.layout, "NHWC");
  EXPECT_EQ(conv_out.dtype, DType::kFloat16);
  EXPECT_EQ(conv_out.dims, (std::vector<std::int64_t>{-1, 8, 8, 5}));
  EXPECT_EQ(conv_out.channel_padding_to, 8);
  ASSERT_EQ(conv.weights.size(), 2u);
  EXPECT_EQ(conv.weights[0].dtype, DType::kFloat16);
  EXPECT_EQ(conv.weights[0].dims, (std::vector<std::int64_t>{8, 3, 3, 4}));
  EXPECT_EQ(conv.weights[1].dtype, DType::kFloat32);
  EXPECT_EQ(conv.weights[1].dims, (std::vector<std::int64_t>{8}));

  // ceil_mode: (8 - 3) / 2 rounds up to 3, plus one window.
  const json pp = json::parse(layer_named(p, p.layers[2].name)->params);
  EXPECT_EQ(pp["mode"], "max");
  EXPECT_EQ(pp["out_h"], 4);
  EXPECT_EQ(pp["pad_bottom"], 0);

  // Flatten is an alias: the gemm reads what the global pool writes.
  const plan::LayerDesc& gap = p.layers[3];
  const plan::LayerDesc& gemm = p.layers[4];
  ASSERT_EQ(gemm.kind, "gemm");
  EXPECT_EQ(gemm.inputs, gap.outputs);
  const json gp = json::parse(gemm.params);
  EXPECT_EQ(gp["k"], 5);
  EXPECT_EQ(gp["k_pad"], 8);
  EXPECT_EQ(gp["n_pad"], 16);
  EXPECT_EQ(gp["alpha"], 1.0);
  EXPECT_EQ(gemm.weights[0].dims, (std::vector<std::int64_t>{16, 8}));

  // Folded alpha and beta, read back from the blob.
  const ir::Value* fc_w = nullptr;
  const ir::Value* fc_b = nullptr;
  for (const auto& node : g.nodes())
    if (node->op_type == "Gemm") fc_w = node->inputs[1], fc_b = node->inputs[2];
  ASSERT_TRUE(fc_w && fc_b);
  std::uint16_t w_half;
  std::memcpy(&w_half, p.weights.data() + gemm.weights[0].offset + 2 * (3 * 8 + 4), 2);
  EXPECT_EQ(w_half, float_to_half(2.0f * fc_w->constant->data<float>()[3 * 5 + 4]));
  float bias;
  std::memcpy(&bias, p.weights.data() + gemm.weights[1].offset + 4 * 7, 4);
  EXPECT_EQ(bias, 0.5f * fc_b->constant->data<float>()[7]);

  // The plan is one the file format accepts.
  EXPECT_EQ(plan::deserialize_plan(plan::serialize_plan(p), "test"), p);
}

TEST(LowerGraph, Fp32PadsToFour) {
  const plan::Plan p = lower_graph(small_classifier(), {.fp16 = false, .max_batch = 2});
  const json cp = json::parse(p.layers[1].params);
  EXPECT_EQ(cp["c_pad"], 4);
  EXPECT_EQ(cp["k_pad"], 8);
  EXPECT_EQ(p.layers[1].weights[0].dtype, DType::kFloat32);
  EXPECT_EQ(json::parse(p.layers[4].params)["n_pad"], 12);
  EXPECT_TRUE(p.options.tf32);
}

TEST(LowerGraph, AFixedBatchIsItsOwnProfile) {
  GraphBuilder b;
  b.output(b.conv(b.input("x", Extents{6, 8, 4, 4}), 8, 8, 3));
  const plan::Plan p = lower_graph(b.finish(), {.fp16 = true, .max_batch = 32});
  ASSERT_EQ(p.profiles.size(), 1u);
  const plan::ProfileDim& range = p.profiles[0].inputs.at("x");
  const std::vector<std::int64_t> dims{6, 8, 4, 4};
  EXPECT_EQ(range.min, dims);  // max_batch applies to dynamic batches only
  EXPECT_EQ(range.opt, dims);
  EXPECT_EQ(range.max, dims);
}

TEST(LowerGraph, ListsEveryUnsupportedNode) {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, 8, 4, 4});
  ir::Value* y = b.node("Softmax", {b.conv(x, 8, 8, 3)});                     // Softmax_1
  y = b.node("Transpose", {b.conv(y, 8, 8, 3)}, ints("perm", {0, 1, 3, 2}));  // Transpose_3
  b.output(b.conv(y, 8, 8, 1));
  const ir::Graph g = b.finish();
  try {
    lower_graph(g, {.fp16 = true, .max_batch = 1});
    FAIL() << "lowering succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    const std::string m = e.what();
    EXPECT_NE(m.find("2 problem(s)"), std::string::npos) << m;
    EXPECT_NE(m.find("Softmax 'Softmax_1'"), std::string::npos) << m;
    EXPECT_NE(m.find("Transpose 'Transpose_3'"), std::string::npos) << m;
    EXPECT_EQ(m.find("Conv '"), std::string::npos) << m;  // the convs around them lower fine
  }
}

TEST(LowerGraph, RejectsBadOptionsAndConstantBiasAdd) {
  EXPECT_THROW(lower_graph(small_classifier(), {.max_batch = 0}), Error);
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, 8, 4, 4});
  b.output(b.node("Add", {b.node("Relu", {x}), b.weight("bias", {1, 8, 1, 1})}));
  const ir::Graph g = b.finish();
  try {
    lower_graph(g, {.max_batch = 1});
    FAIL() << "lowering succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Add 'Add_1'"), std::string::npos) << e.what();
  }
}

TEST(LowerGraph, AddAbsorbsItsActivation) {
  GraphBuilder b;
  ir::Value* x = b.input("x", Extents{1, 8, 4, 4});
  ir::Value* a = b.node("Relu", {x});
  ir::Value* c = b.node("Sigmoid", {x});
  ir::Attributes leaky;
  leaky.set("alpha", 0.25f);
  b.output(b.node("LeakyRelu", {b.node("Add", {a, c})}, leaky));
  const plan::Plan p = lower_graph(b.finish(), {.fp16 = true, .max_batch = 1});
  ASSERT_EQ(kind_counts(p)["eltwise"], 3);
  const json add = json::parse(layer_named(p, "Add_2")->params);
  EXPECT_EQ(add["has_second_input"], true);
  EXPECT_EQ(add["activation"], "leaky_relu");
  EXPECT_FLOAT_EQ(add["alpha"].get<float>(), 0.25f);
  EXPECT_EQ(layer_named(p, "LeakyRelu_3"), nullptr);
  EXPECT_EQ(json::parse(layer_named(p, "Sigmoid_1")->params)["activation"], "sigmoid");
}

// ---- The layer contract, executed -------------------------------------------------

// A naive CPU executor of FP32 plans that follows lower.h's contract to the
// letter: if lowering and contract agree, it computes what the graph does.
class PlanEmulator {
 public:
  explicit PlanEmulator(const plan::Plan& p) : p_(p) {}

  Tensor run(const Tensor& input, std::int64_t batch) {
    n_ = batch;
    buffers_[p_.io[0].tensor_id] =
        std::vector<float>(input.values<float>().begin(), input.values<float>().end());
    for (const auto& l : p_.layers)
      run_layer(l, json::parse(l.params));
    const auto& out = p_.tensors[static_cast<std::size_t>(p_.io[1].tensor_id)];
    Extents e = out.dims;
    e[0] = batch;
    const auto& data = buffers_[out.id];
    return Tensor::from<float>(e, std::span<const float>(data));
  }

 private:
  std::span<const float> weights(const plan::WeightRef& w) const {
    return {reinterpret_cast<const float*>(p_.weights.data() + w.offset),
            static_cast<std::size_t>(w.bytes / 4)};
  }

  static float act(const json& j, float x) {
    const std::string a = j["activation"];
    const float alpha = j["alpha"], beta = j["beta"], lo = j["clip_min"], hi = j["clip_max"];
    if (a == "relu") return std::max(x, 0.0f);
    if (a == "clip") return std::min(std::max(x, lo), hi);
    if (a == "leaky_relu") return x < 0 ? alpha * x : x;
    if (a == "sigmoid") return 1.0f / (1.0f + std::exp(-x));
    if (a == "hard_sigmoid") return std::clamp(alpha * x + beta, 0.0f, 1.0f);
    if (a == "hard_swish") return x * std::clamp(x / 6 + 0.5f, 0.0f, 1.0f);
    return x;
  }

  void run_layer(const plan::LayerDesc& l, const json& j) {
    const auto& x = buffers_[l.inputs[0]];
    auto& y = buffers_[l.outputs[0]];
    const std::int64_t n = n_, c = j.value("c", 0), cp = j.value("c_pad", 0);
    if (l.kind == "reformat_in" || l.kind == "reformat_out") {
      const std::int64_t hw = j["h"].get<std::int64_t>() * j["w"].get<std::int64_t>();
      const bool in = l.kind == "reformat_in";
      y.assign(static_cast<std::size_t>(n * hw * (in ? cp : c)), 0.0f);
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t ch = 0; ch < c; ++ch)
          for (std::int64_t q = 0; q < hw; ++q) {
            const std::int64_t nchw = (i * c + ch) * hw + q, nhwc = (i * hw + q) * cp + ch;
            y[static_cast<std::size_t>(in ? nhwc : nchw)] =
                x[static_cast<std::size_t>(in ? nchw : nhwc)];
          }
    } else if (l.kind == "conv") {
      conv(l, j, x, y);
    } else if (l.kind == "pool") {
      pool(j, x, y);
    } else if (l.kind == "global_avg_pool") {
      const std::int64_t hw = j["h"].get<std::int64_t>() * j["w"].get<std::int64_t>();
      y.assign(static_cast<std::size_t>(n * cp), 0.0f);
      for (std::int64_t i = 0; i < n * hw * cp; ++i)
        y[static_cast<std::size_t>(i / (hw * cp) * cp + i % cp)] +=
            x[static_cast<std::size_t>(i)] / static_cast<float>(hw);
    } else if (l.kind == "gemm") {
      const std::int64_t kp = j["k_pad"], np = j["n_pad"];
      const auto w = weights(l.weights[0]), b = weights(l.weights[1]);
      y.assign(static_cast<std::size_t>(n * np), 0.0f);
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t o = 0; o < np; ++o) {
          float acc = b[static_cast<std::size_t>(o)];
          for (std::int64_t k = 0; k < kp; ++k)
            acc +=
                x[static_cast<std::size_t>(i * kp + k)] * w[static_cast<std::size_t>(o * kp + k)];
          y[static_cast<std::size_t>(i * np + o)] = j["relu"] == true ? std::max(acc, 0.0f) : acc;
        }
    } else {
      ASSERT_EQ(l.kind, "eltwise");
      const bool two = j["has_second_input"];
      std::vector<float> out(x.size());
      for (std::size_t i = 0; i < x.size(); ++i)
        out[i] = act(j, x[i] + (two ? buffers_[l.inputs[1]][i] : 0.0f));
      y = std::move(out);
    }
  }

  void conv(const plan::LayerDesc& l, const json& j, const std::vector<float>& x,
            std::vector<float>& y) {
    const std::int64_t cp = j["c_pad"], kp = j["k_pad"], r = j["r"], s = j["s"];
    const std::int64_t ih = j["in_h"], iw = j["in_w"], oh = j["out_h"], ow = j["out_w"];
    const std::int64_t groups = j["groups"], cf = cp / groups, kg = kp / groups;
    const auto w = weights(l.weights[0]), b = weights(l.weights[1]);
    const std::vector<float>* res = j["has_residual"] == true ? &buffers_[l.inputs[1]] : nullptr;
    y.assign(static_cast<std::size_t>(n_ * oh * ow * kp), 0.0f);
    for (std::int64_t i = 0; i < n_; ++i)
      for (std::int64_t oy = 0; oy < oh; ++oy)
        for (std::int64_t ox = 0; ox < ow; ++ox)
          for (std::int64_t k = 0; k < kp; ++k) {
            float acc = b[static_cast<std::size_t>(k)];
            for (std::int64_t ry = 0; ry < r; ++ry)
              for (std::int64_t sx = 0; sx < s; ++sx) {
                const std::int64_t yy = oy * j["stride_h"].get<std::int64_t>() -
                                        j["pad_top"].get<std::int64_t>() +
                                        ry * j["dil_h"].get<std::int64_t>();
                const std::int64_t xx = ox * j["stride_w"].get<std::int64_t>() -
                                        j["pad_left"].get<std::int64_t>() +
                                        sx * j["dil_w"].get<std::int64_t>();
                if (yy < 0 || yy >= ih || xx < 0 || xx >= iw) continue;
                for (std::int64_t ci = 0; ci < cf; ++ci)
                  acc += x[static_cast<std::size_t>(((i * ih + yy) * iw + xx) * cp + k / kg * cf +
                                                    ci)] *
                         w[static_cast<std::size_t>(((k * r + ry) * s + sx) * cf + ci)];
              }
            const std::size_t at = static_cast<std::size_t>(((i * oh + oy) * ow + ox) * kp + k);
            y[at] = act(j, acc + (res ? (*res)[at] : 0.0f));
          }
  }

  void pool(const json& j, const std::vector<float>& x, std::vector<float>& y) {
    const std::int64_t cp = j["c_pad"], ih = j["in_h"], iw = j["in_w"], oh = j["out_h"],
                       ow = j["out_w"];
    const std::int64_t pt = j["pad_top"], pl = j["pad_left"], pb = j["pad_bottom"],
                       pr = j["pad_right"];
    const bool max = j["mode"] == "max", include_pad = j["count_include_pad"];
    y.assign(static_cast<std::size_t>(n_ * oh * ow * cp), 0.0f);
    for (std::int64_t i = 0; i < n_; ++i)
      for (std::int64_t oy = 0; oy < oh; ++oy)
        for (std::int64_t ox = 0; ox < ow; ++ox)
          for (std::int64_t ch = 0; ch < cp; ++ch) {
            float acc = max ? -INFINITY : 0.0f;
            int count = 0;
            for (std::int64_t ky = 0; ky < j["kernel_h"].get<std::int64_t>(); ++ky)
              for (std::int64_t kx = 0; kx < j["kernel_w"].get<std::int64_t>(); ++kx) {
                const std::int64_t yy = oy * j["stride_h"].get<std::int64_t>() - pt +
                                        ky * j["dil_h"].get<std::int64_t>();
                const std::int64_t xx = ox * j["stride_w"].get<std::int64_t>() - pl +
                                        kx * j["dil_w"].get<std::int64_t>();
                const bool inside = yy >= 0 && yy < ih && xx >= 0 && xx < iw;
                if (include_pad ? yy >= -pt && yy < ih + pb && xx >= -pl && xx < iw + pr : inside)
                  ++count;
                if (!inside) continue;
                const float v = x[static_cast<std::size_t>(((i * ih + yy) * iw + xx) * cp + ch)];
                acc = max ? std::max(acc, v) : acc + v;
              }
            y[static_cast<std::size_t>(((i * oh + oy) * ow + ox) * cp + ch)] =
                max ? acc : acc / static_cast<float>(count);
          }
  }

  const plan::Plan& p_;
  std::int64_t n_ = 1;
  std::map<int, std::vector<float>> buffers_;
};

// Every kind of conv packing, a residual, both pools with ceil_mode, a gemm
// with transB = 0, alpha, beta and a fused Sigmoid.
void mixed_network(GraphBuilder& b) {
  ir::Value* x = b.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(3), ir::Dim::known(9),
                                         ir::Dim::known(9)}));
  ir::Value* a = b.node("Relu", {b.conv(x, 3, 6, 3, true, 1, 2)});     // dense, c 3 -> 4
  ir::Value* d = b.node("HardSwish", {b.conv(a, 6, 12, 3, true, 6)});  // depthwise x2
  ir::Value* g = b.conv(d, 12, 8, 1, true, 2);                         // grouped, aligned
  ir::Attributes leaky;
  leaky.set("alpha", 0.1f);
  ir::Value* r = b.node("LeakyRelu", {b.node("Add", {b.conv(g, 8, 8, 3), g})}, leaky);
  ir::Value* u = b.conv(r, 8, 6, 1, true, 2);  // densified
  ir::Attributes avg =
      ints("kernel_shape", {3, 3}, ints("strides", {2, 2}, ints("pads", {1, 1, 1, 1})));
  avg.set("ceil_mode", std::int64_t{1});
  avg.set("count_include_pad", std::int64_t{1});
  ir::Value* p = b.node("AveragePool", {u}, avg);
  ir::Value* f = b.node("Flatten", {b.node("GlobalAveragePool", {p})});
  ir::Attributes gemm;
  gemm.set("alpha", 0.5f);
  gemm.set("beta", 2.0f);
  b.output(b.node("Sigmoid",
                  {b.node("Gemm", {f, b.weight("fc.w", {6, 7}), b.weight("fc.b", {7})}, gemm)}));
}

TEST(LowerGraph, Fp32PlanComputesWhatTheGraphDoes) {
  for (const auto& fn : std::vector<passes::testing::BuildFn>{mixed_network, classifier_network}) {
    const ir::Graph reference = passes::testing::build(fn);
    ir::Graph g = passes::testing::build(fn);
    passes::PassManager().run(g);
    const plan::Plan p = lower_graph(g, {.fp16 = false, .max_batch = 2});
    const Tensor input = passes::testing::random_inputs(reference).at("x");
    const auto expected = passes::testing::run_graph(reference, {{"x", input}});
    PlanEmulator emulator(p);
    passes::testing::expect_close(expected, {emulator.run(input, 2)}, 1e-4f, 1e-5f);
  }
}

// ---- Generated models -----------------------------------------------------------

ir::Graph optimized(const std::filesystem::path& model, const std::vector<std::string>& off = {}) {
  ir::Graph g = onnx::import_model(model);
  passes::PassManager manager;
  for (const auto& name : off)
    manager.disable(name);
  manager.run(g);
  return g;
}

class LowerModels : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    resnet18_ = new std::filesystem::path(test::generated_model("resnet18", "lower_test"));
    mobilenet_ = new std::filesystem::path(test::generated_model("mobilenetv2", "lower_test"));
  }
  static void TearDownTestSuite() {
    for (auto* p : {resnet18_, mobilenet_}) {
      if (!p->empty()) std::filesystem::remove(*p);
      delete p;
    }
  }
  void SetUp() override {
    if (resnet18_->empty() || mobilenet_->empty())
      GTEST_SKIP() << "no " << (test::repo_root() / ".venv/bin/python")
                   << " or make_models.py failed: cannot generate the models";
  }
  static inline std::filesystem::path* resnet18_ = nullptr;
  static inline std::filesystem::path* mobilenet_ = nullptr;
};

// Bytes the weights of the layers must take: every WeightRef's bytes, placed
// in order at 256-byte boundaries without overlap.
void expect_weights_packed(const plan::Plan& p) {
  std::int64_t end = 0;
  for (const auto& l : p.layers)
    for (const auto& w : l.weights) {
      EXPECT_EQ(w.offset % 256, 0) << l.name;
      EXPECT_GE(w.offset, end) << l.name;
      EXPECT_LT(w.offset - end, 256) << l.name;
      EXPECT_EQ(w.bytes, element_count(w.dims) * static_cast<std::int64_t>(size_of(w.dtype)));
      end = w.offset + w.bytes;
    }
  EXPECT_EQ(static_cast<std::int64_t>(p.weights.size()), end);
}

TEST_F(LowerModels, ResNet18StemFusesInFp16) {
  const ir::Graph g = optimized(*resnet18_);
  EXPECT_EQ(kind_counts(lower_graph(g, {.fp16 = true, .max_batch = 32})),
            (std::map<std::string, int>{{"conv", 19},
                                        {"conv_max_pool", 1},
                                        {"gemm", 1},
                                        {"global_avg_pool", 1},
                                        {"reformat_out", 1}}))
      << "the stem reads the FP32 input itself: no reformat_in";
}

// One auxiliary stream takes exactly the three downsample shortcuts (the
// blocks that change resolution), and the arena grows by at most their size.
TEST_F(LowerModels, ResNet18ShortcutsTakeTheAuxiliaryStream) {
  plan::Plan p = lower_graph(optimized(*resnet18_), {.fp16 = true, .max_batch = 32});
  const std::size_t serial = plan_arena(p, 32).arena_bytes;
  plan::assign_streams(p, 1);
  std::vector<std::string> aux;
  for (const plan::LayerDesc& layer : p.layers)
    if (layer.stream != 0) aux.push_back(layer.name);
  ASSERT_EQ(aux.size(), 3u) << ::testing::PrintToString(aux);
  for (const std::string& name : aux)
    EXPECT_NE(name.find("downsample"), std::string::npos) << name;
  const std::size_t parallel = plan_arena(p, 32).arena_bytes;
  EXPECT_GE(parallel, serial);
  EXPECT_LE(parallel, serial * 3 / 2) << "serial " << serial << " bytes, parallel " << parallel;
}

TEST_F(LowerModels, ResNet18) {
  const ir::Graph g = optimized(*resnet18_);
  // What the weights must hold: every ONNX conv filter, counted here with
  // stem channels 3 -> 8 (stem_extra below corrects to the 4 stored).
  std::int64_t filter_elements = 0, bias_elements = 0;
  for (const auto& node : g.nodes()) {
    if (node->op_type != "FusedConv" && node->op_type != "Conv") continue;
    const Extents& e = node->inputs[1]->constant->extents();
    filter_elements += e[0] * (e[1] == 3 ? 8 : e[1]) * e[2] * e[3];
    bias_elements += e[0];
  }
  for (const bool fp16 : {true, false}) {
    SCOPED_TRACE(fp16 ? "fp16" : "fp32");
    // The stem fusion off: this test is about the plain conv layers.
    const plan::Plan p =
        lower_graph(g, {.fp16 = fp16, .max_batch = 32, .fuse_conv_max_pool = false});
    EXPECT_EQ(kind_counts(p), (std::map<std::string, int>{{"conv", 20},
                                                          {"gemm", 1},
                                                          {"global_avg_pool", 1},
                                                          {"pool", 1},
                                                          {"reformat_in", 1},
                                                          {"reformat_out", 1}}));
    const plan::LayerDesc& stem = *layer_named(p, "conv1");
    const json sp = json::parse(stem.params);
    EXPECT_EQ(sp["c"], 3);
    EXPECT_EQ(sp["c_pad"], 4);
    EXPECT_EQ(sp["stride_h"], 2);
    EXPECT_EQ(sp["pad_top"], 3);
    EXPECT_EQ(sp["out_h"], 112);
    EXPECT_EQ(sp["activation"], "relu");
    // Every filter entry of a padded input channel is zero.
    const std::int64_t c_pad = sp["c_pad"];
    const std::size_t elem = size_of(stem.weights[0].dtype);
    for (std::int64_t i = 0; i < element_count(stem.weights[0].dims); ++i) {
      if (i % c_pad < 3) continue;
      std::uint32_t bits = 0;
      std::memcpy(&bits, p.weights.data() + stem.weights[0].offset + i * elem, elem);
      ASSERT_EQ(bits, 0u) << "filter element " << i;
    }
    int residuals = 0;
    for (const auto& l : p.layers)
      if (l.kind == "conv" && json::parse(l.params)["has_residual"] == true) ++residuals;
    EXPECT_EQ(residuals, 8);
    const std::int64_t storage = fp16 ? 2 : 4;
    const std::int64_t stem_extra = 64 * 7 * 7 * (c_pad - 8);  // the stem stores 4, not 8
    const std::int64_t n_pad = fp16 ? 16 : 12;
    const std::int64_t expected_bytes = (filter_elements + stem_extra) * storage +
                                        bias_elements * 4 + n_pad * 512 * storage + n_pad * 4;
    std::int64_t bytes = 0;
    for (const auto& l : p.layers)
      for (const auto& w : l.weights)
        bytes += w.bytes;
    EXPECT_EQ(bytes, expected_bytes);
    expect_weights_packed(p);
    EXPECT_NO_THROW(plan::serialize_plan(p));
  }
}

TEST_F(LowerModels, ResNet18ArenaKeepsLiveTensorsApart) {
  const plan::Plan p = lower_graph(optimized(*resnet18_), {.fp16 = true, .max_batch = 4});
  const MemoryPlan arena = plan_arena(p, 4);
  ASSERT_EQ(arena.offsets.size(), p.tensors.size());
  // Arena tensors: those a layer touches, except the IO ones (the user's memory).
  std::vector<bool> in_arena(p.tensors.size(), false);
  for (const auto& l : p.layers) {
    for (int id : l.inputs)
      in_arena[static_cast<std::size_t>(id)] = true;
    for (int id : l.outputs)
      in_arena[static_cast<std::size_t>(id)] = true;
  }
  for (const plan::IoBinding& io : p.io)
    in_arena[static_cast<std::size_t>(io.tensor_id)] = false;
  auto bytes = [&](int id) {
    return in_arena[static_cast<std::size_t>(id)]
               ? tensor_bytes(p.tensors[static_cast<std::size_t>(id)], 4)
               : std::size_t{0};
  };
  std::size_t largest = 0, total = 0;
  for (std::size_t t = 0; t < p.tensors.size(); ++t) {
    largest = std::max(largest, bytes(static_cast<int>(t)));
    total += bytes(static_cast<int>(t));
  }
  // The largest after the stem fusion: 4 x 224 x 224 x 4 halves (the
  // reformatted input) and 4 x 56 x 56 x 64 (layer 1) are equal.
  EXPECT_EQ(largest, 4u * 56 * 56 * 64 * 2);
  EXPECT_GE(arena.arena_bytes, largest);
  EXPECT_LT(arena.arena_bytes, total / 2);  // reuse happened
  for (const auto& l : p.layers) {
    std::vector<int> ids = l.inputs;
    ids.insert(ids.end(), l.outputs.begin(), l.outputs.end());
    for (int a : ids)
      for (int b : ids) {
        if (a == b) continue;
        const std::size_t oa = arena.offsets[static_cast<std::size_t>(a)];
        const std::size_t ob = arena.offsets[static_cast<std::size_t>(b)];
        const bool apart =
            oa + bytes(a) <= ob || ob + bytes(b) <= oa || bytes(a) == 0 || bytes(b) == 0;
        EXPECT_TRUE(apart) << l.name << ": " << p.tensors[static_cast<std::size_t>(a)].name
                           << " and " << p.tensors[static_cast<std::size_t>(b)].name;
      }
  }
}

TEST_F(LowerModels, ResNet18WithoutEpilogueFusion) {
  const plan::Plan p =
      lower_graph(optimized(*resnet18_, {"fuse_conv_epilogue"}), {.fp16 = true, .max_batch = 1});
  const auto counts = kind_counts(p);
  EXPECT_EQ(counts.at("conv"), 20);
  // 8 Add + Relu pairs (one layer each) and 9 Relus after a conv.
  EXPECT_EQ(counts.at("eltwise"), 17);
  int adds = 0;
  for (const auto& l : p.layers)
    if (l.kind == "eltwise" && json::parse(l.params)["has_second_input"] == true) {
      EXPECT_EQ(json::parse(l.params)["activation"], "relu") << l.name;
      ++adds;
    }
  EXPECT_EQ(adds, 8);
}

TEST_F(LowerModels, MobileNetV2LowersDepthwiseConvs) {
  const ir::Graph g = optimized(*mobilenet_);
  const plan::Plan p = lower_graph(g, {.fp16 = true, .max_batch = 8});
  const auto counts = kind_counts(p);
  EXPECT_EQ(counts.at("conv"), 52);
  EXPECT_EQ(counts.at("gemm"), 1);
  EXPECT_EQ(counts.count("eltwise"), 0u);  // residual Adds and ReLU6 are fused
  int depthwise = 0;
  for (const auto& l : p.layers) {
    if (l.kind != "conv") continue;
    const json params = json::parse(l.params);
    if (params["groups"] == 1) continue;
    ++depthwise;
    EXPECT_EQ(params["groups"], params["c_pad"]) << l.name;
    EXPECT_EQ(l.weights[0].dims[3], 1) << l.name;
    EXPECT_EQ(params["activation"], "clip") << l.name;
    EXPECT_EQ(params["clip_max"], 6.0) << l.name;
  }
  EXPECT_EQ(depthwise, 17);
  expect_weights_packed(p);
  EXPECT_NO_THROW(plan::serialize_plan(p));
}

}  // namespace
}  // namespace anvil::builder
