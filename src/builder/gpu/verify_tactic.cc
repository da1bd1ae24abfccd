#include "builder/gpu/verify_tactic.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "anvil/error.h"
#include "builder/weights.h"
#include "cuda/check.h"
#include "quant/fp8_e4m3.h"

namespace anvil::builder {

namespace {

using cuda::kernels::Activation;

float round_to_storage(float value, bool fp16) {
  return fp16 ? half_to_float(float_to_half(value)) : value;
}

// `count` storage-type values at `bytes` as floats.
std::vector<float> storage_to_float(const std::byte* bytes, std::int64_t count, bool fp16) {
  std::vector<float> out(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (fp16) {
      std::uint16_t h;
      std::memcpy(&h, bytes + 2 * i, 2);
      out[i] = half_to_float(h);
    } else {
      std::memcpy(&out[i], bytes + 4 * i, 4);
    }
  }
  return out;
}

std::vector<float> weight_values(const plan::Plan& p, const plan::WeightRef& ref,
                                 std::int64_t count, bool fp16) {
  const std::int64_t bytes = count * (fp16 ? 2 : 4);
  if (ref.bytes < bytes)
    fail(ErrorKind::kInvalidArgument, "weights of ", ref.bytes, " bytes, the layer needs ", bytes);
  return storage_to_float(p.weights.data() + ref.offset, count, fp16);
}

// The bias as the GPU adds it: in the storage type (runtime::upload_bias),
// zeros when the layer skips it.
std::vector<float> bias_values(const plan::Plan& p, const plan::LayerDesc& layer,
                               std::int64_t count, bool has_bias, bool fp16) {
  std::vector<float> bias(static_cast<std::size_t>(count), 0.0f);
  if (!has_bias) return bias;
  const std::vector<float> stored = weight_values(p, layer.weights.at(1), count, false);
  for (std::size_t i = 0; i < bias.size(); ++i)
    bias[i] = round_to_storage(stored[i], fp16);
  return bias;
}

std::vector<float> download(const void* device, std::int64_t offset, std::int64_t count,
                            bool fp16) {
  const std::size_t size = fp16 ? 2 : 4;
  std::vector<std::byte> bytes(static_cast<std::size_t>(count) * size);
  ANVIL_GPU_CHECK(cudaMemcpy(
      bytes.data(), static_cast<const std::byte*>(device) + static_cast<std::size_t>(offset) * size,
      bytes.size(), cudaMemcpyDeviceToHost));
  return storage_to_float(bytes.data(), count, fp16);
}

// Nothing when max|got - want| / max|want| <= tolerance, else the worst
// element (a NaN counts as the worst possible).
std::optional<std::string> compare(const std::vector<float>& got, const std::vector<float>& want,
                                   double tolerance, const std::string& what) {
  double max_want = 0.0, max_diff = -1.0;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    max_want = std::max(max_want, std::fabs(double{want[i]}));
    const double diff = std::fabs(double{got[i]} - double{want[i]});
    if (!(diff <= max_diff)) {
      max_diff = std::isnan(diff) ? INFINITY : diff;
      worst = i;
    }
  }
  const double error = max_diff / std::max(max_want, 1e-30);
  if (error <= tolerance) return std::nullopt;
  return cat(what, ": normalized error ", error, " > ", tolerance, ", worst at element ", worst,
             " got ", got[worst], " want ", want[worst]);
}

// A conv_int8 layer's INT8 (or E4M3) filter bytes, as stored.
std::vector<std::int8_t> int8_filter(const plan::Plan& p, const plan::LayerDesc& layer,
                                     std::int64_t count, DType element) {
  const plan::WeightRef& ref = layer.weights.at(0);
  if (ref.dtype != element || ref.bytes < count ||
      ref.offset + count > static_cast<std::int64_t>(p.weights.size()))
    fail(ErrorKind::kInvalidArgument, "plan layer '", layer.name, "': its filter (weights[0], ",
         ref.bytes, " bytes at ", ref.offset, ") is not the ", count, " ", to_string(element),
         " values a conv_int8 layer of this shape needs");
  std::vector<std::int8_t> w(static_cast<std::size_t>(count));
  std::memcpy(w.data(), p.weights.data() + ref.offset, w.size());
  return w;
}

// rint half to even (the default rounding mode), then saturate to INT8; a
// NaN, which finite plan vectors cannot produce, maps to -128.
std::int8_t requantize(float v) {
  const float r = std::nearbyint(v);
  if (!(r >= -128.0f)) return -128;
  return static_cast<std::int8_t>(std::min(r, 127.0f));
}

}  // namespace

