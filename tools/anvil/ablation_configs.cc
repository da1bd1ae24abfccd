// Needs the GPU engine: compiled only with CUDA.
#if ANVIL_HAVE_CUDA

#include "ablation_configs.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <utility>

#include "anvil/engine.h"
#include "anvil/error.h"
#include "anvil/pipeline.h"
#include "core/cpu_pause.h"
#include "cuda/check.h"
#include "cuda/handles.h"

namespace anvil::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Host-side spans of the timed batches, for the Chrome trace: kept as clock
// readings, made relative to the run's start once the job has said when
// that was (Job::run).
class Recorder {
 public:
  void add(std::string track, std::string name, Clock::time_point from, Clock::time_point to) {
    spans_.push_back({std::move(track), std::move(name), from, to});
  }
  std::vector<TraceSpan> relative_to(Clock::time_point origin) const {
    std::vector<TraceSpan> spans;
    for (const Span& s : spans_)
      spans.push_back({s.track, s.name, ms_between(origin, s.from), ms_between(s.from, s.to)});
    return spans;
  }

 private:
  struct Span {
    std::string track, name;
    Clock::time_point from, to;
  };
  std::vector<Span> spans_;
};

// When a run's timed work started and ended.
struct Interval {
  Clock::time_point start, end;
};

// The engine's one input and one output at a batch size.
struct Io {
  std::string input, output;
  std::vector<std::int64_t> input_dims;  // at `batch`
  std::int64_t classes = 0;              // output values per image
  std::size_t input_bytes = 0, output_bytes = 0;
};

Io io_of(const Engine& engine, std::int64_t batch) {
  Io io;
  std::int64_t image = 1;
  for (const IoTensorInfo& t : engine.io_tensors()) {
    std::int64_t per_image = 1;
    for (std::size_t d = 1; d < t.dims.size(); ++d)
      per_image *= t.dims[d];
    if (t.is_input) {
      io.input = t.name;
      io.input_dims = t.dims;
      io.input_dims[0] = batch;
      image = per_image;
    } else {
      io.output = t.name;
      io.classes = per_image;
    }
  }
  if (engine.io_tensors().size() != 2 || io.input.empty() || io.output.empty())
    fail(ErrorKind::kUnsupported,
         "anvil bench --ablation needs a model with one input and one output");
  io.input_bytes = static_cast<std::size_t>(batch * image) * sizeof(float);
  io.output_bytes = static_cast<std::size_t>(batch * io.classes) * sizeof(float);
  return io;
}

// One config's way of running batches. run() processes the batches `order`
// names (indices into the data), each result with process_output, and
// returns when its timed work started and ended: it starts once the job's
// threads exist and stops when its last batch's work ended, so neither the
// start nor the teardown of a thread that a long-running application would
// keep is counted (the guide's scripts, too, start their printing thread
// before the batches and stop the clock before joining it).
// prepare() does the untimed part of the caller's side (filling the
// Pipeline's batches).
class Job {
 public:
  virtual ~Job() = default;
  virtual void prepare(const std::vector<int>& order) { (void)order; }
  virtual Interval run(const std::vector<int>& order, Recorder* recorder) = 0;
  // The job's page-locked copy of the data set (empty: it uploads from
  // pageable memory), whose upload rate run_ablation_config measures.
  virtual std::span<const std::byte> pinned_input() const { return {}; }

  std::size_t device_bytes = 0;
  ConfigResult* result = nullptr;
  std::string sink;  // the printed results: cleared per run, never shown

 protected:
  // Keeps the first top-1 seen for a batch (later runs repeat the batch).
  void keep_top1(int b, std::vector<std::int32_t> top1, bool small) {
    auto& per_batch = small ? result->top1_small : result->top1;
    if (per_batch.size() <= static_cast<std::size_t>(b))
      per_batch.resize(static_cast<std::size_t>(b) + 1);
    if (per_batch[static_cast<std::size_t>(b)].empty())
      per_batch[static_cast<std::size_t>(b)] = std::move(top1);
  }
};

// Configs 0-3, as plainly as the guide's scripts: one stream, every step
// waited for before the next.
enum class Serial { kBaseline, kReuseBuffers, kPinned };

