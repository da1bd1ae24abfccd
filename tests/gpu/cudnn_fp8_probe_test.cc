// Does cuDNN offer FP8 (E4M3) convolutions on this GPU? Issue 6 asks for FP8
// where cuDNN offers it and for the evidence where it does not. This probe
// builds a 3x3 64->64 NHWC convolution (N=8, 28x28) with x and w in
// CUDNN_DATA_FP8_E4M3 and FP32 compute through the backend API, the way
// src/cuda/cudnn_int8_conv.cc builds its graphs, for several outputs: FP8
// through a pointwise MUL by a scale, FP16 and FP32 (plain and scaled). For
// each it prints the operation graph's status, what heuristics modes A, B and
// fallback propose, and for the first few engine configs their notes and
// whether the execution plan finalizes. Every plan that finalizes runs on
// random FP8 data against a CPU reference: the probe passes whatever cuDNN
// offers, and fails only when an engine cuDNN builds gives wrong results.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/cudnn_descriptors.h"
#include "cuda/cudnn_engine.h"
#include "cuda/device.h"
#include "cuda/handles.h"
#include "gpu_test.h"
#include "ops/quantization.h"

namespace anvil {
namespace {

using cuda::BackendDescriptor;

// E4M3 (OCP FP8, "fn"): bias 7, no infinities, S.1111.111 is NaN, largest
// finite 448, smallest subnormal 2^-9.
std::uint8_t float_to_e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const std::uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  const float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7e;  // saturate
  int e = 0;
  std::frexp(a, &e);                         // a = m * 2^e, m in [0.5, 1)
  const int exponent = std::max(e - 1, -6);  // below 2^-6 the step stays 2^-9 (subnormals)
  const float step = std::ldexp(1.0f, exponent - 3);
  // a / step is exact (a power-of-two scaling); rounding it rounds a to the grid.
  const float v = ops::round_half_to_even(a / step) * step;  // may carry into the next binade
  if (v == 0.0f) return sign;
  std::frexp(v, &e);
  if (e - 1 < -6) return sign | static_cast<std::uint8_t>(std::ldexp(v, 9));  // subnormal
  const auto mantissa = static_cast<std::uint8_t>(std::ldexp(v, -(e - 1)) * 8.0f - 8.0f);
  return sign | static_cast<std::uint8_t>((e - 1 + 7) << 3) | mantissa;
}

float e4m3_to_float(std::uint8_t b) {
  const int exponent = (b >> 3) & 0xf, mantissa = b & 0x7;
  if (exponent == 0xf && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  const float v = exponent == 0
                      ? std::ldexp(static_cast<float>(mantissa), -9)
                      : std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
  return (b & 0x80) ? -v : v;
}

enum class Out { kFp8, kHalf, kFloat };

struct Variant {
  const char* name;
  Out out;
  bool scaled;  // conv -> MUL(scale) -> y, else conv -> y
};

cudnnDataType_t dtype(Out out) {
  switch (out) {
    case Out::kFp8:
      return CUDNN_DATA_FP8_E4M3;
    case Out::kHalf:
      return CUDNN_DATA_HALF;
    case Out::kFloat:
      return CUDNN_DATA_FLOAT;
  }
  return CUDNN_DATA_FLOAT;
}

std::size_t bytes_of(Out out) {
  return out == Out::kFp8 ? 1 : out == Out::kHalf ? 2 : 4;
}

constexpr std::int64_t kN = 8, kH = 28, kW = 28, kC = 64, kK = 64, kR = 3, kS = 3;
constexpr float kScale = 0.25f;  // keeps outputs well inside E4M3's range
enum : std::int64_t { kX = 1, kWgt = 2, kScaleUid = 3, kY = 4, kVirtual = 100 };

struct Graph {
  std::vector<BackendDescriptor> parts;
  BackendDescriptor op_graph;
  std::string status;
};

// Builds and finalizes the variant's operation graph; `status` says how that went.
Graph build_graph(cudnnHandle_t handle, const Variant& v) {
  Graph g;
  g.parts.reserve(16);
  auto keep = [&](BackendDescriptor d) -> const BackendDescriptor& {
    g.parts.push_back(std::move(d));
    return g.parts.back();
  };
  const std::vector<std::int64_t> out{kN, kK, kH, kW};
  const BackendDescriptor& x =
      keep(cuda::make_nhwc_tensor(kX, CUDNN_DATA_FP8_E4M3, {kN, kC, kH, kW}, false));
  const BackendDescriptor& w =
      keep(cuda::make_nhwc_tensor(kWgt, CUDNN_DATA_FP8_E4M3, {kK, kC, kR, kS}, false));
  const BackendDescriptor& y = keep(cuda::make_nhwc_tensor(kY, dtype(v.out), out, false));
  const BackendDescriptor& conv_y =
      v.scaled ? keep(cuda::make_nhwc_tensor(kVirtual, CUDNN_DATA_FLOAT, out, true)) : y;

  BackendDescriptor conv_desc(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  conv_desc.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute);
  conv_desc.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
  conv_desc.set_int64(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, 2);
  conv_desc.set_int64s(CUDNN_ATTR_CONVOLUTION_DILATIONS, {1, 1});
  conv_desc.set_int64s(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, {1, 1});
  conv_desc.set_int64s(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, {1, 1});
  conv_desc.set_int64s(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, {1, 1});
  conv_desc.finalize();
  const BackendDescriptor& cd = keep(std::move(conv_desc));

  std::vector<cudnnBackendDescriptor_t> ops;
  BackendDescriptor conv(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  const float alpha = 1.0f, beta = 0.0f;
  conv.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha);
  conv.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta);
  conv.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, cd);
  conv.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x);
  conv.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w);
  conv.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, conv_y);
  if (const cudnnStatus_t st = conv.try_finalize(); st != CUDNN_STATUS_SUCCESS) {
    g.status = cat("conv op refused: ", cuda::cudnn_status_text(st));
    return g;
  }
  ops.push_back(keep(std::move(conv)).get());

  if (v.scaled) {
    const BackendDescriptor& scale =
        keep(cuda::make_nhwc_tensor(kScaleUid, CUDNN_DATA_FLOAT, {1, 1, 1, 1}, false));
    BackendDescriptor mul_desc(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    const cudnnPointwiseMode_t mul = CUDNN_POINTWISE_MUL;
    mul_desc.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mul);
    mul_desc.set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &compute);
    mul_desc.finalize();
    const BackendDescriptor& md = keep(std::move(mul_desc));
    BackendDescriptor op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, md);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, conv_y);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, scale);
    op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    if (const cudnnStatus_t st = op.try_finalize(); st != CUDNN_STATUS_SUCCESS) {
      g.status = cat("pointwise MUL refused: ", cuda::cudnn_status_text(st));
      return g;
    }
    ops.push_back(keep(std::move(op)).get());
  }

  g.op_graph = BackendDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  g.op_graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                 static_cast<std::int64_t>(ops.size()), ops.data());
  g.op_graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle);
  const cudnnStatus_t st = g.op_graph.try_finalize();
  g.status = st == CUDNN_STATUS_SUCCESS ? "SUCCESS" : cuda::cudnn_status_text(st);
  if (st != CUDNN_STATUS_SUCCESS) g.op_graph = BackendDescriptor();
  return g;
}

