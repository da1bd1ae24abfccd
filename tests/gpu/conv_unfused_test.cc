// The unfused conv tactic ("unfused:<engine>": cuDNN's convolution alone, then
// y = act(y + bias[k] + residual) by kernels::conv_epilogue), which FP32
// builds without TF32 fall back to where cuDNN offers only TF32 engines for
// the fused graph. Checked against the CPU Conv op: the epilogue kernel on its
// own (both storage types, vector and scalar paths, captured in a CUDA graph);
// the conv runner executing every conv-only engine config; the autotuner
// choosing an unfused tactic for a graph with no fused FP32 engine; and a
// small model built with tf32=false through Engine and ExecutionContext.
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "../unit/op_test_util.h"
#include "../unit/pass_test_util.h"
#include "builder/gpu/autotune.h"
#include "cuda/check.h"
#include "cuda/cudnn_conv.h"
#include "cuda/handles.h"
#include "cuda/kernels/conv_epilogue.h"
#include "engine_test_util.h"
#include "gpu_test.h"
#include "runtime/layer_runner.h"
#include "runtime/layers/layer_shapes.h"
#include "runtime/layers/tactic.h"
#include "storage_test_util.h"

namespace anvil {
namespace {

using cuda::kernels::Activation;
using cuda::kernels::StorageType;

using test::download_stored;
using test::random_stored_values;
using test::rounded;
using test::to_storage;
using test::upload_stored;

// The activations under test, written out here rather than taken from
// activation.h, so that the kernel is checked against independent math.
float activate(const std::string& act, float v) {
  if (act == "relu") return v > 0.0f ? v : 0.0f;
  if (act == "leaky_relu") return v < 0.0f ? 0.1f * v : v;
  if (act == "hard_swish") return v * std::clamp(v / 6.0f + 0.5f, 0.0f, 1.0f);
  return v;
}

Activation activation_enum(const std::string& act) {
  if (act == "relu") return Activation::kRelu;
  if (act == "leaky_relu") return Activation::kLeakyRelu;
  if (act == "hard_swish") return Activation::kHardSwish;
  return Activation::kNone;
}

// max|got - want| / max|want| (NaN: infinite); `where` names the worst element
// as "pixel p, channel c" of an NHWC tensor with `channels` channels.
double normalized_error(const std::vector<float>& got, const std::vector<float>& want,
                        std::int64_t channels, std::string* where) {
  const test::Worst w = test::worst_element(got, want);
  const std::size_t worst = w.index;
  *where = cat("worst at element ", worst, " (pixel ", worst / channels, ", channel ",
               worst % channels, ") got ", got[worst], " want ", want[worst], " of ", want.size());
  return w.error;
}

struct Case {
  const char* name;
  std::int64_t c, k, h, w, kernel, stride, pad, dil;  // real channels; padded to 4 / 8
  bool bias, residual;
  const char* act;  // "none", "relu", "leaky_relu" (alpha 0.1), "hard_swish"
};

const Case kCases[] = {
    {"3x3 s1 p1 64->64 bias residual relu", 64, 64, 14, 14, 3, 1, 1, 1, true, true, "relu"},
    {"1x1 s1 32->48 bias residual relu", 32, 48, 9, 7, 1, 1, 0, 1, true, true, "relu"},
    {"3x3 s2 p1 32->64 bias residual relu (strided)", 32, 64, 15, 15, 3, 2, 1, 1, true, true,
     "relu"},
    {"1x1 s2 64->128 bias none (downsample)", 64, 128, 14, 14, 1, 2, 0, 1, true, false, "none"},
    {"3x3 dil2 p2 16->24 no bias leaky_relu", 16, 24, 20, 20, 3, 1, 2, 2, false, false,
     "leaky_relu"},
    {"3x3 s1 p1 24->40 bias residual hard_swish", 24, 40, 10, 10, 3, 1, 1, 1, true, true,
     "hard_swish"},
    {"3x3 odd 13->21 bias residual leaky_relu", 13, 21, 9, 11, 3, 1, 1, 1, true, true,
     "leaky_relu"},
};

std::int64_t padded(std::int64_t channels, bool fp16) {
  const std::int64_t to = fp16 ? 8 : 4;
  return (channels + to - 1) / to * to;
}

// One conv layer in a plan of its own (weights as lowering stores them), its
// device data in the engine's form (NHWC, padded channels, KRSC) and the CPU
// reference output in that form: the padded channels are act(residual).
struct Layer {
  Layer(const Case& cc, std::int64_t batch, bool half_storage)
      : c(cc), n(batch), fp16(half_storage) {
    c_pad = padded(c.c, fp16);
    k_pad = padded(c.k, fp16);
    const std::int64_t rs = c.kernel * c.kernel;
    out_h = (c.h + 2 * c.pad - c.dil * (c.kernel - 1) - 1) / c.stride + 1;
    out_w = (c.w + 2 * c.pad - c.dil * (c.kernel - 1) - 1) / c.stride + 1;
    const std::int64_t pq = out_h * out_w;
    const std::vector<float> x = random_stored_values(n * c.c * c.h * c.w, 1, fp16);
    const std::vector<float> w =
        random_stored_values(c.k * c.c * rs, 2, fp16, 1.0f / std::sqrt(float(c.c * rs)));
    const std::vector<float> b = random_stored_values(c.k, 3, fp16);
    residual = random_stored_values(n * pq * k_pad, 4, fp16);

    x_nhwc.assign(n * c.h * c.w * c_pad, 0.0f);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t ch = 0; ch < c.c; ++ch)
        for (std::int64_t p = 0; p < c.h * c.w; ++p)
          x_nhwc[(i * c.h * c.w + p) * c_pad + ch] = x[(i * c.c + ch) * c.h * c.w + p];
    std::vector<float> filter(k_pad * rs * c_pad, 0.0f);
    for (std::int64_t k = 0; k < c.k; ++k)
      for (std::int64_t ch = 0; ch < c.c; ++ch)
        for (std::int64_t p = 0; p < rs; ++p)
          filter[(k * rs + p) * c_pad + ch] = w[(k * c.c + ch) * rs + p];
    bias.assign(k_pad, 0.0f);
    if (c.bias) std::copy(b.begin(), b.end(), bias.begin());

