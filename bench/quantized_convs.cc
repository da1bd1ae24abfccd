// anvil_bench_quantized_convs: cuDNN's INT8 and FP8 E4M3 convolutions on
// every conv shape of ResNet-18 or ResNet-50 after the stem, side by side,
// against their floors:
//
//   anvil_bench_quantized_convs [--model resnet18|resnet50] [--batch N]... [--reps N]
//
// (ResNet-18 and batch 128 by default.) The last line sums each column over
// the network's convs, each shape as many times as the network has it.
//
// Why: an FP8 plan of ResNet-18 took as long as the FP16 one (1.24-1.27 ms
// against INT8's 0.97 ms, docs/INT8.md), although each of its convs beat
// FP16 timed alone; which layers FP8 wins or loses against INT8 was never
// measured. Each cell is the fastest of cuDNN's first 8 engine configs (what
// the autotuner times, QuantizedConv::candidates), compiled on one thread a
// shape and element type (cuDNN's runtime-fusion engine compiles each plan
// for about half a second) and timed one after another on one stream.
// Inputs are random codes (never zeros; FP8 without NaN), with enough buffer
// sets that every launch reads from DRAM, as in an engine run. Floors: the
// conv's operations at the card's dense INT8/FP8 rate (1979 TOPS on an H100
// SXM, the same for both) and x, y (and the residual) once at the DRAM peak.
//
// A benchmark, not a test: it prints a markdown table for docs/PERFORMANCE.md.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <future>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "anvil/error.h"
#include "bench_util.h"
#include "cuda/check.h"
#include "cuda/cudnn_quantized_conv.h"
#include "cuda/handles.h"

