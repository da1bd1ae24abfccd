// What the kernel bench binaries share: the card they run on, their
// arguments' parsing and main(), and kernel timing (the median of `reps`
// launches, each between its own pair of events, cycling through `sets`
// buffer sets so that, with enough sets, every launch reads from DRAM, as in
// an engine run).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "cuda/check.h"
#include "cuda/device.h"
#include "cuda/handles.h"

namespace anvil::bench {

// The card, its L2 and its DRAM peak (0 where the driver does not say).
struct Card {
  cuda::DeviceInfo info;
  int l2_bytes = 0;
  double dram_peak_gb_per_s = 0;
};

inline Card card() {
  const auto info = cuda::device_info(0);
  if (!info) fail(ErrorKind::kGpu, "no CUDA device");
  Card c{*info, 0, info->memory_bandwidth_gb_per_s};
  ANVIL_GPU_CHECK(cudaDeviceGetAttribute(&c.l2_bytes, cudaDevAttrL2CacheSize, info->ordinal));
  return c;
}

// The kernel benches' arguments: `--batch N` (repeatable, in order) and
// `--reps N`, positive integers; anything else is an error quoting `usage`.
struct BatchArgs {
  std::vector<std::int64_t> batches;  // empty: the bench's default
  int reps = 50;
};

inline BatchArgs parse_batch_args(int argc, char** argv, const char* usage) {
  BatchArgs o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a != "--batch" && a != "--reps") || i + 1 == argc)
      fail(ErrorKind::kInvalidArgument, "unknown argument '", a, "' (usage: ", usage, ")");
    const char* text = argv[++i];
    const long v = std::strtol(text, nullptr, 10);
    if (v <= 0) fail(ErrorKind::kInvalidArgument, a, " needs a positive integer, got ", text);
    if (a == "--batch")
      o.batches.push_back(v);
    else
      o.reps = static_cast<int>(v);
  }
  return o;
}

// main(): run(argc, argv), an error printed as "<name>: <what>" and exit 1.
inline int run_main(const char* name, int (*run)(int, char**), int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

inline float median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median milliseconds of `reps` launches of `launch(set)`, set cycling
// through [0, sets), after one warm-up launch per set (first touches,
// module loads).
template <typename Launch>
float time_ms(const cuda::Stream& stream, int sets, int reps, Launch launch) {
  for (int s = 0; s < sets; ++s)
    launch(s);
  std::vector<cuda::Event> start(reps), end(reps);
  for (int r = 0; r < reps; ++r) {
    start[r].record(stream.get());
    launch(r % sets);
    end[r].record(stream.get());
  }
  stream.synchronize();
  std::vector<float> ms(reps);
  for (int r = 0; r < reps; ++r)
    ms[r] = cuda::Event::elapsed_ms(start[r], end[r]);
  return median(ms);
}

}  // namespace anvil::bench
