// 1x1 stride-1 convolutions as cuBLASLt GEMMs: the conv runner executing a
// "cublaslt:" tactic against the CPU reference (the Conv op + residual + activation) in FP32 and
// FP16, with and without residual, for every cuBLASLt candidate; the
// autotuner listing both libraries' candidates; its numerical check.
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "../unit/op_test_util.h"
#include "builder/gpu/autotune.h"
#include "builder/gpu/verify_tactic.h"
#include "cuda/check.h"
#include "cuda/cublaslt_gemm.h"
#include "cuda/handles.h"
#include "gpu_test.h"
#include "runtime/layer_runner.h"
#include "runtime/layers/layer_shapes.h"
#include "runtime/layers/tactic.h"
#include "storage_test_util.h"

namespace anvil {
namespace {

struct ConvCase {
  const char* name;
  bool fp16;
  std::int64_t n, c, k, h, w;  // real channels: padded to 8 (FP16) or 4 (FP32)
  bool bias, residual;
  const char* act;  // "none", "relu", "leaky_relu"
  std::int64_t kernel = 1, pad = 0;
};

std::int64_t padded(std::int64_t channels, bool fp16) {
  const std::int64_t to = fp16 ? 8 : 4;
  return (channels + to - 1) / to * to;
}

using test::download_stored;
using test::random_stored_values;
using test::rounded;
using test::to_storage;
using test::upload_stored;

// One conv layer in a plan of its own, its data in the engine's form (NHWC,
// padded channels, KRSC) and the CPU reference output in that form.
struct ConvLayer {
  explicit ConvLayer(const ConvCase& cc) : c(cc) {
    c_pad = padded(c.c, c.fp16);
    k_pad = padded(c.k, c.fp16);
    const std::int64_t rs = c.kernel * c.kernel;
    out_h = c.h + 2 * c.pad - c.kernel + 1;
    out_w = c.w + 2 * c.pad - c.kernel + 1;
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.c * rs));
    // Model tensors (NCHW, real channels) for the CPU reference.
    const std::vector<float> x = random_stored_values(c.n * c.c * c.h * c.w, 1, c.fp16);
    const std::vector<float> w = random_stored_values(c.k * c.c * rs, 2, c.fp16, scale);
    const std::vector<float> b =
        c.bias ? random_stored_values(c.k, 3, c.fp16) : std::vector<float>(c.k);
    // The residual's padded channels hold values too: the output's padded
    // channels must then be act(residual).
    residual_nhwc = random_stored_values(c.n * out_h * out_w * k_pad, 4, c.fp16);

    x_nhwc.assign(c.n * c.h * c.w * c_pad, 0.0f);
    for (std::int64_t n = 0; n < c.n; ++n)
      for (std::int64_t ch = 0; ch < c.c; ++ch)
        for (std::int64_t i = 0; i < c.h * c.w; ++i)
          x_nhwc[(n * c.h * c.w + i) * c_pad + ch] = x[(n * c.c + ch) * c.h * c.w + i];
    std::vector<float> filter(k_pad * rs * c_pad, 0.0f);
    for (std::int64_t k = 0; k < c.k; ++k)
      for (std::int64_t ch = 0; ch < c.c; ++ch)
        for (std::int64_t i = 0; i < rs; ++i)
          filter[(k * rs + i) * c_pad + ch] = w[(k * c.c + ch) * rs + i];
    std::vector<float> bias(k_pad, 0.0f);
    std::copy(b.begin(), b.end(), bias.begin());

    std::vector<float> residual_nchw(c.n * c.k * out_h * out_w);
    for (std::int64_t n = 0; n < c.n; ++n)
      for (std::int64_t k = 0; k < c.k; ++k)
        for (std::int64_t i = 0; i < out_h * out_w; ++i)
          residual_nchw[(n * c.k + k) * out_h * out_w + i] =
              residual_nhwc[(n * out_h * out_w + i) * k_pad + k];
    want = reference(x, w, b, residual_nchw);

