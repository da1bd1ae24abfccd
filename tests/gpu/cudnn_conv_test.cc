// The fused cuDNN convolution (src/cuda/cudnn_conv.h) against the CPU
// reference Conv + residual + activation, for every candidate engine config.
#include "cuda/cudnn_conv.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "../unit/op_test_util.h"
#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "gpu_test.h"

namespace anvil {
namespace {

using cuda::ConvActivation;
using cuda::ConvShape;
using cuda::FusedConv;

struct Case {
  const char* name;
  ConvShape shape;
  std::int64_t real_c;  // the model's channels; shape.c is padded with zero weights
  // False where cuDNN 9 (seen on H200, 9.14) has no FP32 engine without TF32
  // for the graph; the case then checks the allow_tf32 engines instead.
  bool strict_fp32_engine = true;
};

std::vector<Case> cases(std::int64_t n, bool fp16) {
  auto make = [&](ConvShape s) {
    s.n = n;
    s.fp16 = fp16;
    return s;
  };
  return {
      {"stem 7x7 s2 p3 C3->8 relu",
       make({.c = 8,
             .h = 64,
             .w = 64,
             .k = 64,
             .r = 7,
             .s = 7,
             .pad_h = 3,
             .pad_w = 3,
             .stride_h = 2,
             .stride_w = 2,
             .has_bias = true,
             .act = ConvActivation::kRelu}),
       3},
      {"3x3 s1 p1 64->64 residual relu",
       make({.c = 64,
             .h = 28,
             .w = 28,
             .k = 64,
             .r = 3,
             .s = 3,
             .pad_h = 1,
             .pad_w = 1,
             .has_bias = true,
             .has_residual = true,
             .act = ConvActivation::kRelu}),
       64},
      {"1x1 s2 64->128 downsample",
       make({.c = 64, .h = 28, .w = 28, .k = 128, .stride_h = 2, .stride_w = 2, .has_bias = true}),
       128 / 2},
      {"3x3 depthwise g32 relu6",
       make({.c = 32,
             .h = 28,
             .w = 28,
             .k = 32,
             .r = 3,
             .s = 3,
             .pad_h = 1,
             .pad_w = 1,
             .groups = 32,
             .has_bias = true,
             .act = ConvActivation::kClip,
             .clip_min = 0,
             .clip_max = 6}),
       32},
      {"1x1 32->17 sigmoid",
       make(
           {.c = 32, .h = 14, .w = 14, .k = 17, .has_bias = true, .act = ConvActivation::kSigmoid}),
       32},
      {"3x3 dilation 2 bias relu",
       make({.c = 16,
             .h = 20,
             .w = 20,
             .k = 24,
             .r = 3,
             .s = 3,
             .pad_h = 2,
             .pad_w = 2,
             .dil_h = 2,
             .dil_w = 2,
             .has_bias = true,
             .act = ConvActivation::kRelu}),
       16},
      {"3x3 dilation 2 no bias leaky relu",
       make({.c = 16,
             .h = 20,
             .w = 20,
             .k = 24,
             .r = 3,
             .s = 3,
             .pad_h = 2,
             .pad_w = 2,
             .dil_h = 2,
             .dil_w = 2,
             .act = ConvActivation::kLeakyRelu,
             .act_alpha = 0.1f}),
       16, false},
  };
}

// Deterministic values in [-1, 1), rounded to FP16 when the layer stores FP16
// so that the reference sees the very inputs the GPU sees.
std::vector<float> random_values(std::size_t count, std::uint32_t seed, bool fp16) {
  std::vector<float> v(count);
  std::uint32_t state = seed * 2654435761u + 1;
  for (float& x : v) {
    state = state * 1664525u + 1013904223u;
    x = static_cast<float>(state >> 8) / static_cast<float>(1 << 23) - 1.0f;
    if (fp16) x = __half2float(__float2half(x));
  }
  return v;
}

// Host bytes of `values` in the layer's storage dtype.
std::vector<std::byte> to_storage(const std::vector<float>& values, bool fp16) {
  std::vector<std::byte> bytes(values.size() * (fp16 ? 2 : 4));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (fp16) {
      const __half h = __float2half(values[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    } else {
      std::memcpy(bytes.data() + 4 * i, &values[i], 4);
    }
  }
  return bytes;
}

std::vector<float> from_storage(const std::vector<std::byte>& bytes, bool fp16) {
  std::vector<float> values(bytes.size() / (fp16 ? 2 : 4));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (fp16) {
      __half h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      values[i] = __half2float(h);
    } else {
      std::memcpy(&values[i], bytes.data() + 4 * i, 4);
    }
  }
  return values;
}

cuda::DeviceBuffer upload(const std::vector<std::byte>& bytes) {
  cuda::DeviceBuffer buffer(bytes.size());
  cuda::copy_to_device(buffer.data(), bytes.data(), bytes.size());
  return buffer;
}

float activate(const ConvShape& s, float v) {
  switch (s.act) {
    case ConvActivation::kNone:
      return v;
    case ConvActivation::kRelu:
      return std::max(v, 0.0f);
    case ConvActivation::kClip:
      return std::clamp(v, s.clip_min, s.clip_max);
    case ConvActivation::kLeakyRelu:
      return v < 0 ? v * s.act_alpha : v;
    case ConvActivation::kSigmoid:
      return 1.0f / (1.0f + std::exp(-v));
    case ConvActivation::kHardSigmoid:
    case ConvActivation::kHardSwish:
      break;
  }
  ADD_FAILURE() << "activation without a cuDNN pointwise mode";
  return v;
}

// The layer's host data: model tensors (NCHW, real channels) for the CPU, and
// the engine's (NHWC, padded channels, KRSC weights) for the GPU.
struct LayerData {
  Tensor x, w, bias, residual;  // CPU reference inputs
  std::vector<float> x_nhwc, w_krsc, y_want_nhwc;
};

LayerData make_layer(const Case& c) {
  const ConvShape& s = c.shape;
  const std::int64_t cg_real = c.real_c / s.groups, cg = s.c / s.groups;
  const std::int64_t p = s.out_h(), q = s.out_w();
  LayerData d;
  d.x =
      testing::f32({s.n, c.real_c, s.h, s.w},
                   random_values(static_cast<std::size_t>(s.n * c.real_c * s.h * s.w), 1, s.fp16));
  d.w = testing::f32({s.k, cg_real, s.r, s.s},
                     random_values(static_cast<std::size_t>(s.k * cg_real * s.r * s.s), 2, s.fp16));
  d.bias = testing::f32({s.k}, random_values(static_cast<std::size_t>(s.k), 3, s.fp16));
  d.residual = testing::f32({s.n, s.k, p, q},
                            random_values(static_cast<std::size_t>(s.n * s.k * p * q), 4, s.fp16));

  // Padded channels hold zeros in x and in w: the padding contributes nothing.
  d.x_nhwc.assign(static_cast<std::size_t>(s.n * s.h * s.w * s.c), 0.0f);
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t ch = 0; ch < c.real_c; ++ch)
      for (std::int64_t i = 0; i < s.h * s.w; ++i)
        d.x_nhwc[(n * s.h * s.w + i) * s.c + ch] =
            d.x.data<float>()[(n * c.real_c + ch) * s.h * s.w + i];
  d.w_krsc.assign(static_cast<std::size_t>(s.k * s.r * s.s * cg), 0.0f);
  for (std::int64_t k = 0; k < s.k; ++k)
    for (std::int64_t ch = 0; ch < cg_real; ++ch)
      for (std::int64_t i = 0; i < s.r * s.s; ++i)
        d.w_krsc[(k * s.r * s.s + i) * cg + ch] =
            d.w.data<float>()[(k * cg_real + ch) * s.r * s.s + i];

