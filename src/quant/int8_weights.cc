#include "quant/int8_weights.h"

#include <algorithm>
#include <cmath>

#include "anvil/error.h"
#include "quant/fp8_e4m3.h"

namespace anvil::quant {

float quantized_max(DType element) {
  if (element == DType::kInt8) return 127.0f;
  if (element == DType::kFloat8E4M3) return kE4M3Max;
  fail(ErrorKind::kInvalidArgument, "quantized element type ", to_string(element),
       ": expected int8 or float8e4m3fn");
}

Int8Filter quantize_filter(std::span<const float> w, std::int64_t rows, DType element) {
  const float qmax = quantized_max(element);
  if (rows < 1 || w.size() % static_cast<std::size_t>(rows) != 0)
    fail(ErrorKind::kInvalidArgument, "quantize_filter: ", w.size(), " weights do not split into ",
         rows, " rows");
  const std::size_t row = w.size() / static_cast<std::size_t>(rows);
  Int8Filter out;
  out.values.resize(w.size());
  out.scales.resize(static_cast<std::size_t>(rows));
  for (std::size_t k = 0; k < out.scales.size(); ++k) {
    const std::span<const float> in = w.subspan(k * row, row);
    float amax = 0.0f;
    for (const float v : in) {
      if (!std::isfinite(v))
        fail(ErrorKind::kInvalidArgument, "quantize_filter: output channel ", k,
             " has a weight that is not finite (", v, ")");
      amax = std::max(amax, std::fabs(v));
    }
    const float scale = amax > 0.0f ? amax / qmax : 1.0f;
    out.scales[k] = scale;
    for (std::size_t i = 0; i < row; ++i)
      out.values[k * row + i] = element == DType::kInt8
                                    ? std::clamp(std::nearbyint(in[i] / scale), -127.0f, 127.0f)
                                    : round_to_e4m3(in[i] / scale);
  }
  return out;
}

Int8Requantization fold_requantization(float x_scale, const std::vector<float>& w_scales,
                                       const std::vector<float>& b, float y_scale,
                                       std::int64_t k_real, std::int64_t k_pad) {
  const auto k = static_cast<std::size_t>(std::max<std::int64_t>(k_real, 0));
  if (!(x_scale > 0) || !(y_scale > 0) || k_real < 1 || k_real > k_pad ||
      (w_scales.size() != 1 && w_scales.size() != k) || (!b.empty() && b.size() != k))
    fail(ErrorKind::kInvalidArgument, "fold_requantization: x_scale ", x_scale, " and y_scale ",
         y_scale, " must be > 0, ", w_scales.size(), " weight scales must be 1 or K = ", k_real,
         ", ", b.size(), " biases must be 0 or K, and K <= K padded = ", k_pad);
  Int8Requantization q;
  q.scale.assign(static_cast<std::size_t>(k_pad), 0.0f);
  q.bias.assign(static_cast<std::size_t>(k_pad), 0.0f);
  for (std::size_t i = 0; i < k; ++i) {
    q.scale[i] = x_scale * w_scales[w_scales.size() == 1 ? 0 : i] / y_scale;
    if (!b.empty()) q.bias[i] = b[i] / y_scale;
  }
  return q;
}

}  // namespace anvil::quant
