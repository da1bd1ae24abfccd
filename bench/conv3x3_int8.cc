// anvil_bench_conv3x3_int8: our INT8 3x3 convolution (src/cuda/kernels/
// conv3x3_int8.h) against cuDNN's INT8 engine configs on ResNet-18's layer1
// convs (56 x 56, 64 -> 64 channels, bias and ReLU, with and without the
// residual), against their floors:
//
//   anvil_bench_conv3x3_int8 [--batch N]... [--reps N]   (batches 128 and 32 by default)
//
// cuDNN's candidates are what the autotuner would time (QuantizedConv::
// candidates, the first 8); the table gives the fastest. Inputs are random
// INT8 (never zeros), with enough buffer sets that every launch reads from
// DRAM, as in an engine run. Floors: 2 x 576 operations an output element at
// the card's dense INT8 rate (1979 TOPS on an H100 SXM, docs/INT8.md), and
// x, y (and the residual) once at the DRAM peak.
//
// A benchmark, not a test: it prints a markdown table for docs/PERFORMANCE.md.
#include "cuda/kernels/conv3x3_int8.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
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

namespace k = cuda::kernels;
constexpr int kC = k::kConv3x3Int8Channels;
constexpr int kHw = 56;
constexpr double kInt8Tops = 1979.0;  // H100 SXM dense INT8

std::vector<std::int8_t> random_codes(std::size_t count, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(-127, 127);
  std::vector<std::int8_t> v(count);
  for (std::int8_t& c : v)
    c = static_cast<std::int8_t>(code(rng));
  return v;
}

cuda::DeviceBuffer upload(const void* data, std::size_t bytes) {
  cuda::DeviceBuffer b(bytes);
  cuda::copy_to_device(b.data(), data, bytes);
  return b;
}

