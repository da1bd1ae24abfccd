#include "pipeline/host_postprocess.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace anvil::pipeline {

void normalize_uint8_image(std::span<const std::uint8_t> hwc, std::int64_t height,
                           std::int64_t width, const float (&mean)[3], const float (&stddev)[3],
                           std::span<float> out) {
  const auto plane = static_cast<std::size_t>(height * width);
  ANVIL_CHECK(hwc.size() == plane * 3 && out.size() == plane * 3);
  for (std::size_t c = 0; c < 3; ++c) {
    // One multiply-add per pixel: (p / 255 - mean) / stddev = p * scale + shift.
    const float scale = 1.0f / (255.0f * stddev[c]);
    const float shift = -mean[c] / stddev[c];
    float* dst = out.data() + c * plane;
    for (std::size_t i = 0; i < plane; ++i)
      dst[i] = static_cast<float>(hwc[i * 3 + c]) * scale + shift;
  }
}

void normalize_uint8_planar_image(std::span<const std::uint8_t> chw, std::int64_t height,
                                  std::int64_t width, const float (&mean)[3],
                                  const float (&stddev)[3], std::span<float> out) {
  const auto plane = static_cast<std::size_t>(height * width);
  ANVIL_CHECK(chw.size() == plane * 3 && out.size() == plane * 3);
  for (std::size_t c = 0; c < 3; ++c) {
    // As normalize_uint8_image, so both layouts give the same floats.
    const float scale = 1.0f / (255.0f * stddev[c]);
    const float shift = -mean[c] / stddev[c];
    const std::uint8_t* src = chw.data() + c * plane;
    float* dst = out.data() + c * plane;
    for (std::size_t i = 0; i < plane; ++i)
      dst[i] = static_cast<float>(src[i]) * scale + shift;
  }
}

void softmax_in_place(std::span<float> values) {
  if (values.empty()) return;
  float max = -std::numeric_limits<float>::infinity();
  bool has_nan = false;
  for (float v : values) {
    has_nan = has_nan || std::isnan(v);
    max = std::max(max, v);
  }
  if (has_nan || std::isinf(max)) {
    // All -inf has no defined softmax; +inf or NaN neither. Say so with NaN.
    std::fill(values.begin(), values.end(), std::numeric_limits<float>::quiet_NaN());
    return;
  }
  double sum = 0.0;
  for (float& v : values) {
    v = std::exp(v - max);
    sum += v;
  }
  const auto inverse = static_cast<float>(1.0 / sum);
  for (float& v : values)
    v *= inverse;
}

void top_k(std::span<const float> scores, std::span<Classification> out) {
  ANVIL_CHECK(out.size() <= scores.size());
  // `a` ranks before `b`: the larger number, NaN last, then the lower index.
  auto before = [&](std::int64_t a, std::int64_t b) {
    const float x = scores[static_cast<std::size_t>(a)];
    const float y = scores[static_cast<std::size_t>(b)];
    if (std::isnan(x) || std::isnan(y))
      return std::isnan(x) == std::isnan(y) ? a < b : !std::isnan(x);
    return x != y ? x > y : a < b;
  };
  std::vector<std::int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::int64_t{0});
  const auto k = static_cast<std::ptrdiff_t>(out.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = Classification{order[i], scores[static_cast<std::size_t>(order[i])]};
}

}  // namespace anvil::pipeline
