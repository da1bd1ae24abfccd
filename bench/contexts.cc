// anvil_bench_contexts: what issue 4's concurrency buys and what a shape
// change costs, on one plan (bench/concurrency.sh builds one with two
// optimization profiles, 1..32 and 64..128):
//
//   anvil_bench_contexts PLAN [--duration SECONDS]
//
// 1. Throughput of 1, 2 and 4 execution contexts on one engine (weights
//    loaded once), each driven by its own thread and non-blocking stream with
//    its input already on the GPU, with and without CUDA graphs, plus the
//    device memory each context adds.
// 2. Host and GPU time of a shape change: a new batch in the same profile, a
//    profile switch, a batch the context has never run (its library plans are
//    built then), the same with CUDA graphs (warm-up, capture, replay), a
//    batch outside every profile, and loading a new engine.
//
// A benchmark, not a test: it prints markdown tables for docs/PERFORMANCE.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <latch>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "anvil/engine.h"
#include "anvil/error.h"
#include "bench_util.h"
#include "cuda/check.h"
#include "cuda/device.h"
#include "cuda/handles.h"

namespace anvil::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kContextCounts[] = {1, 2, 4};
constexpr std::int64_t kThroughputBatches[] = {32, 64, 128};
// Batches in flight per context: enough to keep the GPU fed while the host
// enqueues the next, few enough that the timed run ends with a short drain.
constexpr int kInFlight = 3;
constexpr double kWarmupSeconds = 0.2;
constexpr int kShapeChangeReps = 40;
constexpr int kColdBatches = 8;    // never-seen batches per cold row
constexpr int kEnqueuesAfter = 3;  // enqueues timed after each shape change
constexpr int kEngineLoads = 3;

double ms_between(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double mb(std::size_t bytes) {
  return static_cast<double>(bytes) / 1e6;
}

// Bytes in use on the device, by anyone: the difference across an allocation
// is what it really cost (library handles and allocator rounding included).
std::size_t device_bytes_used() {
  std::size_t free = 0, total = 0;
  ANVIL_GPU_CHECK(cudaMemGetInfo(&free, &total));
  return total - free;
}

// The plan's one input and one output.
struct Io {
  const IoTensorInfo* input = nullptr;
  const IoTensorInfo* output = nullptr;
};

Io find_io(const Engine& engine) {
  Io io;
  for (const IoTensorInfo& t : engine.io_tensors())
    (t.is_input ? io.input : io.output) = &t;
  if (engine.io_tensors().size() != 2 || !io.input || !io.output)
    fail(ErrorKind::kUnsupported,
         "anvil_bench_contexts drives plans with one input and one output");
  return io;
}

std::vector<std::int64_t> with_batch(const IoTensorInfo& t, std::int64_t batch) {
  std::vector<std::int64_t> dims = t.dims;
  for (std::int64_t& d : dims)
    if (d < 0) d = batch;
  return dims;
}

std::size_t float_bytes(const std::vector<std::int64_t>& dims) {
  std::size_t n = sizeof(float);
  for (std::int64_t d : dims)
    n *= static_cast<std::size_t>(d);
  return n;
}

// One context with its own stream and IO buffers (sized for the engine's
// largest batch). The input is seeded normal noise: zeros would run through
// every layer as zeros and could hide a kernel that reads the wrong memory.
struct Lane {
  std::unique_ptr<ExecutionContext> context;
  cuda::Stream stream;
  cuda::DeviceBuffer input, output;
};

void fill_input(Lane& lane, const Engine& engine, const Io& io, unsigned seed) {
  const std::size_t in_bytes = float_bytes(with_batch(*io.input, engine.max_batch()));
  lane.input = cuda::DeviceBuffer(in_bytes);
  lane.output = cuda::DeviceBuffer(float_bytes(with_batch(*io.output, engine.max_batch())));
  std::vector<float> host(in_bytes / sizeof(float));
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : host)
    x = normal(rng);
  cuda::copy_to_device(lane.input.data(), host.data(), in_bytes);
}

// Selects the profile that suits `batch` best and binds the lane's buffers.
void bind(Lane& lane, const Engine& engine, const Io& io, std::int64_t batch) {
  const int profile = engine.best_profile(batch);
  if (profile < 0) fail(ErrorKind::kInvalidArgument, "batch ", batch, " is in no profile");
  lane.context->set_optimization_profile(profile);
  lane.context->set_input_shape(io.input->name, with_batch(*io.input, batch));
  lane.context->set_tensor_address(io.input->name, lane.input.data());
  lane.context->set_tensor_address(io.output->name, lane.output.data());
}

