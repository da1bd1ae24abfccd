// The autotuner on "conv_int8" layers (builder/gpu/autotune.h): plans of one
// INT8 conv built by hand in the form lowering writes (INT8 KRSC filter, FP32
// folded scale and bias, builder/lower.h), tuned at batch 4; the winner's
// identity rebuilt with cuda::QuantizedConv::from_identity (or, where our 3x3
// kernel won, that kernel), as the runtime does, and run against this file's
// own CPU reference of the plan contract; and the
// numerical check (builder::check_int8_conv_output) shown to pass a right
// output and reject wrong ones, rounding ties included.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "builder/gpu/autotune.h"
#include "builder/gpu/verify_tactic.h"
#include "cuda/check.h"
#include "cuda/cudnn_quantized_conv.h"
#include "cuda/handles.h"
#include "cuda/kernels/conv3x3_int8.h"
#include "gpu_test.h"
#include "int8_reference.h"
#include "ops/quantization.h"
#include "plan/plan.h"
#include "plan/profiles.h"
#include "runtime/layers/layer_shapes.h"
#include "runtime/layers/tactic.h"

namespace anvil {
namespace {

struct Case {
  const char* name;
  std::int64_t c, c_pad, k, k_pad, hw, kernel, stride, pad;
  bool bias, residual, relu;
  bool core;  // cuDNN must have an engine for it (64->64 3x3 is ResNet's)
};

const Case kCases[] = {
    {"3x3 s1 p1 6(8)->16 bias relu", 6, 8, 16, 16, 14, 3, 1, 1, true, false, true, false},
    {"3x3 s1 p1 6(8)->16 bias residual relu", 6, 8, 16, 16, 14, 3, 1, 1, true, true, true, false},
    {"1x1 s2 16->30(32) bias no relu", 16, 16, 30, 32, 14, 1, 2, 0, true, false, false, false},
    {"3x3 s1 p1 64->64 bias residual relu", 64, 64, 64, 64, 14, 3, 1, 1, true, true, true, true},
};

// kTuning: the full INT8 range, outputs spread near it so that some saturate.
// kTies: small codes and scale 0.5, so that many outputs end in .5 exactly and
// rounding half to even is visible.
enum class Values { kTuning, kTies };

// `count` codes in [lo, hi] in the first `real` of every `channels`, 0 in
// the padded ones.
std::vector<std::int8_t> random_codes(std::int64_t count, std::int64_t channels, std::int64_t real,
                                      int lo, int hi, std::mt19937& rng) {
  std::uniform_int_distribution<int> uniform(lo, hi);
  return test::padded_codes(count, channels, real, [&] { return uniform(rng); });
}

// Appends `bytes` at the next plan::kWeightsAlignment boundary; returns where.
std::int64_t append_bytes(std::vector<std::byte>& blob, const void* data, std::size_t bytes) {
  const std::size_t align = plan::kWeightsAlignment;
  const std::size_t offset = (blob.size() + align - 1) / align * align;
  blob.resize(offset + bytes);
  std::memcpy(blob.data() + offset, data, bytes);
  return static_cast<std::int64_t>(offset);
}

// One conv_int8 layer in a plan of its own, weights as lowering stores them.
struct Int8Layer {
  Int8Layer(const Case& cc, Values values) : c(cc) {
    out_hw = (c.hw + 2 * c.pad - c.kernel) / c.stride + 1;
    const std::int64_t rs = c.kernel * c.kernel;
    std::mt19937 rng(static_cast<std::uint32_t>(c.c * 131 + c.k * 7 + rs));
    const bool ties = values == Values::kTies;
    const int w_max = ties ? 3 : 127;
    std::uniform_int_distribution<int> code(-w_max, w_max);
    filter = test::padded_codes(
        c.k_pad * rs * c.c_pad, c.c_pad, c.c, [&] { return code(rng); }, c.k * rs * c.c_pad);
    // kTuning: |acc| spreads like sqrt(rs * c) * 127^2 / 3; this scale puts
    // its standard deviation near 60 INT8 steps.
    const float spread = std::sqrt(static_cast<float>(rs * c.c)) * 127.0f * 127.0f / 3.0f;
    std::uniform_real_distribution<float> unit(0.5f, 1.5f), offset(-20.0f, 20.0f);
    std::uniform_int_distribution<int> halves(-8, 8);
    scale.assign(static_cast<std::size_t>(c.k_pad), 0.0f);
    bias.assign(scale.size(), 0.0f);
    for (std::size_t k = 0; k < static_cast<std::size_t>(c.k); ++k) {
      scale[k] = ties ? 0.5f : unit(rng) * 60.0f / spread;
      if (c.bias) bias[k] = ties ? 0.5f * static_cast<float>(halves(rng)) : offset(rng);
    }

    params = {{"c", c.c},
              {"c_pad", c.c_pad},
              {"k", c.k},
              {"k_pad", c.k_pad},
              {"r", c.kernel},
              {"s", c.kernel},
              {"in_h", c.hw},
              {"in_w", c.hw},
              {"out_h", out_hw},
              {"out_w", out_hw},
              {"pad_top", c.pad},
              {"pad_left", c.pad},
              {"pad_bottom", c.pad},
              {"pad_right", c.pad},
              {"stride_h", c.stride},
              {"stride_w", c.stride},
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
              {"x_scale", 0.02f},
              {"y_scale", 0.05f}};
    plan::LayerDesc layer;
    layer.name = c.name;
    layer.kind = "conv_int8";
    layer.inputs = c.residual ? std::vector<int>{0, 2} : std::vector<int>{0};
    layer.outputs = {1};
    layer.params = params.dump();
    const std::int64_t f_at = append_bytes(plan.weights, filter.data(), filter.size());
    const std::int64_t s_at = append_bytes(plan.weights, scale.data(), scale.size() * 4);
    const std::int64_t b_at = append_bytes(plan.weights, bias.data(), bias.size() * 4);
    layer.weights = {
        {f_at, std::int64_t(filter.size()), DType::kInt8, {c.k_pad, c.kernel, c.kernel, c.c_pad}},
        {s_at, c.k_pad * 4, DType::kFloat32, {c.k_pad}},
        {b_at, c.k_pad * 4, DType::kFloat32, {c.k_pad}}};
    plan.layers.push_back(layer);
    plan.options.fp16 = true;
  }

