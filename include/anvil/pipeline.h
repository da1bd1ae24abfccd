// The serving pipeline: many batches in flight across several executors
// (GPU execution contexts, or the CPU reference runtime), with a bounded queue
// for backpressure and one future (or callback) per request.
//
//   anvil::PipelineOptions options;
//   options.workers = 2;                          // two contexts, two threads
//   anvil::Pipeline pipeline(factory, options);   // an ExecutorFactory: the CPU
//                                                 // executor today, GPU contexts next
//   anvil::Batch batch;
//   batch.batch_size = 32;
//   batch.nchw = std::move(floats);               // 32 x 3 x 224 x 224
//   std::future<anvil::Result> result = pipeline.submit(std::move(batch));
//   for (const anvil::Classification& c : result.get().image_top_k(0)) ...
//
// Requests start in submission order (first in, first out); with more than one
// worker they may finish out of order, and each result carries its request's
// sequence number and tag. A request's failure (bad input found by the
// executor, a GPU error) reaches that request's future only: the pipeline
// keeps serving the others.
//
// Thread safety: every member function of Pipeline may be called from any
// number of threads at once, except from inside a result callback, where only
// try_submit(), stats(), options() and model_info() are allowed (submit,
// drain and shutdown would wait for the very thread that runs the callback:
// they throw kInvalidArgument there instead of deadlocking; destroying the
// Pipeline there is a bug). Callbacks of different workers run concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "anvil/error.h"

namespace anvil {

// What a result holds per image.
enum class OutputMode {
  kTopK,        // the k best classes and their scores
  kFullOutput,  // the model's whole output (e.g. all logits), unprocessed
};

// How a batch's pixels are given.
enum class InputFormat {
  kFloat32Nchw,  // Batch::nchw: preprocessed FP32, N x C x H x W
  // Batch::nhwc: 8-bit RGB images, N x H x W x 3 at the model's H x W (no
  // resizing), normalized by the executor with PipelineOptions::mean/stddev.
  kUint8Nhwc,
  // Batch::nchw_u8: the same 8-bit RGB images as planes, N x 3 x H x W (each
  // image its R, G and B planes in turn), normalized the same way.
  kUint8Nchw,
};

struct PipelineOptions {
  // Executors, each driven by its own thread (on the GPU: one
  // ExecutionContext with its own streams each).
  int workers = 2;
  // Requests accepted but not yet taken by a worker. submit() blocks and
  // try_submit() refuses while this many wait.
  int queue_depth = 8;
  // A worker with nothing in flight polls the queue this many microseconds
  // before it sleeps (0..1000000; 0 sleeps at once). Polling keeps a core
  // busy per idle worker while it lasts; it saves the wake-up of a sleeping
  // thread (tens of microseconds) for a request that comes within the time.
  // A shutdown may wait for a poll to end.
  int idle_poll_us = 0;

  OutputMode output = OutputMode::kTopK;
  int top_k = 5;        // classes per image for kTopK (at most the class count)
  bool softmax = true;  // kTopK scores as probabilities (softmax), else raw logits

  // kUint8Nhwc / kUint8Nchw normalization, per RGB channel: (pixel / 255 - mean) / stddev.
  // The defaults are ImageNet's, as torchvision's transforms use.
  float mean[3] = {0.485f, 0.456f, 0.406f};
  float stddev[3] = {0.229f, 0.224f, 0.225f};

