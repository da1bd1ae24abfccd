#include "anvil/pipeline.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

#include "core/cpu_pause.h"

namespace anvil {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

std::int64_t product(const std::vector<std::int64_t>& dims) {
  std::int64_t n = 1;
  for (std::int64_t d : dims)
    n *= d;
  return n;
}

bool same_model(const ExecutorModelInfo& a, const ExecutorModelInfo& b) {
  return a.image_dims == b.image_dims && a.output_elements == b.output_elements &&
         a.min_batch == b.min_batch && a.max_batch == b.max_batch;
}

void check_options(const PipelineOptions& o) {
  if (o.workers < 1 || o.workers > 256)
    fail(ErrorKind::kInvalidArgument, "pipeline workers must be 1..256, got ", o.workers);
  if (o.queue_depth < 1)
    fail(ErrorKind::kInvalidArgument, "pipeline queue depth must be at least 1, got ",
         o.queue_depth);
  if (o.batches_in_flight_per_worker < 1)
    fail(ErrorKind::kInvalidArgument, "batches in flight per worker must be at least 1, got ",
         o.batches_in_flight_per_worker);
  if (o.idle_poll_us < 0 || o.idle_poll_us > 1'000'000)
    fail(ErrorKind::kInvalidArgument, "pipeline idle_poll_us must be 0..1000000 (microseconds), ",
         "got ", o.idle_poll_us);
  if (o.chunk_images < 0)
    fail(ErrorKind::kInvalidArgument, "pipeline chunk_images must be 0 (whole requests) or ",
         "a positive number of images per chunk, got ", o.chunk_images);
  for (float s : o.stddev)
    if (!(s > 0.0f))
      fail(ErrorKind::kInvalidArgument, "normalization stddev must be positive, got ", s);
}

void check_model(const PipelineOptions& o, const ExecutorModelInfo& m) {
  if (m.image_dims.empty() || product(m.image_dims) <= 0 || m.output_elements <= 0 ||
      m.min_batch < 1 || m.max_batch < m.min_batch)
    fail(ErrorKind::kInvalidArgument, "the pipeline's executor describes an unusable model (",
         m.image_dims.size(), " input dims, ", m.output_elements, " outputs, batch ", m.min_batch,
         "..", m.max_batch, ")");
  // A chunk outside the model's batch range could never run: a mistake, not
  // a request to leave batches whole.
  if (o.chunk_images > 0 && (o.chunk_images < m.min_batch || o.chunk_images > m.max_batch))
    fail(ErrorKind::kInvalidArgument, "pipeline chunk_images ", o.chunk_images,
         " is outside the model's batch range ", m.min_batch, "..", m.max_batch,
         ": choose a chunk in that range, or 0 to run requests whole");
  if (o.output == OutputMode::kTopK && (o.top_k < 1 || o.top_k > m.output_elements))
    fail(ErrorKind::kInvalidArgument, "top-k must be 1..", m.output_elements,
         " (the model's classes), got ", o.top_k);
}

const char* format_name(InputFormat f) {
  switch (f) {
    case InputFormat::kFloat32Nchw:
      return "kFloat32Nchw";
    case InputFormat::kUint8Nhwc:
      return "kUint8Nhwc";
    case InputFormat::kUint8Nchw:
      return "kUint8Nchw";
  }
  return "an unknown format";
}

// A pixel vector other than `format`'s is a caller's mix-up (say NCHW bytes
// put in nhwc): name it rather than report a batch of 0 bytes.
void check_pixel_field(const Batch& b) {
  struct Field {
    const char* name;
    bool filled;
    InputFormat format;
  };
  const Field fields[] = {{"nchw", !b.nchw.empty(), InputFormat::kFloat32Nchw},
                          {"nhwc", !b.nhwc.empty(), InputFormat::kUint8Nhwc},
                          {"nchw_u8", !b.nchw_u8.empty(), InputFormat::kUint8Nchw}};
  for (const Field& f : fields)
    if (f.filled && f.format != b.format)
      fail(ErrorKind::kInvalidArgument, "Batch::", f.name,
           " holds pixels but the batch's format is ", format_name(b.format), ": set format to ",
           format_name(f.format), " or move the pixels");
}

}  // namespace

