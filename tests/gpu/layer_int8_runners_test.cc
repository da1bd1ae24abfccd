// The INT8 layer runners ("quantize", "conv_int8", "dequantize",
// src/runtime/layers/) in a plan built by hand, reformat_in -> quantize ->
// conv_int8 -> dequantize -> reformat_out, loaded through Engine and run by
// an ExecutionContext, against the same math on the CPU: FP16 input,
// quantized with ties to even and saturation, an exact integer conv, the FP32
// epilogue (scale, bias, residual, ReLU), rint, saturation, dequantized to
// FP16. Input channels 6 padded to 8 (padding must stay zero through the
// quantize and the conv), K padded or not, with and without bias, residual
// and ReLU, at two batch sizes, by the heuristic's engine and by an explicit
// tactic. The runners' checks of corrupt layers run without a GPU.
#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "anvil/engine.h"
#include "anvil/error.h"
#include "builder/gpu/autotune.h"
#include "builder/weights.h"
#include "cuda/check.h"
#include "cuda/cudnn_quantized_conv.h"
#include "cuda/handles.h"
#include "gpu_test.h"
#include "int8_reference.h"
#include "ops/quantization.h"
#include "plan/plan.h"
#include "plan/profiles.h"
#include "quant/int8_weights.h"
#include "runtime/layer_runner.h"
#include "runtime/layers/layer_shapes.h"

namespace anvil {
namespace {

using builder::float_to_half;
using builder::half_to_float;

constexpr std::int64_t kC = 6, kCPad = 8, kH = 10, kW = 12, kMaxBatch = 3;

struct Case {
  const char* name;
  std::int64_t k;  // real output channels (padded to 8)
  bool bias, residual, relu;
};

const Case kCases[] = {
    {"3x3 p1 6(8)->14(16) bias relu", 14, true, false, true},
    {"3x3 p1 6(8)->6(8) bias, residual = its own input, relu", 6, true, true, true},
    {"3x3 p1 6(8)->16 no bias, no activation", 16, false, false, false},
};

std::int64_t pad8(std::int64_t c) {
  return (c + 7) / 8 * 8;
}

// The model of one case: its plan, its input and the CPU's output.
struct Model {
  Case c;
  std::int64_t k_pad = 0;
  float x_scale = 0, y_scale = 0;
  std::vector<std::int8_t> filter;  // [k_pad, 3, 3, kCPad]
  quant::Int8Requantization requant;
  plan::Plan plan;
  cuda::QuantizedConvShape shape;  // as the runner sees it, n = kMaxBatch

  explicit Model(const Case& cc) : c(cc), k_pad(pad8(cc.k)) {
    std::mt19937 rng(static_cast<std::uint32_t>(cc.k * 10 + cc.residual));
    std::uniform_int_distribution<int> code(-127, 127);
    filter = test::padded_codes(
        k_pad * 9 * kCPad, kCPad, kC, [&] { return code(rng); }, c.k * 9 * kCPad);
    // Inputs uniform in [-2, 2]: |x| > 1.7 saturates. The output scale puts
    // about 60 codes in one standard deviation of the conv, so y saturates
    // too; a residual shares the output's scale (lower.h), so it is x's.
    x_scale = 1.7f / 127.0f;
    y_scale = c.residual ? x_scale : 0.05f;
    const float acc_spread = std::sqrt(9.0f * kC) * 73.0f * 73.0f;
    std::uniform_real_distribution<float> unit(0.5f, 1.5f), bias(-20.0f, 20.0f);
    std::vector<float> w_scales(static_cast<std::size_t>(c.k)), b;
    for (float& s : w_scales)
      s = unit(rng) * 60.0f * y_scale / (acc_spread * x_scale);
    if (c.bias)
      for (std::int64_t k = 0; k < c.k; ++k)
        b.push_back(bias(rng) * y_scale);
    requant = quant::fold_requantization(x_scale, w_scales, b, y_scale, c.k, k_pad);
    build_plan();
  }