    // The plan: filter (storage type) then the FP32 bias, 256-byte aligned.
    const std::vector<std::byte> filter_bytes = to_storage(filter, c.fp16);
    const std::int64_t bias_offset =
        (static_cast<std::int64_t>(filter_bytes.size()) + 255) / 256 * 256;
    plan.weights.assign(bias_offset + k_pad * 4, std::byte{0});
    std::memcpy(plan.weights.data(), filter_bytes.data(), filter_bytes.size());
    std::memcpy(plan.weights.data() + bias_offset, bias.data(), k_pad * 4);
    plan.options.fp16 = c.fp16;
    plan.options.tf32 = false;
    params = {{"c", c.c},
              {"c_pad", c_pad},
              {"k", c.k},
              {"k_pad", k_pad},
              {"r", c.kernel},
              {"s", c.kernel},
              {"in_h", c.h},
              {"in_w", c.w},
              {"out_h", out_h},
              {"out_w", out_w},
              {"pad_top", c.pad},
              {"pad_left", c.pad},
              {"pad_bottom", c.pad},
              {"pad_right", c.pad},
              {"stride_h", 1},
              {"stride_w", 1},
              {"dil_h", 1},
              {"dil_w", 1},
              {"groups", 1},
              {"has_bias", c.bias},
              {"has_residual", c.residual},
              {"activation", c.act},
              {"alpha", std::string(c.act) == "leaky_relu" ? 0.1f : 0.0f},
              {"beta", 0.0f},
              {"clip_min", -FLT_MAX},
              {"clip_max", FLT_MAX}};
    plan::LayerDesc layer;
    layer.name = c.name;
    layer.kind = "conv";
    layer.inputs = c.residual ? std::vector<int>{0, 2} : std::vector<int>{0};
    layer.outputs = {1};
    layer.params = params.dump();
    layer.weights = {{0,
                      static_cast<std::int64_t>(filter_bytes.size()),
                      c.fp16 ? DType::kFloat16 : DType::kFloat32,
                      {k_pad, c.kernel, c.kernel, c_pad}},
                     {bias_offset, k_pad * 4, DType::kFloat32, {k_pad}}};
    plan.layers.push_back(layer);

    dx = upload_stored(x_nhwc, c.fp16);
    dfilter = upload_stored(filter, c.fp16);
    dbias = upload_stored(bias, false);
    dresidual = upload_stored(residual_nhwc, c.fp16);
    dy = cuda::DeviceBuffer(want.size() * (c.fp16 ? 2 : 4));
  }

  float activate(float v) const {
    const std::string act = c.act;
    if (act == "relu") return std::max(v, 0.0f);
    if (act == "leaky_relu") return v < 0 ? 0.1f * v : v;
    return v;
  }

  // act(conv(x, W) + b + residual): the CPU Conv op, then the residual and
  // the activation, as NHWC with the padded channels act(0 + residual).
  std::vector<float> reference(const std::vector<float>& x, const std::vector<float>& w,
                               const std::vector<float>& b,
                               const std::vector<float>& residual_nchw) const {
    testing::OpNode conv("Conv", 13, 3);
    if (c.pad > 0) conv.attr("pads", std::vector<std::int64_t>{c.pad, c.pad, c.pad, c.pad});
    const Tensor xt = testing::f32({c.n, c.c, c.h, c.w}, x);
    const Tensor wt = testing::f32({c.k, c.c, c.kernel, c.kernel}, w);
    const Tensor bt = testing::f32({c.k}, b);
    std::vector<float> y = testing::values_of(conv.run_one({&xt, &wt, &bt}));
    for (std::size_t i = 0; i < y.size(); ++i)
      y[i] = activate(y[i] + (c.residual ? residual_nchw[i] : 0.0f));
    std::vector<float> out(c.n * out_h * out_w * k_pad);
    for (std::int64_t n = 0; n < c.n; ++n)
      for (std::int64_t i = 0; i < out_h * out_w; ++i)
        for (std::int64_t k = 0; k < k_pad; ++k) {
          const std::int64_t o = (n * out_h * out_w + i) * k_pad + k;
          out[o] = k < c.k ? y[(n * c.k + k) * out_h * out_w + i]
                           : activate(c.residual ? residual_nhwc[o] : 0.0f);
        }
    return out;
  }