namespace anvil::bench {
namespace {

constexpr double kDenseTops = 1979.0;  // H100 SXM dense INT8 and FP8
constexpr int kCandidates = 8;         // builder/gpu/autotune.cc kMaxCandidates

// One of a network's conv shapes after the stem, at batch 1, and how many
// convs of the network have it.
struct Layer {
  const char* name;
  std::int64_t hw, c, k, r, stride;
  bool relu, residual;
  int count;
};

// torchvision's ResNet-18: two basic blocks a stage.
constexpr Layer kResnet18[] = {
    {"layer1 3x3", 56, 64, 64, 3, 1, true, false, 2},
    {"layer1 3x3 + residual", 56, 64, 64, 3, 1, true, true, 2},
    {"layer2.0 3x3 /2", 56, 64, 128, 3, 2, true, false, 1},
    {"layer2.0 downsample 1x1 /2", 56, 64, 128, 1, 2, false, false, 1},
    {"layer2 3x3", 28, 128, 128, 3, 1, true, false, 1},
    {"layer2 3x3 + residual", 28, 128, 128, 3, 1, true, true, 2},
    {"layer3.0 3x3 /2", 28, 128, 256, 3, 2, true, false, 1},
    {"layer3.0 downsample 1x1 /2", 28, 128, 256, 1, 2, false, false, 1},
    {"layer3 3x3", 14, 256, 256, 3, 1, true, false, 1},
    {"layer3 3x3 + residual", 14, 256, 256, 3, 1, true, true, 2},
    {"layer4.0 3x3 /2", 14, 256, 512, 3, 2, true, false, 1},
    {"layer4.0 downsample 1x1 /2", 14, 256, 512, 1, 2, false, false, 1},
    {"layer4 3x3", 7, 512, 512, 3, 1, true, false, 1},
    {"layer4 3x3 + residual", 7, 512, 512, 3, 1, true, true, 2},
};

// torchvision's ResNet-50 (v1.5: the stride on the 3x3): bottleneck blocks
// of 1x1 (reduce), 3x3, 1x1 (expand, + residual); 3, 4, 6 and 3 a stage.
constexpr Layer kResnet50[] = {
    {"layer1.0 1x1 64->64", 56, 64, 64, 1, 1, true, false, 1},
    {"layer1 1x1 256->64", 56, 256, 64, 1, 1, true, false, 2},
    {"layer1 3x3 64", 56, 64, 64, 3, 1, true, false, 3},
    {"layer1 1x1 64->256 + residual", 56, 64, 256, 1, 1, true, true, 3},
    {"layer1.0 downsample 1x1 64->256", 56, 64, 256, 1, 1, false, false, 1},
    {"layer2.0 1x1 256->128", 56, 256, 128, 1, 1, true, false, 1},
    {"layer2.0 3x3 128 /2", 56, 128, 128, 3, 2, true, false, 1},
    {"layer2.0 downsample 1x1 256->512 /2", 56, 256, 512, 1, 2, false, false, 1},
    {"layer2 1x1 512->128", 28, 512, 128, 1, 1, true, false, 3},
    {"layer2 3x3 128", 28, 128, 128, 3, 1, true, false, 3},
    {"layer2 1x1 128->512 + residual", 28, 128, 512, 1, 1, true, true, 4},
    {"layer3.0 1x1 512->256", 28, 512, 256, 1, 1, true, false, 1},
    {"layer3.0 3x3 256 /2", 28, 256, 256, 3, 2, true, false, 1},
    {"layer3.0 downsample 1x1 512->1024 /2", 28, 512, 1024, 1, 2, false, false, 1},
    {"layer3 1x1 1024->256", 14, 1024, 256, 1, 1, true, false, 5},
    {"layer3 3x3 256", 14, 256, 256, 3, 1, true, false, 5},
    {"layer3 1x1 256->1024 + residual", 14, 256, 1024, 1, 1, true, true, 6},
    {"layer4.0 1x1 1024->512", 14, 1024, 512, 1, 1, true, false, 1},
    {"layer4.0 3x3 512 /2", 14, 512, 512, 3, 2, true, false, 1},
    {"layer4.0 downsample 1x1 1024->2048 /2", 14, 1024, 2048, 1, 2, false, false, 1},
    {"layer4 1x1 2048->512", 7, 2048, 512, 1, 1, true, false, 2},
    {"layer4 3x3 512", 7, 512, 512, 3, 1, true, false, 2},
    {"layer4 1x1 512->2048 + residual", 7, 512, 2048, 1, 1, true, true, 3},
};

cuda::QuantizedConvShape shape_of(const Layer& l, std::int64_t n, DType element) {
  return {.n = n,
          .h = l.hw,
          .w = l.hw,
          .c = l.c,
          .k = l.k,
          .r = l.r,
          .s = l.r,
          .pad_h = l.r / 2,
          .pad_w = l.r / 2,
          .stride_h = l.stride,
          .stride_w = l.stride,
          .has_bias = true,
          .has_residual = l.residual,
          .relu = l.relu,
          .element = element};
}

// Random codes of `element`: INT8 in [-127, 127]; E4M3 bytes of magnitude
// below 2 (exponent field < 8), so no NaN and no huge products.
std::vector<std::uint8_t> random_codes(std::size_t count, DType element, std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::uint8_t> v(count);
  for (std::uint8_t& b : v) {
    int code = byte(rng);
    if (element == DType::kInt8 && code == 0x80) code = 0x81;
    if (element == DType::kFloat8E4M3) code &= 0xBF;  // exponent's top bit clear
    b = static_cast<std::uint8_t>(code);
  }
  return v;
}

cuda::DeviceBuffer upload(const void* data, std::size_t bytes) {
  cuda::DeviceBuffer b(bytes);
  cuda::copy_to_device(b.data(), data, bytes);
  return b;
}

struct Best {
  float ms = 0;  // 0: cuDNN has no engine for it
  std::string identity = "none";
  std::size_t candidates = 0;
};

// The fastest of `convs` on random data of the shape's element type.
Best time_best(const std::vector<cuda::QuantizedConv>& convs, const Card& card, cudnnHandle_t cudnn,
               const cuda::Stream& stream, int reps, std::mt19937& rng) {
  Best best;
  best.candidates = convs.size();
  if (convs.empty()) return best;
  const cuda::QuantizedConvShape& s = convs.front().shape();
  const std::size_t x_bytes = static_cast<std::size_t>(s.n * s.h * s.w * s.c);
  const std::size_t y_bytes = static_cast<std::size_t>(s.n * s.out_h() * s.out_w() * s.k);
  const int sets = static_cast<int>(std::clamp<std::size_t>(
      4 * static_cast<std::size_t>(card.l2_bytes) / (x_bytes + 2 * y_bytes) + 1, 1, 8));
  const std::vector<std::uint8_t> w =
      random_codes(static_cast<std::size_t>(s.k * s.r * s.s * s.c), s.element, rng);
  const cuda::DeviceBuffer d_w = upload(w.data(), w.size());
  // Requantization factors of a plausible size: outputs of a few units.
  std::vector<float> scale(static_cast<std::size_t>(s.k)), bias(scale.size());
  std::uniform_real_distribution<float> sd(1e-4f, 6e-4f), bd(-4.0f, 4.0f);
  for (std::size_t i = 0; i < scale.size(); ++i) {
    scale[i] = sd(rng);
    bias[i] = bd(rng);
  }
  const cuda::DeviceBuffer d_scale = upload(scale.data(), scale.size() * 4);
  const cuda::DeviceBuffer d_bias = upload(bias.data(), bias.size() * 4);
  std::vector<cuda::DeviceBuffer> x, residual, y;
  for (int i = 0; i < sets; ++i) {
    x.push_back(upload(random_codes(x_bytes, s.element, rng).data(), x_bytes));
    residual.push_back(upload(random_codes(y_bytes, s.element, rng).data(), y_bytes));
    y.emplace_back(y_bytes);
  }
  for (const cuda::QuantizedConv& conv : convs) {
    cuda::DeviceBuffer workspace(std::max<std::size_t>(conv.workspace_bytes(), 16));
    std::vector<cuda::QuantizedConv::Binding> bindings;
    for (int i = 0; i < sets; ++i) {
      const auto u = static_cast<std::size_t>(i);
      bindings.push_back(conv.bind(x[u].data(), d_w.data(), d_scale.as<float>(), d_bias.as<float>(),
                                   s.has_residual ? residual[u].data() : nullptr, y[u].data(),
                                   workspace.data()));
    }
    const float ms = time_ms(stream, sets, reps, [&](int set) {
      conv.execute(cudnn, stream.get(), bindings[static_cast<std::size_t>(set)]);
    });
    if (best.identity == "none" || ms < best.ms) {
      best.ms = ms;
      best.identity = conv.identity();
    }
  }
  return best;
}

// cuDNN's first kCandidates configs for `shape`, compiled on `handle`, a
// thread's own (plans run on any handle of the process, docs/INT8.md; the
// caller keeps the handle as long as the plans, as runtime/prepare_layers.h
// does).
std::vector<cuda::QuantizedConv> compile(cudnnHandle_t handle,
                                         const cuda::QuantizedConvShape& shape) {
  try {
    return cuda::QuantizedConv::candidates(handle, shape, kCandidates);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported) throw;
    return {};
  }
}

int run(int argc, char** argv) {
  constexpr const char* kUsage =
      "anvil_bench_quantized_convs [--model resnet18|resnet50] [--batch N]... [--reps N]";
  // --model here, the rest as every kernel bench reads them.
  std::span<const Layer> layers_of_model = kResnet18;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) != "--model") {
      rest.push_back(argv[i]);
      continue;
    }
    const std::string model = i + 1 < argc ? argv[++i] : "";
    if (model == "resnet18")
      layers_of_model = kResnet18;
    else if (model == "resnet50")
      layers_of_model = kResnet50;
    else
      fail(ErrorKind::kInvalidArgument, "--model takes resnet18 or resnet50, not '", model,
           "' (usage: ", kUsage, ")");
  }
  BatchArgs o = parse_batch_args(static_cast<int>(rest.size()), rest.data(), kUsage);
  if (o.batches.empty()) o.batches = {128};
  const Card c = card();
  std::printf("card: %s, L2 %d MB, DRAM peak %.0f GB/s\n\n", c.info.name.c_str(), c.l2_bytes >> 20,
              c.dram_peak_gb_per_s);
  const bool fp8 = c.info.cc_major >= 9;
  const cuda::Stream stream;
  const cuda::CudnnHandle cudnn;
  std::mt19937 rng(17);

  std::printf(
      "| batch | conv | convs | INT8 ms (of N) | INT8 config | FP8 ms (of N) | FP8 config | FP8 / "
      "INT8 | compute floor ms | memory floor ms | INT8 / max floor |\n"
      "|---:|---|---:|---:|---|---:|---|---:|---:|---:|---:|\n");
  double int8_total = 0, fp8_total = 0, best_total = 0;
  for (const std::int64_t n : o.batches) {
    // Compile every shape's candidates at once, a thread and handle each.
    const std::size_t layers = layers_of_model.size();
    std::vector<cuda::CudnnHandle> handles(2 * layers);
    std::vector<std::future<std::vector<cuda::QuantizedConv>>> int8, e4m3;
    for (std::size_t i = 0; i < layers; ++i) {
      int8.push_back(std::async(std::launch::async, compile, handles[2 * i].get(),
                                shape_of(layers_of_model[i], n, DType::kInt8)));
      if (fp8)
        e4m3.push_back(std::async(std::launch::async, compile, handles[2 * i + 1].get(),
                                  shape_of(layers_of_model[i], n, DType::kFloat8E4M3)));
    }
    for (std::size_t i = 0; i < layers; ++i) {
      const Layer& l = layers_of_model[i];
      const Best a = time_best(int8[i].get(), c, cudnn.get(), stream, o.reps, rng);
      const Best b = fp8 ? time_best(e4m3[i].get(), c, cudnn.get(), stream, o.reps, rng) : Best{};
      const cuda::QuantizedConvShape s = shape_of(l, n, DType::kInt8);
      const double outputs = static_cast<double>(s.n * s.out_h() * s.out_w() * s.k);
      const double compute_floor =
          2.0 * outputs * static_cast<double>(s.r * s.s * s.c) / (kDenseTops * 1e9);
      const double bytes =
          static_cast<double>(s.n * s.h * s.w * s.c) + outputs * (s.has_residual ? 2 : 1);
      const double memory_floor = bytes / (c.dram_peak_gb_per_s * 1e6);
      std::printf(
          "| %lld | %s | %d | %.4f (%zu) | `%s` | %.4f (%zu) | `%s` | %.2f | %.4f | %.4f | %.2f "
          "|\n",
          static_cast<long long>(n), l.name, l.count, a.ms, a.candidates, a.identity.c_str(), b.ms,
          b.candidates, b.identity.c_str(), a.ms > 0 ? b.ms / a.ms : 0.0, compute_floor,
          memory_floor, a.ms / std::max(compute_floor, memory_floor));
      int8_total += l.count * a.ms;
      fp8_total += l.count * b.ms;
      best_total += l.count * (b.ms > 0 ? std::min(a.ms, b.ms) : a.ms);
    }
  }
  std::printf(
      "\nsums over the network's convs (each row times its count): INT8 %.4f ms, FP8 %.4f ms, "
      "the faster of each row %.4f ms\n",
      int8_total, fp8_total, best_total);
  return 0;
}

}  // namespace
}  // namespace anvil::bench

int main(int argc, char** argv) {
  return anvil::bench::run_main("anvil_bench_quantized_convs", anvil::bench::run, argc, argv);
}
