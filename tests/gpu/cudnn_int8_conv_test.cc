// The INT8 cuDNN convolution (src/cuda/cudnn_quantized_conv.h) against an exact
// CPU reference (int64 accumulation, FP32 epilogue, round half to even,
// saturate), for every candidate engine config, timed against the same layer
// in FP16 through FusedConv. One run prints everything needed to decide what
// cuDNN supports for INT8 on this GPU: per case the search log (cuDNN status
// of every graph variant and heuristics mode, why engines were rejected), per
// candidate identity, notes, time and worst element, and a summary table.
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/cudnn_conv.h"
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
using cuda::QuantizedConvOutput;
using cuda::QuantizedConvShape;

struct Case {
  std::string name;
  QuantizedConvShape shape;     // padded channel counts
  std::int64_t c_real, k_real;  // the model's channels
  bool core = false;            // must have an engine on every supported GPU
};

QuantizedConvShape conv3x3(std::int64_t n, std::int64_t hw, std::int64_t c, std::int64_t k,
                           std::int64_t stride) {
  return {.n = n,
          .h = hw,
          .w = hw,
          .c = c,
          .k = k,
          .r = 3,
          .s = 3,
          .pad_h = 1,
          .pad_w = 1,
          .stride_h = stride,
          .stride_w = stride,
          .has_bias = true};
}

QuantizedConvShape conv1x1(std::int64_t n, std::int64_t hw, std::int64_t c, std::int64_t k,
                           std::int64_t stride) {
  return {.n = n,
          .h = hw,
          .w = hw,
          .c = c,
          .k = k,
          .stride_h = stride,
          .stride_w = stride,
          .has_bias = true};
}

template <typename F>
QuantizedConvShape with(QuantizedConvShape s, F f) {
  f(s);
  return s;
}

std::vector<Case> cases() {
  std::vector<Case> v;
  for (std::int64_t n : {1, 8})
    v.push_back({cat("core 3x3 s1 64->64 bias relu int8 N=", n),
                 with(conv3x3(n, 28, 64, 64, 1), [](auto& s) { s.relu = true; }), 64, 64, true});
  v.push_back({"3x3 s1 64->64 bias residual(x0.75) relu int8 N=8",
               with(conv3x3(8, 28, 64, 64, 1),
                    [](auto& s) {
                      s.relu = s.has_residual = true;
                      s.residual_scale = 0.75f;
                    }),
               64, 64});
  v.push_back({"3x3 s1 64->64 bias residual(x1) relu int8 N=1",
               with(conv3x3(1, 28, 64, 64, 1), [](auto& s) { s.relu = s.has_residual = true; }), 64,
               64});
  v.push_back({"3x3 s2 64->128 bias relu int8 N=8",
               with(conv3x3(8, 28, 64, 128, 2), [](auto& s) { s.relu = true; }), 64, 128});
  v.push_back({"1x1 s1 128->64 bias (no relu) int8 N=8", conv1x1(8, 14, 128, 64, 1), 128, 64});
  v.push_back({"1x1 s2 64->128 bias downsample int8 N=1", conv1x1(1, 28, 64, 128, 2), 64, 128});
  v.push_back({"3x3 s1 C3(pad 4)->K30(pad 32) bias relu int8 N=1",
               with(conv3x3(1, 32, 4, 32, 1), [](auto& s) { s.relu = true; }), 3, 30});
  v.push_back({"3x3 s1 C3(pad 16)->K30(pad 32) bias relu int8 N=1",
               with(conv3x3(1, 32, 16, 32, 1), [](auto& s) { s.relu = true; }), 3, 30});
  v.push_back({"3x3 s1 64->64 bias relu fp16-out N=8",
               with(conv3x3(8, 28, 64, 64, 1),
                    [](auto& s) {
                      s.relu = true;
                      s.output = QuantizedConvOutput::kHalf;
                    }),
               64, 64});
  v.push_back({"1x1 s1 128->64 bias residual fp16-out N=1",
               with(conv1x1(1, 14, 128, 64, 1),
                    [](auto& s) {
                      s.has_residual = true;
                      s.output = QuantizedConvOutput::kHalf;
                    }),
               128, 64});
  v.push_back(
      {"1x1 s1 64->64 bias fp32-out N=1",
       with(conv1x1(1, 14, 64, 64, 1), [](auto& s) { s.output = QuantizedConvOutput::kFloat; }), 64,
       64});
  return v;
}