  // max|got - want| / max|want|, with the worst element named.
  double error(const std::vector<float>& got, std::string* where) const {
    const test::Worst w = test::worst_element(got, want);
    const std::size_t worst = w.index;
    const std::int64_t k = static_cast<std::int64_t>(worst) % k_pad;
    const std::int64_t pixel = static_cast<std::int64_t>(worst) / k_pad;
    *where =
        cat(c.name, " (n=", c.n, " c=", c.c, "/", c_pad, " k=", c.k, "/", k_pad, " ", c.h, "x", c.w,
            c.fp16 ? " fp16" : " fp32", "): worst at y[n=", pixel / (out_h * out_w), ", pixel ",
            pixel % (out_h * out_w), ", k=", k, "] got ", got[worst], " want ", want[worst]);
    return w.error;
  }

  runtime::ConvLayerShape shape(std::int64_t batch) const {
    runtime::ConvLayerShape s = runtime::conv_layer_shape(params, c.name, c.fp16, false);
    s.shape.n = batch;
    return s;
  }

  // The layer through the engine's conv runner with `tactic` ({} for none).
  std::vector<float> run(const std::string& tactic) {
    plan.layers[0].tactic = tactic;
    const runtime::RunnerFactory factory = runtime::find_runner("conv");
    EXPECT_NE(factory, nullptr);
    const runtime::LayerSetup setup{
        plan, plan.layers[0], params, {dfilter.data(), dbias.data()}, c.fp16};
    const std::unique_ptr<runtime::LayerRunner> runner = factory(setup);
    const runtime::Handles handles{cudnn.get(), lt.get()};
    std::unique_ptr<runtime::PreparedLayer> prepared = runner->prepare(c.n, handles);
    const cuda::DeviceBuffer workspace(std::max<std::size_t>(prepared->workspace_bytes(), 256));
    runtime::LaunchArgs args;
    args.inputs = {dx.data()};
    if (c.residual) args.inputs.push_back(dresidual.data());
    args.outputs = {dy.data()};
    args.workspace = workspace.data();
    args.workspace_bytes = workspace.bytes();
    args.handles = handles;
    args.stream = stream.get();
    ANVIL_GPU_CHECK(cudaMemsetAsync(dy.data(), 0xff, dy.bytes(), stream.get()));  // NaNs
    prepared->bind(args);
    prepared->enqueue(args);
    stream.synchronize();
    return download_stored(dy.data(), want.size(), c.fp16);
  }

  // The same GEMM straight through cuda::Gemm with `gemm`'s algorithm.
  std::vector<float> run_gemm(const cuda::Gemm& gemm) {
    const cuda::DeviceBuffer workspace(std::max<std::size_t>(gemm.workspace_bytes(), 256));
    const cuda::DeviceBuffer bias = upload_stored(
        std::vector<float>(
            reinterpret_cast<const float*>(plan.weights.data() + plan.layers[0].weights[1].offset),
            reinterpret_cast<const float*>(plan.weights.data() + plan.layers[0].weights[1].offset) +
                k_pad),
        c.fp16);
    ANVIL_GPU_CHECK(cudaMemsetAsync(dy.data(), 0xff, dy.bytes(), stream.get()));
    gemm.execute(lt.get(), stream.get(), dx.data(), dfilter.data(), bias.data(), dresidual.data(),
                 dy.data(), workspace.data(), workspace.bytes());
    stream.synchronize();
    return download_stored(dy.data(), want.size(), c.fp16);
  }

  ConvCase c;
  std::int64_t c_pad = 0, k_pad = 0, out_h = 0, out_w = 0;
  nlohmann::json params;
  plan::Plan plan;
  std::vector<float> x_nhwc, residual_nhwc, want;
  cuda::DeviceBuffer dx, dfilter, dbias, dresidual, dy;
  cuda::CudnnHandle cudnn;
  cuda::CublasLtHandle lt;
  cuda::Stream stream;
};