  testing::OpNode conv("Conv", 13, s.has_bias ? 3 : 2);
  conv.attr("kernel_shape", std::vector<std::int64_t>{s.r, s.s})
      .attr("pads", std::vector<std::int64_t>{s.pad_h, s.pad_w, s.pad_h, s.pad_w})
      .attr("strides", std::vector<std::int64_t>{s.stride_h, s.stride_w})
      .attr("dilations", std::vector<std::int64_t>{s.dil_h, s.dil_w})
      .attr("group", s.groups);
  std::vector<const Tensor*> inputs{&d.x, &d.w};
  if (s.has_bias) inputs.push_back(&d.bias);
  const Tensor y = conv.run_one(inputs);
  d.y_want_nhwc.assign(static_cast<std::size_t>(s.n * p * q * s.k), 0.0f);
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t k = 0; k < s.k; ++k)
      for (std::int64_t i = 0; i < p * q; ++i) {
        const std::int64_t nchw = (n * s.k + k) * p * q + i;
        float v = y.data<float>()[nchw];
        if (s.has_residual) v += d.residual.data<float>()[nchw];
        d.y_want_nhwc[(n * p * q + i) * s.k + k] = activate(s, v);
      }
  return d;
}

// max|got-want| / max|want|, printing the worst element; NaN counts as infinite.
double relative_error(const std::vector<float>& got, const std::vector<float>& want,
                      const std::string& what) {
  double worst = 0, scale = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
    const double diff =
        std::isfinite(got[i]) ? std::fabs(static_cast<double>(got[i]) - want[i]) : INFINITY;
    if (diff > worst || (std::isinf(diff) && !std::isinf(worst))) {
      worst = diff;
      at = i;
    }
  }
  const double rel = worst / std::max(scale, 1e-30);
  std::printf("    %s: rel err %.3g (worst NHWC index %zu: got %.6g want %.6g)\n", what.c_str(),
              rel, at, static_cast<double>(got[at]), static_cast<double>(want[at]));
  return rel;
}