std::size_t output_bytes(QuantizedConvOutput out) {
  return out == QuantizedConvOutput::kQuantized ? 1 : out == QuantizedConvOutput::kHalf ? 2 : 4;
}

// The layer's host data in engine layout (NHWC, KRSC, padded channels zero)
// and the reference output as floats.
struct Layer {
  std::vector<std::int8_t> x, w;
  std::vector<float> residual_real;  // residual in real units, [N,P,Q,K]
  std::vector<std::byte> residual;   // as the GPU stores it (output dtype)
  quant::Int8Requantization requant;
  std::vector<float> want;  // [N,P,Q,K_pad]
  std::int64_t saturated = 0;
};

Layer make_layer(const Case& c) {
  const QuantizedConvShape& s = c.shape;
  const std::int64_t p = s.out_h(), q = s.out_w();
  test::Lcg rng{static_cast<std::uint32_t>(c.c_real * 131 + c.k_real * 7 + s.n + s.r)};
  Layer d;
  d.x = test::padded_codes(s.n * s.h * s.w * s.c, s.c, c.c_real,
                           [&] { return rng.uniform(-128, 127); });
  d.w = test::padded_codes(
      s.k * s.r * s.s * s.c, s.c, c.c_real, [&] { return rng.uniform(-127, 127); },
      c.k_real * s.r * s.s * s.c);
  d.x[0] = 1;  // never all zero
  d.w[0] = 1;

  // Scales that put the output's spread near the INT8 range, so that both
  // ordinary rounding and saturation occur.
  const bool int8_out = s.output == QuantizedConvOutput::kQuantized;
  const float x_scale = 0.02f, y_scale = int8_out ? 0.05f : 1.0f;
  const float acc_spread = std::sqrt(static_cast<float>(c.c_real * s.r * s.s)) * 73.0f * 73.0f;
  std::vector<float> w_scales(static_cast<std::size_t>(c.k_real)), b(w_scales.size());
  for (std::size_t k = 0; k < w_scales.size(); ++k) {
    w_scales[k] = rng.real(0.5f, 1.5f) * 80.0f * y_scale / (acc_spread * x_scale);
    b[k] = rng.real(-20.0f, 20.0f) * y_scale;
  }
  if (!s.has_bias) std::fill(b.begin(), b.end(), 0.0f);
  d.requant = quant::fold_requantization(x_scale, w_scales, s.has_bias ? b : std::vector<float>{},
                                         y_scale, c.k_real, s.k);

  // Residual: INT8 codes times residual_scale * y_scale (real units) for an
  // INT8 output, real FP16-representable values for a float output.
  const std::size_t out_count = static_cast<std::size_t>(s.n * p * q * s.k);
  d.residual_real.assign(out_count, 0.0f);
  d.residual.assign(out_count * output_bytes(s.output), std::byte{0});
  for (std::size_t i = 0; i < out_count; ++i) {
    if (!s.has_residual || static_cast<std::int64_t>(i) % s.k >= c.k_real) continue;
    if (int8_out) {
      const auto code = static_cast<std::int8_t>(rng.uniform(-128, 127));
      std::memcpy(&d.residual[i], &code, 1);
      d.residual_real[i] = static_cast<float>(code) * s.residual_scale * y_scale;
    } else {
      const float v = __half2float(__float2half(rng.real(-40.0f, 40.0f)));
      d.residual_real[i] = v;
      if (s.output == QuantizedConvOutput::kHalf) {
        const __half h = __float2half(v);
        std::memcpy(&d.residual[2 * i], &h, 2);
      } else {
        std::memcpy(&d.residual[4 * i], &v, 4);
      }
    }
  }

  // The reference: y = sat(rne(act(acc * x_scale * w_scale[k] + b[k] + residual) / y_scale)),
  // 0 in the padded channels (their scale, bias and residual are 0).
  std::vector<float> scale(static_cast<std::size_t>(s.k), 0.0f), bias(scale.size(), 0.0f);
  for (std::size_t k = 0; k < w_scales.size(); ++k) {
    scale[k] = x_scale * w_scales[k];
    bias[k] = b[k];
  }
  const test::Int8ConvReference ref = test::int8_conv_reference(s, d.x, d.w,
                                                                {.scale = scale,
                                                                 .bias = bias,
                                                                 .residual = d.residual_real,
                                                                 .relu = s.relu,
                                                                 .y_scale = y_scale});
  d.saturated = ref.saturated;
  if (int8_out) {
    d.want = test::to_floats(ref.int8);
  } else if (s.output == QuantizedConvOutput::kHalf) {
    d.want.resize(ref.value.size());
    for (std::size_t i = 0; i < d.want.size(); ++i)
      d.want[i] = __half2float(__float2half(ref.value[i]));
  } else {
    d.want = ref.value;
  }
  return d;
}

