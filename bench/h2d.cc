// Host-to-device copies from pinned memory, the way the pipeline makes them:
// what one copy costs beyond its bytes, and whether the events between a
// batch's chunk copies or a second copy stream change the sum. The twelfth
// session's config 12 uploaded 12 chunks of 32 images (19.3 MB each) at
// 0.356-0.360 ms a chunk, 13 us a copy more than the 64 MiB copies' rate
// (docs/PERFORMANCE.md); this bench says where that goes.
//
//   anvil_bench_h2d [--reps N]
//
// Prints the median time of single copies of several sizes (and the fixed
// cost and rate a straight line through them gives), then of 12 chunk
// copies of 19.3 MB back to back: with nothing between them, with an event
// after each (the executor's "uploaded" events), with a pair of timing
// events around each (its GPU timeline), and alternating over two streams.
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <vector>

#include "bench_util.h"

namespace anvil::bench {
namespace {

constexpr std::size_t kMB = 1000 * 1000;
constexpr std::size_t kImage = 3 * 224 * 224 * sizeof(float);  // one FP32 image
constexpr std::size_t kChunk = 32 * kImage;                    // 19.3 MB
constexpr int kChunks = 12;                                    // 3 batches of 128

// Median ms of `reps` runs of `issue()` (which queues copies), each between
// a pair of timing events on `stream`, after one warm-up run; the other
// stream is joined back so its copies count. A host function holds `stream`
// until everything is queued, so the time is the copies', not the host's
// queueing.
float time_sequence(const cuda::Stream& stream, const cuda::Stream& other, int reps,
                    const std::function<void()>& issue) {
  cuda::Event joined(false);
  std::vector<float> ms;
  for (int r = -1; r < reps; ++r) {
    std::atomic<bool> go{false};
    ANVIL_GPU_CHECK(cudaLaunchHostFunc(
        stream.get(),
        [](void* flag) {
          while (!static_cast<std::atomic<bool>*>(flag)->load()) {
          }
        },
        &go));
    cuda::Event start, end;
    try {
      start.record(stream.get());
      ANVIL_GPU_CHECK(cudaStreamWaitEvent(other.get(), start.get(), 0));
      issue();
      joined.record(other.get());
      ANVIL_GPU_CHECK(cudaStreamWaitEvent(stream.get(), joined.get(), 0));
      end.record(stream.get());
    } catch (...) {
      go.store(true);  // the host function must not outlive `go`
      cudaStreamSynchronize(stream.get());
      throw;
    }
    go.store(true);
    end.synchronize();
    if (r >= 0) ms.push_back(cuda::Event::elapsed_ms(start, end));
  }
  return median(ms);
}

int run(int argc, char** argv) {
  int reps = 20;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") != 0 || i + 1 == argc)
      fail(ErrorKind::kInvalidArgument, "unknown argument '", argv[i], "' (usage: --reps N)");
    reps = std::atoi(argv[++i]);
    if (reps < 1) fail(ErrorKind::kInvalidArgument, "--reps needs a positive integer");
  }
  const Card c = card();
  const std::size_t total = kChunks * kChunk;
  cuda::PinnedBuffer host(total);
  cuda::DeviceBuffer device(total);
  std::memset(host.data(), 1, total);  // touched: no first-use page faults in the timing
  const cuda::Stream a, b;
  const auto copy = [&](const cuda::Stream& s, std::size_t offset, std::size_t bytes) {
    ANVIL_GPU_CHECK(cudaMemcpyAsync(device.as<std::byte>() + offset, host.as<std::byte>() + offset,
                                    bytes, cudaMemcpyHostToDevice, s.get()));
  };

  std::printf("## Host-to-device copies from pinned memory, %s (median of %d)\n\n",
              c.info.name.c_str(), reps);
  std::printf("| one copy | ms | GB/s |\n|---:|---:|---:|\n");
  const std::size_t sizes[] = {4 * kMB, kChunk, 2 * kChunk, 4 * kChunk, total};
  std::vector<double> x, y;
  for (const std::size_t bytes : sizes) {
    const float ms = time_sequence(a, b, reps, [&] { copy(a, 0, bytes); });
    std::printf("| %.1f MB | %.4f | %.2f |\n", static_cast<double>(bytes) / kMB, ms,
                static_cast<double>(bytes) / (ms * 1e-3) / 1e9);
    x.push_back(static_cast<double>(bytes));
    y.push_back(ms);
  }
  // Least squares: ms = fixed + bytes / rate.
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double n = static_cast<double>(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const double fixed_ms = (sy - slope * sx) / n;
  std::printf("\nA line through them: %.1f us a copy plus the bytes at %.2f GB/s.\n\n",
              fixed_ms * 1e3, 1.0 / slope / 1e6);

  std::vector<cuda::Event> marks, timing(2 * kChunks);
  for (int k = 0; k < kChunks; ++k)
    marks.emplace_back(false);
  struct Way {
    const char* name;
    std::function<void()> issue;
  };
  const Way ways[] = {
      {"back to back",
       [&] {
         for (int k = 0; k < kChunks; ++k)
           copy(a, k * kChunk, kChunk);
       }},
      {"an event after each (the executor's)",
       [&] {
         for (int k = 0; k < kChunks; ++k) {
           copy(a, k * kChunk, kChunk);
           marks[k].record(a.get());
         }
       }},
      {"timing events around each (the GPU timeline's)",
       [&] {
         for (int k = 0; k < kChunks; ++k) {
           timing[2 * k].record(a.get());
           copy(a, k * kChunk, kChunk);
           timing[2 * k + 1].record(a.get());
           marks[k].record(a.get());
         }
       }},
      {"two streams, chunks alternating",
       [&] {
         for (int k = 0; k < kChunks; ++k) {
           const cuda::Stream& s = k % 2 ? b : a;
           copy(s, k * kChunk, kChunk);
           marks[k].record(s.get());
         }
       }},
  };
  std::printf(
      "| %d copies of %.1f MB (%.1f MB) | ms | GB/s | us a copy over one %.1f MB copy's rate |\n",
      kChunks, static_cast<double>(kChunk) / kMB, static_cast<double>(total) / kMB,
      static_cast<double>(total) / kMB);
  std::printf("|---|---:|---:|---:|\n");
  const double whole_ms = y.back();
  for (const Way& w : ways) {
    const float ms = time_sequence(a, b, reps, w.issue);
    std::printf("| %s | %.4f | %.2f | %.1f |\n", w.name, ms,
                static_cast<double>(total) / (ms * 1e-3) / 1e9, (ms - whole_ms) / kChunks * 1e3);
  }
  return 0;
}

}  // namespace
}  // namespace anvil::bench

int main(int argc, char** argv) {
  return anvil::bench::run_main("anvil_bench_h2d", anvil::bench::run, argc, argv);
}