// Enqueues back to back until `end`, never more than kInFlight batches ahead
// of the GPU (as a server would), then waits for the stream. Returns how many.
std::int64_t drive(Lane& lane, std::vector<cuda::Event>& ring, Clock::time_point end) {
  std::int64_t count = 0;
  while (count < kInFlight || Clock::now() < end) {
    const cuda::Event& slot = ring[static_cast<std::size_t>(count % kInFlight)];
    if (count >= kInFlight) slot.synchronize();
    lane.context->enqueue(lane.stream.get());
    slot.record(lane.stream.get());
    ++count;
  }
  lane.stream.synchronize();
  return count;
}

struct Cell {
  double images_per_s = 0;
  std::string graph_failure;  // non-empty when graphs were asked for but not replayed
};

// `contexts` lanes, one thread each, all enqueueing `batch` for `seconds`
// after each warmed up (graph captured) on its own: images over wall time.
Cell measure_throughput(const Engine& engine, const Io& io, std::vector<Lane>& lanes, int contexts,
                        std::int64_t batch, bool graphs, double seconds) {
  std::latch ready(contexts), go(1);
  Clock::time_point deadline;
  std::vector<std::int64_t> done(static_cast<std::size_t>(contexts), 0);
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(contexts));
  std::vector<std::string> graph_failures(static_cast<std::size_t>(contexts));
  std::vector<std::thread> threads;
  for (int t = 0; t < contexts; ++t)
    threads.emplace_back([&, t] {
      const auto i = static_cast<std::size_t>(t);
      Lane& lane = lanes[i];
      bool arrived = false;
      try {
        std::vector<cuda::Event> ring;
        for (int k = 0; k < kInFlight; ++k)
          ring.emplace_back(false);
        lane.context->set_cuda_graph(graphs);
        bind(lane, engine, io, batch);
        drive(lane, ring,
              Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(kWarmupSeconds)));
        ready.count_down();
        arrived = true;
        go.wait();
        done[i] = drive(lane, ring, deadline);
        if (graphs && !lane.context->last_enqueue_used_graph())
          graph_failures[i] = lane.context->cuda_graph_failure().empty()
                                  ? "graph not replayed"
                                  : lane.context->cuda_graph_failure();
      } catch (...) {
        errors[i] = std::current_exception();
        if (!arrived) ready.count_down();
      }
    });
  ready.wait();
  const Clock::time_point start = Clock::now();
  deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  go.count_down();
  for (std::thread& thread : threads)
    thread.join();
  const double wall_s = ms_between(start, Clock::now()) / 1e3;
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
  Cell cell;
  std::int64_t enqueues = 0;
  for (int t = 0; t < contexts; ++t) {
    enqueues += done[static_cast<std::size_t>(t)];
    if (cell.graph_failure.empty())
      cell.graph_failure = graph_failures[static_cast<std::size_t>(t)];
  }
  cell.images_per_s = static_cast<double>(enqueues * batch) / wall_s;
  return cell;
}

// Creates the lanes, printing what each context costs in device memory.
std::vector<Lane> make_lanes(const Engine& engine, const Io& io, int count) {
  std::vector<Lane> lanes(static_cast<std::size_t>(count));
  std::vector<double> create_ms, context_mb;
  for (int i = 0; i < count; ++i) {
    Lane& lane = lanes[static_cast<std::size_t>(i)];
    const std::size_t before = device_bytes_used();
    const Clock::time_point t0 = Clock::now();
    lane.context = engine.create_context();
    create_ms.push_back(ms_between(t0, Clock::now()));
    context_mb.push_back(mb(device_bytes_used() - before));
    fill_input(lane, engine, io, static_cast<unsigned>(1000 + i));
  }
  std::printf(
      "Device memory: weights %.1f MB, once per engine; Engine::context_memory_bytes() %.1f MB "
      "per context (activations + workspace at batch %lld)\n",
      mb(engine.weight_bytes()), mb(engine.context_memory_bytes()),
      static_cast<long long>(engine.max_batch()));
  std::printf("create_context(), measured with cudaMemGetInfo (arena + library handles):");
  for (int i = 0; i < count; ++i)
    std::printf(" context %d +%.1f MB (%.1f ms)", i + 1, context_mb[static_cast<std::size_t>(i)],
                create_ms[static_cast<std::size_t>(i)]);
  std::printf("\n");
  return lanes;
}