  nlohmann::json conv_params() const {
    return {{"c", kC},
            {"c_pad", kCPad},
            {"k", c.k},
            {"k_pad", k_pad},
            {"r", 3},
            {"s", 3},
            {"in_h", kH},
            {"in_w", kW},
            {"out_h", kH},
            {"out_w", kW},
            {"pad_top", 1},
            {"pad_left", 1},
            {"pad_bottom", 1},
            {"pad_right", 1},
            {"stride_h", 1},
            {"stride_w", 1},
            {"dil_h", 1},
            {"dil_w", 1},
            {"groups", 1},
            {"has_bias", c.bias},
            {"has_residual", c.residual},
            {"activation", c.relu ? "relu" : "none"},
            {"alpha", 0.0f},
            {"beta", 0.0f},
            {"clip_min", -FLT_MAX},
            {"clip_max", FLT_MAX},
            {"x_scale", x_scale},
            {"y_scale", y_scale}};
  }

  static nlohmann::json geometry(std::int64_t ch, std::int64_t ch_pad, const char* layout) {
    return {{"c", ch}, {"c_pad", ch_pad}, {"h", kH}, {"w", kW}, {"layout", layout}};
  }

  void build_plan() {
    using plan::TensorDesc;
    auto padding = [](std::int64_t ch, std::int64_t ch_pad) {
      return ch_pad != ch ? std::optional<std::int64_t>(ch_pad) : std::nullopt;
    };
    plan.anvil_version = "test";
    plan.options = {
        .fp16 = true, .tf32 = false, .workspace_bytes = 256 << 20, .disabled_passes = {}};
    plan.tensors = {
        TensorDesc{0, "x", DType::kFloat32, "NCHW", {-1, kC, kH, kW}, std::nullopt},
        TensorDesc{1, "x_h", DType::kFloat16, "NHWC", {-1, kH, kW, kC}, kCPad},
        TensorDesc{2, "x_q", DType::kInt8, "NHWC", {-1, kH, kW, kC}, kCPad},
        TensorDesc{3, "y_q", DType::kInt8, "NHWC", {-1, kH, kW, c.k}, padding(c.k, k_pad)},
        TensorDesc{4, "y_h", DType::kFloat16, "NHWC", {-1, kH, kW, c.k}, padding(c.k, k_pad)},
        TensorDesc{5, "y", DType::kFloat32, "NCHW", {-1, c.k, kH, kW}, std::nullopt},
    };
    plan.io = {{"x", 0, true}, {"y", 5, false}};
    plan.profiles = {
        {.inputs = {{"x", {{1, kC, kH, kW}, {kMaxBatch, kC, kH, kW}, {kMaxBatch, kC, kH, kW}}}}}};

    const std::vector<float> filter_values(filter.begin(), filter.end());
    const plan::WeightRef filter_ref =
        builder::append_weights(plan.weights, filter_values, DType::kInt8, {k_pad, 3, 3, kCPad});
    const plan::WeightRef scale_ref =
        builder::append_weights(plan.weights, requant.scale, DType::kFloat32, {k_pad});
    const plan::WeightRef bias_ref =
        builder::append_weights(plan.weights, requant.bias, DType::kFloat32, {k_pad});

    auto layer = [](const char* name, const char* kind, std::vector<int> in, int out,
                    const nlohmann::json& params) {
      plan::LayerDesc l;
      l.name = name;
      l.kind = kind;
      l.inputs = std::move(in);
      l.outputs = {out};
      l.params = params.dump();
      return l;
    };
    nlohmann::json q = geometry(kC, kCPad, "NHWC"), dq = geometry(c.k, k_pad, "NHWC");
    q["scale"] = x_scale;
    dq["scale"] = y_scale;
    plan::LayerDesc conv =
        layer("conv", "conv_int8", c.residual ? std::vector<int>{2, 2} : std::vector<int>{2}, 3,
              conv_params());
    conv.weights = {filter_ref, scale_ref, bias_ref};
    plan.layers = {layer("reformat_in", "reformat_in", {0}, 1, geometry(kC, kCPad, "NCHW")),
                   layer("quantize", "quantize", {1}, 2, q), conv,
                   layer("dequantize", "dequantize", {3}, 4, dq),
                   layer("reformat_out", "reformat_out", {4}, 5, geometry(c.k, k_pad, "NCHW"))};
    shape = runtime::int8_conv_layer_shape(conv_params(), "conv");
    shape.n = kMaxBatch;
  }

  std::vector<float> input(std::int64_t batch) const {
    std::mt19937 rng(static_cast<std::uint32_t>(batch * 7 + c.k));
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    std::vector<float> x(static_cast<std::size_t>(batch * kC * kH * kW));
    for (float& v : x)
      v = dist(rng);
    return x;
  }