std::span<const float> Batch::float_pixels() const {
  if (borrowed.empty()) return nchw;
  return {reinterpret_cast<const float*>(borrowed.data()), borrowed.size() / sizeof(float)};
}

std::span<const std::uint8_t> Batch::byte_pixels() const {
  if (borrowed.empty()) return format == InputFormat::kUint8Nchw ? nchw_u8 : nhwc;
  return {reinterpret_cast<const std::uint8_t*>(borrowed.data()), borrowed.size()};
}

std::span<const Classification> Result::image_top_k(std::int64_t image) const {
  if (image < 0 || image >= batch_size || top_k.size() != static_cast<std::size_t>(batch_size * k))
    fail(ErrorKind::kInvalidArgument, "image ", image, " has no top-k in this result (batch ",
         batch_size, ", ", top_k.size(), " entries)");
  return std::span<const Classification>(top_k).subspan(static_cast<std::size_t>(image * k),
                                                        static_cast<std::size_t>(k));
}

std::span<const float> Result::image_output(std::int64_t image) const {
  const auto n = static_cast<std::size_t>(output_elements);
  if (image < 0 || image >= batch_size || output.size() != n * static_cast<std::size_t>(batch_size))
    fail(ErrorKind::kInvalidArgument, "image ", image, " has no output in this result (batch ",
         batch_size, ", ", output.size(), " values)");
  return std::span<const float>(output).subspan(static_cast<std::size_t>(image) * n, n);
}

struct Pipeline::Impl {
  struct Request {
    std::uint64_t sequence = 0;
    Batch batch;
    std::promise<Result> promise;
    ResultCallback callback;  // used instead of the promise when set
    Clock::time_point submitted;
    Clock::time_point started;
  };
  struct InFlight {
    Request request;
    int slot = 0;
  };
  enum class Outcome { kCompleted, kFailed, kCancelled };

  PipelineOptions options;
  ExecutorModelInfo model;
  std::vector<std::unique_ptr<BatchExecutor>> executors;
  std::vector<std::thread::id> worker_ids;  // fixed once the workers run

  mutable std::mutex mutex;
  std::condition_variable not_empty;  // workers wait for requests
  std::condition_variable not_full;   // submitters wait for room
  std::condition_variable idle;       // drain waits for every request to end
  std::deque<Request> queue;
  std::atomic<std::size_t> queued{0};  // queue.size(), for polling without the lock
  bool stopping = false;
  std::uint64_t next_sequence = 0;
  PipelineStats stats;

  std::mutex join_mutex;  // one shutdown joins at a time
  std::vector<std::thread> threads;

  void check_batch(const Batch& batch) const;
  void check_not_on_worker(const char* call) const;
  bool enqueue(Batch& batch, Request&& request, bool block);
  std::optional<Request> pop(bool block);
  void worker_loop(int worker);
  void start_one(int worker, std::deque<InFlight>& in_flight, Request request, int slot);
  void finish_oldest(int worker, std::deque<InFlight>& in_flight);
  void deliver(int worker, Request& request, Result result, std::exception_ptr error);
  void record(Outcome outcome, bool was_running);
  void stop(bool cancel_pending);
  void join();
};