    testing::OpNode conv("Conv", 13, c.bias ? 3 : 2);
    conv.attr("kernel_shape", std::vector<std::int64_t>{c.kernel, c.kernel})
        .attr("pads", std::vector<std::int64_t>{c.pad, c.pad, c.pad, c.pad})
        .attr("strides", std::vector<std::int64_t>{c.stride, c.stride})
        .attr("dilations", std::vector<std::int64_t>{c.dil, c.dil});
    const Tensor xt = testing::f32({n, c.c, c.h, c.w}, x);
    const Tensor wt = testing::f32({c.k, c.c, c.kernel, c.kernel}, w);
    const Tensor bt = testing::f32({c.k}, b);
    std::vector<const Tensor*> inputs{&xt, &wt};
    if (c.bias) inputs.push_back(&bt);
    const std::vector<float> y = testing::values_of(conv.run_one(inputs));
    want.assign(n * pq * k_pad, 0.0f);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t p = 0; p < pq; ++p)
        for (std::int64_t k = 0; k < k_pad; ++k) {
          const std::int64_t o = (i * pq + p) * k_pad + k;
          const float v =
              (k < c.k ? y[(i * c.k + k) * pq + p] : 0.0f) + (c.residual ? residual[o] : 0.0f);
          want[o] = activate(c.act, v);
        }