  // GPU executor only (the CPU executor ignores them).
  bool cuda_graphs = true;  // replay a CUDA graph per batch size
  // Batches one worker may have in flight at once, each with its own pinned
  // staging and device IO buffers: 2 lets the next batch's copy overlap the
  // current one's compute.
  int batches_in_flight_per_worker = 2;
  // Sub-batch pipelining: 0 runs each request whole; N > 0 splits a request
  // into chunks of N images (the last one smaller when N does not divide the
  // batch), each uploaded with an event of its own and computed as soon as it
  // has landed, so copy and compute overlap within a request and only the
  // last chunk's compute trails the last byte's arrival (the whole batch's,
  // unchunked). The results are the chunks' in order, as one request's. The
  // price: the network runs at batch N, less efficiently than at the full
  // batch, so it pays only where the upload is the bottleneck (FP32 input).
  // The GPU executor keeps a context per chunk per slot, bound once, each
  // with its own CUDA graph, all sharing one activation block (they run one
  // at a time on the worker's compute stream); the CPU executor runs the
  // chunks in turn. kInvalidArgument for N < 0, N above the model's
  // max_batch or below its min_batch, and (at submit) a batch whose last
  // chunk would be below min_batch.
  int chunk_images = 0;
  // Records each request's GPU spans (uploads, compute, downloads) in
  // Result::timing.gpu: the Chrome trace of `anvil bench --ablation` shows
  // them. Costs two timing events per span and, per request, one wait for an
  // event on an idle stream (microseconds of the worker's time).
  bool gpu_timeline = false;
};

// One request: a batch of images for the model's single input.
struct Batch {
  std::int64_t batch_size = 0;
  InputFormat format = InputFormat::kFloat32Nchw;
  // batch_size x (the model's per-image input elements) floats, for kFloat32Nchw.
  std::vector<float> nchw;
  // batch_size x H x W x 3 bytes, for kUint8Nhwc.
  std::vector<std::uint8_t> nhwc;
  // batch_size x 3 x H x W bytes, for kUint8Nchw.
  std::vector<std::uint8_t> nchw_u8;
  // Only the vector of `format` may hold pixels (kInvalidArgument otherwise).
  // Instead of nchw / nhwc / nchw_u8 (leave them empty): the same pixels in
  // the caller's memory (floats for kFloat32Nchw, 4-byte aligned; bytes in
  // `format`'s layout for the uint8 formats). The pipeline
  // reads them where they are, never copying the batch, so the memory must
  // stay valid and unchanged until the request has ended (its future is ready
  // or its callback has run). Page-locked memory (cudaHostAlloc,
  // cudaHostRegister) goes to the GPU straight from there: the fastest input.
  std::span<const std::byte> borrowed;
  // Any value of the caller's, returned in Result::tag.
  std::uint64_t tag = 0;

  // The pixels wherever they are: `borrowed` if set, else nchw, or nhwc /
  // nchw_u8 per `format`.
  std::span<const float> float_pixels() const;
  std::span<const std::uint8_t> byte_pixels() const;
};

struct Classification {
  std::int64_t class_index = 0;
  float score = 0.0f;  // a probability with PipelineOptions::softmax, else the logit
};

// A stretch of one request's work on a GPU stream (PipelineOptions::
// gpu_timeline), on the host's steady clock: CUDA events, placed on that
// clock by an event the worker waited for as the request started (so within
// microseconds of the host's own spans).
struct GpuSpan {
  std::string stream;  // "upload", "compute" or "download"
  std::string what;    // "batch", "chunk 2/4" or "results"
  std::chrono::steady_clock::time_point start, end;
};

// Wall-clock times of one request, in milliseconds.
struct ResultTiming {
  double queued_ms = 0;      // submit() until a worker took it
  double executed_ms = 0;    // the executor's work: copies, compute and post-processing
  double total_ms = 0;       // submit() until the result was ready
  std::vector<GpuSpan> gpu;  // with PipelineOptions::gpu_timeline, in the order recorded
};

struct Result {
  std::uint64_t sequence = 0;  // the request's number, in submission order from 0
  std::uint64_t tag = 0;       // Batch::tag
  std::int64_t batch_size = 0;
  int worker = 0;  // the worker that ran it