void Pipeline::Impl::check_batch(const Batch& batch) const {
  if (batch.batch_size < model.min_batch || batch.batch_size > model.max_batch)
    fail(ErrorKind::kInvalidArgument, "batch size ", batch.batch_size, " is outside the model's ",
         model.min_batch, "..", model.max_batch);
  const std::int64_t n = batch.batch_size;
  const std::int64_t chunk = options.chunk_images;
  if (chunk > 0 && n > chunk && n % chunk != 0 && n % chunk < model.min_batch)
    fail(ErrorKind::kInvalidArgument, "a batch of ", n, " in chunks of ", chunk,
         " images ends with a chunk of ", n % chunk, ", below the model's smallest batch ",
         model.min_batch, ": send a multiple of ", chunk, " or change chunk_images");
  if (!batch.borrowed.empty() &&
      (!batch.nchw.empty() || !batch.nhwc.empty() || !batch.nchw_u8.empty()))
    fail(ErrorKind::kInvalidArgument,
         "a batch has both borrowed pixels and its own nchw / nhwc / nchw_u8: give them in one "
         "place");
  check_pixel_field(batch);
  switch (batch.format) {
    case InputFormat::kFloat32Nchw: {
      const std::int64_t expected = n * product(model.image_dims);
      const auto address = reinterpret_cast<std::uintptr_t>(batch.borrowed.data());
      if (batch.borrowed.size() % sizeof(float) != 0 || address % alignof(float) != 0)
        fail(ErrorKind::kInvalidArgument,
             "borrowed FP32 pixels must be whole, aligned floats: ", batch.borrowed.size(),
             " bytes at ", static_cast<const void*>(batch.borrowed.data()));
      if (static_cast<std::int64_t>(batch.float_pixels().size()) != expected)
        fail(ErrorKind::kInvalidArgument, "a batch of ", n, " FP32 images needs ", expected,
             " floats, got ", batch.float_pixels().size());
      return;
    }
    case InputFormat::kUint8Nhwc:
    case InputFormat::kUint8Nchw: {
      if (model.image_dims.size() != 3 || model.image_dims[0] != 3)
        fail(ErrorKind::kUnsupported, "uint8 images need a model input of 3 x H x W; it has ",
             model.image_dims.size(), " dims per image");
      const std::int64_t expected = n * product(model.image_dims);
      if (static_cast<std::int64_t>(batch.byte_pixels().size()) != expected)
        fail(ErrorKind::kInvalidArgument, "a batch of ", n, " ", model.image_dims[1], "x",
             model.image_dims[2], " RGB images (",
             batch.format == InputFormat::kUint8Nchw ? "NCHW" : "NHWC", ") needs ", expected,
             " bytes, got ", batch.byte_pixels().size());
      return;
    }
  }
  fail(ErrorKind::kInvalidArgument, "unknown input format ", static_cast<int>(batch.format));
}

void Pipeline::Impl::check_not_on_worker(const char* call) const {
  if (std::find(worker_ids.begin(), worker_ids.end(), std::this_thread::get_id()) !=
      worker_ids.end())
    fail(ErrorKind::kInvalidArgument, "Pipeline::", call,
         " called from a result callback would wait for its own thread; use try_submit there");
}

// Moves `batch` into `request` only once it is accepted, so that a refused
// try_submit leaves the caller's batch as it was.
bool Pipeline::Impl::enqueue(Batch& batch, Request&& request, bool block) {
  std::unique_lock lock(mutex);
  const auto depth = static_cast<std::size_t>(options.queue_depth);
  if (block) not_full.wait(lock, [&] { return stopping || queue.size() < depth; });
  if (stopping)
    fail(ErrorKind::kInvalidArgument, "the pipeline is shut down; it takes no more requests");
  if (queue.size() >= depth) return false;
  request.sequence = next_sequence++;
  request.batch = std::move(batch);
  request.submitted = Clock::now();
  queue.push_back(std::move(request));
  queued.store(queue.size(), std::memory_order_release);
  ++stats.submitted;
  stats.queued = queue.size();
  stats.queue_high_water = std::max<std::uint64_t>(stats.queue_high_water, queue.size());
  lock.unlock();
  not_empty.notify_one();
  return true;
}

std::optional<Pipeline::Impl::Request> Pipeline::Impl::pop(bool block) {
  if (block && options.idle_poll_us > 0) {
    const Clock::time_point give_up =
        Clock::now() + std::chrono::microseconds(options.idle_poll_us);
    while (queued.load(std::memory_order_acquire) == 0 && Clock::now() < give_up)
      cpu_pause();
  }
  std::unique_lock lock(mutex);
  if (block) not_empty.wait(lock, [&] { return stopping || !queue.empty(); });
  if (queue.empty()) return std::nullopt;
  Request request = std::move(queue.front());
  queue.pop_front();
  queued.store(queue.size(), std::memory_order_relaxed);
  stats.queued = queue.size();
  ++stats.running;
  lock.unlock();
  not_full.notify_one();
  request.started = Clock::now();
  return request;
}