  cuda::QuantizedConvShape shape(std::int64_t n) const {
    cuda::QuantizedConvShape s = runtime::int8_conv_layer_shape(params, c.name);
    s.n = n;
    return s;
  }
  std::int64_t in_count(std::int64_t n) const { return n * c.hw * c.hw * c.c_pad; }
  std::int64_t out_count(std::int64_t n) const { return n * out_hw * out_hw * c.k_pad; }

  // Random x (and residual, if the layer has one) of `n` images.
  void random_inputs(std::int64_t n, int limit, std::uint32_t seed) {
    std::mt19937 rng(seed);
    x = random_codes(in_count(n), c.c_pad, c.c, -limit, limit, rng);
    residual.clear();
    if (c.residual) residual = random_codes(out_count(n), c.k_pad, c.k, -limit, limit, rng);
  }
  const std::vector<std::int8_t>* residual_or_null() const {
    return c.residual ? &residual : nullptr;
  }

  std::string describe() const {
    return cat(c.name, " (c ", c.c, "/", c.c_pad, ", k ", c.k, "/", c.k_pad, ", ", c.hw, "x", c.hw,
               " -> ", out_hw, "x", out_hw, ")");
  }

  Case c;
  std::int64_t out_hw = 0;
  std::vector<std::int8_t> filter, x, residual;
  std::vector<float> scale, bias;
  nlohmann::json params;
  plan::Plan plan;
};

using test::Rounding;

struct Reference {
  std::vector<std::int8_t> y;  // [n, P, Q, k_pad]
  std::int64_t saturated = 0, ties = 0;
};

// The plan contract (builder/lower.h), written apart from verify_tactic.cc:
// y = sat(rint(act(float(acc) * scale[k] + bias[k] [+ residual]))).
Reference reference(const Int8Layer& l, std::int64_t n, Rounding rounding) {
  const std::vector<float> residual = test::to_floats(l.residual);
  test::Int8ConvReference r = test::int8_conv_reference(
      l.shape(n), l.x, l.filter,
      {.scale = l.scale,
       .bias = l.c.bias ? std::span<const float>(l.bias) : std::span<const float>(),
       .residual = l.c.residual ? std::span<const float>(residual) : std::span<const float>(),
       .relu = l.c.relu},
      rounding);
  Reference ref{std::move(r.int8), r.saturated, 0};
  for (const float v : r.value)
    ref.ties += std::fabs(v - std::trunc(v)) == 0.5f;
  return ref;
}

// How many elements differ and by how much at most, naming the worst.
test::Int8ConvMismatch diff(const std::vector<std::int8_t>& got,
                            const std::vector<std::int8_t>& want) {
  return test::compare_int8_conv(test::to_floats(got), test::to_floats(want), true);
}

// `identity` rebuilt and run on l.x as the runtime's conv_int8 runner would:
// QuantizedConv::from_identity on the plan's weights.
std::vector<std::int8_t> run_identity(const Int8Layer& l, std::int64_t n,
                                      const std::string& identity) {
  const cuda::CudnnHandle cudnn;
  const cuda::Stream stream;
  const cuda::DeviceBuffer x = test::upload(l.x.data(), l.x.size()),
                           w = test::upload(l.filter.data(), l.filter.size()),
                           scale = test::upload(l.scale.data(), l.scale.size() * 4),
                           bias = test::upload(l.bias.data(), l.bias.size() * 4),
                           residual = test::upload(l.residual.data(), l.residual.size());
  std::vector<std::int8_t> got(static_cast<std::size_t>(l.out_count(n)));
  const cuda::DeviceBuffer y(got.size());
  ANVIL_GPU_CHECK(cudaMemsetAsync(y.data(), 0x5b, y.bytes(), stream.get()));
  const cuda::QuantizedConvShape shape = l.shape(n);
  if (runtime::is_conv3x3_int8_identity(identity)) {  // our kernel, as the runtime runs it
    const auto own = runtime::conv3x3_int8_shape(shape, identity);
    if (!own) fail(ErrorKind::kInternal, identity, " won a layer it does not compute");
    cuda::kernels::Conv3x3Int8(*own).run(
        x.data(), w.data(), scale.as<float>(), shape.has_bias ? bias.as<float>() : nullptr,
        shape.has_residual ? residual.data() : nullptr, y.data(), stream.get());
  } else {
    const cuda::QuantizedConv conv =
        cuda::QuantizedConv::from_identity(cudnn.get(), shape, identity);
    const cuda::DeviceBuffer workspace(conv.workspace_bytes());
    const cuda::QuantizedConv::Binding binding =
        conv.bind(x.data(), w.data(), scale.as<float>(), bias.as<float>(), residual.data(),
                  y.data(), workspace.data());
    conv.execute(cudnn.get(), stream.get(), binding);
  }
  ANVIL_GPU_CHECK(
      cudaMemcpyAsync(got.data(), y.data(), got.size(), cudaMemcpyDeviceToHost, stream.get()));
  stream.synchronize();
  return got;
}

// `v` moved `by` steps, downwards where upwards would leave the INT8 range.
std::int8_t nudge(std::int8_t v, int by) {
  return static_cast<std::int8_t>(v + by <= 127 ? v + by : v - by);
}

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

// The test data itself (no GPU): the tuning values saturate some outputs but
// leave most in range, and the tie values make rounding half to even differ
// from half away from zero in more than 1% of outputs.
TEST(AutotuneInt8, TestDataCoversSaturationAndRoundingTies) {
  for (const Case& c : kCases) {
    Int8Layer tuning(c, Values::kTuning);
    tuning.random_inputs(1, 127, 7);
    const Reference r = reference(tuning, 1, Rounding::kHalfToEven);
    std::printf("%s: %lld of %zu outputs saturate\n", tuning.describe().c_str(),
                static_cast<long long>(r.saturated), r.y.size());
    EXPECT_GT(r.saturated, 0) << tuning.describe();
    EXPECT_LT(r.saturated * 10, static_cast<std::int64_t>(r.y.size())) << tuning.describe();

    Int8Layer ties(c, Values::kTies);
    ties.random_inputs(1, 2, 7);
    const Reference even = reference(ties, 1, Rounding::kHalfToEven);
    const test::Int8ConvMismatch d = diff(reference(ties, 1, Rounding::kHalfAway).y, even.y);
    std::printf("%s: %lld ties, half away differs in %lld of %zu\n", ties.describe().c_str(),
                static_cast<long long>(even.ties), static_cast<long long>(d.inexact),
                even.y.size());
    EXPECT_GT(d.inexact * 100, even.y.size()) << ties.describe();
  }
}

// No GPU: the kind is checked before any library handle is made.
TEST(AutotuneInt8, TimeCandidatesNamesTheTunedKinds) {
  plan::Plan p;
  plan::LayerDesc pool;
  pool.name = "pool1";
  pool.kind = "pool";
  try {
    builder::time_candidates(p, pool, 1, 1);
    ADD_FAILURE() << "a pool layer has no library candidates";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("conv_int8"), std::string::npos) << e.what();
  }
}

TEST(AutotuneInt8, TunesConvInt8LayersWithACheckedCudnnEngine) {
  ANVIL_REQUIRE_GPU();
  const std::filesystem::path cache =
      std::filesystem::temp_directory_path() / "anvil_autotune_int8_test_cache.json";
  std::filesystem::remove(cache);
  for (const Case& c : kCases) {
    Int8Layer l(c, Values::kTuning);
    SCOPED_TRACE(l.describe());
    l.plan.target = builder::current_target();
    const auto timings = builder::time_candidates(l.plan, l.plan.layers[0], 4, 3);
    std::printf("%s: %zu INT8 candidates\n", l.describe().c_str(), timings.size());
    for (const auto& t : timings)
      std::printf("  %-60s %8.4f ms\n", t.identity.substr(0, 60).c_str(), t.ms);

    std::vector<std::string> logged;
    builder::AutotuneOptions options;
    options.batch = 4;
    options.iterations = 3;
    options.timing_cache = cache;
    options.log = [&](const std::string& line) { logged.push_back(line); };
    if (timings.empty()) {
      // Not every small or odd INT8 shape has a cuDNN engine: the build must
      // then say so and point at the FP16 fallback.
      EXPECT_FALSE(c.core) << "no cuDNN INT8 engine for a core shape";
      try {
        builder::autotune(l.plan, options);
        ADD_FAILURE() << "autotune chose a tactic with no candidates";
      } catch (const Error& e) {
        std::printf("  UNSUPPORTED: %s\n", e.what());
        EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
        EXPECT_NE(std::string(e.what()).find(cat("--layer-precision ", c.name, ":fp16")),
                  std::string::npos)
            << e.what();
      }
      continue;
    }

    const auto chosen = builder::autotune(l.plan, options);
    ASSERT_EQ(chosen.size(), 1u);
    const builder::LayerTactic& t = chosen[0];
    std::printf("  winner %s (%.4f ms of %d candidates)\n", t.identity.c_str(), t.ms, t.candidates);
    for (const std::string& line : logged)
      std::printf("  %s\n", line.c_str());
    EXPECT_EQ(t.kind, "conv_int8");
    // A cuDNN engine config, or our 3x3 kernel where it computes the layer.
    const bool own = runtime::is_conv3x3_int8_identity(t.identity);
    EXPECT_TRUE(starts_with(t.identity, "i32:") || starts_with(t.identity, "f32:") ||
                (own && runtime::conv3x3_int8_shape(l.shape(4), t.identity)))
        << t.identity;
    EXPECT_GT(t.candidates, 0);
    EXPECT_GT(t.ms, 0.0f);
    EXPECT_EQ(t.rejected.size(), logged.size());
    EXPECT_EQ(plan::tactic_identity(l.plan.layers[0], 0), t.identity);
    EXPECT_TRUE(std::any_of(timings.begin(), timings.end(),
                            [&](const auto& timing) { return timing.identity == t.identity; }))
        << t.identity << " is not among time_candidates' identities";

    // What the runtime will run: the identity rebuilt, on its own data.
    l.random_inputs(2, 127, 11);
    const Reference want = reference(l, 2, Rounding::kHalfToEven);
    const std::vector<std::int8_t> got = run_identity(l, 2, t.identity);
    const test::Int8ConvMismatch d = diff(got, want.y);
    const std::int64_t pix = static_cast<std::int64_t>(d.at) / c.k_pad;
    std::printf(
        "  rebuilt: %lld of %zu differ, worst by %lld at n%lld p%lld q%lld k%lld (got %d want "
        "%d); %lld saturate\n",
        static_cast<long long>(d.inexact), got.size(), static_cast<long long>(d.worst),
        static_cast<long long>(pix / (l.out_hw * l.out_hw)),
        static_cast<long long>(pix / l.out_hw % l.out_hw), static_cast<long long>(pix % l.out_hw),
        static_cast<long long>(static_cast<std::int64_t>(d.at) % c.k_pad), int{got[d.at]},
        int{want.y[d.at]}, static_cast<long long>(want.saturated));
    EXPECT_LE(d.worst, 1.0);
    EXPECT_LT(d.inexact * 100, got.size());

    // The winner as cuDNN compiled it at the tuned batch, kept in the plan
    // wherever cuDNN serializes that plan, and restorable without compiling.
    const cuda::CudnnHandle cudnn;
    const bool serializable =  // our kernel compiles nothing
        !own && !cuda::QuantizedConv::from_identity(cudnn.get(), l.shape(4), t.identity)
                     .serialize()
                     .empty();
    auto check_compiled = [&](const char* when) {
      const auto compiled = plan::tactic_compiled(l.plan.layers[0], 0);
      std::printf("  compiled plan %s: %s\n", when,
                  compiled       ? cat(compiled->cudnn.size(), " bytes").c_str()
                  : serializable ? "MISSING"
                  : own          ? "none (our kernel)"
                                 : "none (cuDNN does not serialize it)");
      EXPECT_EQ(compiled.has_value(), serializable) << when;
      if (!compiled) return;
      EXPECT_EQ(compiled->shape, l.shape(4).describe()) << when;
      const cuda::QuantizedConv restored = cuda::QuantizedConv::from_serialized(
          cudnn.get(), l.shape(4), t.identity, compiled->cudnn);
      EXPECT_EQ(restored.kernel_cache_report(), "restored") << when;
      EXPECT_EQ(restored.identity(), t.identity) << when;
    };
    check_compiled("after tuning");

    // Same layer again: from the timing cache, same winner, nothing timed.
    const auto again = builder::autotune(l.plan, options);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].identity, t.identity);
    EXPECT_EQ(again[0].candidates, 0);
    check_compiled("from the timing cache");
  }
  std::filesystem::remove(cache);
}