// Checks that every lane's last output is finite and not all zeros: a
// benchmark of a broken run is worth nothing.
void check_outputs(const Io& io, std::vector<Lane>& lanes, std::int64_t batch) {
  for (std::size_t i = 0; i < lanes.size(); ++i) {
    const auto dims = with_batch(*io.output, batch);
    std::vector<float> host(float_bytes(dims) / sizeof(float));
    lanes[i].stream.synchronize();
    ANVIL_GPU_CHECK(
        cudaMemcpy(host.data(), lanes[i].output.data(), float_bytes(dims), cudaMemcpyDeviceToHost));
    double sum = 0;
    std::size_t bad = 0, zeros = 0;
    for (float x : host) {
      bad += std::isfinite(x) ? 0 : 1;
      zeros += x == 0.0f ? 1 : 0;
      sum += std::isfinite(x) ? std::abs(x) : 0.0;
    }
    if (bad || zeros == host.size())
      std::printf("[W] context %zu output (batch %lld): %zu non-finite, %zu zeros of %zu\n", i + 1,
                  static_cast<long long>(batch), bad, zeros, host.size());
    else
      std::printf("context %zu output at batch %lld: finite, mean |x| %.4g\n", i + 1,
                  static_cast<long long>(batch), sum / static_cast<double>(host.size()));
  }
}

void throughput_section(const Engine& engine, const Io& io, double seconds) {
  const int max_contexts = kContextCounts[std::size(kContextCounts) - 1];
  std::printf("\n### Execution contexts on one engine: images/s\n\n");
  std::vector<Lane> lanes = make_lanes(engine, io, max_contexts);
  std::printf(
      "\nEach context: own thread, own non-blocking stream, input already on the GPU, %d "
      "batches in flight, %.1f s timed after %.1f s warm-up; images over wall time.\n\n",
      kInFlight, seconds, kWarmupSeconds);
  std::printf("| batch |");
  for (const char* mode : {"", " + graphs"})
    for (int n : kContextCounts)
      std::printf(" %d context%s%s |", n, n > 1 ? "s" : "", mode);
  std::printf("\n|---|");
  for (std::size_t i = 0; i < 2 * std::size(kContextCounts); ++i)
    std::printf("---|");
  std::printf("\n");
  std::int64_t last_batch = 0;
  for (std::int64_t batch : kThroughputBatches) {
    if (engine.best_profile(batch) < 0) {
      std::printf("| %lld | (in no profile of this plan) |\n", static_cast<long long>(batch));
      continue;
    }
    std::printf("| %lld |", static_cast<long long>(batch));
    std::string failures;
    for (bool graphs : {false, true})
      for (int n : kContextCounts) {
        const Cell cell = measure_throughput(engine, io, lanes, n, batch, graphs, seconds);
        std::printf(" %.0f%s |", cell.images_per_s, cell.graph_failure.empty() ? "" : " (!)");
        std::fflush(stdout);
        if (!cell.graph_failure.empty()) failures = cell.graph_failure;
      }
    std::printf("\n");
    if (!failures.empty()) std::printf("(!) CUDA graph not replayed: %s\n", failures.c_str());
    last_batch = batch;
  }
  std::printf("\n");
  if (last_batch > 0) check_outputs(io, lanes, last_batch);
}

// Host and GPU times of one shape change and the enqueues after it.
struct ChangeSample {
  double set_ms = 0;  // set_optimization_profile (if switching) + set_input_shape
  double host_ms[kEnqueuesAfter] = {};
  double gpu_ms[kEnqueuesAfter] = {};
};

struct Timer {
  cuda::Event start, end;
};

ChangeSample change_and_run(Lane& lane, const Io& io, Timer& timer, int profile,
                            std::int64_t batch) {
  ChangeSample s;
  ExecutionContext& context = *lane.context;
  lane.stream.synchronize();
  const Clock::time_point t0 = Clock::now();
  if (profile != context.optimization_profile()) context.set_optimization_profile(profile);
  context.set_input_shape(io.input->name, with_batch(*io.input, batch));
  s.set_ms = ms_between(t0, Clock::now());
  for (int k = 0; k < kEnqueuesAfter; ++k) {
    timer.start.record(lane.stream.get());
    const Clock::time_point t1 = Clock::now();
    context.enqueue(lane.stream.get());
    s.host_ms[k] = ms_between(t1, Clock::now());
    timer.end.record(lane.stream.get());
    timer.end.synchronize();
    s.gpu_ms[k] = cuda::Event::elapsed_ms(timer.start, timer.end);
  }
  return s;
}