struct Lcg {
  std::uint32_t state;
  std::uint32_t next() { return state = state * 1664525u + 1013904223u; }
  float real(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(next() >> 8) / static_cast<float>(1 << 24);
  }
};

struct Data {
  std::vector<std::uint8_t> x, w;  // E4M3 codes, NHWC and KRSC
  std::vector<double> acc;         // exact convolution of the decoded codes, [N,H,W,K]
};

Data make_data() {
  Lcg rng{7u};
  Data d;
  d.x.resize(static_cast<std::size_t>(kN * kH * kW * kC));
  d.w.resize(static_cast<std::size_t>(kK * kR * kS * kC));
  for (auto& v : d.x)
    v = float_to_e4m3(rng.real(-4.0f, 4.0f));
  for (auto& v : d.w)
    v = float_to_e4m3(rng.real(-1.0f, 1.0f));
  std::vector<float> xf(d.x.size()), wf(d.w.size());
  std::transform(d.x.begin(), d.x.end(), xf.begin(), e4m3_to_float);
  std::transform(d.w.begin(), d.w.end(), wf.begin(), e4m3_to_float);
  d.acc.assign(static_cast<std::size_t>(kN * kH * kW * kK), 0.0);
  for (std::int64_t n = 0; n < kN; ++n)
    for (std::int64_t oh = 0; oh < kH; ++oh)
      for (std::int64_t ow = 0; ow < kW; ++ow)
        for (std::int64_t k = 0; k < kK; ++k) {
          double acc = 0;
          for (std::int64_t i = 0; i < kR; ++i)
            for (std::int64_t j = 0; j < kS; ++j) {
              const std::int64_t ih = oh - 1 + i, iw = ow - 1 + j;
              if (ih < 0 || ih >= kH || iw < 0 || iw >= kW) continue;
              const float* xp = &xf[static_cast<std::size_t>(((n * kH + ih) * kW + iw) * kC)];
              const float* wp = &wf[static_cast<std::size_t>(((k * kR + i) * kS + j) * kC)];
              for (std::int64_t c = 0; c < kC; ++c)
                acc += static_cast<double>(xp[c]) * wp[c];
            }
          d.acc[static_cast<std::size_t>(((n * kH + oh) * kW + ow) * kK + k)] = acc;
        }
  return d;
}

