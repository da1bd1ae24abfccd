// The INT8 conversion kernels (src/cuda/kernels/quantize.h) against a CPU
// implementation of the same arithmetic, bit for bit: FP16 -> INT8 with
// ties to even (exact halves at scales 1 and 0.5), saturation (|x / scale| >
// 127.5, infinities), NaN -> 0; every one of the 65536 FP16 values at many
// scales (the kernel multiplies by a reciprocal and must still give the
// division's integer); INT8 -> FP16 for every code, overflow to infinity
// included; and the round trip. Sizes and offsets reach the 8-element vector
// path, the scalar head and tail, and the all-scalar path of pointers whose
// alignments disagree; elements past the end must stay untouched.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "builder/weights.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/quantize.h"
#include "gpu_test.h"
#include "ops/quantization.h"
#include "quant/fp8_e4m3.h"

namespace anvil {
namespace {

using builder::float_to_half;
using builder::half_to_float;

constexpr std::int8_t kPoisonInt8 = -1;         // a 0xff byte
constexpr std::uint16_t kPoisonHalf = 0xffffu;  // a NaN

// The kernels' arithmetic, written out on the CPU.
std::int8_t quantize_ref(std::uint16_t x, float scale) {
  const float r = ops::round_half_to_even(half_to_float(x) / scale);
  if (std::isnan(r)) return 0;
  if (r >= 127.0f) return 127;
  if (r <= -128.0f) return -128;
  return static_cast<std::int8_t>(r);
}
std::uint16_t dequantize_ref(std::int8_t q, float scale) {
  return float_to_half(static_cast<float>(q) * scale);
}

// FP16 values whose quotients by `scale` spread past the INT8 range (about
// |x / scale| <= 160); every third one an exact tie (k + 0.5) * scale when
// `ties`; a few infinities and NaNs. Never all zeros.
std::vector<std::uint16_t> random_halves(std::size_t count, float scale, bool ties,
                                         std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> spread(-160.0f, 160.0f);
  std::uniform_int_distribution<int> tie(-131, 130);
  std::vector<std::uint16_t> v(count);
  for (std::size_t i = 0; i < count; ++i) {
    float x = spread(rng) * scale;
    if (ties && i % 3 == 1) x = (static_cast<float>(tie(rng)) + 0.5f) * scale;
    v[i] = float_to_half(x);
  }
  if (count > 40) {
    v[5] = float_to_half(INFINITY);
    v[11] = float_to_half(-INFINITY);
    v[23] = 0x7e00u;  // NaN
    v[37] = 0x8000u;  // -0
  }
  if (ties && count > 8) {
    // The saturating ties: 127.5 rounds to 128 (even) and clamps to 127;
    // -128.5 rounds to -128; 126.5 and -127.5 to the even 126 and -128.
    v[0] = float_to_half(127.5f * scale);
    v[2] = float_to_half(-128.5f * scale);
    v[3] = float_to_half(126.5f * scale);
    v[6] = float_to_half(-127.5f * scale);
  }
  return v;
}

template <typename T>
cuda::DeviceBuffer upload(const std::vector<T>& v) {
  cuda::DeviceBuffer b(std::max<std::size_t>(v.size(), 1) * sizeof(T));
  cuda::copy_to_device(b.data(), v.data(), v.size() * sizeof(T));
  return b;
}

template <typename T>
std::vector<T> download(const cuda::DeviceBuffer& b, std::size_t count) {
  std::vector<T> v(count);
  ANVIL_GPU_CHECK(cudaMemcpy(v.data(), b.data(), count * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

std::string hex16(std::uint16_t bits) {
  char s[8];
  std::snprintf(s, sizeof s, "0x%04x", bits);
  return s;
}

// One launch shape: `elements` converted, starting `fp16_offset` elements
// into the FP16 buffer and `int8_offset` into the INT8 one. Equal offsets
// keep the vector path (after a scalar head when the offset is not a
// multiple of 8); unequal ones disagree in alignment, so all go one by one.
struct Span {
  std::size_t elements, fp16_offset, int8_offset;
};
const Span kSpans[] = {{1, 0, 0},           {7, 0, 0},
                       {8, 0, 0},           {9, 0, 0},
                       {15, 0, 0},          {16, 0, 0},
                       {17, 0, 0},          {4095, 0, 0},
                       {4096 + 3, 0, 0},    {3 * 5 * 7 * 11, 0, 0},  // odd channel counts
                       {4096, 1, 1},        {333, 3, 3},
                       {4099, 7, 7},        {9, 5, 5},
                       {4096, 0, 1},        {1000, 2, 0},
                       {4096 * 9 + 5, 4, 4}};
constexpr std::size_t kSlack = 16;  // poisoned elements after the span, which must stay so

std::string describe(const Span& s, float scale) {
  return cat("elements=", s.elements, " fp16_offset=", s.fp16_offset,
             " int8_offset=", s.int8_offset, " scale=", scale);
}

// Where got and want differ most (for INT8, |got - want|): printed with the
// count so a failure says how wrong, not only that.
struct Worst {
  std::size_t wrong = 0, index = 0;
  int diff = -1;
  void note(std::size_t i, int got, int want) {
    if (got == want) return;
    ++wrong;
    if (std::abs(got - want) > diff) diff = std::abs(got - want), index = i;
  }
};

TEST(KernelsQuantize, QuantizeMatchesTheCpuBitForBit) {
  ANVIL_REQUIRE_GPU();
  cuda::Stream stream;
  for (const float scale : {1.0f, 0.5f, 0.0173f, 3.0e-3f})
    for (const Span& span : kSpans) {
      const bool ties = scale == 1.0f || scale == 0.5f;
      const std::size_t xtotal = span.fp16_offset + span.elements + kSlack;
      const std::size_t qtotal = span.int8_offset + span.elements + kSlack;
      const std::vector<std::uint16_t> x = random_halves(xtotal, scale, ties, 11);
      const cuda::DeviceBuffer dx = upload(x);
      const cuda::DeviceBuffer dq = upload(std::vector<std::int8_t>(qtotal, kPoisonInt8));
      cuda::kernels::quantize_int8(dx.as<std::uint16_t>() + span.fp16_offset,
                                   dq.as<std::int8_t>() + span.int8_offset,
                                   static_cast<std::int64_t>(span.elements), scale, stream.get());
      stream.synchronize();
      const std::vector<std::int8_t> got = download<std::int8_t>(dq, qtotal);
      std::size_t saturated = 0, tied = 0;
      Worst worst;
      std::vector<std::int8_t> want(qtotal, kPoisonInt8);
      for (std::size_t i = 0; i < span.elements; ++i) {
        const std::uint16_t xi = x[span.fp16_offset + i];
        want[span.int8_offset + i] = quantize_ref(xi, scale);
        const float v = half_to_float(xi) / scale;
        saturated += std::fabs(v) > 127.5f;
        tied += v - std::floor(v) == 0.5f;
      }
      for (std::size_t i = 0; i < qtotal; ++i)
        worst.note(i, got[i], want[i]);
      if (worst.wrong > 0) {
        const std::size_t i = worst.index;
        const bool inside = i >= span.int8_offset && i < span.int8_offset + span.elements;
        const std::uint16_t xi = inside ? x[i - span.int8_offset + span.fp16_offset] : 0;
        ADD_FAILURE() << describe(span, scale) << ": " << worst.wrong << " of " << qtotal
                      << " elements wrong (" << saturated << " saturating, " << tied
                      << " exact ties); worst at INT8 element " << i
                      << (inside ? "" : " (outside the span: must stay untouched)") << ", x "
                      << half_to_float(xi) << " (" << hex16(xi) << "), x/scale "
                      << half_to_float(xi) / scale << ", got " << int{got[i]} << ", want "
                      << int{want[i]};
      }
      if (span.elements > 1000) {
        EXPECT_GT(saturated, 10u) << describe(span, scale) << ": the data must saturate";
        if (ties) {
          EXPECT_GT(tied, 100u) << describe(span, scale) << ": the data must hold ties";
        }
      }
    }
}

// All 65536 FP16 bit patterns at scales of every kind: calibration-like
// ones, powers of two (exact ties everywhere), 1/k (reciprocals that round),
// random bit patterns, and the extremes where the kernel must divide every
// element (a reciprocal that is not a normal float). The kernel's reciprocal
// shortcut is only correct if every element matches the division here.
TEST(KernelsQuantize, EveryHalfAtManyScalesMatchesTheDivision) {
  ANVIL_REQUIRE_GPU();
  cuda::Stream stream;
  std::vector<float> scales = {1.0f,       0.5f,       0.0173f,   3.0e-3f,  1.0f / 3.0f,
                               1.0f / 127, 6.0f / 127, 0x1p-125f, 0x1p125f, 0x1p-126f,
                               0x1p126f,   1.0e-38f,   3.0e38f,   1.0e-45f, 65504.0f / 127.5f};
  for (int k = 1; k <= 300; k += 7)
    scales.push_back(1.0f / static_cast<float>(k));
  std::mt19937 rng(3);
  std::uniform_int_distribution<std::uint32_t> normal_bits(0x00800000u, 0x7f7fffffu);
  for (int i = 0; i < 64; ++i) {
    const std::uint32_t b = normal_bits(rng);
    float s;
    std::memcpy(&s, &b, sizeof s);
    scales.push_back(s);
  }
  constexpr std::size_t kCount = 65536;
  std::vector<std::uint16_t> x(kCount);
  for (std::size_t i = 0; i < kCount; ++i)
    x[i] = static_cast<std::uint16_t>(i);
  const cuda::DeviceBuffer dx = upload(x);
  const cuda::DeviceBuffer dq(kCount * scales.size());
  for (std::size_t j = 0; j < scales.size(); ++j)
    cuda::kernels::quantize_int8(dx.data(), dq.as<std::int8_t>() + j * kCount, kCount, scales[j],
                                 stream.get());
  stream.synchronize();
  const std::vector<std::int8_t> got = download<std::int8_t>(dq, kCount * scales.size());
  std::size_t failing_scales = 0;
  for (std::size_t j = 0; j < scales.size(); ++j) {
    Worst worst;
    for (std::size_t i = 0; i < kCount; ++i)
      worst.note(i, got[j * kCount + i], quantize_ref(x[i], scales[j]));
    if (worst.wrong > 0 && failing_scales++ < 5) {
      const std::size_t i = worst.index;
      ADD_FAILURE() << "scale " << scales[j] << " (" << std::hexfloat << scales[j]
                    << std::defaultfloat << "): " << worst.wrong
                    << " of 65536 halves wrong; worst x " << half_to_float(x[i]) << " ("
                    << hex16(x[i]) << "), x/scale " << half_to_float(x[i]) / scales[j] << ", got "
                    << int{got[j * kCount + i]} << ", want " << int{quantize_ref(x[i], scales[j])};
    }
  }
  EXPECT_EQ(failing_scales, 0u) << "of " << scales.size() << " scales";
}

TEST(KernelsQuantize, DequantizeMatchesTheCpuBitForBit) {
  ANVIL_REQUIRE_GPU();
  cuda::Stream stream;
  // 600 * 128 overflows FP16: y must be an infinity, as __float2half_rn gives.
  for (const float scale : {1.0f, 0.5f, 0.0173f, 3.0e-3f, 600.0f})
    for (const Span& span : kSpans) {
      const std::size_t qtotal = span.int8_offset + span.elements + kSlack;
      const std::size_t ytotal = span.fp16_offset + span.elements + kSlack;
      std::vector<std::int8_t> q(qtotal);
      for (std::size_t i = 0; i < qtotal; ++i)
        q[i] = static_cast<std::int8_t>(static_cast<int>((i * 37 + 11) % 256) - 128);
      const cuda::DeviceBuffer dq = upload(q);
      const cuda::DeviceBuffer dy = upload(std::vector<std::uint16_t>(ytotal, kPoisonHalf));
      cuda::kernels::dequantize_int8(dq.as<std::int8_t>() + span.int8_offset,
                                     dy.as<std::uint16_t>() + span.fp16_offset,
                                     static_cast<std::int64_t>(span.elements), scale, stream.get());
      stream.synchronize();
      const std::vector<std::uint16_t> got = download<std::uint16_t>(dy, ytotal);
      std::vector<std::uint16_t> want(ytotal, kPoisonHalf);
      for (std::size_t i = 0; i < span.elements; ++i)
        want[span.fp16_offset + i] = dequantize_ref(q[span.int8_offset + i], scale);
      // Bit patterns compared as integers: the worst is the furthest in FP16 order.
      Worst worst;
      for (std::size_t i = 0; i < ytotal; ++i)
        worst.note(i, got[i], want[i]);
      if (worst.wrong > 0) {
        const std::size_t i = worst.index;
        const bool inside = i >= span.fp16_offset && i < span.fp16_offset + span.elements;
        ADD_FAILURE() << describe(span, scale) << ": " << worst.wrong << " of " << ytotal
                      << " elements wrong; worst at FP16 element " << i
                      << (inside ? "" : " (outside the span: must stay untouched)") << ", q "
                      << (inside ? int{q[i - span.fp16_offset + span.int8_offset]} : 0) << ", got "
                      << half_to_float(got[i]) << " (" << hex16(got[i]) << "), want "
                      << half_to_float(want[i]) << " (" << hex16(want[i]) << ")";
      }
    }
}

// x -> q -> y: y is the CPU's half(q * scale), and within half a step (plus
// FP16 rounding of y) of x wherever x did not saturate.
TEST(KernelsQuantize, RoundTripStaysWithinHalfAStep) {
  ANVIL_REQUIRE_GPU();
  cuda::Stream stream;
  const float scale = 0.0173f;
  const std::size_t count = 4096 + 3;
  std::vector<std::uint16_t> x = random_halves(count, scale, false, 5);
  for (std::uint16_t& v : x)  // finite values only: the bound below needs them
    if (!std::isfinite(half_to_float(v))) v = float_to_half(1.0f);
  const cuda::DeviceBuffer dx = upload(x);
  const cuda::DeviceBuffer dq(count), dy(count * 2);
  cuda::kernels::quantize_int8(dx.data(), dq.as<std::int8_t>(), count, scale, stream.get());
  cuda::kernels::dequantize_int8(dq.as<std::int8_t>(), dy.data(), count, scale, stream.get());
  stream.synchronize();
  const std::vector<std::uint16_t> y = download<std::uint16_t>(dy, count);
  std::size_t wrong = 0, checked = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint16_t want = dequantize_ref(quantize_ref(x[i], scale), scale);
    const float xf = half_to_float(x[i]), yf = half_to_float(y[i]);
    const bool in_range = std::fabs(xf / scale) <= 127.0f;
    checked += in_range;
    // Half a step, plus half an FP16 ulp of y (at most 2^-11 relative), plus
    // the FP32 rounding of x / scale and q * scale near a tie.
    const bool close = !in_range || std::fabs(yf - xf) <= 0.5001f * scale + std::fabs(yf) / 2048.0f;
    if ((y[i] != want || !close) && wrong++ == 0)
      ADD_FAILURE() << "round trip, scale " << scale << ": element " << i << " x " << xf << " -> y "
                    << yf << " (" << hex16(y[i]) << "), want " << half_to_float(want) << " ("
                    << hex16(want) << ")" << (close ? "" : ", more than half a step off");
  }
  EXPECT_EQ(wrong, 0u) << wrong << " of " << count << " elements";
  EXPECT_GT(checked, count / 2) << "too few elements inside the INT8 range";
}

// The launchers check their arguments before any CUDA call, so this runs
// without a GPU.
// FP8 E4M3 (--fp8 plans): every FP16 value at several scales quantizes to
// quant::encode_e4m3 of the IEEE quotient, and every E4M3 code dequantizes
// to FP16 of its exact value times the scale, bit for bit (NaN codes to a
// NaN). The vector and scalar paths are both in play: 65536 elements from an
// aligned base.
TEST(KernelsQuantize, Fp8MatchesTheHostCodecBitForBit) {
  ANVIL_REQUIRE_GPU();
  cuda::Stream stream;
  const float scales[] = {1.0f, 0.5f, 0.0173f, 3.0e-3f, 1.0f / 448, 6.0f / 448, 0x1p-20f};
  constexpr std::size_t kCount = 65536;
  std::vector<std::uint16_t> x(kCount);
  for (std::size_t i = 0; i < kCount; ++i)
    x[i] = static_cast<std::uint16_t>(i);
  const cuda::DeviceBuffer dx = upload(x);
  std::vector<std::uint8_t> codes(256);
  for (std::size_t i = 0; i < codes.size(); ++i)
    codes[i] = static_cast<std::uint8_t>(i);
  const cuda::DeviceBuffer dcodes = upload(codes);
  for (const float scale : scales) {
    const cuda::DeviceBuffer dq(kCount);
    cuda::kernels::quantize(dx.data(), dq.data(), kCount, scale, DType::kFloat8E4M3, stream.get());
    const cuda::DeviceBuffer dy(codes.size() * sizeof(std::uint16_t));
    cuda::kernels::dequantize(dcodes.data(), dy.data(), static_cast<std::int64_t>(codes.size()),
                              scale, DType::kFloat8E4M3, stream.get());
    stream.synchronize();
    const std::vector<std::uint8_t> q = download<std::uint8_t>(dq, kCount);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < kCount; ++i) {
      const std::uint8_t want = quant::encode_e4m3(half_to_float(x[i]) / scale);
      if (q[i] != want && wrong++ < 5)
        ADD_FAILURE() << "quantize scale " << scale << ": x " << half_to_float(x[i]) << " ("
                      << hex16(x[i]) << "), x/scale " << half_to_float(x[i]) / scale
                      << ", got code 0x" << std::hex << int{q[i]} << ", want 0x" << int{want}
                      << std::dec;
    }
    EXPECT_EQ(wrong, 0u) << "quantize scale " << scale << ": wrong of 65536";
    const std::vector<std::uint16_t> y = download<std::uint16_t>(dy, codes.size());
    for (std::size_t c = 0; c < codes.size(); ++c) {
      const float value = quant::decode_e4m3(codes[c]);
      const std::uint16_t want = float_to_half(value * scale);
      if (std::isnan(value))
        EXPECT_TRUE(std::isnan(half_to_float(y[c]))) << "code 0x" << std::hex << c;
      else
        EXPECT_EQ(y[c], want) << "dequantize scale " << scale << ": code 0x" << std::hex << c
                              << std::dec << " (" << value << ")";
    }
  }
}

TEST(KernelsQuantize, BadScaleOrCountIsAnInvalidArgument) {
  std::uint16_t x[16] = {};
  std::int8_t q[16] = {};
  auto expect_invalid = [](const char* what, auto launch) {
    try {
      launch();
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << what << ": " << e.what();
    }
  };
  for (const float scale : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity()}) {
    const std::string what = cat("scale ", scale);
    expect_invalid(what.c_str(),
                   [&] { cuda::kernels::quantize_int8(x, q, 16, scale, cudaStream_t{}); });
    expect_invalid(what.c_str(),
                   [&] { cuda::kernels::dequantize_int8(q, x, 16, scale, cudaStream_t{}); });
  }
  expect_invalid("negative count",
                 [&] { cuda::kernels::quantize_int8(x, q, -1, 1.0f, cudaStream_t{}); });
  expect_invalid("null buffer",
                 [&] { cuda::kernels::dequantize_int8(nullptr, x, 16, 1.0f, cudaStream_t{}); });
  // Nothing to convert: no launch, so null buffers are fine.
  EXPECT_NO_THROW(cuda::kernels::quantize_int8(nullptr, nullptr, 0, 1.0f, cudaStream_t{}));
  EXPECT_NO_THROW(cuda::kernels::dequantize_int8(nullptr, nullptr, 0, 1.0f, cudaStream_t{}));
}

}  // namespace
}  // namespace anvil