HostDeviceInt8 random_int8_values(std::int64_t count, std::int64_t channels, std::int64_t real,
                                  std::mt19937& rng) {
  if (count < 0 || channels <= 0 || real < 0 || real > channels)
    fail(ErrorKind::kInvalidArgument, "random_int8_values: ", count, " values of ", real,
         " real channels out of ", channels);
  std::uniform_int_distribution<int> uniform(-127, 127);
  HostDeviceInt8 v;
  v.host.assign(static_cast<std::size_t>(count), 0);
  for (std::size_t i = 0; i < v.host.size(); ++i)
    if (static_cast<std::int64_t>(i) % channels < real)
      v.host[i] = static_cast<std::int8_t>(uniform(rng));
  v.device = cuda::DeviceBuffer(v.host.size());
  cuda::copy_to_device(v.device.data(), v.host.data(), v.host.size());
  return v;
}

HostDeviceInt8 random_quantized_values(std::int64_t count, std::int64_t channels, std::int64_t real,
                                       DType element, std::mt19937& rng) {
  if (element != DType::kFloat8E4M3) return random_int8_values(count, channels, real, rng);
  if (count < 0 || channels <= 0 || real < 0 || real > channels)
    fail(ErrorKind::kInvalidArgument, "random_quantized_values: ", count, " values of ", real,
         " real channels out of ", channels);
  // N(0, 2^2) spans E4M3's normals and subnormals near zero without saturating often.
  std::normal_distribution<float> normal(0.0f, 2.0f);
  HostDeviceInt8 v;
  v.host.assign(static_cast<std::size_t>(count), 0);
  for (std::size_t i = 0; i < v.host.size(); ++i)
    if (static_cast<std::int64_t>(i) % channels < real)
      v.host[i] = static_cast<std::int8_t>(quant::encode_e4m3(normal(rng)));
  v.device = cuda::DeviceBuffer(v.host.size());
  cuda::copy_to_device(v.device.data(), v.host.data(), v.host.size());
  return v;
}

HostDeviceValues random_values(std::int64_t count, bool fp16, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  HostDeviceValues v;
  v.host.resize(static_cast<std::size_t>(count));
  v.device = cuda::DeviceBuffer(static_cast<std::size_t>(count) * (fp16 ? 2 : 4));
  if (fp16) {
    std::vector<std::uint16_t> halves(v.host.size());
    for (std::size_t i = 0; i < halves.size(); ++i) {
      halves[i] = float_to_half(normal(rng));
      v.host[i] = half_to_float(halves[i]);
    }
    cuda::copy_to_device(v.device.data(), halves.data(), v.device.bytes());
  } else {
    for (float& f : v.host)
      f = normal(rng);
    cuda::copy_to_device(v.device.data(), v.host.data(), v.device.bytes());
  }
  return v;
}

double tactic_tolerance(bool fp16, bool tf32) {
  return fp16 || tf32 ? 1e-2 : 1e-4;
}

