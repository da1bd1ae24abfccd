// anvil_bench_stem: ResNet's stem kernel (src/cuda/kernels/stem_conv_pool.h:
// conv 7x7/2 + bias + ReLU, max pool 3x3/2, 224x224 RGB -> 56x56x64) in
// each of its variants, against its floors:
//
//   anvil_bench_stem [--batch N]... [--reps N]      (batches 128, 32 and 8 by default)
//
// Variants: the input as reformat_in stores it (FP16 NHWC, 4 channels) or
// the network's own FP32 NCHW; the output FP16, INT8 rounded by the checked
// quotient, or INT8 by reciprocal (StemShape::int8_by_reciprocal). Inputs
// are random (never zeros); each rep reads its own input set, enough sets
// to exceed the L2 four times where memory allows, so inputs come from DRAM
// as in an engine run. Reported: the median ms, the useful TFLOP/s (2 x 147
// multiply-adds per conv output, padding taps excluded), and the GB/s of the
// bytes the kernel must move (its input once, its output once) against the
// card's DRAM peak. Where the row kernel applies (Hopper, 224 wide) both
// kernels run, and a second table times the row kernel's band heights
// (StemShape::band_rows) on ResNet-18 INT8's stem variant.
//
// A benchmark, not a test: it prints a markdown table for docs/PERFORMANCE.md.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "bench_util.h"
#include "builder/weights.h"
#include "cuda/check.h"
#include "cuda/device.h"
#include "cuda/handles.h"
#include "cuda/kernels/preprocess.h"
#include "cuda/kernels/stem_conv_pool.h"