    const std::vector<std::byte> filter_bytes = to_storage(filter, fp16);
    const std::int64_t bias_offset = (std::int64_t(filter_bytes.size()) + 255) / 256 * 256;
    plan.weights.assign(bias_offset + k_pad * 4, std::byte{0});
    std::memcpy(plan.weights.data(), filter_bytes.data(), filter_bytes.size());
    std::memcpy(plan.weights.data() + bias_offset, bias.data(), k_pad * 4);
    plan.options.fp16 = fp16;
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
              {"stride_h", c.stride},
              {"stride_w", c.stride},
              {"dil_h", c.dil},
              {"dil_w", c.dil},
              {"groups", 1},
              {"has_bias", c.bias},
              {"has_residual", c.residual},
              {"activation", c.act},
              {"alpha", 0.1f},
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
                      std::int64_t(filter_bytes.size()),
                      fp16 ? DType::kFloat16 : DType::kFloat32,
                      {k_pad, c.kernel, c.kernel, c_pad}},
                     {bias_offset, k_pad * 4, DType::kFloat32, {k_pad}}};
    plan.layers.push_back(layer);

    dx = upload_stored(x_nhwc, fp16);
    dfilter = upload_stored(filter, fp16);
    dbias = upload_stored(bias, fp16);  // as runtime::upload_bias: the storage type
    dresidual = upload_stored(residual, fp16);
    dy = cuda::DeviceBuffer(want.size() * (fp16 ? 2 : 4));
  }

  std::string describe() const {
    return cat(c.name, " n=", n, " c=", c.c, "/", c_pad, " k=", c.k, "/", k_pad, " ", c.h, "x", c.w,
               " -> ", out_h, "x", out_w, fp16 ? " fp16" : " fp32");
  }

  runtime::ConvLayerShape shape() const {
    runtime::ConvLayerShape s = runtime::conv_layer_shape(params, c.name, fp16, false);
    s.shape.n = n;
    return s;
  }

  // The layer through the engine's conv runner with the plan's `tactic`.
  std::vector<float> run(const std::string& tactic) {
    plan.layers[0].tactic = tactic;
    const runtime::RunnerFactory factory = runtime::find_runner("conv");
    EXPECT_NE(factory, nullptr);
    const runtime::LayerSetup setup{
        plan, plan.layers[0], params, {dfilter.data(), dbias.data()}, fp16};
    const std::unique_ptr<runtime::LayerRunner> runner = factory(setup);
    const runtime::Handles handles{cudnn.get(), lt.get()};
    std::unique_ptr<runtime::PreparedLayer> prepared = runner->prepare(n, handles);
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
    return download_stored(dy.data(), want.size(), fp16);
  }

  // `conv` (the conv-only graph) then the epilogue kernel, called directly.
  std::vector<float> run_direct(const cuda::FusedConv& conv) {
    const cuda::DeviceBuffer workspace(std::max<std::size_t>(conv.workspace_bytes(), 256));
    ANVIL_GPU_CHECK(cudaMemsetAsync(dy.data(), 0xff, dy.bytes(), stream.get()));
    conv.execute(cudnn.get(), stream.get(), dx.data(), dfilter.data(), nullptr, nullptr, dy.data(),
                 workspace.data());
    cuda::kernels::conv_epilogue(dy.data(), c.bias ? dbias.data() : nullptr,
                                 c.residual ? dresidual.data() : nullptr, std::int64_t(want.size()),
                                 k_pad, fp16 ? StorageType::kFloat16 : StorageType::kFloat32,
                                 activation_enum(c.act), {.alpha = 0.1f}, stream.get());
    stream.synchronize();
    return download_stored(dy.data(), want.size(), fp16);
  }

  Case c;
  std::int64_t n;
  bool fp16;
  std::int64_t c_pad = 0, k_pad = 0, out_h = 0, out_w = 0;
  nlohmann::json params;
  plan::Plan plan;
  std::vector<float> x_nhwc, bias, residual, want;
  cuda::DeviceBuffer dx, dfilter, dbias, dresidual, dy;
  cuda::CudnnHandle cudnn;
  cuda::CublasLtHandle lt;
  cuda::Stream stream;
};

// How many fused engine configs keep the layer's numerics (0 where cuDNN
// cannot build the fused graph at all): printed, so a run shows which cases
// need the unfused fallback on this GPU and cuDNN.
std::size_t fused_count(Layer& layer) {
  try {
    return cuda::FusedConv::candidates(layer.cudnn.get(), layer.shape().shape).size();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported) throw;
    return 0;
  }
}