  // kTopK: batch_size x k entries, each image's best first (ties: lower class first).
  int k = 0;
  std::vector<Classification> top_k;
  // kFullOutput: batch_size x output_elements floats, row-major.
  std::int64_t output_elements = 0;
  std::vector<float> output;

  ResultTiming timing;

  // Image `image`'s top-k classes.
  std::span<const Classification> image_top_k(std::int64_t image) const;
  // Image `image`'s full output.
  std::span<const float> image_output(std::int64_t image) const;
};

// Counts since the pipeline started. Every submitted request ends exactly once
// as completed, failed or cancelled; the rest are queued or running. A request
// counts as ended just after its future became ready (its callback returned),
// so read the counts after drain() or shutdown() for exact totals.
struct PipelineStats {
  std::uint64_t submitted = 0;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;            // the executor threw: the future holds its error
  std::uint64_t cancelled = 0;         // dropped by shutdown(true) before starting
  std::uint64_t queued = 0;            // waiting now
  std::uint64_t running = 0;           // taken by a worker now
  std::uint64_t queue_high_water = 0;  // most requests ever waiting at once
  std::uint64_t callback_errors = 0;   // exceptions thrown by result callbacks (swallowed)
};

// The error a request ends with when shutdown(true) (or the destructor) drops
// it before it started: kind kCancelled.
class CancelledError : public Error {
 public:
  explicit CancelledError(const std::string& message) : Error(ErrorKind::kCancelled, message) {}
};

// What the pipeline needs to know of the model an executor runs.
struct ExecutorModelInfo {
  std::vector<std::int64_t> image_dims;  // one image's input dims, e.g. {3, 224, 224}
  std::int64_t output_elements = 0;      // one image's output elements (classes)
  std::int64_t min_batch = 1;            // batch sizes accepted
  std::int64_t max_batch = 1;
};

// The engine behind one worker. The pipeline calls it from that worker's
// thread only (so it needs no locking of its own) and destroys it there when
// the worker ends (on the constructing thread if the Pipeline's constructor
// fails).
//
// A worker keeps up to slots() batches in flight: it calls start() for a new
// request while earlier ones run, and finish() for the oldest started one
// when all slots are busy or no request waits. Slots are used in turns; a
// slot is never started again before its finish() returned.
//
// The CPU executor (src/pipeline/cpu_executor.h) has one slot and does all
// its work in finish(). The GPU executor (engine_executor_factory below,
// src/pipeline/gpu/engine_executor.cc) does this, per worker:
//  - own a context per slot and chunk (one per slot without chunk_images),
//    bound once to the slot's own device input and output, all sharing one
//    activation block (create_context_without_memory + set_device_memory:
//    they run in turn on the worker's compute stream); a copy stream, a
//    compute stream and a download stream; CUDA graphs on per
//    PipelineOptions::cuda_graphs. With chunk_images, the chunk contexts
//    take the chunk size where the pipeline is made (a chunk size in no
//    profile is refused there); a whole-batch context takes its shape at
//    the first request that reaches it at that size: every layer is
//    prepared then (and an INT8 plan compiles its cuDNN kernels for a batch
//    size the plan file does not keep, once per engine), so warm every slot
//    up (workers x batches_in_flight_per_worker requests) before timing or
//    serving;
//  - per slot: a pinned host input and output buffer for max_batch, allocated
//    once (never per request), device IO buffers, and events;
//  - start(): memcpy the batch into the slot's pinned buffer (unless it is
//    page-locked already), cudaMemcpyAsync it, a chunk at a time, into the
//    slot's device input on the copy stream, recording an event per chunk,
//    then enqueue each chunk's context on the compute stream after its
//    chunk's event. An input per slot lets an upload start as soon as the
//    previous one ends (one shared input would wait for the previous
//    network to read it); uint8 input (either layout) is copied as bytes
//    and normalized and laid out as the engine's input by one kernel on the
//    GPU, or, for NHWC images where the engine's stem reads them itself
//    (ExecutionContext::set_input_images), by no kernel of its own; softmax
//    and top-k run on the GPU after the network, and only
//    their results (or the full output) are copied back;
//  - finish(): wait for the slot's done event, copy the pinned output into the
//    Result. Never leave the device busy with a slot's buffers after finish()
//    or the destructor returns;
//  - a CUDA error throws Error(kGpu) from the call that saw it; the pipeline
//    fails that request and keeps calling the executor for later ones.
class BatchExecutor {
 public:
  virtual ~BatchExecutor() = default;