void run_case(const Case& c) {
  ConvShape s = c.shape;
  SCOPED_TRACE(::testing::Message() << c.name << (s.fp16 ? " fp16" : " fp32") << " N=" << s.n);
  const LayerData d = make_layer(c);
  double tolerance = s.fp16 ? 2e-2 : 1e-4;
  cuda::CudnnHandle handle;
  cuda::Stream stream;
  const cuda::DeviceBuffer x = upload(to_storage(d.x_nhwc, s.fp16));
  const cuda::DeviceBuffer w = upload(to_storage(d.w_krsc, s.fp16));
  const cuda::DeviceBuffer bias = upload(to_storage(testing::values_of(d.bias), s.fp16));
  std::vector<float> residual_nhwc(d.y_want_nhwc.size());
  const std::int64_t pq = s.out_h() * s.out_w();
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t k = 0; k < s.k; ++k)
      for (std::int64_t i = 0; i < pq; ++i)
        residual_nhwc[(n * pq + i) * s.k + k] = d.residual.data<float>()[(n * s.k + k) * pq + i];
  const cuda::DeviceBuffer residual = upload(to_storage(residual_nhwc, s.fp16));
  std::vector<std::byte> y_host(d.y_want_nhwc.size() * (s.fp16 ? 2 : 4));
  const cuda::DeviceBuffer y(y_host.size());

  auto run = [&](const FusedConv& conv) {
    const cuda::DeviceBuffer workspace(std::max<std::size_t>(conv.workspace_bytes(), 1));
    // All-ones bytes are NaN in FP32 and FP16: an element left unwritten fails.
    ANVIL_GPU_CHECK(cudaMemsetAsync(y.data(), 0xff, y.bytes(), stream.get()));
    conv.execute(handle.get(), stream.get(), x.data(), w.data(), bias.data(), residual.data(),
                 y.data(), workspace.data());
    ANVIL_GPU_CHECK(
        cudaMemcpyAsync(y_host.data(), y.data(), y.bytes(), cudaMemcpyDeviceToHost, stream.get()));
    stream.synchronize();
    const float ms = cuda::time_ms(handle.get(), stream.get(), conv, x.data(), w.data(),
                                   bias.data(), residual.data(), y.data(), workspace.data(), 20);
    return std::make_pair(from_storage(y_host, s.fp16), ms);
  };

  std::vector<FusedConv> candidates = FusedConv::candidates(handle.get(), s);
  std::printf("%s %s N=%lld: %zu candidates\n", c.name, s.fp16 ? "fp16" : "fp32",
              static_cast<long long>(s.n), candidates.size());
  if (candidates.empty() && !s.fp16) {
    // Only TF32 engines for this graph? The caller may allow TF32 (checked
    // here at a TF32 tolerance) or run the epilogue separately.
    s.allow_tf32 = true;
    tolerance = 5e-3;
    candidates = FusedConv::candidates(handle.get(), s);
    std::printf("  none without TF32; %zu with allow_tf32 (tolerance %g)\n", candidates.size(),
                tolerance);
    EXPECT_FALSE(c.strict_fp32_engine) << "no FP32 engine without TF32 for this graph";
  }
  ASSERT_FALSE(candidates.empty()) << "no cuDNN engine config runs this fused graph";
  for (const FusedConv& conv : candidates) {
    const auto [got, ms] = run(conv);
    std::printf("  %-40s %8.4f ms  workspace %zu B\n", conv.identity().c_str(),
                static_cast<double>(ms), conv.workspace_bytes());
    EXPECT_LE(relative_error(got, d.y_want_nhwc, conv.identity()), tolerance)
        << "engine config " << conv.identity();

    const FusedConv again = FusedConv::from_identity(handle.get(), s, conv.identity());
    EXPECT_EQ(again.identity(), conv.identity());
    const auto [got_again, ms_again] = run(again);
    EXPECT_LE(relative_error(got_again, got, "from_identity vs original"), tolerance)
        << "engine config " << conv.identity() << " rebuilt from its identity";
  }
}