float decode(const std::vector<std::byte>& bytes, std::size_t i, Out out) {
  switch (out) {
    case Out::kFp8:
      return e4m3_to_float(static_cast<std::uint8_t>(bytes[i]));
    case Out::kHalf: {
      __half h;
      std::memcpy(&h, &bytes[2 * i], 2);
      return __half2float(h);
    }
    case Out::kFloat: {
      float f;
      std::memcpy(&f, &bytes[4 * i], 4);
      return f;
    }
  }
  return 0.0f;
}

// Runs `plan` and returns the number of elements outside FP8-level tolerance,
// printing the worst one.
std::size_t run_and_compare(const cuda::CudnnHandle& handle, const cuda::Stream& stream,
                            const cuda::EnginePlan& plan, const Variant& v, const Data& d) {
  const std::size_t count = d.acc.size();
  cuda::DeviceBuffer x(d.x.size()), w(d.w.size()), scale(16), y(count * bytes_of(v.out)),
      workspace(std::max<std::size_t>(plan.workspace, 16));
  cuda::copy_to_device(x.data(), d.x.data(), d.x.size());
  cuda::copy_to_device(w.data(), d.w.data(), d.w.size());
  cuda::copy_to_device(scale.data(), &kScale, sizeof kScale);
  ANVIL_GPU_CHECK(cudaMemsetAsync(y.data(), 0x7f, y.bytes(), stream.get()));  // NaN-ish
  std::int64_t uids[4] = {kX, kWgt, kY, kScaleUid};
  void* ptrs[4] = {x.data(), w.data(), y.data(), scale.data()};
  void* ws = workspace.data();
  BackendDescriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, v.scaled ? 4 : 3, uids);
  pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, v.scaled ? 4 : 3, ptrs);
  pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
  pack.finalize();
  ANVIL_GPU_CHECK(cudnnSetStream(handle.get(), stream.get()));
  ANVIL_GPU_CHECK(cudnnBackendExecute(handle.get(), plan.plan.get(), pack.get()));
  std::vector<std::byte> host(y.bytes());
  ANVIL_GPU_CHECK(
      cudaMemcpyAsync(host.data(), y.data(), y.bytes(), cudaMemcpyDeviceToHost, stream.get()));
  stream.synchronize();

  const double scale_used = v.scaled ? kScale : 1.0;
  std::size_t over = 0, worst_at = 0;
  double worst = -1, worst_want = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double exact = d.acc[i] * scale_used;
    double want = exact, tol = 1e-2 + 4e-3 * std::fabs(exact);  // FP32 accumulation order
    if (v.out == Out::kFp8) {
      want = e4m3_to_float(float_to_e4m3(static_cast<float>(exact)));
      tol = 0.125 * std::fabs(want) + 0x1p-9;  // one E4M3 step, either way of a tie
    } else if (v.out == Out::kHalf) {
      want = __half2float(__float2half(static_cast<float>(exact)));
      tol += 1e-3 * std::fabs(want);
    }
    const double got = decode(host, i, v.out);
    const double diff = std::isfinite(got) ? std::fabs(got - want) : INFINITY;
    over += !(diff <= tol);
    if (!(diff <= worst)) {
      worst = diff;
      worst_at = i;
      worst_want = want;
    }
  }
  std::printf(
      "        ran: max|got-want| %.4g at %zu (got %.6g want %.6g), %zu of %zu over tolerance\n",
      worst, worst_at, static_cast<double>(decode(host, worst_at, v.out)), worst_want, over, count);
  return over;
}