class SerialJob : public Job {
 public:
  SerialJob(const Engine& engine, Serial mode, const AblationData& data)
      : mode_(mode),
        data_(data),
        io_(io_of(engine, data.batch)),
        context_(engine.create_context()) {
    context_->set_optimization_profile(std::max(engine.best_profile(data.batch), 0));
    context_->set_input_shape(io_.input, io_.input_dims);
    host_output_.resize(io_.output_bytes / sizeof(float));
    if (mode_ != Serial::kBaseline) {
      d_input_ = cuda::DeviceBuffer(io_.input_bytes);
      d_output_ = cuda::DeviceBuffer(io_.output_bytes);
      context_->set_tensor_address(io_.input, d_input_.data());
      context_->set_tensor_address(io_.output, d_output_.data());
    }
    if (mode_ == Serial::kPinned) {
      // The application's data lives in pinned memory from the start.
      pinned_input_ = cuda::PinnedBuffer(io_.input_bytes * data.nchw.size());
      for (std::size_t b = 0; b < data.nchw.size(); ++b)
        std::memcpy(pinned_input_.as<std::byte>() + b * io_.input_bytes, data.nchw[b].data(),
                    io_.input_bytes);
      pinned_output_ = cuda::PinnedBuffer(io_.output_bytes);
    }
    device_bytes = engine.weight_bytes() + context_->device_memory_bytes() + io_.input_bytes +
                   io_.output_bytes;
  }

  Interval run(const std::vector<int>& order, Recorder* recorder) override {
    sink.clear();
    const auto start = Clock::now();
    for (const int b : order) {
      const auto t0 = Clock::now();
      cuda::DeviceBuffer batch_input, batch_output;
      if (mode_ == Serial::kBaseline) {
        batch_input = cuda::DeviceBuffer(io_.input_bytes);
        batch_output = cuda::DeviceBuffer(io_.output_bytes);
        context_->set_input_shape(io_.input, io_.input_dims);
        context_->set_tensor_address(io_.input, batch_input.data());
        context_->set_tensor_address(io_.output, batch_output.data());
      }
      void* d_in = mode_ == Serial::kBaseline ? batch_input.data() : d_input_.data();
      void* d_out = mode_ == Serial::kBaseline ? batch_output.data() : d_output_.data();
      const auto t1 = Clock::now();
      const float* output = host_output_.data();
      if (mode_ == Serial::kPinned) {
        ANVIL_GPU_CHECK(cudaMemcpyAsync(d_in, pinned_input_.as<std::byte>() + b * io_.input_bytes,
                                        io_.input_bytes, cudaMemcpyHostToDevice, stream_.get()));
        stream_.synchronize();
      } else {
        cuda::copy_to_device(d_in, data_.nchw[static_cast<std::size_t>(b)].data(), io_.input_bytes);
      }
      const auto t2 = Clock::now();
      context_->enqueue(stream_.get());
      stream_.synchronize();
      const auto t3 = Clock::now();
      if (mode_ == Serial::kPinned) {
        ANVIL_GPU_CHECK(cudaMemcpyAsync(pinned_output_.data(), d_out, io_.output_bytes,
                                        cudaMemcpyDeviceToHost, stream_.get()));
        stream_.synchronize();
        output = pinned_output_.as<float>();
      } else {
        ANVIL_GPU_CHECK(
            cudaMemcpy(host_output_.data(), d_out, io_.output_bytes, cudaMemcpyDeviceToHost));
      }
      const auto t4 = Clock::now();
      std::vector<std::int32_t> top1(static_cast<std::size_t>(data_.batch));
      process_output(output, data_.batch, io_.classes, sink, top1.data());
      keep_top1(b, std::move(top1), false);
      const auto t5 = Clock::now();
      if (recorder) {
        const std::string n = "batch " + std::to_string(b);
        if (mode_ == Serial::kBaseline) recorder->add("host: cudaMalloc + shapes", n, t0, t1);
        recorder->add("host: H2D (waited)", n, t1, t2);
        recorder->add("host: compute (waited)", n, t2, t3);
        recorder->add("host: D2H (waited)", n, t3, t4);
        recorder->add("host: output processing", n, t4, t5);
      }
    }
    return {start, Clock::now()};  // after the baseline's last cudaFree: per-batch work
  }

  std::span<const std::byte> pinned_input() const override {
    if (mode_ != Serial::kPinned) return {};
    return {pinned_input_.as<const std::byte>(), pinned_input_.bytes()};
  }