std::vector<ConvCase> one_by_one_cases(bool fp16) {
  return {
      {"1x1 64->256 bias relu", fp16, 2, 64, 256, 14, 14, true, false, "relu"},
      {"1x1 64->256 bias residual relu", fp16, 2, 64, 256, 14, 14, true, true, "relu"},
      {"1x1 64->256 residual none", fp16, 2, 64, 256, 14, 14, false, true, "none"},
      {"1x1 odd 13->21 bias none batch 1", fp16, 1, 13, 21, 9, 7, true, false, "none"},
      {"1x1 odd 19->37 residual relu batch 1", fp16, 1, 19, 37, 5, 5, true, true, "relu"},
      {"1x1 32->48 leaky relu (post kernel)", fp16, 3, 32, 48, 6, 6, true, true, "leaky_relu"},
  };
}

void check_cublaslt_tactics(bool fp16, double tolerance) {
  for (const ConvCase& cc : one_by_one_cases(fp16)) {
    SCOPED_TRACE(cc.name);
    ConvLayer layer(cc);
    const std::optional<runtime::ConvAsGemm> as_gemm = runtime::conv_as_gemm(layer.shape(cc.n));
    ASSERT_TRUE(as_gemm.has_value());
    EXPECT_EQ(as_gemm->gemm.m, cc.n * cc.h * cc.w);
    EXPECT_EQ(as_gemm->gemm.k, layer.c_pad);
    EXPECT_EQ(as_gemm->gemm.n, layer.k_pad);
    EXPECT_EQ(as_gemm->gemm.relu, std::string(cc.act) == "relu");
    const std::vector<cuda::Gemm> gemms =
        cuda::Gemm::candidates(layer.lt.get(), as_gemm->gemm, std::size_t{32} << 20);
    ASSERT_FALSE(gemms.empty());
    for (const cuda::Gemm& gemm : gemms) {
      const std::string identity = runtime::cublaslt_conv_identity(gemm.identity());
      const std::vector<float> got =
          layer.run(nlohmann::json{{"identity", identity}, {"ms", 0.1}}.dump());
      std::string where;
      const double err = layer.error(got, &where);
      EXPECT_LE(err, tolerance) << where << " with tactic " << identity;
      std::printf("%s  %s  error %.2e\n", cc.name, identity.substr(0, 40).c_str(), err);
      // The runner ran this very algorithm, not a cuDNN fallback: same bits
      // as cuda::Gemm (the post activation aside).
      if (as_gemm->post_activation == cuda::kernels::Activation::kNone) {
        const std::vector<float> direct = layer.run_gemm(gemm);
        EXPECT_EQ(std::memcmp(direct.data(), got.data(), got.size() * sizeof(float)), 0)
            << "the conv runner's output differs from cuda::Gemm's with " << identity;
      }
    }
  }
}

TEST(ConvGemmTactic, Fp32CublasLtTacticMatchesTheCpuConv) {
  ANVIL_REQUIRE_GPU();
  check_cublaslt_tactics(false, 1e-5);
}

TEST(ConvGemmTactic, Fp16CublasLtTacticMatchesTheCpuConv) {
  ANVIL_REQUIRE_GPU();
  check_cublaslt_tactics(true, 1e-2);
}

TEST(ConvGemmTactic, OnlyOneByOneStrideOneConvsAreGemms) {
  ANVIL_REQUIRE_GPU();  // the shapes are checked against cuDNN's limits on construction
  ConvLayer three({"3x3 p1", false, 1, 16, 16, 8, 8, true, false, "relu", 3, 1});
  EXPECT_FALSE(runtime::conv_as_gemm(three.shape(1)).has_value());
  ConvLayer one({"1x1", false, 1, 16, 16, 8, 8, true, false, "relu"});
  runtime::ConvLayerShape strided = one.shape(1);
  strided.shape.stride_h = strided.shape.stride_w = 2;
  EXPECT_FALSE(runtime::conv_as_gemm(strided).has_value());
  runtime::ConvLayerShape grouped = one.shape(1);
  grouped.shape.groups = 2;
  EXPECT_FALSE(runtime::conv_as_gemm(grouped).has_value());
  EXPECT_TRUE(runtime::conv_as_gemm(one.shape(1)).has_value());
}