  // What the engine must output, NCHW [batch, k, kH, kW]; `near_tie` marks
  // elements whose FP32 epilogue value lies within a few ulps of a rounding
  // tie, where the order of cuDNN's FP32 operations (an FMA or not) may move
  // the result one step.
  std::vector<float> reference(const std::vector<float>& x, std::int64_t batch,
                               std::vector<bool>& near_tie, std::vector<float>& pre_round,
                               std::int64_t& saturated) const {
    std::vector<std::int8_t> xq(static_cast<std::size_t>(batch * kH * kW * kCPad), 0);
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t ch = 0; ch < kC; ++ch)
        for (std::int64_t p = 0; p < kH * kW; ++p) {
          const float stored = half_to_float(float_to_half(x[((n * kC + ch) * kH * kW + p)]));
          xq[static_cast<std::size_t>((n * kH * kW + p) * kCPad + ch)] =
              ops::quantize_value<std::int8_t>(stored / x_scale, 0);
        }
    // cuDNN's graph order: MUL scale, ADD bias, ADD residual (x itself), ReLU.
    cuda::QuantizedConvShape at_batch = shape;
    at_batch.n = batch;
    const std::vector<float> residual = test::to_floats(xq);
    const test::Int8ConvReference ref = test::int8_conv_reference(
        at_batch, xq, filter,
        {.scale = requant.scale,
         .bias = c.bias ? std::span<const float>(requant.bias) : std::span<const float>(),
         .residual = c.residual ? std::span<const float>(residual) : std::span<const float>(),
         .relu = c.relu});
    saturated = ref.saturated;
    std::vector<float> y(static_cast<std::size_t>(batch * c.k * kH * kW));
    near_tie.assign(y.size(), false);
    pre_round.assign(y.size(), 0.0f);
    for (std::int64_t n = 0; n < batch; ++n)
      for (std::int64_t p = 0; p < kH * kW; ++p)
        for (std::int64_t k = 0; k < c.k; ++k) {
          const auto from = static_cast<std::size_t>((n * kH * kW + p) * k_pad + k);
          const auto o = static_cast<std::size_t>((n * c.k + k) * kH * kW + p);
          const float v = ref.value[from];
          pre_round[o] = v;
          near_tie[o] = std::fabs(std::fabs(v - std::floor(v)) - 0.5f) <=
                        4.0f * std::max(1.0f, std::fabs(v)) * FLT_EPSILON;
          y[o] = half_to_float(float_to_half(static_cast<float>(ref.int8[from]) * y_scale));
        }
    return y;
  }
};

// Runs `model` at `batch` through Engine and ExecutionContext and compares
// with the CPU: bitwise, except near-tie elements, which may be one step off.
void expect_matches_cpu(const Model& model, std::int64_t batch, const std::string& what) {
  const std::shared_ptr<const Engine> engine =
      Engine::deserialize(plan::serialize_plan(model.plan), "int8.plan");
  const std::unique_ptr<ExecutionContext> context = engine->create_context();
  const std::vector<float> x = model.input(batch);
  std::vector<bool> near_tie;
  std::vector<float> pre_round;
  std::int64_t saturated = 0;
  const std::vector<float> want = model.reference(x, batch, near_tie, pre_round, saturated);

  cuda::DeviceBuffer dx(x.size() * sizeof(float)), dy(want.size() * sizeof(float));
  cuda::copy_to_device(dx.data(), x.data(), dx.bytes());
  test::poison(dy.data(), dy.bytes());
  const std::vector<std::int64_t> dims{batch, kC, kH, kW};
  context->set_input_shape("x", dims);
  context->set_tensor_address("x", dx.data());
  context->set_tensor_address("y", dy.data());
  const cuda::Stream stream;
  context->enqueue(stream.get());
  stream.synchronize();
  std::vector<float> got(want.size());
  ANVIL_GPU_CHECK(cudaMemcpy(got.data(), dy.data(), dy.bytes(), cudaMemcpyDeviceToHost));

  std::size_t wrong = 0, tie_steps = 0;
  const std::int64_t hw = kH * kW;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) == 0) continue;
    const bool one_step =
        std::fabs(got[i] - want[i]) <= model.y_scale * 1.001f && std::isfinite(got[i]);
    if (near_tie[i] && one_step) {
      ++tie_steps;
      continue;
    }
    if (wrong++ < 3) {
      const auto n = static_cast<std::int64_t>(i) / (model.c.k * hw),
                 k = static_cast<std::int64_t>(i) / hw % model.c.k,
                 p = static_cast<std::int64_t>(i) % hw;
      ADD_FAILURE() << what << ": output (n " << n << ", k " << k << ", h " << p / kW << ", w "
                    << p % kW << ") got " << got[i] << " (" << got[i] / model.y_scale
                    << " steps) want " << want[i] << " (" << want[i] / model.y_scale
                    << " steps); the CPU's epilogue value before rounding " << pre_round[i];
    }
  }
  std::printf("%s: %zu outputs, %lld saturate, %zu near-tie one-step differences\n", what.c_str(),
              want.size(), static_cast<long long>(saturated), tie_steps);
  EXPECT_EQ(wrong, 0u) << what << ": " << wrong << " of " << want.size() << " outputs differ";
  EXPECT_GT(saturated, 0) << what << ": the data must saturate the output";
}