void check_every_unfused_engine(bool fp16, double tolerance) {
  for (const Case& cc : kCases)
    for (const std::int64_t batch : {1, 3}) {
      Layer layer(cc, batch, fp16);
      SCOPED_TRACE(layer.describe());
      const runtime::UnfusedConv unfused = runtime::unfused_conv(layer.shape());
      const std::vector<cuda::FusedConv> convs =
          cuda::FusedConv::candidates(layer.cudnn.get(), unfused.conv);
      std::printf("%s: %zu fused engine configs, %zu conv-only\n", layer.describe().c_str(),
                  fused_count(layer), convs.size());
      ASSERT_FALSE(convs.empty()) << "no cuDNN engine runs the conv alone without TF32";
      for (const cuda::FusedConv& conv : convs) {
        const std::string identity = runtime::unfused_conv_identity(conv.identity());
        const std::vector<float> got =
            layer.run(nlohmann::json{{"identity", identity}, {"ms", 0.1}}.dump());
        std::string where;
        const double err = normalized_error(got, layer.want, layer.k_pad, &where);
        std::printf("  %-40s error %.2e (%s)\n", identity.c_str(), err, where.c_str());
        EXPECT_LE(err, tolerance) << identity << ": " << where;
        // The runner ran this very engine unfused, not a fused fallback of
        // choose_tactic: the same bits as the conv and the kernel called directly.
        const std::vector<float> direct = layer.run_direct(conv);
        EXPECT_EQ(std::memcmp(direct.data(), got.data(), got.size() * sizeof(float)), 0)
            << "the conv runner's output differs from conv-only + conv_epilogue with " << identity;
      }
    }
}

TEST(ConvUnfused, EveryConvOnlyEngineMatchesTheCpuConvFp32NoTf32) {
  ANVIL_REQUIRE_GPU();
  check_every_unfused_engine(false, 1e-4);
}

TEST(ConvUnfused, EveryConvOnlyEngineMatchesTheCpuConvFp16) {
  ANVIL_REQUIRE_GPU();
  check_every_unfused_engine(true, 1e-2);
}

// The kernel alone: y = act(y + bias[c] + residual) for both storage types,
// with and without bias and residual, on the vector path (aligned, channels a
// multiple of the vector) and the scalar one (odd channels, offset pointers),
// and replayed from a CUDA graph (it allocates and synchronizes nothing).
TEST(ConvUnfused, EpilogueKernelMatchesTheHostLoop) {
  ANVIL_REQUIRE_GPU();
  struct Layout {
    std::int64_t pixels, channels, offset;  // offset: elements the pointers are shifted by
  };
  for (const bool fp16 : {false, true})
    for (const Layout l : {Layout{37, 24, 0}, Layout{29, 5, 1}, Layout{1, 8, 0}})
      for (const std::string act : {"none", "relu", "leaky_relu", "hard_swish"})
        for (const int parts : {0, 1, 2, 3}) {  // bit 0: bias, bit 1: residual
          const bool with_bias = parts & 1, with_residual = parts & 2;
          const std::int64_t n = l.pixels * l.channels;
          const std::string what =
              cat(fp16 ? "fp16" : "fp32", " ", l.pixels, " pixels x ", l.channels, " channels",
                  l.offset ? " (unaligned)" : "", " ", act, with_bias ? " +bias" : "",
                  with_residual ? " +residual" : "");
          SCOPED_TRACE(what);
          const std::vector<float> y0 = random_stored_values(n + l.offset, 11, fp16, 3.0f);
          const std::vector<float> b = random_stored_values(l.channels + l.offset, 12, fp16);
          const std::vector<float> r = random_stored_values(n + l.offset, 13, fp16);
          std::vector<float> want(n);
          for (std::int64_t i = 0; i < n; ++i)
            want[i] = rounded(
                activate(act, y0[l.offset + i] + (with_bias ? b[l.offset + i % l.channels] : 0) +
                                  (with_residual ? r[l.offset + i] : 0)),
                fp16);
          const cuda::DeviceBuffer dy = upload_stored(y0, fp16), db = upload_stored(b, fp16),
                                   dr = upload_stored(r, fp16);
          const std::size_t size = fp16 ? 2 : 4;
          auto at = [&](const cuda::DeviceBuffer& buf) {
            return static_cast<std::byte*>(buf.data()) + l.offset * size;
          };
          const cuda::Stream stream;
          cudaGraph_t graph = nullptr;
          ANVIL_GPU_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeThreadLocal));
          cuda::kernels::conv_epilogue(at(dy), with_bias ? at(db) : nullptr,
                                       with_residual ? at(dr) : nullptr, n, l.channels,
                                       fp16 ? StorageType::kFloat16 : StorageType::kFloat32,
                                       activation_enum(act), {.alpha = 0.1f}, stream.get());
          ANVIL_GPU_CHECK(cudaStreamEndCapture(stream.get(), &graph));
          cudaGraphExec_t exec = nullptr;
          ANVIL_GPU_CHECK(cudaGraphInstantiate(&exec, graph, 0));
          ANVIL_GPU_CHECK(cudaGraphLaunch(exec, stream.get()));
          stream.synchronize();
          ANVIL_GPU_CHECK(cudaGraphExecDestroy(exec));
          ANVIL_GPU_CHECK(cudaGraphDestroy(graph));
          const std::vector<float> all = download_stored(dy.data(), n + l.offset, fp16);
          const std::vector<float> got(all.begin() + l.offset, all.end());
          std::string where;
          const double err = normalized_error(got, want, l.channels, &where);
          EXPECT_LE(err, fp16 ? 1e-3 : 1e-6) << where;
          if (l.offset > 0) {
            EXPECT_EQ(all[0], y0[0]) << "wrote before the output";
          }
        }
}