 private:
  Serial mode_;
  const AblationData& data_;
  Io io_;
  std::unique_ptr<ExecutionContext> context_;
  cuda::Stream stream_;
  cuda::DeviceBuffer d_input_, d_output_;
  cuda::PinnedBuffer pinned_input_, pinned_output_;
  std::vector<float> host_output_;
};

// Config 4: batch i+1's upload (copy stream) overlaps batch i's network
// (compute stream); the main thread still processes each output itself.
class OverlapJob : public Job {
 public:
  OverlapJob(const Engine& engine, const AblationData& data)
      : data_(data), io_(io_of(engine, data.batch)), context_(engine.create_context()) {
    context_->set_optimization_profile(std::max(engine.best_profile(data.batch), 0));
    context_->set_input_shape(io_.input, io_.input_dims);
    d_input_ = cuda::DeviceBuffer(io_.input_bytes);
    d_output_ = cuda::DeviceBuffer(io_.output_bytes);
    context_->set_tensor_address(io_.input, d_input_.data());
    context_->set_tensor_address(io_.output, d_output_.data());
    context_->set_input_consumed_event(consumed_.get());
    pinned_input_ = cuda::PinnedBuffer(io_.input_bytes * data.nchw.size());
    for (std::size_t b = 0; b < data.nchw.size(); ++b)
      std::memcpy(pinned_input_.as<std::byte>() + b * io_.input_bytes, data.nchw[b].data(),
                  io_.input_bytes);
    for (cuda::PinnedBuffer& out : pinned_output_)
      out = cuda::PinnedBuffer(io_.output_bytes);
    device_bytes = engine.weight_bytes() + context_->device_memory_bytes() + io_.input_bytes +
                   io_.output_bytes;
  }

  ~OverlapJob() override {
    // Nothing may still read or write the buffers when they are freed.
    cudaStreamSynchronize(copy_.get());
    cudaStreamSynchronize(compute_.get());
  }

  Interval run(const std::vector<int>& order, Recorder* recorder) override {
    sink.clear();
    const auto start = Clock::now();
    if (order.empty()) return {start, start};
    std::vector<Clock::time_point> issued(order.size());
    auto issue = [&](std::size_t k) {
      issued[k] = Clock::now();
      const std::size_t slot = k % 2;
      // The single input buffer is free once the previous network read it.
      ANVIL_GPU_CHECK(cudaStreamWaitEvent(copy_.get(), consumed_.get(), 0));
      ANVIL_GPU_CHECK(cudaMemcpyAsync(
          d_input_.data(),
          pinned_input_.as<std::byte>() + static_cast<std::size_t>(order[k]) * io_.input_bytes,
          io_.input_bytes, cudaMemcpyHostToDevice, copy_.get()));
      uploaded_[slot].record(copy_.get());
      ANVIL_GPU_CHECK(cudaStreamWaitEvent(compute_.get(), uploaded_[slot].get(), 0));
      context_->enqueue(compute_.get());
      ANVIL_GPU_CHECK(cudaMemcpyAsync(pinned_output_[slot].data(), d_output_.data(),
                                      io_.output_bytes, cudaMemcpyDeviceToHost, compute_.get()));
      done_[slot].record(compute_.get());
    };
    issue(0);
    for (std::size_t k = 0; k < order.size(); ++k) {
      if (k + 1 < order.size()) issue(k + 1);
      done_[k % 2].synchronize();
      const auto t0 = Clock::now();
      std::vector<std::int32_t> top1(static_cast<std::size_t>(data_.batch));
      process_output(pinned_output_[k % 2].as<float>(), data_.batch, io_.classes, sink,
                     top1.data());
      keep_top1(order[k], std::move(top1), false);
      if (recorder) {
        const std::string n = "batch " + std::to_string(order[k]);
        recorder->add("host: issued until output on host", n, issued[k], t0);
        recorder->add("host: output processing", n, t0, Clock::now());
      }
    }
    return {start, Clock::now()};
  }

  std::span<const std::byte> pinned_input() const override {
    return {pinned_input_.as<const std::byte>(), pinned_input_.bytes()};
  }

 private:
  const AblationData& data_;
  Io io_;
  std::unique_ptr<ExecutionContext> context_;
  cuda::Stream copy_, compute_;
  cuda::Event consumed_{false};
  cuda::Event uploaded_[2] = {cuda::Event(false), cuda::Event(false)};
  cuda::Event done_[2] = {cuda::Event(false), cuda::Event(false)};
  cuda::DeviceBuffer d_input_, d_output_;
  cuda::PinnedBuffer pinned_input_;
  cuda::PinnedBuffer pinned_output_[2];
};