TEST(LayerInt8Runners, QuantizeConvDequantizeMatchTheCpu) {
  ANVIL_REQUIRE_GPU();
  for (const Case& c : kCases) {
    Model model(c);
    model.plan.target = builder::current_target();
    for (const std::int64_t batch : {kMaxBatch, std::int64_t{1}})
      try {
        expect_matches_cpu(model, batch, cat(c.name, ", batch ", batch, ", heuristic tactic"));
      } catch (const Error& e) {
        ADD_FAILURE() << c.name << ", batch " << batch << ": " << e.what();
      }
  }
}

// `conv` kept compiled in the plan (plan::CompiledTactic) is restored at the
// shape it was compiled for and compiled as before at another; a damaged
// compiled text costs a compile, never a wrong result or a failed run.
void expect_compiled_tactic_matches(const Model& model, const cuda::QuantizedConv& conv,
                                    const char* name) {
  const std::string text = conv.serialize();
  if (text.empty()) {
    std::printf("%s: cuDNN does not serialize %s; nothing to restore\n", name,
                conv.identity().c_str());
    return;
  }
  for (const bool damaged : {false, true}) {
    Model tuned = model;
    plan::set_tactic(tuned.plan.layers[2], 0, conv.identity(), 0.0f);
    plan::set_tactic_compiled(tuned.plan.layers[2], 0,
                              {model.shape.describe(), damaged ? text.substr(1) : text});
    for (const std::int64_t batch : {kMaxBatch, std::int64_t{1}})
      expect_matches_cpu(tuned, batch,
                         cat(name, damaged ? ", damaged" : "", " compiled tactic ", conv.identity(),
                             ", batch ", batch));
  }
}

// Every engine config of the layer, stored as the plan's tactic, runs through
// from_identity and gives the same exact result; the first one also kept
// compiled (expect_compiled_tactic_matches).
TEST(LayerInt8Runners, EveryTacticMatchesTheCpu) {
  ANVIL_REQUIRE_GPU();
  const cuda::CudnnHandle cudnn;
  for (const Case& c : kCases) {
    Model model(c);
    model.plan.target = builder::current_target();
    const std::vector<cuda::QuantizedConv> found =
        cuda::QuantizedConv::candidates(cudnn.get(), model.shape);
    EXPECT_FALSE(found.empty()) << c.name << ": no cuDNN INT8 engine (" << model.shape.describe()
                                << ")";
    for (const cuda::QuantizedConv& conv : found) {
      Model tuned = model;
      plan::set_tactic(tuned.plan.layers[2], 0, conv.identity(), 0.0f);
      try {
        expect_matches_cpu(tuned, kMaxBatch, cat(c.name, ", tactic ", conv.identity()));
      } catch (const Error& e) {
        ADD_FAILURE() << c.name << ", tactic " << conv.identity() << ": " << e.what();
      }
    }
    if (!found.empty()) expect_compiled_tactic_matches(model, found.front(), c.name);
  }
}