namespace anvil::bench {
namespace {

namespace k = cuda::kernels;

BatchArgs parse(int argc, char** argv) {
  BatchArgs o = parse_batch_args(argc, argv, "anvil_bench_stem [--batch N]... [--reps N]");
  if (o.batches.empty()) o.batches = {128, 32, 8};
  return o;
}

// The same random pixels as FP16 NHWC of 4 channels (the 4th zero) and as
// FP32 NCHW of 3.
struct Pixels {
  std::vector<std::uint16_t> nhwc4;
  std::vector<float> nchw;
};

Pixels random_pixels(std::int64_t n, std::int64_t h, std::int64_t w, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  const auto plane = static_cast<std::size_t>(h * w);
  const auto images = static_cast<std::size_t>(n);
  Pixels p;
  p.nhwc4.assign(images * plane * k::kStemInChannels, 0);
  p.nchw.resize(images * 3 * plane);
  for (std::size_t i = 0; i < images; ++i)
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t q = 0; q < plane; ++q) {
        const std::uint16_t half = builder::float_to_half(value(rng));
        p.nhwc4[(i * plane + q) * k::kStemInChannels + c] = half;
        p.nchw[(i * 3 + c) * plane + q] = builder::half_to_float(half);
      }
  return p;
}

struct Variant {
  const char* input;
  const char* output;
  k::StemInput layout;
  float int8_scale;  // 0: FP16 output
  bool by_reciprocal;
};

int run(int argc, char** argv) {
  const BatchArgs o = parse(argc, argv);
  const Card c = card();
  const int l2_bytes = c.l2_bytes;
  const double peak = c.dram_peak_gb_per_s;
  std::printf("%s, DRAM peak %.0f GB/s, L2 %d MiB, median of %d reps\n\n", c.info.name.c_str(),
              peak, l2_bytes >> 20, o.reps);

  // 0.0625 rounds alike by reciprocal for every FP16 value (checked below).
  constexpr float kScale = 0.0625f;
  if (!k::stem_int8_rounds_by_reciprocal(kScale))
    fail(ErrorKind::kInternal, "scale ", kScale, " does not round alike by reciprocal");
  const Variant variants[] = {
      {"FP16 NHWC4", "FP16", k::StemInput::kFloat16Nhwc4, 0.0f, false},
      {"FP16 NHWC4", "INT8 checked", k::StemInput::kFloat16Nhwc4, kScale, false},
      {"FP16 NHWC4", "INT8 by reciprocal", k::StemInput::kFloat16Nhwc4, kScale, true},
      {"FP32 NCHW", "FP16", k::StemInput::kFloat32Nchw, 0.0f, false},
      {"FP32 NCHW", "INT8 checked", k::StemInput::kFloat32Nchw, kScale, false},
      {"FP32 NCHW", "INT8 by reciprocal", k::StemInput::kFloat32Nchw, kScale, true},
  };

  std::mt19937 rng(7);
  std::uniform_real_distribution<float> weight(-0.2f, 0.2f);
  std::vector<std::uint16_t> filter(static_cast<std::size_t>(k::kStemOutChannels) * k::kStemKernel *
                                    k::kStemKernel * k::kStemInChannels);
  for (std::uint16_t& v : filter)
    v = builder::float_to_half(weight(rng));
  std::vector<float> bias(k::kStemOutChannels);
  for (float& v : bias)
    v = weight(rng);
  cuda::DeviceBuffer d_filter(filter.size() * 2), d_bias(bias.size() * 4);
  cuda::copy_to_device(d_filter.data(), filter.data(), filter.size() * 2);
  cuda::copy_to_device(d_bias.data(), bias.data(), bias.size() * 4);
  cuda::Stream stream;

  std::printf(
      "| batch | kernel | input | output | ms | useful TFLOP/s | GB/s moved | %% DRAM peak |\n"
      "|---:|---|---|---|---:|---:|---:|---:|\n");
  std::string band_sweep, images_rows;
  for (const std::int64_t n : o.batches) {
    k::StemShape shape;
    shape.n = n;
    const Pixels pixels = random_pixels(n, shape.in_h, shape.in_w, rng);
    const std::size_t fp16_bytes = pixels.nhwc4.size() * 2, fp32_bytes = pixels.nchw.size() * 4;
    const std::size_t outputs =
        static_cast<std::size_t>(n * shape.out_h() * shape.out_w() * k::kStemOutChannels);
    const int sets = static_cast<int>(std::clamp<std::size_t>(
        4 * static_cast<std::size_t>(l2_bytes) / (fp32_bytes + outputs * 2) + 1, 1, 8));
    std::vector<cuda::DeviceBuffer> fp16_in, fp32_in, out;
    for (int s = 0; s < sets; ++s) {
      fp16_in.emplace_back(fp16_bytes);
      fp32_in.emplace_back(fp32_bytes);
      out.emplace_back(outputs * 2);
      cuda::copy_to_device(fp16_in.back().data(), pixels.nhwc4.data(), fp16_bytes);
      cuda::copy_to_device(fp32_in.back().data(), pixels.nchw.data(), fp32_bytes);
    }
    const double flop = 2.0 * static_cast<double>(n * shape.conv_h() * shape.conv_w()) *
                        k::kStemOutChannels * 3 * k::kStemKernel * k::kStemKernel;
    // One launch per rep, each on its own input and output set.
    auto time_stem = [&](const k::StemShape& s) {
      const bool fp32 = s.input == k::StemInput::kFloat32Nchw;
      return time_ms(stream, sets, o.reps, [&](int set) {
        const auto i = static_cast<std::size_t>(set);
        k::stem_conv_pool(fp32 ? fp32_in[i].data() : fp16_in[i].data(), d_filter.data(),
                          d_bias.as<float>(), out[i].data(), s, stream.get());
      });
    };
    const bool rows_apply = k::stem_rows_applies(shape);
    std::vector<k::StemKernel> kernels{k::StemKernel::kTiles};
    if (rows_apply) kernels.push_back(k::StemKernel::kRows);
    for (const k::StemKernel kernel : kernels)
      for (const Variant& v : variants) {
        k::StemShape s = shape;
        s.kernel = kernel;
        s.input = v.layout;
        s.int8_scale = v.int8_scale;
        s.int8_by_reciprocal = v.by_reciprocal;
        const bool fp32 = v.layout == k::StemInput::kFloat32Nchw;
        const float ms = time_stem(s);
        const double bytes = static_cast<double>(fp32 ? fp32_bytes : fp16_bytes) +
                             static_cast<double>(outputs) * (v.int8_scale > 0 ? 1 : 2);
        const double gbs = bytes / (ms * 1e6);
        std::printf("| %lld | %s | %s | %s | %.4f | %.0f | %.0f | %.0f%% |\n",
                    static_cast<long long>(n), kernel == k::StemKernel::kRows ? "rows" : "tiles",
                    v.input, v.output, ms, flop / (ms * 1e9), gbs,
                    peak > 0 ? 100 * gbs / peak : 0.0);
      }
    // The row kernel's band height (StemShape::band_rows) on ResNet-18
    // INT8's stem (FP32 in, INT8 by reciprocal out): the default against others.
    for (const std::int64_t rows : {0, 2, 4, 7, 8, 14, 28}) {
      if (!rows_apply) break;
      k::StemShape s = shape;
      s.kernel = k::StemKernel::kRows;
      s.input = k::StemInput::kFloat32Nchw;
      s.int8_scale = kScale;
      s.int8_by_reciprocal = true;
      s.band_rows = rows;
      const float ms = time_stem(s);
      char line[160];
      std::snprintf(line, sizeof line, "| %lld | %s | %.4f |\n", static_cast<long long>(n),
                    rows == 0 ? "default" : std::to_string(rows).c_str(), ms);
      band_sweep += line;
    }
    // uint8 images, as the pipeline's uint8 path has them: normalized into
    // FP16 NHWC4 by images_to_engine_storage and read by the row kernel,
    // against the row kernel reading the bytes itself (StemInput::kUint8Nhwc);
    // INT8 by reciprocal out, as in ResNet-18 INT8.
    if (rows_apply) {
      std::uniform_int_distribution<int> byte(0, 255);
      std::vector<std::uint8_t> host(static_cast<std::size_t>(n * shape.in_h * shape.in_w * 3));
      for (std::uint8_t& b : host)
        b = static_cast<std::uint8_t>(byte(rng));
      std::vector<cuda::DeviceBuffer> bytes;
      for (int set = 0; set < sets; ++set) {
        bytes.emplace_back(host.size());
        cuda::copy_to_device(bytes.back().data(), host.data(), host.size());
      }
      k::StemShape s = shape;
      s.kernel = k::StemKernel::kRows;
      s.int8_scale = kScale;
      s.int8_by_reciprocal = true;
      const k::ImageBatchShape batch{n, shape.in_h, shape.in_w};
      s.input = k::StemInput::kFloat16Nhwc4;
      const float two_kernels = time_ms(stream, sets, o.reps, [&](int set) {
        const auto i = static_cast<std::size_t>(set);
        k::images_to_engine_storage(bytes[i].as<std::uint8_t>(), fp16_in[i].data(),
                                    k::StorageType::kFloat16, k::kStemInChannels, batch,
                                    k::Normalization{}, stream.get());
        k::stem_conv_pool(fp16_in[i].data(), d_filter.data(), d_bias.as<float>(), out[i].data(), s,
                          stream.get());
      });
      s.input = k::StemInput::kUint8Nhwc;
      const float one_kernel = time_ms(stream, sets, o.reps, [&](int set) {
        const auto i = static_cast<std::size_t>(set);
        k::stem_conv_pool(bytes[i].data(), d_filter.data(), d_bias.as<float>(), out[i].data(), s,
                          stream.get());
      });
      char line[160];
      std::snprintf(line, sizeof line, "| %lld | %.4f | %.4f | %.4f |\n", static_cast<long long>(n),
                    two_kernels, one_kernel, two_kernels - one_kernel);
      images_rows += line;
    }
  }
  if (!band_sweep.empty())
    std::printf(
        "\nThe row kernel's band of pooled rows a block, FP32 NCHW in, INT8 by reciprocal "
        "out:\n\n| batch | band rows | ms |\n|---:|---|---:|\n%s",
        band_sweep.c_str());
  if (!images_rows.empty())
    std::printf(
        "\nuint8 NHWC images, INT8 by reciprocal out: normalized to FP16 NHWC4 "
        "(images_to_engine_storage) then the row kernel, against the row kernel reading "
        "them:\n\n| batch | two kernels ms | the stem alone ms | saved ms "
        "|\n|---:|---:|---:|---:|\n%s",
        images_rows.c_str());
  std::printf(
      "\nUseful FLOPs: 2 x 147 multiply-adds per conv output. Both kernels' GEMMs do 224 per "
      "output (a 4th channel and an 8th tap of zeros); the tiled one over 255 conv outputs per "
      "224 its pool windows need (tiles overlap), the row one over 17 conv rows per 16 (bands "
      "of 8 pooled rows).\n");
  return 0;
}

}  // namespace
}  // namespace anvil::bench

int main(int argc, char** argv) {
  return anvil::bench::run_main("anvil_bench_stem", anvil::bench::run, argc, argv);
}