TEST(CudnnFusedConv, EveryCandidateMatchesTheCpuReferenceFp32) {
  ANVIL_REQUIRE_GPU();
  for (std::int64_t n : {1, 4})
    for (const Case& c : cases(n, false))
      run_case(c);
}

TEST(CudnnFusedConv, EveryCandidateMatchesTheCpuReferenceFp16) {
  ANVIL_REQUIRE_GPU();
  for (std::int64_t n : {1, 4})
    for (const Case& c : cases(n, true))
      run_case(c);
}

// Host-side checks: no GPU needed.
TEST(CudnnFusedConv, RejectsWhatCudnnCannotFuse) {
  ConvShape s{.c = 8, .h = 8, .w = 8, .k = 8, .r = 3, .s = 3, .pad_h = 1, .pad_w = 1};
  EXPECT_NO_THROW(cuda::check_fused_conv_shape(s));
  for (ConvActivation act : {ConvActivation::kHardSwish, ConvActivation::kHardSigmoid}) {
    ConvShape hard = s;
    hard.act = act;
    try {
      cuda::check_fused_conv_shape(hard);
      ADD_FAILURE() << "expected kUnsupported";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUnsupported) << e.what();
    }
  }
  ConvShape asymmetric = s;
  asymmetric.pad_w_end = 2;
  try {
    cuda::check_fused_conv_shape(asymmetric);
    ADD_FAILURE() << "expected kUnsupported";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported) << e.what();
  }
}

TEST(CudnnFusedConv, MalformedIdentityIsAnInvalidArgument) {
  ANVIL_REQUIRE_GPU();
  cuda::CudnnHandle handle;
  const ConvShape s{.c = 8, .h = 8, .w = 8, .k = 8};
  for (const char* bad : {"", "eng", "engx:1=2", "eng3:1", "eng3:1=x"}) {
    try {
      FusedConv::from_identity(handle.get(), s, bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << bad << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace anvil