std::vector<float> decode(const std::vector<std::byte>& bytes, QuantizedConvOutput out) {
  const std::size_t size = output_bytes(out);
  std::vector<float> v(bytes.size() / size);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (out == QuantizedConvOutput::kQuantized) {
      v[i] = static_cast<float>(static_cast<std::int8_t>(bytes[i]));
    } else if (out == QuantizedConvOutput::kHalf) {
      __half h;
      std::memcpy(&h, &bytes[2 * i], 2);
      v[i] = __half2float(h);
    } else {
      std::memcpy(&v[i], &bytes[4 * i], 4);
    }
  }
  return v;
}

// Milliseconds per run of `enqueue` on `stream`: 3 warm-ups, then 10 timed.
template <typename F>
float time_ms(cudaStream_t stream, F enqueue) {
  for (int i = 0; i < 3; ++i)
    enqueue();
  const cuda::Event start, end;
  start.record(stream);
  for (int i = 0; i < 10; ++i)
    enqueue();
  end.record(stream);
  end.synchronize();
  return cuda::Event::elapsed_ms(start, end) / 10.0f;
}

// Fastest FP16 FusedConv for the same layer (padded channels), or -1.
float best_fp16_ms(const cuda::CudnnHandle& handle, const cuda::Stream& stream,
                   const QuantizedConvShape& s, std::string& which) {
  const cuda::ConvShape f{
      .n = s.n,
      .c = s.c,
      .h = s.h,
      .w = s.w,
      .k = s.k,
      .r = s.r,
      .s = s.s,
      .pad_h = s.pad_h,
      .pad_w = s.pad_w,
      .stride_h = s.stride_h,
      .stride_w = s.stride_w,
      .dil_h = s.dil_h,
      .dil_w = s.dil_w,
      .fp16 = true,
      .has_bias = s.has_bias,
      .has_residual = s.has_residual,
      .act = s.relu ? cuda::ConvActivation::kRelu : cuda::ConvActivation::kNone};
  const std::size_t out = static_cast<std::size_t>(s.n * s.out_h() * s.out_w() * s.k) * 2;
  const cuda::DeviceBuffer x(static_cast<std::size_t>(s.n * s.h * s.w * s.c) * 2),
      w(static_cast<std::size_t>(s.k * s.r * s.s * s.c) * 2),
      bias(static_cast<std::size_t>(s.k) * 2), residual(out), y(out);
  // Zeros: the timing does not depend on the values, and they stay finite.
  for (const cuda::DeviceBuffer* b : {&x, &w, &bias, &residual})
    ANVIL_GPU_CHECK(cudaMemsetAsync(b->data(), 0, b->bytes(), stream.get()));
  float best = -1.0f;
  for (const cuda::FusedConv& conv : cuda::FusedConv::candidates(handle.get(), f)) {
    const cuda::DeviceBuffer workspace(std::max<std::size_t>(conv.workspace_bytes(), 16));
    const cuda::FusedConv::Binding binding =
        conv.bind(x.data(), w.data(), bias.data(), residual.data(), y.data(), workspace.data());
    const float ms =
        time_ms(stream.get(), [&] { conv.execute(handle.get(), stream.get(), binding); });
    if (best < 0 || ms < best) {
      best = ms;
      which = conv.identity();
    }
  }
  return best;
}

struct Summary {
  std::string name;
  std::size_t candidates = 0;
  int passing = 0;
  float int8_ms = -1, fp16_ms = -1;
};