TEST(ConvGemmTactic, AutotuneTimesBothLibrariesForA1x1Conv) {
  ANVIL_REQUIRE_GPU();
  for (const bool fp16 : {false, true}) {
    ConvLayer layer({"1x1 64->256 residual relu", fp16, 8, 64, 256, 28, 28, true, true, "relu"});
    const auto timings = builder::time_candidates(layer.plan, layer.plan.layers[0], 8, 3);
    int cudnn = 0, cublaslt = 0;
    for (const auto& t : timings) {
      std::printf("%s %-60s %8.4f ms\n", fp16 ? "fp16" : "fp32", t.identity.substr(0, 60).c_str(),
                  t.ms);
      ++(runtime::cublaslt_algorithm(t.identity) ? cublaslt : cudnn);
    }
    EXPECT_GT(cudnn, 0) << "no cuDNN candidate listed";
    EXPECT_GT(cublaslt, 0) << "no cuBLASLt candidate listed";
    for (std::size_t i = 1; i < timings.size(); ++i)
      EXPECT_LE(timings[i - 1].ms, timings[i].ms) << "candidates are not fastest first";

    ConvLayer three({"3x3 64->64", fp16, 2, 64, 64, 14, 14, true, false, "relu", 3, 1});
    for (const auto& t : builder::time_candidates(three.plan, three.plan.layers[0], 2, 1))
      EXPECT_FALSE(runtime::cublaslt_algorithm(t.identity)) << "a cuBLASLt tactic for a 3x3 conv";
  }
}

TEST(ConvGemmTactic, AutotunedWinnerRunsAndMatches) {
  ANVIL_REQUIRE_GPU();
  for (const bool fp16 : {false, true}) {
    ConvLayer layer({"1x1 64->256 residual relu", fp16, 4, 64, 256, 14, 14, true, true, "relu"});
    std::vector<std::string> logged;
    builder::AutotuneOptions options;
    options.batch = 4;
    options.iterations = 3;
    options.log = [&](const std::string& line) { logged.push_back(line); };
    const auto chosen = builder::autotune(layer.plan, options);
    ASSERT_EQ(chosen.size(), 1u);
    std::printf("%s winner %s (%.4f ms of %d)\n", fp16 ? "fp16" : "fp32",
                chosen[0].identity.substr(0, 60).c_str(), chosen[0].ms, chosen[0].candidates);
    for (const std::string& line : logged)
      std::printf("  %s\n", line.c_str());
    EXPECT_EQ(chosen[0].rejected.size(), logged.size());
    std::string where;
    const std::vector<float> got = layer.run(layer.plan.layers[0].tactic);
    // What the autotuner's check guarantees (builder::tactic_tolerance).
    EXPECT_LE(layer.error(got, &where), fp16 ? 1e-2 : 1e-4) << where;
  }
}

TEST(ConvGemmTactic, TheNumericalCheckCatchesAWrongOutput) {
  ANVIL_REQUIRE_GPU();
  for (const bool fp16 : {false, true}) {
    ConvLayer layer({"1x1 odd 19->37 residual relu", fp16, 2, 19, 37, 5, 5, true, true, "relu"});
    const std::vector<float> good = layer.run("{}");  // the cuDNN heuristic's choice
    const runtime::ConvLayerShape shape = layer.shape(layer.c.n);
    builder::HostDeviceValues x{layer.x_nhwc, upload_stored(layer.x_nhwc, fp16)};
    builder::HostDeviceValues residual{layer.residual_nhwc,
                                       upload_stored(layer.residual_nhwc, fp16)};
    const auto ok = builder::check_conv_output(layer.plan, layer.plan.layers[0], shape, x,
                                               &residual, layer.dy.data());
    EXPECT_FALSE(ok.has_value()) << *ok;
    // One wrong element of the last image (the one checked).
    std::vector<float> bad = good;
    bad[bad.size() - 5] += 0.5f;
    const cuda::DeviceBuffer dbad = upload_stored(bad, fp16);
    const auto caught = builder::check_conv_output(layer.plan, layer.plan.layers[0], shape, x,
                                                   &residual, dbad.data());
    ASSERT_TRUE(caught.has_value()) << "a wrong element went unnoticed";
    std::printf("caught: %s\n", caught->c_str());
    EXPECT_NEAR(builder::tactic_tolerance(fp16, false), fp16 ? 1e-2 : 1e-4, 1e-12);
  }
}

}  // namespace
}  // namespace anvil
