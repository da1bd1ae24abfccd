#include "builder/weights.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "anvil/error.h"
#include "quant/fp8_e4m3.h"

namespace anvil::builder {

namespace {

// Drops the low `shift` bits of `bits`, rounding to nearest, ties to even.
std::uint32_t shift_round_even(std::uint32_t bits, int shift) {
  const std::uint32_t kept = bits >> shift;
  const std::uint32_t rest = bits & ((1u << shift) - 1);
  const std::uint32_t half = 1u << (shift - 1);
  return kept + (rest > half || (rest == half && (kept & 1u)) ? 1u : 0u);
}

}  // namespace

std::uint16_t float_to_half(float value) {
  const auto bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u)  // NaN: keep the top payload bits, force quiet
    return static_cast<std::uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude >= 0x477ff000u)  // 65520 and up (and infinity) round to infinity
    return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (magnitude >= 0x38800000u) {  // 2^-14 and up: a normal half
    // Rebias the exponent (127 -> 15); a mantissa carry correctly bumps it.
    return static_cast<std::uint16_t>(sign | shift_round_even(magnitude - 0x38000000u, 13));
  }
  const int exponent = static_cast<int>(magnitude >> 23);
  if (exponent < 102) return sign;  // below 2^-25: rounds to zero
  // A subnormal half counts units of 2^-24: significand * 2^(exponent - 150 + 24).
  const std::uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  return static_cast<std::uint16_t>(sign | shift_round_even(significand, 126 - exponent));
}

float half_to_float(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1fu;
  std::uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0x1f)  // infinity or NaN
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0)
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return std::bit_cast<float>(sign);
  // Subnormal: normalize into a float (which has the range to hold it).
  int e = 113;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return std::bit_cast<float>(sign | (static_cast<std::uint32_t>(e) << 23) |
                              ((mantissa & 0x3ffu) << 13));
}

PackedFilter pack_conv_filter(const Tensor& w, std::int64_t groups, std::int64_t c_pad,
                              std::int64_t align) {
  ANVIL_CHECK(w.rank() == 4 && groups >= 1 && align >= 1);
  const Extents& e = w.extents();
  const std::int64_t k = e[0], cg = e[1], c = cg * groups, kg = k / groups;
  ANVIL_CHECK(c <= c_pad && k % groups == 0);
  PackedFilter p;
  p.r = e[2];
  p.s = e[3];
  const bool depthwise = groups > 1 && cg == 1;
  const bool grouped_as_is = groups > 1 && !depthwise && c == c_pad && k % align == 0;
  if (depthwise) {
    p.groups = c_pad;
    p.c_filter = 1;
    p.k_pad = c_pad * kg;
  } else if (grouped_as_is) {
    p.groups = groups;
    p.c_filter = cg;
    p.k_pad = k;
  } else {  // groups == 1, or densified to it
    p.groups = 1;
    p.c_filter = c_pad;
    p.k_pad = round_up(k, align);
  }
  // The ONNX entry feeding engine filter entry (kk, c_in) (c_in counted within
  // the filter's channels), or -1 where the engine filter holds a zero.
  auto source_channel = [&](std::int64_t kk, std::int64_t c_in) -> std::int64_t {
    if (kk >= k) return -1;
    if (depthwise || grouped_as_is) return c_in < cg ? c_in : -1;
    if (c_in >= c) return -1;
    if (c_in / cg != kk / kg) return -1;  // across groups, in a densified filter
    return c_in % cg;
  };
  p.values.assign(static_cast<std::size_t>(p.k_pad * p.r * p.s * p.c_filter), 0.0f);
  const float* src = w.data<float>();
  float* dst = p.values.data();
  for (std::int64_t kk = 0; kk < p.k_pad; ++kk)
    for (std::int64_t r = 0; r < p.r; ++r)
      for (std::int64_t s = 0; s < p.s; ++s)
        for (std::int64_t ci = 0; ci < p.c_filter; ++ci, ++dst) {
          const std::int64_t from = source_channel(kk, ci);
          if (from >= 0) *dst = src[((kk * cg + from) * p.r + r) * p.s + s];
        }
  return p;
}

std::vector<float> pack_gemm_weights(const Tensor& b, bool trans_b, float alpha, std::int64_t k_pad,
                                     std::int64_t n_pad) {
  ANVIL_CHECK(b.rank() == 2);
  const std::int64_t k = trans_b ? b.extents()[1] : b.extents()[0];
  const std::int64_t n = trans_b ? b.extents()[0] : b.extents()[1];
  ANVIL_CHECK(k <= k_pad && n <= n_pad);
  std::vector<float> out(static_cast<std::size_t>(n_pad * k_pad), 0.0f);
  const float* src = b.data<float>();
  for (std::int64_t row = 0; row < n; ++row)
    for (std::int64_t col = 0; col < k; ++col)
      out[static_cast<std::size_t>(row * k_pad + col)] =
          alpha * (trans_b ? src[row * k + col] : src[col * n + row]);
  return out;
}

plan::WeightRef append_weights(std::vector<std::byte>& blob, std::span<const float> values,
                               DType dtype, std::vector<std::int64_t> dims) {
  ANVIL_CHECK(dtype == DType::kFloat32 || dtype == DType::kFloat16 || dtype == DType::kInt8 ||
              dtype == DType::kFloat8E4M3);
  ANVIL_CHECK(element_count(dims) == static_cast<std::int64_t>(values.size()));
  const std::size_t offset = static_cast<std::size_t>(round_up(
      static_cast<std::int64_t>(blob.size()), static_cast<std::int64_t>(plan::kWeightsAlignment)));
  const std::size_t bytes = values.size() * size_of(dtype);
  blob.resize(offset + bytes);
  std::byte* out = blob.data() + offset;
  if (dtype == DType::kFloat32) {
    std::memcpy(out, values.data(), bytes);
  } else if (dtype == DType::kInt8) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      ANVIL_CHECK(values[i] == std::nearbyint(values[i]) && std::fabs(values[i]) <= 127.0f);
      out[i] = static_cast<std::byte>(static_cast<std::int8_t>(values[i]));
    }
  } else if (dtype == DType::kFloat8E4M3) {
    // Values quant::quantize_filter made: each already an E4M3 value.
    for (std::size_t i = 0; i < values.size(); ++i) {
      ANVIL_CHECK(quant::round_to_e4m3(values[i]) == values[i]);
      out[i] = static_cast<std::byte>(quant::encode_e4m3(values[i]));
    }
  } else {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::uint16_t h = float_to_half(values[i]);
      std::memcpy(out + 2 * i, &h, 2);
    }
  }
  return plan::WeightRef{.offset = static_cast<std::int64_t>(offset),
                         .bytes = static_cast<std::int64_t>(bytes),
                         .dtype = dtype,
                         .dims = std::move(dims)};
}

}  // namespace anvil::builder
