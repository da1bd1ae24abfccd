#include "run_plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <vector>

#include "anvil/error.h"

#if ANVIL_HAVE_CUDA
#include "anvil/engine.h"
#include "cuda/check.h"
#include "cuda/device.h"
#include "cuda/handles.h"
#include "layer_profile.h"
#include "plan/plan.h"
#include "run_trace.h"
#endif

namespace anvil::cli {

bool is_plan_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  char magic[8] = {};
  file.read(magic, sizeof(magic));
  return file.gcount() == 8 && std::string(magic, 8) == "ANVLPLAN";
}

#if ANVIL_HAVE_CUDA

namespace {

constexpr int kProfiledEnqueues = 50;

using Sample = IterationTimes;

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

std::size_t element_count(const std::vector<std::int64_t>& dims) {
  std::size_t n = 1;
  for (std::int64_t d : dims)
    n *= static_cast<std::size_t>(d);
  return n;
}

void print_top_k(const float* scores, std::int64_t classes, int top) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(classes));
  std::iota(order.begin(), order.end(), 0);
  const auto k = std::min<std::int64_t>(top, classes);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](std::int64_t a, std::int64_t b) { return scores[a] > scores[b]; });
  std::printf("sample 0 top-%lld:", static_cast<long long>(k));
  for (std::int64_t i = 0; i < k; ++i)
    std::printf(" %lld (%.3f)", static_cast<long long>(order[static_cast<std::size_t>(i)]),
                scores[order[static_cast<std::size_t>(i)]]);
  std::printf("\n");
}

}  // namespace

