#include "quant/fp8_e4m3.h"

#include <cmath>
#include <cstdlib>

namespace anvil::quant {

namespace {

bool is_nan_code(std::uint8_t code) {
  return (code & 0x7f) == 0x7f;
}

// Position of a finite code on the number line, in E4M3 steps from zero: the
// magnitude codes are ordered, so sign-magnitude becomes a signed integer.
int ordinal(std::uint8_t code) {
  const int magnitude = code & 0x7f;
  return (code & 0x80) != 0 ? -magnitude : magnitude;
}

}  // namespace

std::uint8_t encode_e4m3(float x) {
  if (std::isnan(x)) return kE4M3NaN;
  const std::uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  const float a = std::fabs(x);
  if (a >= kE4M3Max) return sign | 0x7e;  // satfinite: 448, never NaN
  // The spacing of E4M3 values around a: 2^-9 below 2^-6 (subnormals), else
  // 2^(e - 3) for a in [2^e, 2^(e+1)). Dividing by a power of two is exact,
  // so nearbyint (ties to even in the default rounding mode) rounds once.
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1): a in [2^(e-1), 2^e)
  const int exponent = a < 0x1p-6f ? -6 : e - 1;
  const float step = std::ldexp(1.0f, exponent - 3);
  const float r = std::nearbyint(a / step) * step;  // may carry into the next binade
  if (r == 0.0f) return sign;
  if (r >= kE4M3Max) return sign | 0x7e;
  if (r < 0x1p-6f) return sign | static_cast<std::uint8_t>(r / 0x1p-9f);
  std::frexp(r, &e);
  const int biased = e - 1 + 7;
  const auto mantissa = static_cast<int>(r / std::ldexp(1.0f, e - 1) * 8.0f) - 8;
  return sign | static_cast<std::uint8_t>(biased << 3 | mantissa);
}

float decode_e4m3(std::uint8_t code) {
  if (is_nan_code(code)) return std::nanf("");
  const int biased = code >> 3 & 0x0f;
  const int mantissa = code & 0x07;
  const float magnitude = biased == 0 ? std::ldexp(static_cast<float>(mantissa), -9)
                                      : std::ldexp(1.0f + mantissa / 8.0f, biased - 7);
  return (code & 0x80) != 0 ? -magnitude : magnitude;
}

float round_to_e4m3(float x) {
  return decode_e4m3(encode_e4m3(x));
}

int e4m3_ulp_distance(std::uint8_t a, std::uint8_t b) {
  if (is_nan_code(a) || is_nan_code(b)) return 1000;
  return std::abs(ordinal(a) - ordinal(b));
}

}  // namespace anvil::quant