void print_change_row(const char* label, const std::vector<ChangeSample>& samples) {
  auto column = [&](auto pick) {
    std::vector<double> v;
    for (const ChangeSample& s : samples)
      v.push_back(pick(s));
    return median(v);
  };
  std::printf("| %s | %zu | %.3f |", label, samples.size(),
              column([](const ChangeSample& s) { return s.set_ms; }));
  for (int k = 0; k < kEnqueuesAfter; ++k)
    std::printf(" %.3f / %.3f |", column([k](const ChangeSample& s) { return s.host_ms[k]; }),
                column([k](const ChangeSample& s) { return s.gpu_ms[k]; }));
  std::printf("\n");
  std::fflush(stdout);
}

// The batches a shape-change row alternates between, from the plan's profiles.
struct ShapePlan {
  int high_profile = 0;                 // the last; the low one is 0
  std::int64_t low_batch = 0;           // the low profile's max
  std::int64_t high_a = 0, high_b = 0;  // two batches of the high profile
  std::vector<std::int64_t> cold;       // high-profile batches not yet run
};

ShapePlan plan_shapes(const Engine& engine) {
  ShapePlan p;
  p.high_profile = engine.profile_count() - 1;
  const BatchRange high = engine.profile_batch_range(p.high_profile);
  p.low_batch = engine.profile_batch_range(0).max;
  p.high_a = high.max;
  p.high_b = high.min;
  // Spread evenly over the range's interior, none of them the two above.
  const std::int64_t interior = high.max - high.min - 1;
  const std::int64_t count = std::min<std::int64_t>(2 * kColdBatches, interior);
  for (std::int64_t i = 0; i < count; ++i)
    p.cold.push_back(high.min + 1 + i * interior / count);
  return p;
}

void shape_change_section(const Engine& engine, const Io& io) {
  const ShapePlan shapes = plan_shapes(engine);
  std::printf("\n### Shape changes: host ms (set_input_shape, enqueue call) / GPU ms\n\n");
  std::printf(
      "Medians; one context, input on the GPU, stream idle before each change. Enqueue 1 is the "
      "first after the change; with CUDA graphs, a never-run batch's enqueue 1 runs plainly "
      "(warm-up), 2 captures and launches, 3 replays.\n\n");
  std::printf(
      "| change | reps | set_input_shape host | enqueue 1 host / GPU | enqueue 2 host / GPU | "
      "enqueue 3 host / GPU |\n|---|---|---|---|---|---|\n");
  const int low = 0, high = shapes.high_profile;
  for (bool graphs : {false, true}) {
    Lane lane;
    lane.context = engine.create_context();
    fill_input(lane, engine, io, 7);
    lane.context->set_cuda_graph(graphs);
    bind(lane, engine, io, shapes.high_a);
    Timer timer;
    const char* mode = graphs ? ", CUDA graphs" : "";
    // Runs each warm batch kEnqueuesAfter times, so the rows below find its
    // library plans prepared and, with graphs, its graph captured.
    for (std::int64_t batch : {shapes.high_a, shapes.high_b, shapes.low_batch})
      change_and_run(lane, io, timer, engine.best_profile(batch), batch);

    std::vector<ChangeSample> samples;
    if (shapes.high_a != shapes.high_b) {
      for (int r = 0; r < kShapeChangeReps; ++r) {
        const std::int64_t batch = r % 2 ? shapes.high_a : shapes.high_b;
        samples.push_back(change_and_run(lane, io, timer, high, batch));
      }
      const std::string label = "batch " + std::to_string(shapes.high_b) + " <-> " +
                                std::to_string(shapes.high_a) + ", same profile, both run before" +
                                mode;
      print_change_row(label.c_str(), samples);
    }
    if (high != low) {
      samples.clear();
      for (int r = 0; r < kShapeChangeReps; ++r) {
        const bool to_high = r % 2 != 0;
        samples.push_back(change_and_run(lane, io, timer, to_high ? high : low,
                                         to_high ? shapes.high_a : shapes.low_batch));
      }
      const std::string label = "batch " + std::to_string(shapes.low_batch) + " <-> " +
                                std::to_string(shapes.high_a) + ", profile " + std::to_string(low) +
                                " <-> " + std::to_string(high) + ", both run before" + mode;
      print_change_row(label.c_str(), samples);
    }
    // Never-run batches: half reached from the same profile, half by a
    // profile switch; the batch before each is a warm one, not timed.
    std::vector<ChangeSample> same, switched;
    for (std::size_t i = 0; i < shapes.cold.size(); ++i) {
      const bool switch_profile = i % 2 != 0 && high != low;
      change_and_run(lane, io, timer, switch_profile ? low : high,
                     switch_profile ? shapes.low_batch : shapes.high_a);
      (switch_profile ? switched : same)
          .push_back(change_and_run(lane, io, timer, high, shapes.cold[i]));
    }
    const std::string range = shapes.cold.empty() ? std::string()
                                                  : std::to_string(shapes.cold.front()) + ".." +
                                                        std::to_string(shapes.cold.back());
    if (!same.empty())
      print_change_row(("never-run batch in " + range + ", same profile" + mode).c_str(), same);
    if (!switched.empty())
      print_change_row(("never-run batch in " + range + ", profile switch from batch " +
                        std::to_string(shapes.low_batch) + mode)
                           .c_str(),
                       switched);
    if (graphs && !lane.context->cuda_graph_failure().empty())
      std::printf("(CUDA graphs failed: %s)\n", lane.context->cuda_graph_failure().c_str());
  }
}