void run_plan(const PlanRunOptions& opt) {
  // Where start-up time goes, as trtexec reports it: loading the plan, the
  // context, the first shape (each layer prepared at it: cuDNN plans, and
  // run-time compiled kernels for INT8 and FP8) and the first run.
  const auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  auto phase = std::chrono::steady_clock::now();
  auto engine = Engine::load(opt.plan);
  const double load_s = seconds_since(phase);
  phase = std::chrono::steady_clock::now();
  auto context = engine->create_context();
  const double context_s = seconds_since(phase);
  const IoTensorInfo* input = nullptr;
  const IoTensorInfo* output = nullptr;
  for (const IoTensorInfo& io : engine->io_tensors())
    (io.is_input ? input : output) = &io;
  if (engine->io_tensors().size() != 2 || !input || !output)
    fail(ErrorKind::kUnsupported, "`anvil run` drives plans with one input and one output");

  if (!opt.shape_input.empty() && opt.shape_input != input->name)
    fail(ErrorKind::kInvalidArgument, "--shapes names '", opt.shape_input, "'; ", opt.plan,
         "'s input is '", input->name, "'");
  // The profile asked for, else the one that suits the shape (or batch) best.
  int chosen = opt.profile;
  if (chosen < 0)
    chosen = opt.shape.empty() ? engine->best_profile(opt.batch)
                               : engine->best_profile(input->name, opt.shape);
  chosen = std::max(chosen, 0);  // none fits: set_input_shape names the ranges
  context->set_optimization_profile(chosen);
  std::vector<std::int64_t> in_dims = opt.shape;
  if (in_dims.empty()) {
    // As trtexec without --shapes: the batch asked for, the profile's opt
    // for every other dim that varies (a plan with spatial ranges).
    in_dims = input->dims;
    in_dims[0] = opt.batch;
    const plan::Profile& profile = engine->plan().profiles.at(static_cast<std::size_t>(chosen));
    const auto range = profile.inputs.find(input->name);
    for (std::size_t d = 1; d < in_dims.size(); ++d)
      if (in_dims[d] < 0 && range != profile.inputs.end()) in_dims[d] = range->second.opt[d];
  }
  phase = std::chrono::steady_clock::now();
  context->set_input_shape(input->name, in_dims);  // names the profiles if none fits
  const double shape_s = seconds_since(phase);
  const std::vector<std::int64_t> out_dims = context->tensor_shape(output->name);
  const std::size_t in_bytes = element_count(in_dims) * sizeof(float);
  const std::size_t out_bytes = element_count(out_dims) * sizeof(float);
  cuda::DeviceBuffer d_in(in_bytes), d_out(out_bytes);
  cuda::PinnedBuffer h_in(in_bytes), h_out(out_bytes);
  std::mt19937 rng(opt.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t i = 0; i < in_bytes / sizeof(float); ++i)
    h_in.as<float>()[i] = normal(rng);
  context->set_tensor_address(input->name, d_in.data());
  context->set_tensor_address(output->name, d_out.data());
  context->set_cuda_graph(opt.cuda_graph);

  cuda::Stream stream;
  cuda::Event origin, start, uploaded, computed, downloaded;
  auto wall0 = std::chrono::steady_clock::now();
  auto run_once = [&](Sample* sample) {
    start.record(stream.get());
    if (!opt.no_data_transfers)
      ANVIL_GPU_CHECK(cudaMemcpyAsync(d_in.data(), h_in.data(), in_bytes, cudaMemcpyHostToDevice,
                                      stream.get()));
    uploaded.record(stream.get());
    const auto t0 = std::chrono::steady_clock::now();
    context->enqueue(stream.get());
    const auto t1 = std::chrono::steady_clock::now();
    computed.record(stream.get());
    if (!opt.no_data_transfers)
      ANVIL_GPU_CHECK(cudaMemcpyAsync(h_out.data(), d_out.data(), out_bytes, cudaMemcpyDeviceToHost,
                                      stream.get()));
    downloaded.record(stream.get());
    downloaded.synchronize();
    if (sample)
      *sample = {cuda::Event::elapsed_ms(start, downloaded),
                 cuda::Event::elapsed_ms(start, uploaded),
                 cuda::Event::elapsed_ms(uploaded, computed),
                 cuda::Event::elapsed_ms(computed, downloaded),
                 std::chrono::duration<double, std::milli>(t1 - t0).count(),
                 cuda::Event::elapsed_ms(origin, start),
                 std::chrono::duration<double, std::milli>(t0 - wall0).count()};
  };

  phase = std::chrono::steady_clock::now();
  run_once(nullptr);
  const double first_run_s = seconds_since(phase);
  std::printf(
      "Start-up: plan loaded in %.3f s, context created in %.3f s, input shape set in %.3f s, "
      "first run %.3f s\n",
      load_s, context_s, shape_s, first_run_s);
  const auto warm_end =
      std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(opt.warmup_ms);
  while (std::chrono::steady_clock::now() < warm_end)
    run_once(nullptr);

  std::vector<Sample> samples;
  const auto run_end =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(opt.duration_s);
  origin.record(stream.get());
  wall0 = std::chrono::steady_clock::now();
  while (opt.iterations > 0 ? static_cast<int>(samples.size()) < opt.iterations
                            : std::chrono::steady_clock::now() < run_end) {
    run_once(&samples.emplace_back());
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  if (opt.no_data_transfers)
    ANVIL_GPU_CHECK(cudaMemcpy(h_out.data(), d_out.data(), out_bytes, cudaMemcpyDeviceToHost));

  auto column = [&](double Sample::*field) {
    std::vector<double> v;
    for (const Sample& s : samples)
      v.push_back(s.*field);
    return v;
  };
  const auto latency = column(&Sample::latency_ms);
  const auto compute = column(&Sample::compute_ms);
  const auto enqueue = column(&Sample::enqueue_ms);
  const double h2d = mean(column(&Sample::h2d_ms)), d2h = mean(column(&Sample::d2h_ms));
  const auto gpu = cuda::device_info(0);
  const double qps = static_cast<double>(samples.size()) / wall_s;

  std::printf("=== Performance summary (%s, batch %lld, profile %d of %d, %s) ===\n",
              gpu ? gpu->name.c_str() : "?", static_cast<long long>(opt.batch),
              context->optimization_profile(), engine->profile_count(),
              opt.no_data_transfers ? "no data transfers" : "with H2D/D2H transfers");
  std::printf("Throughput: %.2f qps, %.1f images/s over %zu iterations\n", qps,
              qps * static_cast<double>(opt.batch), samples.size());
  std::printf(
      "Latency: min = %.4f ms, max = %.4f ms, mean = %.4f ms, median = %.4f ms, "
      "percentile(90%%) = %.4f ms, percentile(95%%) = %.4f ms, percentile(99%%) = %.4f ms\n",
      *std::min_element(latency.begin(), latency.end()),
      *std::max_element(latency.begin(), latency.end()), mean(latency), percentile(latency, 50),
      percentile(latency, 90), percentile(latency, 95), percentile(latency, 99));
  std::printf("Enqueue Time: mean = %.4f ms, median = %.4f ms\n", mean(enqueue),
              percentile(enqueue, 50));
  std::printf(
      "H2D Latency: mean = %.4f ms\nGPU Compute Time: mean = %.4f ms, median = %.4f ms, "
      "percentile(99%%) = %.4f ms\nD2H Latency: mean = %.4f ms\n",
      h2d, mean(compute), percentile(compute, 50), percentile(compute, 99), d2h);
  std::printf("Device memory: weights %.1f MB, per context %.1f MB (activations + workspace)\n",
              static_cast<double>(engine->weight_bytes()) / 1e6,
              static_cast<double>(engine->context_memory_bytes()) / 1e6);
  if (opt.cuda_graph)
    std::printf("CUDA graph: %s\n",
                context->last_enqueue_used_graph()
                    ? "replayed"
                    : ("not used, plain launches: " + context->cuda_graph_failure()).c_str());
  if (mean(enqueue) > mean(compute))
    std::printf(
        "[W] Enqueue-bound: the host takes longer to enqueue than the GPU to compute; "
        "%s\n",
        opt.cuda_graph ? "a larger batch helps."
                       : "CUDA graphs (--cuda-graph) or a larger batch help.");
  if (!opt.no_data_transfers && h2d + d2h > mean(compute))
    std::printf(
        "[W] Transfer-bound: H2D + D2H take longer than compute; overlap copies with "
        "compute (the Pipeline) or send uint8 images.\n");
  const double sd =
      std::sqrt(std::accumulate(compute.begin(), compute.end(), 0.0,
                                [&](double acc, double x) {
                                  return acc + (x - mean(compute)) * (x - mean(compute));
                                }) /
                static_cast<double>(compute.size()));
  if (sd > 0.1 * mean(compute))
    std::printf("[W] High variance: GPU compute time varies by %.0f%% (coefficient of variation)\n",
                100.0 * sd / mean(compute));
  if (out_dims.size() == 2) print_top_k(h_out.as<float>(), out_dims[1], opt.top);
  LayerProfile layer_times;
  if (opt.dump_profile) {
    // Separate from the timed run: profiling synchronizes after every enqueue
    // and launches plainly, graph or not.
    context->set_profiler(&layer_times);
    for (int i = 0; i < kProfiledEnqueues; ++i)
      context->enqueue(stream.get());
    context->set_profiler(nullptr);
    layer_times.print(stdout);
  }
  if (!opt.export_trace.empty()) {
    write_run_trace(opt.export_trace, opt.batch, samples,
                    opt.dump_profile ? &layer_times : nullptr);
    std::printf("Trace: %s (open in ui.perfetto.dev or chrome://tracing)\n",
                opt.export_trace.c_str());
  }

  if (!opt.export_times.empty()) {
    nlohmann::json times = nlohmann::json::array();
    for (const Sample& s : samples)
      times.push_back({{"latencyMs", s.latency_ms},
                       {"h2dMs", s.h2d_ms},
                       {"computeMs", s.compute_ms},
                       {"d2hMs", s.d2h_ms},
                       {"enqueueMs", s.enqueue_ms}});
    std::ofstream(opt.export_times) << times.dump(1);
  }
}

#else

void run_plan(const PlanRunOptions&) {
  fail(ErrorKind::kUnsupported, "this anvil was built without CUDA: plans need the GPU engine");
}

#endif

}  // namespace anvil::cli