  // The model's input and output facts, fixed for the executor's life.
  virtual ExecutorModelInfo model_info() const = 0;
  // Batches this executor may have in flight at once (at least 1).
  virtual int slots() const = 0;
  // Begins `batch` in `slot`; it may return before the work is done. `batch`
  // stays alive and unchanged until finish(slot) returns. A throw fails this
  // request (finish is then not called for it).
  virtual void start(int slot, const Batch& batch) = 0;
  // Completes the work started in `slot` and fills `result`'s outputs
  // (k and top_k, or output_elements and output, per PipelineOptions::output);
  // the pipeline fills the rest. A throw fails this request.
  virtual void finish(int slot, Result& result) = 0;
};

// Makes worker `worker`'s executor (0 <= worker < options.workers). Called on
// the thread constructing the Pipeline, once per worker.
using ExecutorFactory =
    std::function<std::unique_ptr<BatchExecutor>(int worker, const PipelineOptions& options)>;

class Engine;  // anvil/engine.h

// Executors running `engine` (shared by all of them) on the GPU, one
// ExecutionContext and options.batches_in_flight_per_worker slots each, as
// described above BatchExecutor. The engine must have one FP32 input
// [N, ...] and one FP32 output [N, ...] (kUnsupported otherwise); batches of
// engine->min_batch()..max_batch() are accepted, each run with the
// optimization profile best_profile() picks. kFullOutput results hold the
// output as the engine gives it (no softmax, as the CPU executor). Errors:
// kInvalidArgument for a null engine; kUnsupported, "this Anvil was built
// without CUDA", from a build without CUDA.
ExecutorFactory engine_executor_factory(std::shared_ptr<const Engine> engine);

using ResultCallback = std::function<void(std::exception_ptr error, Result result)>;

class Pipeline {
 public:
  // Makes options.workers executors with `factory` (an executor's error
  // propagates from here) and starts their threads. kInvalidArgument for
  // options out of range or executors that disagree about the model.
  Pipeline(const ExecutorFactory& factory, PipelineOptions options);
  // shutdown(true): requests still queued are cancelled, running ones finish.
  ~Pipeline();

  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Queues `batch` and returns the future of its result; blocks while the
  // queue is full. A batch that does not fit the model (size, batch size,
  // format) is kInvalidArgument here; so is any call after shutdown() began.
  std::future<Result> submit(Batch batch);
  // The same, delivering the result (or the error, with a Result holding only
  // sequence, tag and batch_size) to `callback` on a worker thread. A
  // cancelled request's callback runs on the thread calling shutdown.
  void submit(Batch batch, ResultCallback callback);
  // As submit, but never blocks: returns nullopt / false, leaving `batch`
  // untouched, when the queue is full.
  std::optional<std::future<Result>> try_submit(Batch&& batch);
  bool try_submit(Batch&& batch, ResultCallback callback);

  // Blocks until every request submitted so far (and any submitted meanwhile)
  // has ended. The pipeline stays open.
  void drain();
  // Stops taking requests and joins the workers. With `cancel_pending`,
  // requests still queued end with CancelledError; without, they all run
  // first. Running requests always finish. Idempotent; later submits throw.
  void shutdown(bool cancel_pending = false);

  PipelineStats stats() const;
  const PipelineOptions& options() const;
  // The model facts of the executors (all agree).
  const ExecutorModelInfo& model_info() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil
