// anvil_bench_quantize: issue 6's quantize and dequantize kernels
// (src/cuda/kernels/quantize.h) at the activation shapes of ResNet-50's
// INT8 convs (NHWC, batch 128 unless given), against the card's DRAM peak:
//
//   anvil_bench_quantize [--batch N] [--reps N]
//
// Each kernel reads and writes distinct buffers per rep, cycling through
// enough of them (over 4x the L2) that every rep comes from DRAM, as in an
// engine run; the median of the reps is reported. Bytes are those the
// kernel must move (2 per FP16 element, 1 per INT8 one).
//
// A benchmark, not a test: it prints a markdown table for docs/PERFORMANCE.md.
#include "cuda/kernels/quantize.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "bench_util.h"
#include "cuda/check.h"
#include "cuda/device.h"
#include "cuda/handles.h"

namespace anvil::bench {
namespace {

struct Shape {
  const char* where;
  std::int64_t h, w, c;
};
// The distinct conv-input activations of ResNet-50 (stage, spatial, channels).
constexpr Shape kShapes[] = {
    {"stage1 in", 56, 56, 64},   {"stage1 out", 56, 56, 256}, {"stage2 in", 28, 28, 128},
    {"stage2 out", 28, 28, 512}, {"stage3 in", 14, 14, 256},  {"stage3 out", 14, 14, 1024},
    {"stage4 in", 7, 7, 512},    {"stage4 out", 7, 7, 2048},  {"odd: 56x56x3", 56, 56, 3},
};

struct Options {
  std::int64_t batch = 128;
  int reps = 50;
};

Options parse(int argc, char** argv) {
  const BatchArgs a = parse_batch_args(argc, argv, "anvil_bench_quantize [--batch N] [--reps N]");
  return {a.batches.empty() ? 128 : a.batches.back(), a.reps};
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const Card c = card();
  const int l2_bytes = c.l2_bytes;
  const double peak = c.dram_peak_gb_per_s;
  std::printf("%s, DRAM peak %.0f GB/s, L2 %d MiB, batch %lld, median of %d reps\n\n",
              c.info.name.c_str(), peak, l2_bytes >> 20, static_cast<long long>(o.batch), o.reps);
  std::printf(
      "| tensor | NHWC | elements | quantize ms | GB/s | %% peak | dequantize ms | GB/s "
      "| %% peak |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  cuda::Stream stream;
  const float scale = 0.0173f;
  for (const Shape& s : kShapes) {
    const std::int64_t n = o.batch * s.h * s.w * s.c;
    const auto bytes = static_cast<std::size_t>(n) * 3;
    const int sets = static_cast<int>(
        std::clamp<std::size_t>(4 * static_cast<std::size_t>(l2_bytes) / bytes + 1, 1, 64));
    std::vector<cuda::DeviceBuffer> fp16, int8;
    for (int i = 0; i < sets; ++i) {
      fp16.emplace_back(static_cast<std::size_t>(n) * 2);
      int8.emplace_back(static_cast<std::size_t>(n));
      // Values spread over the INT8 range and beyond: 0x2000..0x5fff halves.
      ANVIL_GPU_CHECK(cudaMemsetAsync(fp16.back().data(), 0x31, fp16.back().bytes(), stream.get()));
    }
    const float q_ms = time_ms(stream, sets, o.reps, [&](int i) {
      cuda::kernels::quantize_int8(fp16[i].data(), int8[i].as<std::int8_t>(), n, scale,
                                   stream.get());
    });
    const float d_ms = time_ms(stream, sets, o.reps, [&](int i) {
      cuda::kernels::dequantize_int8(int8[i].as<std::int8_t>(), fp16[i].data(), n, scale,
                                     stream.get());
    });
    const double q_gbs = bytes / (q_ms * 1e6), d_gbs = bytes / (d_ms * 1e6);
    std::printf(
        "| %s | %lldx%lldx%lldx%lld | %lld | %.4f | %.0f | %.0f%% | %.4f | %.0f | %.0f%% |\n",
        s.where, static_cast<long long>(o.batch), static_cast<long long>(s.h),
        static_cast<long long>(s.w), static_cast<long long>(s.c), static_cast<long long>(n), q_ms,
        q_gbs, peak > 0 ? 100 * q_gbs / peak : 0.0, d_ms, d_gbs,
        peak > 0 ? 100 * d_gbs / peak : 0.0);
  }
  std::printf("\nFloor at peak: bytes / peak (stage1 in: %.4f ms).\n",
              peak > 0 ? static_cast<double>(o.batch * 56 * 56 * 64 * 3) / (peak * 1e6) : 0.0);
  return 0;
}

}  // namespace
}  // namespace anvil::bench

int main(int argc, char** argv) {
  return anvil::bench::run_main("anvil_bench_quantize", anvil::bench::run, argc, argv);
}
