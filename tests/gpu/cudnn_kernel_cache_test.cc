// cuDNN's kernel cache (src/cuda/cudnn_kernel_cache.h) for the INT8
// convolution: its engines are runtime-compiled, and without a cache every
// new batch size compiles the kernel again. One INT8 3x3 64->64 layer is
// built from its identity at batch 8 and 16 without a cache, then at batch
// 8, 16 and 32 through one cache; the test prints every host build time and
// cuDNN's cache report, checks every cached plan against an exact CPU
// reference, and asserts the cached batch-16 build is faster than the
// uncached one only where cuDNN itself reports the kernel was cached. Then
// the plan-file way around a compile: a serialized plan restored
// (QuantizedConv::serialize / from_serialized).
#include "cuda/cudnn_kernel_cache.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/cudnn_quantized_conv.h"
#include "cuda/device.h"
#include "cuda/handles.h"
#include "gpu_test.h"
#include "int8_reference.h"
#include "ops/quantization.h"
#include "quant/int8_weights.h"

namespace anvil {
namespace {

using cuda::QuantizedConv;
using cuda::QuantizedConvShape;

constexpr std::int64_t kMaxBatch = 32;

QuantizedConvShape layer(std::int64_t n) {
  return {.n = n,
          .h = 28,
          .w = 28,
          .c = 64,
          .k = 64,
          .r = 3,
          .s = 3,
          .pad_h = 1,
          .pad_w = 1,
          .has_bias = true,
          .relu = true};
}

// kMaxBatch images; a batch of n uses the first n of x and of want.
struct Data {
  std::vector<std::int8_t> x, w;
  quant::Int8Requantization requant;
  std::vector<float> want;  // [kMaxBatch, P, Q, K] INT8 codes
};

// Exact reference: int64 accumulation, FP32 epilogue, round half to even,
// saturate (as tests/gpu/cudnn_int8_conv_test.cc).
Data make_data() {
  const QuantizedConvShape s = layer(kMaxBatch);
  test::Lcg rng{20240611u};
  Data d;
  d.x = test::padded_codes(s.n * s.h * s.w * s.c, s.c, s.c, [&] { return rng.uniform(-128, 127); });
  d.w = test::padded_codes(s.k * s.r * s.s * s.c, s.c, s.c, [&] { return rng.uniform(-127, 127); });
  // Scales that put the outputs near the INT8 range: rounding and saturation both occur.
  const float x_scale = 0.02f, y_scale = 0.05f;
  const float spread = std::sqrt(static_cast<float>(s.c * s.r * s.s)) * 73.0f * 73.0f;
  std::vector<float> w_scales(static_cast<std::size_t>(s.k)), b(w_scales.size());
  for (std::size_t k = 0; k < w_scales.size(); ++k) {
    w_scales[k] = rng.real(0.5f, 1.5f) * 80.0f * y_scale / (spread * x_scale);
    b[k] = rng.real(-20.0f, 20.0f) * y_scale;
  }
  d.requant = quant::fold_requantization(x_scale, w_scales, b, y_scale, s.k, s.k);
  std::vector<float> scale(w_scales.size());
  for (std::size_t k = 0; k < scale.size(); ++k)
    scale[k] = x_scale * w_scales[k];
  d.want = test::to_floats(
      test::int8_conv_reference(
          s, d.x, d.w,
          {.scale = scale, .bias = b, .residual = {}, .relu = true, .y_scale = y_scale})
          .int8);
  return d;
}

// Runs `conv` on the first shape().n images and compares with the reference
// (tolerance one INT8 step, as cudnn_int8_conv_test.cc); prints the worst element.
void expect_matches(const QuantizedConv& conv, const Data& d, const cuda::CudnnHandle& handle,
                    const cuda::Stream& stream, const char* what) {
  const QuantizedConvShape& s = conv.shape();
  const std::size_t in = static_cast<std::size_t>(s.n * s.h * s.w * s.c);
  const std::size_t out = static_cast<std::size_t>(s.n * s.out_h() * s.out_w() * s.k);
  const cuda::DeviceBuffer x = test::upload(d.x.data(), in),
                           w = test::upload(d.w.data(), d.w.size());
  const cuda::DeviceBuffer scale = test::upload(d.requant.scale.data(), d.requant.scale.size() * 4);
  const cuda::DeviceBuffer bias = test::upload(d.requant.bias.data(), d.requant.bias.size() * 4);
  const cuda::DeviceBuffer y(out), workspace(std::max<std::size_t>(conv.workspace_bytes(), 16));
  const QuantizedConv::Binding binding = conv.bind(
      x.data(), w.data(), scale.as<float>(), bias.as<float>(), nullptr, y.data(), workspace.data());
  // 0x5b (91): an element the kernel leaves unwritten shows.
  ANVIL_GPU_CHECK(cudaMemsetAsync(y.data(), 0x5b, out, stream.get()));
  conv.execute(handle.get(), stream.get(), binding);
  std::vector<std::int8_t> got(out);
  ANVIL_GPU_CHECK(cudaMemcpyAsync(got.data(), y.data(), out, cudaMemcpyDeviceToHost, stream.get()));
  stream.synchronize();
  const test::Int8ConvMismatch e = test::compare_int8_conv(
      test::to_floats(got), std::span<const float>(d.want).first(out), true);
  std::printf("  %-28s N=%-3lld max|got-want| %g at %zu (got %d want %g), %zu inexact, %zu over\n",
              what, static_cast<long long>(s.n), e.worst, e.at, got[e.at],
              static_cast<double>(d.want[e.at]), e.inexact, e.over);
  EXPECT_EQ(e.over, 0u) << what << " N=" << s.n << " " << conv.identity() << ": worst " << e.worst
                        << " at " << e.at;
}

struct Build {
  std::optional<QuantizedConv> conv;
  double seconds = 0;
  std::string error;
};

// from_identity, timed on the host.
Build build(const cuda::CudnnHandle& handle, std::int64_t n, const std::string& identity,
            const cuda::CudnnKernelCache* cache) {
  Build b;
  const auto start = std::chrono::steady_clock::now();
  try {
    b.conv.emplace(QuantizedConv::from_identity(handle.get(), layer(n), identity, cache));
  } catch (const anvil::Error& e) {
    b.error = e.what();
  }
  b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("  build N=%-3lld %-8s %8.3f s  %s\n", static_cast<long long>(n),
              cache ? "cached" : "uncached", b.seconds,
              b.conv ? (cache ? b.conv->kernel_cache_report().c_str() : "") : b.error.c_str());
  return b;
}

TEST(CudnnKernelCache, ReusesInt8KernelsAcrossBatchSizes) {
  ANVIL_REQUIRE_GPU();
  const auto info = cuda::device_info(0);
  std::printf("GPU %s (SM %d%d), cuDNN %zu; %s\n", info ? info->name.c_str() : "?",
              info ? info->cc_major : 0, info ? info->cc_minor : 0, cudnnGetVersion(),
              layer(8).describe().c_str());
  if (cudnnGetVersion() < 90500)
    GTEST_SKIP() << "cuDNN " << cudnnGetVersion()
                 << " < 9.5: no CUDNN_ATTR_KERNEL_CACHE_OPERATION_GRAPH, kernel cache not tried";
  const cuda::CudnnHandle handle;
  const cuda::Stream stream;
  const Data d = make_data();

  // Does a dynamic-shape graph get an engine at all? A throwaway cache, so
  // that the measured cache below starts empty.
  std::string identity;
  {
    const cuda::CudnnKernelCache probe;
    const QuantizedConv::Search dynamic = QuantizedConv::search(handle.get(), layer(8), 1, &probe);
    std::printf("dynamic-shape search:\n");
    for (const std::string& line : dynamic.log)
      std::printf("    %s\n", line.c_str());
    if (dynamic.candidates.empty()) {
      const QuantizedConv::Search plain = QuantizedConv::search(handle.get(), layer(8), 1);
      std::printf(
          "DYNAMIC-SHAPE INT8 GRAPHS GET NO ENGINES on this GPU/cuDNN (log above); static "
          "graphs get %zu. Kernel cache unusable for QuantizedConv: speed part skipped.\n",
          plain.candidates.size());
      return;
    }
    identity = dynamic.candidates.front().identity();
    std::printf("  engine %s [%s], probe cache: %s\n", identity.c_str(),
                dynamic.candidates.front().notes().c_str(),
                dynamic.candidates.front().kernel_cache_report().c_str());
  }

  std::printf("without a cache (static graphs, today's path):\n");
  const Build u8 = build(handle, 8, identity, nullptr);
  const Build u16 = build(handle, 16, identity, nullptr);
  std::printf("through one kernel cache (dynamic-shape graphs):\n");
  const cuda::CudnnKernelCache cache;
  const Build c8 = build(handle, 8, identity, &cache);
  const Build c16 = build(handle, 16, identity, &cache);
  const Build c32 = build(handle, 32, identity, &cache);

  std::printf("outputs against the exact reference:\n");
  for (const auto& [b, what] :
       {std::pair{&u8, "uncached"}, std::pair{&c8, "cached (first)"},
        std::pair{&c16, "cached (second)"}, std::pair{&c32, "cached (third)"}})
    if (b->conv) expect_matches(*b->conv, d, handle, stream, what);
  ASSERT_TRUE(c8.conv && c16.conv && c32.conv)
      << identity << " works as a dynamic-shape graph at batch 8 (search above) but a cached "
      << "build failed: " << c8.error << c16.error << c32.error;

  const std::string& first = c8.conv->kernel_cache_report();
  const std::string& second = c16.conv->kernel_cache_report();
  std::printf("build seconds: uncached N=8 %.3f N=16 %.3f | cached N=8 %.3f N=16 %.3f N=32 %.3f\n",
              u8.seconds, u16.seconds, c8.seconds, c16.seconds, c32.seconds);
  if (first.starts_with("hit")) {
    std::printf(
        "cuDNN reports a hit on an empty cache (%s): its cache query is not usable "
        "here; speed not asserted\n",
        first.c_str());
    return;
  }
  if (!second.starts_with("hit")) {
    std::printf("cuDNN did NOT report the batch-16 kernel as cached (%s): speed not asserted\n",
                second.c_str());
    return;
  }
  if (!u16.conv) {
    std::printf("the uncached static-graph build failed (%s): nothing to compare with\n",
                u16.error.c_str());
    return;
  }
  std::printf("cuDNN reports the batch-16 kernel as cached: cached/uncached = %.3f\n",
              c16.seconds / u16.seconds);
  // Below ~50 ms the uncached build compiled nothing worth saving (no runtime
  // compilation here), and the ratio would only measure graph-building noise.
  if (u16.seconds < 0.05) {
    std::printf("uncached batch-16 build took only %.3f s: no compile to save, not asserted\n",
                u16.seconds);
    return;
  }
  EXPECT_LT(c16.seconds, 0.5 * u16.seconds)
      << "cuDNN reports a kernel cache hit, yet the cached build (" << c16.seconds
      << " s) is not at least 2x faster than the uncached one (" << u16.seconds << " s)";
}

// The other way to skip a compile: the plan as cuDNN compiled it,
// serialized and restored on another handle (what a loaded Anvil plan does
// at its profile's opt batch). The restored plan must compute the reference
// exactly as the compiled one does; a damaged text must be a clean
// kIncompatible (the runner then compiles), never a crash.
TEST(CudnnSerializedPlan, RestoresACompiledInt8PlanOnAnotherHandle) {
  ANVIL_REQUIRE_GPU();
  const cuda::CudnnHandle handle, other;
  const cuda::Stream stream;
  const Data d = make_data();
  const std::vector<QuantizedConv> found = QuantizedConv::candidates(handle.get(), layer(16), 1);
  ASSERT_FALSE(found.empty()) << layer(16).describe() << ": no cuDNN INT8 engine";
  const QuantizedConv& compiled = found.front();
  const std::string text = compiled.serialize();
  std::printf("%s [%s]: serialized to %zu bytes\n", compiled.identity().c_str(),
              compiled.notes().c_str(), text.size());
  if (text.empty())
    GTEST_SKIP() << "cuDNN " << cudnnGetVersion() << " does not serialize " << compiled.identity()
                 << ": plans keep the identity alone";

  const auto start = std::chrono::steady_clock::now();
  const QuantizedConv restored =
      QuantizedConv::from_serialized(other.get(), layer(16), compiled.identity(), text);
  std::printf("restored in %.4f s (%s, workspace %zu, compiled one %zu)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              restored.kernel_cache_report().c_str(), restored.workspace_bytes(),
              compiled.workspace_bytes());
  EXPECT_EQ(restored.identity(), compiled.identity());
  EXPECT_EQ(restored.kernel_cache_report(), "restored");
  EXPECT_EQ(restored.workspace_bytes(), compiled.workspace_bytes());
  expect_matches(compiled, d, handle, stream, "compiled");
  expect_matches(restored, d, other, stream, "restored, other handle");

  for (const std::string& damaged :
       {text.substr(0, text.size() / 2), std::string("not a plan"), std::string()}) {
    try {
      QuantizedConv::from_serialized(handle.get(), layer(16), compiled.identity(), damaged);
      ADD_FAILURE() << "a damaged text of " << damaged.size() << " bytes was restored";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kIncompatible) << e.what();
      EXPECT_NE(std::string(e.what()).find(compiled.identity()), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace anvil
