// The INT8 conversion kernels (src/cuda/kernels/quantize.h) against a CPU
// implementation of the same arithmetic, bit for bit: FP16 -> INT8 with
// ties to even (exact halves at scales 1 and 0.5), saturation (|x / scale| >
// 127.5, infinities), NaN -> 0; INT8 -> FP16 for every code, overflow to
// infinity included; and the round trip. Sizes and offsets reach the
// 16-element vector path, the scalar tail and the unaligned (all-scalar)
// path, and the elements past the end must stay untouched.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
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

// One launch shape: `elements` converted, starting `offset` elements into
// both buffers (an odd offset leaves the pointers unaligned).
struct Span {
  std::size_t elements, offset;
};
const Span kSpans[] = {{1, 0}, {15, 0}, {16, 0}, {17, 0}, {4096 + 3, 0}, {4096, 1}, {333, 3}};
constexpr std::size_t kSlack = 16;  // poisoned elements after the span, which must stay so

std::string describe(const Span& s, float scale) {
  return cat("elements=", s.elements, " offset=", s.offset, " scale=", scale);
}

TEST(KernelsQuantize, QuantizeMatchesTheCpuBitForBit) {
  ANVIL_REQUIRE_GPU();
  cuda::Stream stream;
  for (const float scale : {1.0f, 0.5f, 0.0173f, 3.0e-3f})
    for (const Span& span : kSpans) {
      const bool ties = scale == 1.0f || scale == 0.5f;
      const std::size_t total = span.offset + span.elements + kSlack;
      const std::vector<std::uint16_t> x = random_halves(total, scale, ties, 11);
      const cuda::DeviceBuffer dx = upload(x);
      const cuda::DeviceBuffer dq = upload(std::vector<std::int8_t>(total, kPoisonInt8));
      cuda::kernels::quantize_int8(dx.as<std::uint16_t>() + span.offset,
                                   dq.as<std::int8_t>() + span.offset,
                                   static_cast<std::int64_t>(span.elements), scale, stream.get());
      stream.synchronize();
      const std::vector<std::int8_t> got = download<std::int8_t>(dq, total);
      std::size_t wrong = 0, saturated = 0, tied = 0;
      for (std::size_t i = 0; i < total; ++i) {
        const bool inside = i >= span.offset && i < span.offset + span.elements;
        const std::int8_t want = inside ? quantize_ref(x[i], scale) : kPoisonInt8;
        if (inside) {
          const float v = half_to_float(x[i]) / scale;
          saturated += std::fabs(v) > 127.5f;
          tied += v - std::floor(v) == 0.5f;
        }
        if (got[i] != want && wrong++ == 0)
          ADD_FAILURE() << describe(span, scale) << ": first mismatch at element " << i
                        << (inside ? "" : " (outside the span: must stay untouched)") << ", x "
                        << half_to_float(x[i]) << " (" << hex16(x[i]) << "), x/scale "
                        << half_to_float(x[i]) / scale << ", got " << int{got[i]} << ", want "
                        << int{want};
      }
      EXPECT_EQ(wrong, 0u) << describe(span, scale) << ": " << wrong << " of " << total
                           << " elements wrong (" << saturated << " saturating, " << tied
                           << " exact ties)";
      if (span.elements > 1000) {
        EXPECT_GT(saturated, 10u) << describe(span, scale) << ": the data must saturate";
        if (ties) {
          EXPECT_GT(tied, 100u) << describe(span, scale) << ": the data must hold ties";
        }
      }
    }
}

TEST(KernelsQuantize, DequantizeMatchesTheCpuBitForBit) {
  ANVIL_REQUIRE_GPU();
  cuda::Stream stream;
  // 600 * 128 overflows FP16: y must be an infinity, as __float2half_rn gives.
  for (const float scale : {1.0f, 0.5f, 0.0173f, 3.0e-3f, 600.0f})
    for (const Span& span : kSpans) {
      const std::size_t total = span.offset + span.elements + kSlack;
      std::vector<std::int8_t> q(total);
      for (std::size_t i = 0; i < total; ++i)
        q[i] = static_cast<std::int8_t>(static_cast<int>((i * 37 + 11) % 256) - 128);
      const cuda::DeviceBuffer dq = upload(q);
      const cuda::DeviceBuffer dy = upload(std::vector<std::uint16_t>(total, kPoisonHalf));
      cuda::kernels::dequantize_int8(dq.as<std::int8_t>() + span.offset,
                                     dy.as<std::uint16_t>() + span.offset,
                                     static_cast<std::int64_t>(span.elements), scale, stream.get());
      stream.synchronize();
      const std::vector<std::uint16_t> got = download<std::uint16_t>(dy, total);
      std::size_t wrong = 0;
      for (std::size_t i = 0; i < total; ++i) {
        const bool inside = i >= span.offset && i < span.offset + span.elements;
        const std::uint16_t want = inside ? dequantize_ref(q[i], scale) : kPoisonHalf;
        if (got[i] != want && wrong++ == 0)
          ADD_FAILURE() << describe(span, scale) << ": first mismatch at element " << i
                        << (inside ? "" : " (outside the span: must stay untouched)") << ", q "
                        << int{q[i]} << ", got " << half_to_float(got[i]) << " (" << hex16(got[i])
                        << "), want " << half_to_float(want) << " (" << hex16(want) << ")";
      }
      EXPECT_EQ(wrong, 0u) << describe(span, scale) << ": " << wrong << " of " << total
                           << " elements wrong";
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