// Results handed from the Pipeline's worker threads to the processing thread.
// pop() polls before it sleeps: a condition variable's wake-up took 38 us on
// the H100's host (docs/PERFORMANCE.md, eleventh session), and the last
// batch's wake-up is part of every timed job. A result comes every 0.7-1.5
// ms in configs 5-12, so the processing thread polls through the gaps on a
// core of its own, as a serving thread would; it sleeps after kPoll.
class ResultQueue {
 public:
  struct Item {
    std::exception_ptr error;
    Result result;
    Clock::time_point arrived;
  };
  void push(Item item) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(item));
      waiting_.fetch_add(1, std::memory_order_release);
    }
    ready_.notify_one();
  }
  Item pop() {
    const Clock::time_point give_up = Clock::now() + kPoll;
    while (waiting_.load(std::memory_order_acquire) == 0 && Clock::now() < give_up)
      cpu_pause();
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !items_.empty(); });
    Item item = std::move(items_.front());
    items_.pop_front();
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    return item;
  }

 private:
  static constexpr std::chrono::milliseconds kPoll{20};
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Item> items_;
  std::atomic<std::size_t> waiting_{0};  // items_.size(), read without the lock
};

// Configs 5-12: the public Pipeline, results processed on a thread of their
// own while the main thread submits. Two pipelines of the same options: the
// timed runs go through one without PipelineOptions::gpu_timeline (its
// events between the copies and kernels, its per-request anchor and the
// reading of the spans are instrumentation, as a profiler's would be), the
// traced run (a recorder given) through one with it.
class PipelineJob : public Job {
 public:
  PipelineJob(std::shared_ptr<const Engine> engine, const PipelineOptions& options, bool uint8,
              std::int64_t small_batch, const AblationData& data)
      : data_(data),
        uint8_(uint8),
        gpu_top1_(options.output == OutputMode::kTopK),
        small_batch_(small_batch) {
    const Io io = io_of(*engine, engine->max_batch());
    // As the GPU executor allocates: one activation block per worker (its
    // chunk contexts share it) and a device input and output per slot.
    const std::size_t per_worker =
        engine->context_memory_bytes() +
        static_cast<std::size_t>(options.batches_in_flight_per_worker) *
            (io.input_bytes + io.output_bytes + (uint8 ? io.input_bytes / sizeof(float) : 0));
    device_bytes = engine->weight_bytes() + static_cast<std::size_t>(options.workers) * per_worker;
    classes_ = io.classes;
    // The data set in page-locked memory, as from config 2 on; the batches
    // borrow it, so the pipeline uploads it in place with no staging copy.
    const std::size_t count = uint8 ? data.nhwc.size() : data.nchw.size();
    batch_bytes_ = uint8 ? data.nhwc.at(0).size() : data.nchw.at(0).size() * sizeof(float);
    pinned_ = cuda::PinnedBuffer(batch_bytes_ * count);
    for (std::size_t b = 0; b < count; ++b)
      std::memcpy(pinned_.as<std::byte>() + b * batch_bytes_,
                  uint8 ? static_cast<const void*>(data.nhwc[b].data()) : data.nchw[b].data(),
                  batch_bytes_);
    const ExecutorFactory factory = engine_executor_factory(std::move(engine));
    PipelineOptions timed = options, traced = options;
    timed.gpu_timeline = false;
    traced.gpu_timeline = true;
    timed_ = std::make_unique<Pipeline>(factory, timed);
    traced_ = std::make_unique<Pipeline>(factory, traced);
  }

  void prepare(const std::vector<int>& order) override {
    prepared_.clear();
    const auto image = static_cast<std::size_t>(data_.image_elements());
    for (const int b : order) {
      const auto i = static_cast<std::size_t>(b);
      const std::span<const std::byte> pixels(pinned_.as<const std::byte>() + i * batch_bytes_,
                                              batch_bytes_);
      Batch batch;
      batch.batch_size = data_.batch;
      batch.tag = static_cast<std::uint64_t>(b) * 2;
      batch.format = uint8_ ? InputFormat::kUint8Nhwc : InputFormat::kFloat32Nchw;
      batch.borrowed = pixels;
      prepared_.push_back(std::move(batch));
      if (small_batch_ > 0) {  // FP32 only: its first images
        Batch small;
        small.batch_size = small_batch_;
        small.tag = static_cast<std::uint64_t>(b) * 2 + 1;
        small.borrowed =
            pixels.first(static_cast<std::size_t>(small_batch_) * image * sizeof(float));
        prepared_.push_back(std::move(small));
      }
    }
  }