TEST(AutotuneInt8, TheCheckPassesRightOutputsAndRejectsWrongOnes) {
  ANVIL_REQUIRE_GPU();  // for the device copy of y only
  for (const Case& c : {kCases[0], kCases[1], kCases[2]}) {
    Int8Layer l(c, Values::kTies);
    SCOPED_TRACE(l.describe());
    const std::int64_t n = 2;
    l.random_inputs(n, 2, 5);
    const Reference want = reference(l, n, Rounding::kHalfToEven);
    const cuda::QuantizedConvShape shape = l.shape(n);
    const std::size_t last = want.y.size() - static_cast<std::size_t>(l.out_count(1));
    auto check = [&](const std::vector<std::int8_t>& y) {
      const cuda::DeviceBuffer dy = test::upload(y.data(), y.size());
      return builder::check_int8_conv_output(l.plan, l.plan.layers[0], shape, l.x,
                                             l.residual_or_null(), dy.data());
    };

    const auto right = check(want.y);
    EXPECT_FALSE(right.has_value()) << *right;
    std::vector<std::int8_t> y = want.y;
    y[last + 37] = nudge(y[last + 37], 1);  // one step, once: allowed
    const auto one = check(y);
    EXPECT_FALSE(one.has_value()) << *one;
    y[last + 37] = nudge(want.y[last + 37], 2);
    const auto two = check(y);
    ASSERT_TRUE(two.has_value()) << "an output off by 2 went unnoticed";
    std::printf("off by 2: %s\n", two->c_str());
    EXPECT_NE(two->find("got "), std::string::npos) << *two;

    // One step off in 2% of the outputs.
    y = want.y;
    for (std::size_t i = last; i < y.size(); i += 50)
      y[i] = nudge(y[i], 1);
    const auto many = check(y);
    ASSERT_TRUE(many.has_value()) << "2% of the outputs one step off went unnoticed";
    std::printf("2%% off by 1: %s\n", many->c_str());

    // Ties rounded away from zero, as a wrong engine might.
    const auto away = check(reference(l, n, Rounding::kHalfAway).y);
    ASSERT_TRUE(away.has_value()) << "rounding half away from zero went unnoticed (" << want.ties
                                  << " ties)";
    std::printf("half away: %s\n", away->c_str());
  }
}

}  // namespace
}  // namespace anvil