// "3x3 dil2 no bias leaky_relu": cuDNN 9.14 on an H200 had no FP32 engine
// without TF32 for this fused graph (tests/gpu/cudnn_conv_test.cc), so a
// --no-tf32 build failed there before the unfused fallback.
TEST(ConvUnfused, AutotuneFallsBackToUnfusedWhenNoFusedEngineKeepsFp32) {
  ANVIL_REQUIRE_GPU();
  for (const Case& cc : {kCases[4], kCases[0]}) {
    Layer layer(cc, 4, false);
    SCOPED_TRACE(layer.describe());
    const std::size_t fused = fused_count(layer);
    const auto timings = builder::time_candidates(layer.plan, layer.plan.layers[0], 4, 3);
    int unfused = 0;
    for (const auto& t : timings) {
      std::printf("  %-50s %8.4f ms\n", t.identity.substr(0, 50).c_str(), t.ms);
      unfused += runtime::unfused_conv_engine(t.identity).has_value();
    }
    std::printf("%s: %zu fused engine configs, %d unfused candidates\n", layer.describe().c_str(),
                fused, unfused);
    if (fused == 0)
      EXPECT_GT(unfused, 0) << "no fused engine and no unfused candidate";
    else
      EXPECT_EQ(unfused, 0) << "unfused candidates are a fallback only";

    builder::AutotuneOptions options;
    options.batch = 4;
    options.iterations = 3;
    const auto chosen = builder::autotune(layer.plan, options);
    ASSERT_EQ(chosen.size(), 1u);
    std::printf("  winner %s (%.4f ms)\n", chosen[0].identity.c_str(), chosen[0].ms);
    EXPECT_EQ(runtime::unfused_conv_engine(chosen[0].identity).has_value(), fused == 0)
        << chosen[0].identity;
    std::string where;
    const std::vector<float> got = layer.run(layer.plan.layers[0].tactic);
    EXPECT_LE(normalized_error(got, layer.want, layer.k_pad, &where), 1e-4) << where;
  }
}