Summary run_case(const Case& c, const cuda::CudnnHandle& handle, const cuda::Stream& stream) {
  const QuantizedConvShape& s = c.shape;
  SCOPED_TRACE(c.name);
  Summary summary{.name = c.name};
  const Layer d = make_layer(c);
  const bool int8_out = s.output == QuantizedConvOutput::kQuantized;
  std::printf("\n=== %s\n    %s (real C %lld, K %lld); reference saturates %lld of %zu\n",
              c.name.c_str(), s.describe().c_str(), static_cast<long long>(c.c_real),
              static_cast<long long>(c.k_real), static_cast<long long>(d.saturated), d.want.size());

  const QuantizedConv::Search search = QuantizedConv::search(handle.get(), s);
  for (const std::string& line : search.log)
    std::printf("    %s\n", line.c_str());
  summary.candidates = search.candidates.size();
  std::string fp16_which;
  try {
    summary.fp16_ms = best_fp16_ms(handle, stream, s, fp16_which);
  } catch (const anvil::Error& e) {
    fp16_which = cat("failed: ", e.what());
  }
  std::printf("    FP16 FusedConv best: %.4f ms (%s)\n", static_cast<double>(summary.fp16_ms),
              fp16_which.c_str());
  if (search.candidates.empty()) {
    std::printf(
        "    UNSUPPORTED: cuDNN %zu offers no INT8 engine for this variant on this GPU "
        "(statuses above)\n",
        cudnnGetVersion());
    if (c.core) ADD_FAILURE() << "no cuDNN engine for the core INT8 variant: " << s.describe();
    return summary;
  }

  const cuda::DeviceBuffer x = test::upload(d.x.data(), d.x.size()),
                           w = test::upload(d.w.data(), d.w.size());
  const cuda::DeviceBuffer scale = test::upload(d.requant.scale.data(), d.requant.scale.size() * 4);
  const cuda::DeviceBuffer bias = test::upload(d.requant.bias.data(), d.requant.bias.size() * 4);
  const cuda::DeviceBuffer residual = test::upload(d.residual.data(), d.residual.size());
  std::vector<std::byte> y_host(d.want.size() * output_bytes(s.output));
  const cuda::DeviceBuffer y(y_host.size());
  const std::int64_t p = s.out_h(), q = s.out_w();

  auto run = [&](const QuantizedConv& conv, float* ms) {
    const cuda::DeviceBuffer workspace(std::max<std::size_t>(conv.workspace_bytes(), 16));
    const QuantizedConv::Binding binding =
        conv.bind(x.data(), w.data(), scale.as<float>(), bias.as<float>(), residual.data(),
                  y.data(), workspace.data());
    // 0x5b is 91 as INT8 and NaN-free garbage as floats: an unwritten element shows.
    ANVIL_GPU_CHECK(cudaMemsetAsync(y.data(), 0x5b, y.bytes(), stream.get()));
    conv.execute(handle.get(), stream.get(), binding);
    ANVIL_GPU_CHECK(
        cudaMemcpyAsync(y_host.data(), y.data(), y.bytes(), cudaMemcpyDeviceToHost, stream.get()));
    stream.synchronize();
    if (ms) *ms = time_ms(stream.get(), [&] { conv.execute(handle.get(), stream.get(), binding); });
    return decode(y_host, s.output);
  };

  for (const QuantizedConv& conv : search.candidates) {
    float ms = 0;
    std::vector<float> got;
    try {
      got = run(conv, &ms);
    } catch (const anvil::Error& e) {
      ADD_FAILURE() << conv.identity() << " failed to execute: " << e.what();
      continue;
    }
    const test::Int8ConvMismatch e = test::compare_int8_conv(got, d.want, int8_out);
    const std::size_t kk = e.at % static_cast<std::size_t>(s.k), pix = e.at / s.k;
    std::printf(
        "    %-34s %8.4f ms  ws %8zu B  [%s]  max|got-want| %.4g at n%lld p%lld q%lld "
        "k%zu (got %.6g want %.6g), %zu inexact, %zu over tolerance\n",
        conv.identity().c_str(), static_cast<double>(ms), conv.workspace_bytes(),
        conv.notes().c_str(), e.worst, static_cast<long long>(pix / (p * q)),
        static_cast<long long>(pix / q % p), static_cast<long long>(pix % q), kk,
        static_cast<double>(got[e.at]), static_cast<double>(d.want[e.at]), e.inexact, e.over);
    EXPECT_EQ(e.over, 0u) << conv.identity() << ": worst " << e.worst << " (tolerance "
                          << (int8_out ? "1 step" : "1e-2 relative") << ")";
    if (e.over == 0) {
      ++summary.passing;
      if (summary.int8_ms < 0 || ms < summary.int8_ms) summary.int8_ms = ms;
    }
  }

  const QuantizedConv& first = search.candidates.front();
  try {
    const QuantizedConv again = QuantizedConv::from_identity(handle.get(), s, first.identity());
    EXPECT_EQ(again.identity(), first.identity());
    const test::Int8ConvMismatch e = test::compare_int8_conv(run(again, nullptr), d.want, int8_out);
    EXPECT_EQ(e.over, 0u) << first.identity() << " rebuilt from its identity";
  } catch (const anvil::Error& e) {
    ADD_FAILURE() << first.identity() << " rebuilt from its identity: " << e.what();
  }
  return summary;
}