// A plan compiled at a batch size the plan file does not keep is compiled
// once per engine: the runner keeps it, and the next context (another cuDNN
// handle) restores it instead of compiling (runtime/layers/conv_int8.cc;
// CudnnSerializedPlan checks that a restored plan computes the same bytes).
// cuDNN's runtime-fusion engine (eng4) refuses the kernel cache's
// dynamic-shape graphs, so each of its configs must take this path; configs
// the kernel cache serves are counted, not required. The layer is ResNet's
// 3x3 64 -> 64 at 28 x 28, where cuDNN 9.14 offers eng4 on an H100/H200 (the
// test model's 6 -> 14 gets eng7 only).
TEST(LayerInt8Runners, AContextRestoresWhatAnotherContextCompiled) {
  ANVIL_REQUIRE_GPU();
  const cuda::CudnnHandle first, second;
  Model model(kCases[0]);  // its plan's tensors and weight layout
  nlohmann::json params = model.conv_params();
  for (const char* key : {"c", "c_pad", "k", "k_pad"})
    params[key] = 64;
  for (const char* key : {"in_h", "in_w", "out_h", "out_w"})
    params[key] = 28;
  plan::Plan& p = model.plan;
  p.weights.clear();
  plan::LayerDesc& conv_layer = p.layers[2];
  conv_layer.params = params.dump();
  conv_layer.weights = {
      builder::append_weights(p.weights, std::vector<float>(64 * 9 * 64), DType::kInt8,
                              {64, 3, 3, 64}),
      builder::append_weights(p.weights, std::vector<float>(64, 1.0f), DType::kFloat32, {64}),
      builder::append_weights(p.weights, std::vector<float>(64), DType::kFloat32, {64})};
  cuda::QuantizedConvShape shape = runtime::int8_conv_layer_shape(params, "conv");
  shape.n = 1;
  const runtime::RunnerFactory factory = runtime::find_runner("conv_int8");
  ASSERT_NE(factory, nullptr);
  static const std::byte dummy[256] = {};  // prepare() reads no weight
  int kept = 0, eng4 = 0;
  for (const cuda::QuantizedConv& conv : cuda::QuantizedConv::candidates(first.get(), shape)) {
    plan::set_tactic(conv_layer, 0, conv.identity(), 0.0f);
    runtime::LayerSetup setup{p, conv_layer, params, {dummy, dummy, dummy}, true};
    const std::unique_ptr<runtime::LayerRunner> runner = factory(setup);
    const bool is_eng4 = conv.identity().find(":eng4:") != std::string::npos;
    eng4 += is_eng4;
    ASSERT_TRUE(runner->compiles(1)) << conv.identity() << ": nothing compiled yet";
    runner->prepare(1, {first.get(), nullptr});
    const bool kept_here = !runner->compiles(1);
    std::printf("%s: %s\n", conv.identity().c_str(),
                kept_here ? "kept for the next context" : "not kept (kernel cache or no text)");
    if (is_eng4) {
      EXPECT_TRUE(kept_here) << conv.identity();
    }
    if (!kept_here) continue;
    ++kept;
    EXPECT_TRUE(runner->compiles(2)) << conv.identity() << ": batch 2 was never compiled";
    const auto start = std::chrono::steady_clock::now();
    EXPECT_NE(runner->prepare(1, {second.get(), nullptr}), nullptr) << conv.identity();
    std::printf("  the second handle's prepare took %.4f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::printf("%d configs kept, %d eng4 configs offered\n", kept, eng4);
  if (eng4 == 0) GTEST_SKIP() << "cuDNN offers no eng4 config for " << shape.describe();
}

// ---- Corrupt layers: the runners' constructors touch no GPU. ----

ErrorKind construction_error(const Model& model, std::size_t layer, bool fp16,
                             std::string* message) {
  const plan::LayerDesc& l = model.plan.layers[layer];
  const runtime::RunnerFactory factory = runtime::find_runner(l.kind);
  if (!factory) {
    *message = cat("no runner for kind '", l.kind, "'");
    return ErrorKind::kInternal;
  }
  static const std::byte dummy[256] = {};
  runtime::LayerSetup setup{model.plan, l, nlohmann::json::parse(l.params), {}, fp16};
  for (std::size_t i = 0; i < l.weights.size(); ++i)
    setup.weights.push_back(dummy);
  try {
    factory(setup);
  } catch (const Error& e) {
    *message = e.what();
    return e.kind();
  }
  *message = "constructed";
  return ErrorKind::kInternal;
}

// The hand-built plans are valid plan files (no GPU needed), so a failure of
// the GPU tests above is the runtime's, not the test's.
TEST(LayerInt8Runners, TestPlansSerializeAndReadBack) {
  for (const Case& c : kCases) {
    const Model model(c);
    const plan::Plan back =
        plan::deserialize_plan(plan::serialize_plan(model.plan), "int8-test.plan");
    EXPECT_EQ(back.layers.size(), 5u) << c.name;
    EXPECT_EQ(back.layers[2].weights.at(0).dtype, DType::kInt8) << c.name;
    EXPECT_EQ(back.weights, model.plan.weights) << c.name;
    // The data reaches what the GPU test must check: saturation, nonzero
    // outputs, few near ties.
    for (const std::int64_t batch : {kMaxBatch, std::int64_t{1}}) {
      std::vector<bool> near_tie;
      std::vector<float> pre_round;
      std::int64_t saturated = 0;
      const std::vector<float> y =
          model.reference(model.input(batch), batch, near_tie, pre_round, saturated);
      const auto nonzero = std::count_if(y.begin(), y.end(), [](float v) { return v != 0.0f; });
      const auto ties = std::count(near_tie.begin(), near_tie.end(), true);
      std::printf("%s, batch %lld: %zu outputs, %lld saturate, %lld nonzero, %lld near ties\n",
                  c.name, static_cast<long long>(batch), y.size(),
                  static_cast<long long>(saturated), static_cast<long long>(nonzero),
                  static_cast<long long>(ties));
      EXPECT_GT(saturated, 0) << c.name << ", batch " << batch;
      EXPECT_GT(nonzero, static_cast<std::ptrdiff_t>(y.size() / 3)) << c.name;
    }
  }
}

TEST(LayerInt8Runners, RunnersExistAndAcceptTheirLayers) {
  const Model model(kCases[1]);
  for (std::size_t i = 1; i <= 3; ++i) {
    std::string message;
    construction_error(model, i, true, &message);
    EXPECT_EQ(message, "constructed") << model.plan.layers[i].kind;
  }
}

TEST(LayerInt8Runners, Fp32PlanIsAnInvalidArgumentNamingTheLayer) {
  const Model model(kCases[0]);
  for (std::size_t i = 1; i <= 3; ++i) {
    std::string message;
    EXPECT_EQ(construction_error(model, i, false, &message), ErrorKind::kInvalidArgument)
        << message;
    EXPECT_NE(message.find("needs an FP16 plan"), std::string::npos) << message;
    EXPECT_NE(message.find(model.plan.layers[i].name), std::string::npos) << message;
  }
}

TEST(LayerInt8Runners, CorruptLayersAreInvalidArguments) {
  std::string message;
  auto expect_invalid = [&](Model m, std::size_t layer, const char* what) {
    EXPECT_EQ(construction_error(m, layer, true, &message), ErrorKind::kInvalidArgument)
        << what << ": " << message;
  };
  auto with_param = [](Model m, std::size_t layer, const char* key, nlohmann::json value) {
    nlohmann::json p = nlohmann::json::parse(m.plan.layers[layer].params);
    p[key] = std::move(value);
    m.plan.layers[layer].params = p.dump();
    return m;
  };
  const Model base(kCases[0]);
  expect_invalid(with_param(base, 1, "scale", 0.0f), 1, "quantize scale 0");
  expect_invalid(with_param(base, 3, "scale", -0.5f), 3, "dequantize scale -0.5");
  expect_invalid(with_param(base, 1, "layout", "NCHW"), 1, "quantize layout NCHW");
  expect_invalid(with_param(base, 1, "c_pad", 4), 1, "quantize c_pad < c");
  expect_invalid(with_param(base, 2, "activation", "sigmoid"), 2, "conv_int8 sigmoid");
  expect_invalid(with_param(base, 2, "pad_bottom", 0), 2, "conv_int8 asymmetric pads");
  expect_invalid(with_param(base, 2, "has_residual", true), 2, "conv_int8 residual, one input");
  Model wrong_dtype = base;
  wrong_dtype.plan.tensors[2].dtype = DType::kFloat16;
  expect_invalid(wrong_dtype, 1, "quantize writing an FP16 tensor");
  expect_invalid(wrong_dtype, 2, "conv_int8 reading an FP16 tensor");
  Model fp16_filter = base;
  fp16_filter.plan.layers[2].weights[0].dtype = DType::kFloat16;
  expect_invalid(fp16_filter, 2, "conv_int8 with an FP16 filter");
  Model two_weights = base;
  two_weights.plan.layers[2].weights.pop_back();
  expect_invalid(two_weights, 2, "conv_int8 without its bias weight");
}

}  // namespace
}  // namespace anvil