// Keeps up to slots() batches in the executor: starts new ones while there is
// room and work, otherwise finishes the oldest. Slots go round in turns and
// finish first-in first-out, so the slot to start next is always free.
void Pipeline::Impl::worker_loop(int worker) {
  BatchExecutor& executor = *executors[static_cast<std::size_t>(worker)];
  const int slots = std::max(1, executor.slots());
  std::deque<InFlight> in_flight;
  int next_slot = 0;
  for (;;) {
    std::optional<Request> next;
    if (static_cast<int>(in_flight.size()) < slots) next = pop(in_flight.empty());
    if (next) {
      const std::size_t before = in_flight.size();
      start_one(worker, in_flight, std::move(*next), next_slot);
      if (in_flight.size() > before) next_slot = (next_slot + 1) % slots;
      continue;
    }
    if (in_flight.empty()) break;  // stopping, and nothing left to run
    finish_oldest(worker, in_flight);
  }
  executors[static_cast<std::size_t>(worker)].reset();
}

// The request goes into `in_flight` before start(): the executor keeps a
// reference to its batch, and deque elements never move while others are
// pushed or popped at the ends.
void Pipeline::Impl::start_one(int worker, std::deque<InFlight>& in_flight, Request request,
                               int slot) {
  in_flight.push_back(InFlight{std::move(request), slot});
  try {
    executors[static_cast<std::size_t>(worker)]->start(slot, in_flight.back().request.batch);
  } catch (...) {
    Request failed = std::move(in_flight.back().request);
    in_flight.pop_back();
    deliver(worker, failed, Result{}, std::current_exception());
  }
}

void Pipeline::Impl::finish_oldest(int worker, std::deque<InFlight>& in_flight) {
  Result result;
  std::exception_ptr error;
  try {
    // The batch stays in place until finish() returns (see start_one).
    executors[static_cast<std::size_t>(worker)]->finish(in_flight.front().slot, result);
  } catch (...) {
    error = std::current_exception();
  }
  Request done = std::move(in_flight.front().request);
  in_flight.pop_front();
  deliver(worker, done, std::move(result), error);
}

void Pipeline::Impl::deliver(int worker, Request& request, Result result,
                             std::exception_ptr error) {
  const Clock::time_point now = Clock::now();
  result.sequence = request.sequence;
  result.tag = request.batch.tag;
  result.batch_size = request.batch.batch_size;
  result.worker = worker;
  result.timing.queued_ms = ms_between(request.submitted, request.started);
  result.timing.executed_ms = ms_between(request.started, now);
  result.timing.total_ms = ms_between(request.submitted, now);
  bool callback_failed = false;
  if (request.callback) {
    try {
      request.callback(error, std::move(result));
    } catch (...) {
      callback_failed = true;
    }
  } else if (error) {
    request.promise.set_exception(error);
  } else {
    request.promise.set_value(std::move(result));
  }
  if (callback_failed) {
    std::lock_guard lock(mutex);
    ++stats.callback_errors;
  }
  record(error ? Outcome::kFailed : Outcome::kCompleted, /*was_running=*/true);
}

// Counts after delivery, so that drain() returns only once every future is
// ready and every callback has returned.
void Pipeline::Impl::record(Outcome outcome, bool was_running) {
  std::lock_guard lock(mutex);
  if (was_running) --stats.running;
  switch (outcome) {
    case Outcome::kCompleted:
      ++stats.completed;
      break;
    case Outcome::kFailed:
      ++stats.failed;
      break;
    case Outcome::kCancelled:
      ++stats.cancelled;
      break;
  }
  if (stats.completed + stats.failed + stats.cancelled == stats.submitted) idle.notify_all();
}