std::optional<std::string> check_conv_output(const plan::Plan& p, const plan::LayerDesc& layer,
                                             const runtime::ConvLayerShape& conv,
                                             const HostDeviceValues& x,
                                             const HostDeviceValues* residual, const void* y) {
  const cuda::ConvShape& s = conv.shape;
  const bool fp16 = s.fp16;
  const std::int64_t cg = s.c / s.groups, kg = s.k / s.groups;
  const std::int64_t out_h = s.out_h(), out_w = s.out_w();
  const std::int64_t image = s.n - 1;
  const std::vector<float> w = weight_values(p, layer.weights.at(0), s.k * s.r * s.s * cg, fp16);
  const std::vector<float> bias = bias_values(p, layer, s.k, s.has_bias, fp16);
  const Activation act = s.act != Activation::kNone ? s.act : conv.post_activation;

  const std::int64_t out_size = out_h * out_w * s.k;
  std::vector<float> want(static_cast<std::size_t>(out_size));
  const float* xi = x.host.data() + image * s.h * s.w * s.c;
  for (std::int64_t op = 0; op < out_h; ++op)
    for (std::int64_t oq = 0; oq < out_w; ++oq)
      for (std::int64_t k = 0; k < s.k; ++k) {
        const std::int64_t c0 = k / kg * cg;
        double sum = bias[static_cast<std::size_t>(k)];
        for (std::int64_t r = 0; r < s.r; ++r) {
          const std::int64_t ih = op * s.stride_h - s.pad_h + r * s.dil_h;
          if (ih < 0 || ih >= s.h) continue;
          for (std::int64_t t = 0; t < s.s; ++t) {
            const std::int64_t iw = oq * s.stride_w - s.pad_w + t * s.dil_w;
            if (iw < 0 || iw >= s.w) continue;
            const float* xp = xi + (ih * s.w + iw) * s.c + c0;
            const float* wp = w.data() + ((k * s.r + r) * s.s + t) * cg;
            for (std::int64_t c = 0; c < cg; ++c)
              sum += double{xp[c]} * double{wp[c]};
          }
        }
        const std::int64_t o = (op * out_w + oq) * s.k + k;
        if (residual) sum += residual->host[static_cast<std::size_t>(image * out_size + o)];
        want[static_cast<std::size_t>(o)] =
            cuda::kernels::apply_activation(static_cast<float>(sum), act, conv.activation_params);
      }
  const std::vector<float> got = download(y, image * out_size, out_size, fp16);
  return compare(got, want, tactic_tolerance(fp16, s.allow_tf32),
                 cat("conv '", layer.name, "' image ", image, " of ", s.n, " (c=", s.c, " k=", s.k,
                     " ", s.r, "x", s.s, " groups=", s.groups, ")"));
}

std::optional<std::string> check_gemm_output(const plan::Plan& p, const plan::LayerDesc& layer,
                                             const cuda::GemmShape& g, const HostDeviceValues& x,
                                             const void* y) {
  const bool fp16_y = cuda::half_output(g);
  const std::vector<float> w = weight_values(p, layer.weights.at(0), g.n * g.k, g.fp16);
  const std::vector<float> bias = bias_values(p, layer, g.n, g.has_bias, fp16_y);
  const std::int64_t row = g.m - 1;
  std::vector<float> want(static_cast<std::size_t>(g.n));
  for (std::int64_t j = 0; j < g.n; ++j) {
    double sum = bias[static_cast<std::size_t>(j)];
    for (std::int64_t i = 0; i < g.k; ++i)
      sum += double{x.host[static_cast<std::size_t>(row * g.k + i)]} *
             double{w[static_cast<std::size_t>(j * g.k + i)]};
    const float v = static_cast<float>(sum);
    want[static_cast<std::size_t>(j)] = g.relu && !(v >= 0.0f) ? 0.0f : v;
  }
  const std::vector<float> got = download(y, row * g.n, g.n, fp16_y);
  return compare(
      got, want, tactic_tolerance(g.fp16, g.allow_tf32),
      cat("gemm '", layer.name, "' row ", row, " of ", g.m, " (", cuda::to_string(g), ")"));
}