TEST(CudnnInt8Conv, EveryCandidateMatchesTheExactReference) {
  ANVIL_REQUIRE_GPU();
  const auto info = cuda::device_info(0);
  std::printf("GPU %s (SM %d%d), cuDNN %zu\n", info ? info->name.c_str() : "?",
              info ? info->cc_major : 0, info ? info->cc_minor : 0, cudnnGetVersion());
  const cuda::CudnnHandle handle;
  const cuda::Stream stream;
  std::vector<Summary> summaries;
  for (const Case& c : cases()) {
    try {
      summaries.push_back(run_case(c, handle, stream));
    } catch (const anvil::Error& e) {
      // Keep going: one run must diagnose every case.
      ADD_FAILURE() << c.name << ": " << e.what();
      summaries.push_back({.name = c.name + " (threw)"});
    }
  }

  std::printf("\n%-52s %5s %5s %10s %10s %7s\n", "case", "cands", "pass", "int8 ms", "fp16 ms",
              "fp16/int8");
  for (const Summary& s : summaries)
    std::printf("%-52s %5zu %5d %10.4f %10.4f %7.2f%s\n", s.name.c_str(), s.candidates, s.passing,
                static_cast<double>(s.int8_ms), static_cast<double>(s.fp16_ms),
                s.int8_ms > 0 && s.fp16_ms > 0 ? static_cast<double>(s.fp16_ms / s.int8_ms) : 0.0,
                s.int8_ms > 0 && s.fp16_ms > 0 && s.int8_ms > s.fp16_ms ? "  INT8 SLOWER" : "");
}

// Host-side checks: no GPU needed.
TEST(CudnnInt8Conv, PadsChannelsAndRejectsWhatCudnnCannotRun) {
  EXPECT_EQ(cuda::round_up_channels(3), 4);
  EXPECT_EQ(cuda::round_up_channels(64), 64);
  EXPECT_EQ(cuda::round_up_channels(30, 16), 32);
  const QuantizedConvShape ok = conv3x3(1, 8, 8, 8, 1);
  EXPECT_NO_THROW(cuda::check_quantized_conv_shape(ok));
  auto expect_kind = [](const QuantizedConvShape& s, ErrorKind kind) {
    try {
      cuda::check_quantized_conv_shape(s);
      ADD_FAILURE() << "accepted " << s.describe();
    } catch (const anvil::Error& e) {
      EXPECT_EQ(e.kind(), kind) << e.what();
    }
  };
  expect_kind(with(ok, [](auto& s) { s.c = 6; }), ErrorKind::kUnsupported);
  expect_kind(with(ok, [](auto& s) { s.k = 30; }), ErrorKind::kUnsupported);
  expect_kind(with(ok, [](auto& s) { s.groups = 2; }), ErrorKind::kUnsupported);
  expect_kind(with(ok, [](auto& s) { s.r = 0; }), ErrorKind::kInvalidArgument);
  expect_kind(with(ok, [](auto& s) { s.pad_h = 0, s.h = 2; }), ErrorKind::kInvalidArgument);
}

TEST(CudnnInt8Conv, MalformedIdentityIsAnInvalidArgument) {
  // The identity is parsed before cuDNN is touched, so no handle is needed.
  const QuantizedConvShape s = conv1x1(1, 8, 8, 8, 1);
  for (const char* bad : {"", "eng3:", "i32", "i32:eng", "i32:engx:", "x32:eng3:", "f32:eng3:1",
                          "i32:eng3:1=x", "i32:eng3"}) {
    try {
      QuantizedConv::from_identity(nullptr, s, bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const anvil::Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << bad << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace anvil
