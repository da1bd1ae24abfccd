// Shared by the INT8 convolution GPU tests (cudnn_int8_conv, cudnn_kernel_cache,
// autotune_int8, layer_int8_runners): an exact CPU reference of the INT8 conv
// in the engine's layout, the random data they feed it, and the comparison
// that names the worst element. Written apart from builder::
// check_int8_conv_output (verify_tactic.cc) on purpose: that checker only
// compares the last image of a device output with a plan's weights, and
// autotune_int8_test tests it against this reference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "cuda/cudnn_quantized_conv.h"
#include "cuda/handles.h"
#include "ops/quantization.h"

namespace anvil::test {

// Deterministic generator, the same values on every machine; values in [lo, hi].
struct Lcg {
  std::uint32_t state;
  std::uint32_t next() { return state = state * 1664525u + 1013904223u; }
  int uniform(int lo, int hi) { return lo + static_cast<int>((next() >> 8) % (hi - lo + 1)); }
  float real(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(next() >> 8) / static_cast<float>(1 << 24);
  }
};

// `count` INT8 codes of a tensor whose last dimension stores `channels`:
// draw() (an int in the INT8 range) in the first `real` channels of the
// first `filled` elements, in memory order; 0 elsewhere, as the engine keeps
// padded channels. For a KRSC filter with k_real real output channels,
// filled = k_real * R * S * channels.
template <typename Draw>
std::vector<std::int8_t> padded_codes(
    std::int64_t count, std::int64_t channels, std::int64_t real, Draw draw,
    std::int64_t filled = std::numeric_limits<std::int64_t>::max()) {
  std::vector<std::int8_t> v(static_cast<std::size_t>(count), 0);
  for (std::int64_t i = 0; i < std::min(count, filled); ++i)
    if (i % channels < real) v[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(draw());
  return v;
}

inline std::vector<float> to_floats(std::span<const std::int8_t> codes) {
  return std::vector<float>(codes.begin(), codes.end());
}

// The FP32 epilogue after the exact integer accumulation, per output element
// (n, p, q, k) in this order, each step rounded to FP32 (cuDNN's graph order):
//   v = float(acc) * scale[k];  v = v + bias[k];  v = v + residual[npqk];
//   v = relu(v);  v = v / y_scale.
// Folded requantization (the plan contract, builder/lower.h) leaves y_scale 1;
// real units pass scale = x_scale * w_scale[k] and the output's y_scale.
struct Int8ConvEpilogue {
  std::span<const float> scale;     // shape.k entries
  std::span<const float> bias;      // shape.k entries, or empty: no bias add
  std::span<const float> residual;  // [n, P, Q, k] in v's units, or empty: no add
  bool relu = false;
  float y_scale = 1.0f;
};

enum class Rounding { kHalfToEven, kHalfAway };

struct Int8ConvReference {
  std::vector<float> value;       // v above, [n, P, Q, k]: a float output's exact want
  std::vector<std::int8_t> int8;  // v rounded, saturated to [-128, 127]: an INT8 output's want
  std::int64_t saturated = 0;     // elements whose rounded v lies outside [-128, 127]
};

// act(conv(x, w)) for x NHWC [shape.n, H, W, shape.c] and w KRSC [shape.k, R,
// S, shape.c] (padded channels included), int64 accumulation, stride,
// symmetric padding and dilation of `shape`; its relu and bias flags are not
// read (the epilogue says).
inline Int8ConvReference int8_conv_reference(const cuda::QuantizedConvShape& s,
                                             std::span<const std::int8_t> x,
                                             std::span<const std::int8_t> w,
                                             const Int8ConvEpilogue& e,
                                             Rounding rounding = Rounding::kHalfToEven) {
  const std::int64_t p = s.out_h(), q = s.out_w();
  Int8ConvReference ref;
  ref.value.resize(static_cast<std::size_t>(s.n * p * q * s.k));
  ref.int8.resize(ref.value.size());
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t oh = 0; oh < p; ++oh)
      for (std::int64_t ow = 0; ow < q; ++ow)
        for (std::int64_t k = 0; k < s.k; ++k) {
          std::int64_t acc = 0;
          for (std::int64_t i = 0; i < s.r; ++i)
            for (std::int64_t j = 0; j < s.s; ++j) {
              const std::int64_t ih = oh * s.stride_h - s.pad_h + i * s.dil_h;
              const std::int64_t iw = ow * s.stride_w - s.pad_w + j * s.dil_w;
              if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
              const std::int8_t* xp =
                  &x[static_cast<std::size_t>(((n * s.h + ih) * s.w + iw) * s.c)];
              const std::int8_t* wp = &w[static_cast<std::size_t>(((k * s.r + i) * s.s + j) * s.c)];
              for (std::int64_t ch = 0; ch < s.c; ++ch)
                acc += std::int64_t{xp[ch]} * wp[ch];
            }
          const auto o = static_cast<std::size_t>(((n * p + oh) * q + ow) * s.k + k);
          const auto kk = static_cast<std::size_t>(k);
          float v = static_cast<float>(acc) * e.scale[kk];
          if (!e.bias.empty()) v = v + e.bias[kk];
          if (!e.residual.empty()) v = v + e.residual[o];
          if (e.relu) v = std::max(v, 0.0f);
          v = v / e.y_scale;
          const float r =
              rounding == Rounding::kHalfToEven ? ops::round_half_to_even(v) : std::round(v);
          ref.saturated += r > 127.0f || r < -128.0f;
          ref.value[o] = v;
          ref.int8[o] = rounding == Rounding::kHalfToEven
                            ? ops::quantize_value<std::int8_t>(v, 0)
                            : static_cast<std::int8_t>(std::clamp(r, -128.0f, 127.0f));
        }
  return ref;
}

// Worst |got - want| (a non-finite got counts as infinite) and where, and how
// many elements are off at all and by more than the tolerance: 1 (one step)
// for INT8 outputs, 1e-2 relative (at least 1e-2 absolute) for float ones.
struct Int8ConvMismatch {
  double worst = 0;
  std::size_t at = 0, over = 0, inexact = 0;  // inexact: diff > 0 (shows cuDNN's rounding)
};

inline Int8ConvMismatch compare_int8_conv(std::span<const float> got, std::span<const float> want,
                                          bool int8_out) {
  Int8ConvMismatch e;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double diff = std::isfinite(got[i]) ? std::fabs(static_cast<double>(got[i]) - want[i])
                                              : std::numeric_limits<double>::infinity();
    const double tol =
        int8_out ? 1.0 : 1e-2 * std::max(1.0, std::fabs(static_cast<double>(want[i])));
    e.over += diff > tol;
    e.inexact += diff > 0;
    if (diff > e.worst || (std::isinf(diff) && !std::isinf(e.worst))) {
      e.worst = diff;
      e.at = i;
    }
  }
  return e;
}

// A device copy of `bytes` host bytes (at least 16 allocated, so that an
// empty tensor still has an address to bind).
inline cuda::DeviceBuffer upload(const void* data, std::size_t bytes) {
  cuda::DeviceBuffer buffer(std::max<std::size_t>(bytes, 16));
  cuda::copy_to_device(buffer.data(), data, bytes);
  return buffer;
}

}  // namespace anvil::test