void Pipeline::Impl::stop(bool cancel_pending) {
  std::deque<Request> dropped;
  {
    std::lock_guard lock(mutex);
    stopping = true;
    if (cancel_pending) {
      dropped.swap(queue);
      queued.store(0, std::memory_order_relaxed);
      stats.queued = 0;
    }
  }
  not_empty.notify_all();
  not_full.notify_all();
  for (Request& request : dropped) {
    const auto error = std::make_exception_ptr(CancelledError(cat(
        "request ", request.sequence, " was cancelled: the pipeline shut down before it started")));
    if (request.callback) {
      Result result;
      result.sequence = request.sequence;
      result.tag = request.batch.tag;
      result.batch_size = request.batch.batch_size;
      try {
        request.callback(error, std::move(result));
      } catch (...) {
        std::lock_guard lock(mutex);
        ++stats.callback_errors;
      }
    } else {
      request.promise.set_exception(error);
    }
    record(Outcome::kCancelled, /*was_running=*/false);
  }
}

void Pipeline::Impl::join() {
  std::lock_guard lock(join_mutex);
  for (std::thread& t : threads)
    if (t.joinable()) t.join();
}

Pipeline::Pipeline(const ExecutorFactory& factory, PipelineOptions options)
    : impl_(std::make_unique<Impl>()) {
  check_options(options);
  impl_->options = options;
  for (int w = 0; w < options.workers; ++w) {
    std::unique_ptr<BatchExecutor> executor = factory(w, impl_->options);
    if (!executor)
      fail(ErrorKind::kInvalidArgument, "the pipeline's executor factory gave no executor");
    ExecutorModelInfo info = executor->model_info();
    if (w == 0) {
      check_model(options, info);
      impl_->model = std::move(info);
    } else if (!same_model(info, impl_->model)) {
      fail(ErrorKind::kInvalidArgument, "the pipeline's executors disagree about the model");
    }
    impl_->executors.push_back(std::move(executor));
  }
  try {
    for (int w = 0; w < options.workers; ++w) {
      impl_->threads.emplace_back([impl = impl_.get(), w] { impl->worker_loop(w); });
      impl_->worker_ids.push_back(impl_->threads.back().get_id());
    }
  } catch (...) {
    impl_->stop(true);
    impl_->join();
    throw;
  }
}

Pipeline::~Pipeline() {
  impl_->stop(true);
  impl_->join();
}

std::future<Result> Pipeline::submit(Batch batch) {
  impl_->check_not_on_worker("submit");
  impl_->check_batch(batch);
  Impl::Request request;
  std::future<Result> result = request.promise.get_future();
  impl_->enqueue(batch, std::move(request), /*block=*/true);
  return result;
}

void Pipeline::submit(Batch batch, ResultCallback callback) {
  impl_->check_not_on_worker("submit");
  impl_->check_batch(batch);
  if (!callback) fail(ErrorKind::kInvalidArgument, "Pipeline::submit: empty callback");
  Impl::Request request;
  request.callback = std::move(callback);
  impl_->enqueue(batch, std::move(request), /*block=*/true);
}

std::optional<std::future<Result>> Pipeline::try_submit(Batch&& batch) {
  impl_->check_batch(batch);
  Impl::Request request;
  std::future<Result> result = request.promise.get_future();
  if (!impl_->enqueue(batch, std::move(request), /*block=*/false)) return std::nullopt;
  return result;
}

bool Pipeline::try_submit(Batch&& batch, ResultCallback callback) {
  impl_->check_batch(batch);
  if (!callback) fail(ErrorKind::kInvalidArgument, "Pipeline::try_submit: empty callback");
  Impl::Request request;
  request.callback = std::move(callback);
  return impl_->enqueue(batch, std::move(request), /*block=*/false);
}

void Pipeline::drain() {
  impl_->check_not_on_worker("drain");
  std::unique_lock lock(impl_->mutex);
  const PipelineStats& s = impl_->stats;
  impl_->idle.wait(lock, [&] { return s.completed + s.failed + s.cancelled == s.submitted; });
}

void Pipeline::shutdown(bool cancel_pending) {
  impl_->check_not_on_worker("shutdown");
  impl_->stop(cancel_pending);
  impl_->join();
}

PipelineStats Pipeline::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

const PipelineOptions& Pipeline::options() const {
  return impl_->options;
}

const ExecutorModelInfo& Pipeline::model_info() const {
  return impl_->model;
}

}  // namespace anvil