TEST(CudnnFp8Probe, ReportsWhatCudnnOffersAndChecksWhatRuns) {
  ANVIL_REQUIRE_GPU();
  const auto info = cuda::device_info(0);
  std::printf(
      "GPU %s (SM %d%d), cuDNN %zu: FP8 E4M3 conv x[%lld,%lld,%lld,%lld] w 3x3 %lld->%lld\n",
      info ? info->name.c_str() : "?", info ? info->cc_major : 0, info ? info->cc_minor : 0,
      cudnnGetVersion(), static_cast<long long>(kN), static_cast<long long>(kH),
      static_cast<long long>(kW), static_cast<long long>(kC), static_cast<long long>(kC),
      static_cast<long long>(kK));
  const cuda::CudnnHandle handle;
  const cuda::Stream stream;
  const Data d = make_data();
  const Variant variants[] = {{"fp8 out (conv * scale)", Out::kFp8, true},
                              {"fp16 out (conv)", Out::kHalf, false},
                              {"fp16 out (conv * scale)", Out::kHalf, true},
                              {"fp32 out (conv)", Out::kFloat, false},
                              {"fp32 out (conv * scale)", Out::kFloat, true}};
  constexpr int kTriesPerMode = 3;
  int working = 0;
  std::string statuses;
  for (const Variant& v : variants) {
    std::printf("\n=== %s\n", v.name);
    const Graph g = build_graph(handle.get(), v);
    std::printf("    operation graph: %s\n", g.status.c_str());
    std::string summary = cat(v.name, ": graph ", g.status);
    if (!g.op_graph.get()) {
      statuses += cat(statuses.empty() ? "" : "; ", summary);
      continue;
    }
    std::set<std::string> tried;
    int built = 0;
    for (const auto& [mode, name] :
         {std::pair{CUDNN_HEUR_MODE_A, "A"}, std::pair{CUDNN_HEUR_MODE_B, "B"},
          std::pair{CUDNN_HEUR_MODE_FALLBACK, "fallback"}}) {
      std::string status;
      const std::vector<cuda::EngineChoice> choices =
          cuda::heuristic_choices(g.op_graph, mode, &status);
      std::printf("    heuristics %-8s: %zu configs (%s)\n", name, choices.size(), status.c_str());
      summary += cat(", ", name, " ", choices.size());
      int tries = 0;
      for (const cuda::EngineChoice& choice : choices) {
        if (tries >= kTriesPerMode) break;
        const std::string id = choice.to_string();
        if (!tried.insert(id).second) continue;
        ++tries;
        cuda::EnginePlan plan;
        std::string why;
        const cuda::EngineFilter any = [](const cuda::EngineNotes&, std::string&) { return true; };
        const bool ok =
            cuda::build_engine_plan(handle.get(), g.op_graph, choice, id, any, plan, why);
        std::printf("      %-30s [%s] plan %s\n", id.c_str(), plan.notes.c_str(),
                    ok ? "finalized" : why.c_str());
        if (!ok) continue;
        ++built;
        try {
          const std::size_t over = run_and_compare(handle, stream, plan, v, d);
          EXPECT_EQ(over, 0u) << v.name << " " << id
                              << ": cuDNN built this FP8 engine but it computes wrong results";
          working += over == 0;
        } catch (const anvil::Error& e) {
          ADD_FAILURE() << v.name << " " << id
                        << ": plan finalized but execution failed: " << e.what();
        }
      }
    }
    summary += cat(", ", built, " plans built");
    statuses += cat(statuses.empty() ? "" : "; ", summary);
  }
  if (working > 0)
    std::printf("\nFP8 conv on this GPU/cuDNN: supported by %d engines (%s)\n", working,
                statuses.c_str());
  else
    std::printf("\nFP8 conv on this GPU/cuDNN: not supported: %s\n", statuses.c_str());
}

// Host-side: the E4M3 conversion the probe's data and reference rest on.
TEST(CudnnFp8Probe, E4m3ConversionRoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(float_to_e4m3(1.0f), 0x38);
  EXPECT_EQ(float_to_e4m3(-3.0f), 0xc4);
  EXPECT_EQ(float_to_e4m3(448.0f), 0x7e);
  EXPECT_EQ(float_to_e4m3(1e6f), 0x7e);
  EXPECT_EQ(float_to_e4m3(-1e6f), 0xfe);
  EXPECT_EQ(float_to_e4m3(1.0625f), 0x38);   // tie between 1 and 1.125 -> even (1)
  EXPECT_EQ(float_to_e4m3(1.1875f), 0x3a);   // tie between 1.125 and 1.25 -> even (1.25)
  EXPECT_EQ(float_to_e4m3(0x1p-9f), 0x01);   // smallest subnormal
  EXPECT_EQ(float_to_e4m3(0x1p-10f), 0x00);  // tie between 0 and 2^-9 -> even (0)
  EXPECT_EQ(float_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(e4m3_to_float(0x7e), 448.0f);
  EXPECT_TRUE(std::isnan(e4m3_to_float(0x7f)));
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7f) == 0x7f) continue;  // NaN
    const float v = e4m3_to_float(static_cast<std::uint8_t>(code));
    EXPECT_EQ(float_to_e4m3(v), code) << "round trip of code " << code << " (" << v << ")";
  }
  // Agrees with CUDA's own conversion (saturating to finite) over a sweep,
  // and on a 2^-12 grid around zero, which holds every subnormal tie.
  std::vector<float> sweep;
  for (float f = -500.0f; f <= 500.0f; f += 0.0137f)
    sweep.push_back(f);
  for (int i = -5000; i <= 5000; ++i)
    sweep.push_back(std::ldexp(static_cast<float>(i), -12));
  for (const float f : sweep) {
    const auto cuda_code =
        static_cast<std::uint8_t>(__nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3));
    ASSERT_EQ(float_to_e4m3(f), cuda_code) << "f = " << f;
  }
}

}  // namespace
}  // namespace anvil