  Interval run(const std::vector<int>& order, Recorder* recorder) override {
    (void)order;  // prepare() made the batches
    sink.clear();
    ResultQueue queue;
    std::exception_ptr first_error;
    Clock::time_point last_processed = Clock::now();
    const std::size_t expected = prepared_.size();
    std::thread processing([&] {
      for (std::size_t i = 0; i < expected; ++i) {
        ResultQueue::Item item = queue.pop();
        if (item.error) {
          if (!first_error) first_error = item.error;
          last_processed = item.arrived;
          continue;
        }
        const Result& r = item.result;
        const auto t0 = Clock::now();
        std::vector<std::int32_t> top1(static_cast<std::size_t>(r.batch_size));
        if (gpu_top1_)
          process_top1(r.top_k, sink, top1.data());
        else
          process_output(r.output.data(), r.batch_size, classes_, sink, top1.data());
        const int b = static_cast<int>(r.tag / 2);
        keep_top1(b, std::move(top1), r.tag % 2 == 1);
        last_processed = Clock::now();  // the trace's bookkeeping below is not the job's
        if (recorder) {
          const std::string n = "batch " + std::to_string(b) + (r.tag % 2 ? " (small)" : "");
          const auto submitted =
              item.arrived - std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double, std::milli>(r.timing.total_ms));
          const auto taken =
              submitted + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double, std::milli>(r.timing.queued_ms));
          recorder->add("host: queued", n, submitted, taken);
          recorder->add(
              "worker " + std::to_string(r.worker) + ": copies + compute", n, taken,
              taken + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double, std::milli>(r.timing.executed_ms)));
          recorder->add("host: output processing", n, t0, last_processed);
          for (const GpuSpan& g : r.timing.gpu)
            recorder->add("worker " + std::to_string(r.worker) + " GPU: " + g.stream,
                          n + " " + g.what, g.start, g.end);
        }
      }
    });
    // The clock starts with the processing thread running, as in the
    // guide's script: creating it took about 0.1 ms on the H100's host.
    Pipeline& pipeline = recorder ? *traced_ : *timed_;
    const auto start = Clock::now();
    std::size_t submitted = 0;
    try {
      for (Batch& batch : prepared_) {
        pipeline.submit(std::move(batch), [&queue](std::exception_ptr error, Result done) {
          queue.push({error, std::move(done), Clock::now()});
        });
        ++submitted;
      }
    } catch (...) {
      // The processing thread waits for every batch: give it the missing ones.
      const std::exception_ptr error = std::current_exception();
      for (; submitted < expected; ++submitted)
        queue.push({error, {}, Clock::now()});
    }
    processing.join();  // its last_processed is read only after this
    prepared_.clear();
    if (first_error) std::rethrow_exception(first_error);
    return {start, last_processed};
  }

  std::span<const std::byte> pinned_input() const override {
    return {pinned_.as<const std::byte>(), pinned_.bytes()};
  }

 private:
  const AblationData& data_;
  bool uint8_;
  bool gpu_top1_;  // results are each image's top class and probability
  std::int64_t small_batch_;
  std::int64_t classes_ = 0;
  cuda::PinnedBuffer pinned_;  // every batch, one after another
  std::size_t batch_bytes_ = 0;
  // Last, so they go first: their requests borrow pinned_.
  std::unique_ptr<Pipeline> timed_, traced_;
  std::vector<Batch> prepared_;
};

const Engine& need(const std::shared_ptr<const Engine>& engine, int config) {
  if (!engine) fail(ErrorKind::kInvalidArgument, "config ", config, " has no engine built");
  return *engine;
}