int run(int argc, char** argv) {
  BatchArgs o = parse_batch_args(argc, argv, "anvil_bench_conv3x3_int8 [--batch N]... [--reps N]");
  if (o.batches.empty()) o.batches = {128, 32};
  const Card c = card();
  std::printf("card: %s, L2 %d MB, DRAM peak %.0f GB/s\n\n", c.info.name.c_str(), c.l2_bytes >> 20,
              c.dram_peak_gb_per_s);
  std::mt19937 rng(11);
  const std::vector<std::int8_t> filter = random_codes(kC * 9 * kC, rng);
  std::vector<float> scale(kC), bias(kC);
  std::uniform_real_distribution<float> s(1e-4f, 6e-4f), b(-40.0f, 40.0f);
  for (int i = 0; i < kC; ++i) {
    scale[static_cast<std::size_t>(i)] = s(rng);
    bias[static_cast<std::size_t>(i)] = b(rng);
  }
  const cuda::DeviceBuffer d_filter = upload(filter.data(), filter.size());
  const cuda::DeviceBuffer d_scale = upload(scale.data(), scale.size() * 4);
  const cuda::DeviceBuffer d_bias = upload(bias.data(), bias.size() * 4);
  const cuda::Stream stream;
  const cuda::CudnnHandle cudnn;

  std::printf(
      "| batch | residual | mma.sync ms | wgmma x 128 ms | wgmma x 256 ms | wgmma, filter in "
      "registers, x 128 ms | the same x 256 ms | wgmma, filter as A in shared memory, x 256 ms | "
      "cuDNN best ms (of N) | cuDNN config | our best / "
      "cuDNN | compute floor ms | memory floor ms | our best / max floor |\n"
      "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|\n");
  for (const std::int64_t n : o.batches) {
    const std::size_t bytes = static_cast<std::size_t>(n) * kHw * kHw * kC;
    const int sets = static_cast<int>(
        std::clamp<std::size_t>(4 * static_cast<std::size_t>(c.l2_bytes) / (3 * bytes) + 1, 1, 8));
    std::vector<cuda::DeviceBuffer> x, residual, y;
    for (int i = 0; i < sets; ++i) {
      const std::vector<std::int8_t> codes = random_codes(bytes, rng);
      x.push_back(upload(codes.data(), bytes));
      residual.push_back(upload(codes.data(), bytes));
      y.emplace_back(bytes);
    }
    for (const bool with_residual : {false, true}) {
      // Each of our kernels this GPU runs (k::Conv3x3Int8Kernel), timed; 0
      // for one it does not run.
      std::vector<float> ours;
      for (const auto& [kernel, parts] :
           {std::pair{k::Conv3x3Int8Kernel::kMmaSync, 2},
            std::pair{k::Conv3x3Int8Kernel::kWgmma, 2}, std::pair{k::Conv3x3Int8Kernel::kWgmma, 4},
            std::pair{k::Conv3x3Int8Kernel::kWgmmaFilterInRegisters, 2},
            std::pair{k::Conv3x3Int8Kernel::kWgmmaFilterInRegisters, 4},
            std::pair{k::Conv3x3Int8Kernel::kWgmmaFilterInShared, 4}}) {
        const k::Conv3x3Int8Shape shape{.n = n,
                                        .h = kHw,
                                        .w = kHw,
                                        .relu = true,
                                        .has_bias = true,
                                        .has_residual = with_residual,
                                        .kernel = kernel,
                                        .wgmma_parts = parts};
        std::optional<k::Conv3x3Int8> conv;
        try {
          conv.emplace(shape);
        } catch (const Error& e) {
          if (e.kind() != ErrorKind::kUnsupported) throw;
          ours.push_back(0);
          continue;
        }
        ours.push_back(time_ms(stream, sets, o.reps, [&](int set) {
          const auto i = static_cast<std::size_t>(set);
          conv->run(x[i].data(), d_filter.data(), d_scale.as<float>(), d_bias.as<float>(),
                    with_residual ? residual[i].data() : nullptr, y[i].data(), stream.get());
        }));
      }
      float ours_ms = 0;  // the fastest
      for (const float ms : ours)
        if (ms > 0 && (ours_ms == 0 || ms < ours_ms)) ours_ms = ms;

      cuda::QuantizedConvShape q{.n = n,
                                 .h = kHw,
                                 .w = kHw,
                                 .c = kC,
                                 .k = kC,
                                 .r = 3,
                                 .s = 3,
                                 .pad_h = 1,
                                 .pad_w = 1,
                                 .has_bias = true,
                                 .has_residual = with_residual,
                                 .relu = true};
      const std::vector<cuda::QuantizedConv> convs =
          cuda::QuantizedConv::candidates(cudnn.get(), q, 8);
      float best = 0;
      std::string best_identity = "none";
      for (const cuda::QuantizedConv& conv : convs) {
        cuda::DeviceBuffer workspace(std::max<std::size_t>(conv.workspace_bytes(), 16));
        std::vector<cuda::QuantizedConv::Binding> bindings;
        for (int i = 0; i < sets; ++i) {
          const auto u = static_cast<std::size_t>(i);
          bindings.push_back(conv.bind(
              x[u].data(), d_filter.data(), d_scale.as<float>(), d_bias.as<float>(),
              with_residual ? residual[u].data() : nullptr, y[u].data(), workspace.data()));
        }
        const float ms = time_ms(stream, sets, o.reps, [&](int set) {
          conv.execute(cudnn.get(), stream.get(), bindings[static_cast<std::size_t>(set)]);
        });
        if (best_identity == "none" || ms < best) {
          best = ms;
          best_identity = conv.identity();
        }
      }
      const double ops = 2.0 * static_cast<double>(bytes) * 9 * kC;
      const double compute_floor = ops / (kInt8Tops * 1e9);
      const double memory_floor =
          static_cast<double>(bytes) * (with_residual ? 3 : 2) / (c.dram_peak_gb_per_s * 1e6);
      std::printf(
          "| %lld | %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f (%zu) | `%s` | %.2f | %.4f "
          "| "
          "%.4f | %.2f |\n",
          static_cast<long long>(n), with_residual ? "yes" : "no", ours[0], ours[1], ours[2],
          ours[3], ours[4], ours[5], best, convs.size(), best_identity.c_str(),
          best > 0 ? ours_ms / best : 0.0, compute_floor, memory_floor,
          ours_ms / std::max(compute_floor, memory_floor));
    }
  }
  return 0;
}

}  // namespace
}  // namespace anvil::bench

int main(int argc, char** argv) {
  return anvil::bench::run_main("anvil_bench_conv3x3_int8", anvil::bench::run, argc, argv);
}