// A batch no profile holds is an error, not a slow path: the caller's
// alternative is another engine (a build, then a load).
void outside_profiles_section(const Engine& engine, const Io& io, const std::string& plan_path) {
  std::int64_t outside = 1;
  while (outside <= engine.max_batch() && engine.best_profile(outside) >= 0)
    ++outside;
  std::printf("\n### A batch outside every profile\n\n");
  auto context = engine.create_context();
  try {
    context->set_input_shape(io.input->name, with_batch(*io.input, outside));
    std::printf("batch %lld: accepted (unexpected: no profile holds it)\n",
                static_cast<long long>(outside));
  } catch (const Error& e) {
    std::printf("batch %lld: error (%s): %s\n", static_cast<long long>(outside),
                std::string(to_string(e.kind())).c_str(), e.what());
  }
  std::vector<double> load_ms;
  for (int i = 0; i < kEngineLoads; ++i) {
    const Clock::time_point t0 = Clock::now();
    auto another = Engine::load(plan_path);
    auto its_context = another->create_context();
    load_ms.push_back(ms_between(t0, Clock::now()));
  }
  std::printf(
      "The alternative, another engine: Engine::load + create_context %.1f ms (median of %d, "
      "process warm), plus its build (`anvil build` times above).\n",
      median(load_ms), kEngineLoads);
}

int run(int argc, char** argv) {
  std::string plan_path;
  double seconds = 1.0;
  bool usage_ok = true;
  for (int i = 1; i < argc && usage_ok; ++i) {
    const std::string arg = argv[i];
    if (arg == "--duration" && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (plan_path.empty() && arg.rfind("--", 0) != 0)
      plan_path = arg;
    else
      usage_ok = false;
  }
  if (!usage_ok || plan_path.empty() || !(seconds > 0)) {
    std::fprintf(stderr, "usage: anvil_bench_contexts PLAN [--duration SECONDS (default 1)]\n");
    return 2;
  }
  if (cuda::device_count() == 0) {
    std::fprintf(stderr,
                 "anvil_bench_contexts: no CUDA GPU on this machine; it runs on the GPU machine "
                 "(bench/concurrency.sh through scripts/gpu-check.sh)\n");
    return 2;
  }
  const Clock::time_point t0 = Clock::now();
  const auto engine = Engine::load(plan_path);
  const double first_load_ms = ms_between(t0, Clock::now());
  const Io io = find_io(*engine);
  const auto gpu = cuda::device_info(0);
  std::printf("## %s: %s, %d profile(s):", plan_path.c_str(), gpu ? gpu->name.c_str() : "?",
              engine->profile_count());
  for (int p = 0; p < engine->profile_count(); ++p) {
    const BatchRange r = engine->profile_batch_range(p);
    std::printf(" [%lld..%lld, tuned at %lld]", static_cast<long long>(r.min),
                static_cast<long long>(r.max), static_cast<long long>(r.opt));
  }
  std::printf("\nFirst Engine::load %.1f ms (CUDA and library start-up included)\n", first_load_ms);
  throughput_section(*engine, io, seconds);
  shape_change_section(*engine, io);
  outside_profiles_section(*engine, io, plan_path);
  return 0;
}

}  // namespace
}  // namespace anvil::bench

int main(int argc, char** argv) {
  return anvil::bench::run_main("anvil_bench_contexts", anvil::bench::run, argc, argv);
}