std::unique_ptr<Job> make_job(int config, const AblationEngines& e, const AblationData& data,
                              const ConfigSettings& settings) {
  PipelineOptions options;
  options.output = OutputMode::kFullOutput;
  options.batches_in_flight_per_worker = 2;
  options.workers = config >= 7 ? 2 : 1;
  options.cuda_graphs = config >= 6;
  options.idle_poll_us = settings.idle_poll_us;
  if (config >= 9) {
    // Beyond the guide: the softmax and argmax on the GPU after the network
    // (1.5 ms of host time per batch of 128 otherwise), one class and its
    // probability per image back; the host only prints.
    options.output = OutputMode::kTopK;
    options.top_k = 1;
    options.softmax = true;
  }
  switch (config) {
    case 0:
      return std::make_unique<SerialJob>(need(e.fp32, 0), Serial::kBaseline, data);
    case 1:
      return std::make_unique<SerialJob>(need(e.fp32, 1), Serial::kReuseBuffers, data);
    case 2:
      return std::make_unique<SerialJob>(need(e.fp32, 2), Serial::kPinned, data);
    case 3:
      return std::make_unique<SerialJob>(need(e.fp16, 3), Serial::kPinned, data);
    case 4:
      return std::make_unique<OverlapJob>(need(e.fp16, 4), data);
    case 5:
    case 6:
    case 7:
      need(e.fp16, config);
      return std::make_unique<PipelineJob>(e.fp16, options, false, 0, data);
    case 8:
      need(e.two_profiles, 8);
      return std::make_unique<PipelineJob>(e.two_profiles, options, false, e.small_batch, data);
    case 9:
    case 10:
      need(config == 9 ? e.fp16 : e.int8, config);
      if (data.nhwc.empty())
        fail(ErrorKind::kUnsupported, "config ", config,
             " sends uint8 RGB images: the model's input has ", data.channels, " channels, not 3");
      return std::make_unique<PipelineJob>(config == 9 ? e.fp16 : e.int8, options, true, 0, data);
    case 11:
    case 12: {
      // One worker: every upload on one copy stream, back to back, rather
      // than two workers' uploads sharing PCIe and both landing late. Three
      // batches in flight, so the host never holds the next upload back.
      const std::shared_ptr<const Engine>& engine = config == 11 ? e.fp16 : e.int8;
      need(engine, config);
      options.workers = 1;
      options.batches_in_flight_per_worker = 3;
      options.chunk_images = static_cast<int>(std::clamp<std::int64_t>(
          settings.chunk_images, 1, std::min(data.batch, engine->max_batch())));
      return std::make_unique<PipelineJob>(engine, options, false, 0, data);
    }
    default:
      fail(ErrorKind::kInvalidArgument, "there is no runnable config ", config);
  }
}

std::vector<int> range(int first, int end) {
  std::vector<int> v;
  for (int i = first; i < end; ++i)
    v.push_back(i);
  return v;
}

}  // namespace

ConfigResult run_ablation_config(int config, const AblationEngines& engines,
                                 const AblationData& data, const ConfigSettings& settings) {
  ConfigResult result;
  const std::unique_ptr<Job> job = make_job(config, engines, data, settings);
  job->result = &result;
  result.device_bytes = job->device_bytes;
  const int batches = static_cast<int>(data.nchw.size());
  const int timed = std::clamp(settings.timed, 1, batches);

  if (const std::span<const std::byte> pinned = job->pinned_input(); !pinned.empty())
    result.input_h2d_gb_per_s = h2d_gb_per_s_per_part(pinned, static_cast<std::size_t>(batches));
  const std::vector<int> warm = range(0, batches - timed);
  const auto warm_up = [&](Recorder* recorder) {
    if (warm.empty()) return;
    job->prepare(warm);
    job->run(warm, recorder);
  };
  warm_up(nullptr);
  // The timed batches, several times: one run of a few milliseconds moves by
  // a few percent from run to run on these machines (twelfth session).
  const std::vector<int> last = range(batches - timed, batches);
  for (int r = 0; r < std::max(settings.repeats, 1); ++r) {
    job->prepare(last);
    const Interval run = job->run(last, nullptr);
    result.timed_runs_ms.push_back(ms_between(run.start, run.end));
  }
  result.timed_ms = result.timed_runs_ms[median_run(result.timed_runs_ms)];
  // The trace: one more run of the timed batches, recorded (the pipeline
  // configs' GPU lanes come from a pipeline of their own, warmed up first).
  Recorder discarded;
  warm_up(&discarded);
  job->prepare(last);
  Recorder recorder;
  const Interval traced = job->run(last, &recorder);
  result.traced_ms = ms_between(traced.start, traced.end);
  result.spans = recorder.relative_to(traced.start);

  // Throughput: rounds of batches, each prepared untimed (the Pipeline's
  // batches are filled by the caller) and run timed, until the duration.
  const std::int64_t images_per_batch =
      data.batch + (config == 8 ? engines.small_batch : std::int64_t{0});
  double run_ms = 0;
  std::int64_t images = 0;
  int next = 0;
  do {
    std::vector<int> round;
    for (int i = 0; i < std::max(settings.round_batches, 1); ++i, next = (next + 1) % batches)
      round.push_back(next);
    job->prepare(round);
    const Interval run = job->run(round, nullptr);
    run_ms += ms_between(run.start, run.end);
    images += images_per_batch * static_cast<std::int64_t>(round.size());
  } while (run_ms < settings.duration_s * 1e3);
  result.images_per_s = static_cast<double>(images) / (run_ms / 1e3);
  return result;
}