std::optional<std::string> check_int8_conv_output(const plan::Plan& p, const plan::LayerDesc& layer,
                                                  const cuda::QuantizedConvShape& s,
                                                  const std::vector<std::int8_t>& x,
                                                  const std::vector<std::int8_t>* residual,
                                                  const void* y) {
  const std::int64_t out_h = s.out_h(), out_w = s.out_w();
  const std::int64_t in_size = s.h * s.w * s.c, out_size = out_h * out_w * s.k;
  const std::int64_t image = s.n - 1;
  if (static_cast<std::int64_t>(x.size()) < s.n * in_size ||
      (residual && static_cast<std::int64_t>(residual->size()) < s.n * out_size))
    fail(ErrorKind::kInvalidArgument, "check_int8_conv_output: layer '", layer.name,
         "': inputs smaller than ", s.n, " images of ", s.describe());
  const bool fp8 = s.element == DType::kFloat8E4M3;
  const std::vector<std::int8_t> w = int8_filter(p, layer, s.k * s.r * s.s * s.c, s.element);
  // A stored byte's value: the integer, or the E4M3 value it encodes (exact).
  const auto value = [fp8](std::int8_t q) {
    return fp8 ? quant::decode_e4m3(static_cast<std::uint8_t>(q)) : static_cast<float>(q);
  };
  const std::vector<float> scale = weight_values(p, layer.weights.at(1), s.k, false);
  const std::vector<float> bias = s.has_bias ? weight_values(p, layer.weights.at(2), s.k, false)
                                             : std::vector<float>(static_cast<std::size_t>(s.k));

  // v before rounding too, to show how near a rounding boundary the worst element was.
  std::vector<float> before(static_cast<std::size_t>(out_size));
  std::vector<std::int8_t> want(before.size());
  const std::int8_t* xi = x.data() + image * in_size;
  for (std::int64_t op = 0; op < out_h; ++op)
    for (std::int64_t oq = 0; oq < out_w; ++oq)
      for (std::int64_t k = 0; k < s.k; ++k) {
        std::int64_t acc = 0;  // INT8: exact
        double acc_fp8 = 0.0;  // FP8: products exact, the sum in double
        for (std::int64_t r = 0; r < s.r; ++r) {
          const std::int64_t ih = op * s.stride_h - s.pad_h + r * s.dil_h;
          if (ih < 0 || ih >= s.h) continue;
          for (std::int64_t t = 0; t < s.s; ++t) {
            const std::int64_t iw = oq * s.stride_w - s.pad_w + t * s.dil_w;
            if (iw < 0 || iw >= s.w) continue;
            const std::int8_t* xp = xi + (ih * s.w + iw) * s.c;
            const std::int8_t* wp = w.data() + ((k * s.r + r) * s.s + t) * s.c;
            for (std::int64_t c = 0; c < s.c; ++c) {
              if (fp8)
                acc_fp8 += double{value(xp[c])} * double{value(wp[c])};
              else
                acc += std::int64_t{xp[c]} * std::int64_t{wp[c]};
            }
          }
        }
        const auto o = static_cast<std::size_t>((op * out_w + oq) * s.k + k);
        const auto kk = static_cast<std::size_t>(k);
        // The contract's order: one FP32 multiply, then each add, each rounded.
        float v = (fp8 ? static_cast<float>(acc_fp8) : static_cast<float>(acc)) * scale[kk];
        v = v + bias[kk];
        if (residual) v = v + value((*residual)[static_cast<std::size_t>(image * out_size) + o]);
        if (s.relu) v = std::max(v, 0.0f);
        before[o] = v;
        want[o] = fp8 ? static_cast<std::int8_t>(quant::encode_e4m3(v)) : requantize(v);
      }

  std::vector<std::int8_t> got(want.size());
  ANVIL_GPU_CHECK(cudaMemcpy(got.data(), static_cast<const std::int8_t*>(y) + image * out_size,
                             got.size(), cudaMemcpyDeviceToHost));
  std::int64_t differ = 0, max_diff = 0;
  std::size_t worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const std::int64_t diff = fp8 ? quant::e4m3_ulp_distance(static_cast<std::uint8_t>(got[i]),
                                                             static_cast<std::uint8_t>(want[i]))
                                  : std::abs(std::int64_t{got[i]} - std::int64_t{want[i]});
    differ += diff > 0;
    if (diff > max_diff) {
      max_diff = diff;
      worst = i;
    }
  }
  if (max_diff <= 1 && differ * 100 < out_size) return std::nullopt;
  const std::int64_t pixel = static_cast<std::int64_t>(worst) / s.k;
  return cat("conv_int8 '", layer.name, "' image ", image, " of ", s.n, " (", s.describe(),
             "): ", differ, " of ", out_size, " ", fp8 ? "FP8" : "INT8",
             " outputs differ from the CPU reference, by up to ", max_diff,
             fp8 ? " E4M3 steps" : "", "; worst at n", image, " p", pixel / out_w, " q",
             pixel % out_w, " k", static_cast<std::int64_t>(worst) % s.k, ": got ",
             fp8 ? cat(value(got[worst])) : cat(int{got[worst]}), " want ",
             fp8 ? cat(value(want[worst])) : cat(int{want[worst]}), " (v = ", before[worst],
             " before rounding); allowed: off by at most 1 step, in fewer than 1% of outputs");
}

}  // namespace anvil::builder