// x -> Conv 3x3 dil2 (no bias) -> LeakyRelu -> a; Conv 3x3 + bias + a ->
// HardSwish -> b; Conv 3x3 s2 + bias -> Relu: built FP32 with tf32=false,
// which failed before the unfused fallback where cuDNN has only TF32 engines
// for a fused graph, then run at batches 4 and 1, plain and from a CUDA graph.
void small_model(passes::testing::GraphBuilder& g) {
  ir::Value* x = g.input("x", ir::Shape({ir::Dim::named("N"), ir::Dim::known(16),
                                         ir::Dim::known(20), ir::Dim::known(20)}));
  auto conv = [&](ir::Value* in, std::int64_t c, std::int64_t k, std::int64_t stride,
                  std::int64_t dil, bool bias) {
    std::vector<ir::Value*> inputs{in, g.weight("w", {k, c, 3, 3}, 0.2f)};
    if (bias) inputs.push_back(g.weight("b", {k}));
    ir::Attributes attrs;
    attrs.set("kernel_shape", std::vector<std::int64_t>{3, 3});
    attrs.set("pads", std::vector<std::int64_t>{dil, dil, dil, dil});
    attrs.set("strides", std::vector<std::int64_t>{stride, stride});
    attrs.set("dilations", std::vector<std::int64_t>{dil, dil});
    return g.node("Conv", std::move(inputs), std::move(attrs));
  };
  ir::Attributes leaky;
  leaky.set("alpha", 0.1f);
  ir::Value* a = g.node("LeakyRelu", {conv(x, 16, 24, 1, 2, false)}, std::move(leaky));
  ir::Value* b = g.node("HardSwish", {g.node("Add", {conv(a, 24, 24, 1, 1, true), a})});
  g.output(g.node("Relu", {conv(b, 24, 32, 2, 1, true)}));
}

TEST(ConvUnfused, EngineBuiltWithoutTf32MatchesTheReference) {
  ANVIL_REQUIRE_GPU();
  constexpr std::int64_t kMaxBatch = 4;
  ir::Graph graph = passes::testing::build(small_model);
  passes::PassManager().run(graph);
  plan::Plan p =
      builder::lower_graph(graph, {.fp16 = false, .tf32 = false, .max_batch = kMaxBatch});
  p.anvil_version = "test";
  p.target = builder::current_target();
  p.options = {false, false, 256 << 20, {}};
  builder::AutotuneOptions tuning;
  tuning.batch = kMaxBatch;
  tuning.iterations = 3;
  std::vector<builder::LayerTactic> chosen;
  try {
    chosen = builder::autotune(p, tuning);
  } catch (const Error& e) {
    FAIL() << "the FP32 build without TF32 failed: " << e.what();
  }
  int unfused = 0;
  for (const builder::LayerTactic& t : chosen) {
    std::printf("  %-24s %-5s %s (%.4f ms)\n", t.layer.c_str(), t.kind.c_str(), t.identity.c_str(),
                t.ms);
    unfused += runtime::unfused_conv_engine(t.identity).has_value();
  }
  std::printf("%d of %zu tuned layers unfused\n", unfused, chosen.size());
  const auto engine = Engine::deserialize(plan::serialize_plan(p), "unfused.plan");

  const ir::Graph reference_graph = passes::testing::build(small_model);
  for (const std::int64_t batch : {kMaxBatch, std::int64_t{1}}) {
    const test::DeviceIo io(*engine, batch, 5u + static_cast<unsigned>(batch));
    Tensor x(DType::kFloat32, {batch, 16, 20, 20});
    std::copy(io.host_input.begin(), io.host_input.end(), x.data<float>());
    const std::vector<Tensor> want_t =
        passes::testing::run_graph(reference_graph, {{reference_graph.inputs[0]->name, x}});
    const std::vector<float> want = testing::values_of(want_t.at(0));

    auto context = engine->create_context();
    test::bind(*engine, *context, io, batch);
    const std::vector<float> got = test::run_once(*context, io);
    ASSERT_EQ(got.size(), want.size());
    std::string where;
    const double err = normalized_error(got, want, 1, &where);
    std::printf("batch %lld: error %.2e (%s)\n", static_cast<long long>(batch), err, where.c_str());
    EXPECT_LE(err, 1e-4) << "batch " << batch << " output [" << batch
                         << ",32,10,10] NCHW: " << where;

    context->set_cuda_graph(true);
    for (int i = 0; i < 3; ++i)  // warm-up, capture, replay
      test::expect_bit_identical(test::run_once(*context, io), got,
                                 cat("batch ", batch, ", CUDA graph enqueue ", i));
    EXPECT_TRUE(context->last_enqueue_used_graph()) << context->cuda_graph_failure();
  }
}

}  // namespace
}  // namespace anvil