std::vector<std::vector<std::int32_t>> plain_top1(const Engine& engine,
                                                  const std::vector<std::vector<float>>& batches,
                                                  std::int64_t batch, std::int64_t images) {
  const std::int64_t n = images > 0 ? images : batch;
  const Io io = io_of(engine, n);
  auto context = engine.create_context();
  const int profile = engine.best_profile(n);
  if (profile < 0)
    fail(ErrorKind::kInvalidArgument, "batch ", n, " is in no optimization profile of the engine");
  context->set_optimization_profile(profile);
  context->set_input_shape(io.input, io.input_dims);
  cuda::DeviceBuffer d_in(io.input_bytes), d_out(io.output_bytes);
  context->set_tensor_address(io.input, d_in.data());
  context->set_tensor_address(io.output, d_out.data());
  cuda::Stream stream;
  std::vector<float> output(io.output_bytes / sizeof(float));
  std::vector<std::vector<std::int32_t>> top1;
  std::string sink;
  for (const std::vector<float>& values : batches) {
    cuda::copy_to_device(d_in.data(), values.data(), io.input_bytes);
    context->enqueue(stream.get());
    stream.synchronize();
    ANVIL_GPU_CHECK(
        cudaMemcpy(output.data(), d_out.data(), io.output_bytes, cudaMemcpyDeviceToHost));
    process_output(output.data(), n, io.classes, sink,
                   top1.emplace_back(static_cast<std::size_t>(n)).data());
    sink.clear();
  }
  return top1;
}

namespace {

// GB/s of one host-to-device copy of `host` into `device` (at least as large).
double timed_upload_gb_per_s(std::span<const std::byte> host, const cuda::DeviceBuffer& device,
                             const cuda::Stream& stream) {
  cuda::Event start, end;
  start.record(stream.get());
  ANVIL_GPU_CHECK(cudaMemcpyAsync(device.data(), host.data(), host.size(), cudaMemcpyHostToDevice,
                                  stream.get()));
  end.record(stream.get());
  end.synchronize();
  const double ms = cuda::Event::elapsed_ms(start, end);
  return static_cast<double>(host.size()) / (ms * 1e-3) / 1e9;
}

}  // namespace

double measure_h2d_gb_per_s() {
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  constexpr int kCopies = 6;  // the first warms up
  cuda::PinnedBuffer host(kBytes);
  cuda::DeviceBuffer device(kBytes);
  std::memset(host.data(), 1, kBytes);
  const cuda::Stream stream;
  const std::span<const std::byte> all(host.as<const std::byte>(), kBytes);
  double best = 0;
  for (int i = 0; i < kCopies; ++i) {
    const double rate = timed_upload_gb_per_s(all, device, stream);
    if (i > 0) best = std::max(best, rate);
  }
  return best;
}

H2dRange h2d_gb_per_s_per_part(std::span<const std::byte> host, std::size_t parts) {
  H2dRange range;
  if (host.empty() || parts == 0) return range;
  const std::size_t part = host.size() / parts;
  if (part == 0) return range;
  const cuda::DeviceBuffer device(part);
  const cuda::Stream stream;
  timed_upload_gb_per_s(host.first(part), device, stream);  // warms up
  for (std::size_t i = 0; i < parts; ++i) {
    const double rate = timed_upload_gb_per_s(host.subspan(i * part, part), device, stream);
    range.min = i == 0 ? rate : std::min(range.min, rate);
    range.max = std::max(range.max, rate);
  }
  return range;
}

}  // namespace anvil::cli

#endif  // ANVIL_HAVE_CUDA
