// cuda::QuantizedConv with element kFloat8E4M3 (the FP8 plans' conv_int8 layers):
// every candidate cuDNN offers for a few ResNet-like layers, run on random
// E4M3 data and compared with a CPU reference (quant/fp8_e4m3.h: exact
// decode, products summed in double, the FP32 epilogue in the graph's order,
// then E4M3 nearest-even saturating). cuDNN sums in FP32 in its own order, so
// an FP8 output may be one E4M3 step off: allowed are at most 1 step, in
// fewer than 1% of the outputs; an FP16 output within 1e-2 of the output
// range. It prints per case the search log, per candidate its identity,
// notes, time and worst element (n, p, q, k, got, want).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "builder/weights.h"
#include "cuda/check.h"
#include "cuda/cudnn_quantized_conv.h"
#include "cuda/handles.h"
#include "gpu_test.h"
#include "quant/fp8_e4m3.h"

namespace anvil {
namespace {

using cuda::QuantizedConv;
using cuda::QuantizedConvOutput;
using cuda::QuantizedConvShape;

struct Case {
  const char* name;
  QuantizedConvShape shape;
  bool required;  // fails the test without a candidate
};

QuantizedConvShape fp8_shape(std::int64_t n, std::int64_t hw, std::int64_t c, std::int64_t k,
                             std::int64_t rs, std::int64_t stride, bool bias, bool residual,
                             bool relu,
                             QuantizedConvOutput output = QuantizedConvOutput::kQuantized) {
  QuantizedConvShape s;
  s.element = DType::kFloat8E4M3;
  s.n = n;
  s.h = s.w = hw;
  s.c = c;
  s.k = k;
  s.r = s.s = rs;
  s.pad_h = s.pad_w = rs / 2;
  s.stride_h = s.stride_w = stride;
  s.has_bias = bias;
  s.has_residual = residual;
  s.relu = relu;
  s.output = output;
  return s;
}

std::vector<std::uint8_t> random_codes(std::size_t count, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<std::uint8_t> out(count);
  for (std::uint8_t& v : out)
    v = quant::encode_e4m3(normal(rng));
  return out;
}

cuda::DeviceBuffer upload(const void* host, std::size_t bytes) {
  cuda::DeviceBuffer b(bytes);
  cuda::copy_to_device(b.data(), host, bytes);
  return b;
}

// The reference's output before conversion, NHWC.
std::vector<float> reference(const QuantizedConvShape& s, const std::vector<std::uint8_t>& x,
                             const std::vector<std::uint8_t>& w, const std::vector<float>& scale,
                             const std::vector<float>& bias,
                             const std::vector<std::uint8_t>& residual) {
  const std::int64_t p_out = s.out_h(), q_out = s.out_w();
  std::vector<float> y(static_cast<std::size_t>(s.n * p_out * q_out * s.k));
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t p = 0; p < p_out; ++p)
      for (std::int64_t q = 0; q < q_out; ++q)
        for (std::int64_t k = 0; k < s.k; ++k) {
          double acc = 0.0;
          for (std::int64_t r = 0; r < s.r; ++r) {
            const std::int64_t ih = p * s.stride_h - s.pad_h + r;
            if (ih < 0 || ih >= s.h) continue;
            for (std::int64_t t = 0; t < s.s; ++t) {
              const std::int64_t iw = q * s.stride_w - s.pad_w + t;
              if (iw < 0 || iw >= s.w) continue;
              const std::uint8_t* xp = x.data() + ((n * s.h + ih) * s.w + iw) * s.c;
              const std::uint8_t* wp = w.data() + ((k * s.r + r) * s.s + t) * s.c;
              for (std::int64_t c = 0; c < s.c; ++c)
                acc += double{quant::decode_e4m3(xp[c])} * double{quant::decode_e4m3(wp[c])};
            }
          }
          const auto o = static_cast<std::size_t>(((n * p_out + p) * q_out + q) * s.k + k);
          const auto kk = static_cast<std::size_t>(k);
          float v = static_cast<float>(acc) * scale[kk];
          if (s.has_bias) v = v + bias[kk];
          if (s.has_residual) v = v + quant::decode_e4m3(residual[o]);
          if (s.relu) v = std::max(v, 0.0f);
          y[o] = v;
        }
  return y;
}

// Nothing when the candidate's output passes, else why; `line` gets the summary.
bool check(const QuantizedConvShape& s, const std::vector<float>& want_f,
           const std::vector<std::uint8_t>& got_bytes, std::string& line) {
  const std::int64_t p_out = s.out_h(), q_out = s.out_w();
  std::size_t worst = 0;
  double max_diff = 0.0, range = 1e-30;
  std::int64_t differ = 0;
  std::vector<float> got(want_f.size()), want(want_f.size());
  for (std::size_t i = 0; i < want_f.size(); ++i) {
    double diff = 0.0;
    if (s.output == QuantizedConvOutput::kQuantized) {
      const std::uint8_t w = quant::encode_e4m3(want_f[i]);
      got[i] = quant::decode_e4m3(got_bytes[i]);
      want[i] = quant::decode_e4m3(w);
      diff = quant::e4m3_ulp_distance(got_bytes[i], w);
    } else {
      std::uint16_t h = 0;
      std::memcpy(&h, got_bytes.data() + 2 * i, 2);
      got[i] = builder::half_to_float(h);
      want[i] = want_f[i];
      range = std::max(range, std::fabs(double{want[i]}));
      diff = std::isnan(got[i]) ? INFINITY : std::fabs(double{got[i]} - double{want[i]});
    }
    differ += diff > 0;
    if (diff > max_diff) {
      max_diff = diff;
      worst = i;
    }
  }
  const std::int64_t pixel = static_cast<std::int64_t>(worst) / s.k;
  const std::int64_t per_image = p_out * q_out;
  const bool fp8_out = s.output == QuantizedConvOutput::kQuantized;
  const bool ok = fp8_out ? max_diff <= 1 && differ * 100 < static_cast<std::int64_t>(got.size())
                          : max_diff / range <= 1e-2;
  line = cat(differ, " of ", got.size(), " differ, worst ", max_diff, fp8_out ? " steps" : "",
             fp8_out ? "" : cat(" (", max_diff / range, " of the range)"), " at n",
             pixel / per_image, " p", pixel % per_image / q_out, " q", pixel % q_out, " k",
             static_cast<std::int64_t>(worst) % s.k, ": got ", got[worst], " want ", want[worst],
             " (before conversion ", want_f[worst], ")", ok ? "" : "  FAIL");
  return ok;
}

TEST(CudnnFp8Conv, EveryCandidateMatchesTheReference) {
  ANVIL_REQUIRE_GPU();
  const Case cases[] = {
      {"3x3 s1 64->64 bias relu", fp8_shape(2, 28, 64, 64, 3, 1, true, false, true), true},
      {"3x3 s1 64->64 bias + residual relu", fp8_shape(2, 28, 64, 64, 3, 1, true, true, true),
       false},
      {"3x3 s2 64->128 bias relu", fp8_shape(2, 28, 64, 128, 3, 2, true, false, true), false},
      {"1x1 s2 64->128 bias, no relu", fp8_shape(2, 28, 64, 128, 1, 2, true, false, false), false},
      {"3x3 s1 16->32 (channel multiple 16)", fp8_shape(2, 14, 16, 32, 3, 1, true, false, true),
       false},
      {"3x3 64->64 FP16 output",
       fp8_shape(2, 28, 64, 64, 3, 1, true, false, true, QuantizedConvOutput::kHalf), false},
  };
  const cuda::CudnnHandle handle;
  cuda::Stream stream;
  std::mt19937 rng(11);
  int failures = 0;
  for (const Case& c : cases) {
    const QuantizedConvShape& s = c.shape;
    std::printf("\n== %s: %s\n", c.name, s.describe().c_str());
    const QuantizedConv::Search found = QuantizedConv::search(handle.get(), s, 16);
    for (const std::string& l : found.log)
      std::printf("  %s\n", l.c_str());
    if (found.candidates.empty()) {
      std::printf("  UNSUPPORTED: no candidate\n");
      if (c.required) ADD_FAILURE() << c.name << ": cuDNN offers no FP8 engine";
      continue;
    }
    const std::size_t out = static_cast<std::size_t>(s.n * s.out_h() * s.out_w() * s.k);
    const auto x = random_codes(static_cast<std::size_t>(s.n * s.h * s.w * s.c), 2.0f, rng);
    const auto w = random_codes(static_cast<std::size_t>(s.k * s.r * s.s * s.c), 0.5f, rng);
    const auto residual = random_codes(out, 4.0f, rng);
    std::vector<float> scale(static_cast<std::size_t>(s.k)), bias(scale.size());
    std::uniform_real_distribution<float> uniform(0.01f, 0.1f), centered(-2.0f, 2.0f);
    for (float& v : scale)
      v = uniform(rng);
    for (float& v : bias)
      v = centered(rng);
    const std::vector<float> want = reference(s, x, w, scale, bias, residual);
    const std::size_t y_bytes = out * (s.output == QuantizedConvOutput::kHalf ? 2 : 1);
    auto dx = upload(x.data(), x.size());
    auto dw = upload(w.data(), w.size());
    auto dr = upload(residual.data(), residual.size());
    auto dscale = upload(scale.data(), scale.size() * 4);
    auto dbias = upload(bias.data(), bias.size() * 4);
    cuda::DeviceBuffer dy(y_bytes);
    for (const QuantizedConv& conv : found.candidates) {
      cuda::DeviceBuffer workspace(conv.workspace_bytes());
      const QuantizedConv::Binding binding =
          conv.bind(dx.data(), dw.data(), dscale.as<float>(), dbias.as<float>(),
                    s.has_residual ? dr.data() : nullptr, dy.data(), workspace.data());
      ANVIL_GPU_CHECK(cudaMemsetAsync(dy.data(), 0x5b, y_bytes, stream.get()));
      conv.execute(handle.get(), stream.get(), binding);
      stream.synchronize();
      std::vector<std::uint8_t> got(y_bytes);
      ANVIL_GPU_CHECK(cudaMemcpy(got.data(), dy.data(), y_bytes, cudaMemcpyDeviceToHost));
      std::string line;
      const bool ok = check(s, want, got, line);
      std::printf("  %-40s %-32s ws %zu: %s\n", conv.identity().c_str(), conv.notes().c_str(),
                  conv.workspace_bytes(), line.c_str());
      failures += !ok;
      EXPECT_TRUE(ok) << c.name << " " << conv.identity() << ": " << line;
    }
  }
  std::printf("\nFP8 conv candidates failing the reference: %d\n", failures);
}

TEST(CudnnFp8Conv, ShapeChecksNameTheFp8ChannelMultiple) {
  ANVIL_REQUIRE_GPU();
  QuantizedConvShape s = fp8_shape(1, 8, 8, 16, 3, 1, false, false, false);
  try {
    cuda::check_quantized_conv_shape(s);
    ADD_FAILURE() << "accepted C = 8 for FP8";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("16"), std::string::npos) << e.what();
  }
  s.element = DType::kInt8;
  EXPECT_NO_THROW(cuda::check_quantized_conv_shape(s)) << "INT8 takes multiples of 4";
  s.element = DType::kFloat16;
  EXPECT_THROW(cuda::check_quantized_conv_shape(s), Error);
  EXPECT_EQ(cuda::channel_multiple(DType::kFloat8E4M3), 16);
  EXPECT_EQ(cuda::channel_multiple(DType::kInt8), 4);
}

}  // namespace
}  // namespace anvil
