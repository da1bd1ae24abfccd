// The pipeline's GPU executor: one ExecutionContext per worker, batches
// overlapped across slots.
//
// Streams (per worker):
//  - copy: host-to-device uploads from each slot's pinned input;
//  - compute: uint8 normalization, the network, then top-k (or a device copy
//    of the output into the slot's result buffer);
//  - download: device-to-host copies of each slot's results. Its own stream
//    (not the copy stream reused) so that a download never queues behind the
//    next batch's upload, which itself waits for that batch's turn to
//    overwrite the input, and so both PCIe directions work at once.
//
// The context's input and output are one device buffer each per worker,
// bound once: the context keeps one CUDA graph per batch size and address
// set, so binding a slot's own buffers in turns would throw every graph away
// at each batch. A single input is enough: an upload waits only for the
// previous enqueue's input-consumed event, i.e. the network's first layers,
// and compute is serialized on one stream anyway. The output is read on the
// compute stream (top-k, or a device-to-device copy into the slot), so the
// next network never waits for a download. Slot-owned: pinned host input and
// output, device uint8 images, device results, and three events.
//
// Per batch, with slot s (in[s], out[s]: its pinned buffers):
//   copy:     [FP32: wait input_consumed] H2D in[s] -> input (uint8: -> bytes[s]);
//             record uploaded[s]
//   compute:  wait uploaded[s]; [uint8: images_to_nchw bytes[s] -> input];
//             enqueue (records input_consumed); top_k_rows output -> result[s]
//             (or a D2D copy of the output); record computed[s]
//   download: wait computed[s]; D2H result[s] -> out[s]; record done[s]
// finish(s) waits for done[s], which follows every use of slot s's buffers.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "anvil/engine.h"
#include "anvil/pipeline.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/preprocess.h"
#include "cuda/kernels/topk.h"
#include "pipeline/host_postprocess.h"

namespace anvil {

namespace {

// What the executors need to know of the engine's one input and output.
struct EngineModel {
  ExecutorModelInfo info;
  std::string input, output;
  std::size_t image_elements = 0;  // floats (or bytes, for uint8) per image
  bool takes_rgb = false;          // a 3 x H x W input: uint8 images are accepted
};

std::vector<std::int64_t> per_image_dims(const IoTensorInfo& io, const char* role) {
  if (io.dtype != DType::kFloat32 || io.dims.size() < 2)
    fail(ErrorKind::kUnsupported, "the pipeline needs an FP32 ", role,
         " of shape [N, ...]; the engine's '", io.name, "' is ", to_string(io.dtype), " with ",
         io.dims.size(), " dims");
  std::vector<std::int64_t> dims(io.dims.begin() + 1, io.dims.end());
  for (std::int64_t d : dims)
    if (d < 1)
      fail(ErrorKind::kUnsupported, "the pipeline needs every dim of the engine's ", role, " '",
           io.name, "' but the batch known; dim ", d, " is not");
  return dims;
}

EngineModel describe(const Engine& engine) {
  const IoTensorInfo* input = nullptr;
  const IoTensorInfo* output = nullptr;
  int inputs = 0, outputs = 0;
  for (const IoTensorInfo& io : engine.io_tensors()) {
    (io.is_input ? input : output) = &io;
    ++(io.is_input ? inputs : outputs);
  }
  if (inputs != 1 || outputs != 1)
    fail(ErrorKind::kUnsupported,
         "the pipeline serves engines with one input and one output; this one has ", inputs,
         " and ", outputs);
  EngineModel m;
  m.input = input->name;
  m.output = output->name;
  m.info.image_dims = per_image_dims(*input, "input");
  m.info.output_elements = 1;
  for (std::int64_t d : per_image_dims(*output, "output"))
    m.info.output_elements *= d;
  m.info.min_batch = engine.min_batch();
  m.info.max_batch = engine.max_batch();
  m.image_elements = 1;
  for (std::int64_t d : m.info.image_dims)
    m.image_elements *= static_cast<std::size_t>(d);
  m.takes_rgb = m.info.image_dims.size() == 3 && m.info.image_dims[0] == 3;
  return m;
}

// How a worker's results come back.
enum class ResultPath {
  kGpuTopK,     // k (index, score) pairs per image from top_k_rows
  kHostTopK,    // the whole output, top-k on the host: k above kMaxTopK
  kFullOutput,  // the whole output, as the engine gives it
};

struct Slot {
  cuda::PinnedBuffer host_input;    // max_batch images: FP32 or their bytes
  cuda::PinnedBuffer host_result;   // max_batch images' pairs or outputs
  cuda::DeviceBuffer device_bytes;  // max_batch uint8 images (3-channel inputs only)
  cuda::DeviceBuffer device_result;
  cuda::Event uploaded{false}, computed{false}, done{false};
  std::int64_t batch_size = 0;
  bool busy = false;  // started, not yet finished
};

class EngineExecutor final : public BatchExecutor {
 public:
  EngineExecutor(std::shared_ptr<const Engine> engine, EngineModel model,
                 const PipelineOptions& options);
  ~EngineExecutor() override;
  EngineExecutor(const EngineExecutor&) = delete;
  EngineExecutor& operator=(const EngineExecutor&) = delete;

  ExecutorModelInfo model_info() const override { return model_.info; }
  int slots() const override { return static_cast<int>(slots_.size()); }
  void start(int slot, const Batch& batch) override;
  void finish(int slot, Result& result) override;

 private:
  Slot& slot_at(int slot, const char* call);
  void check_batch(const Batch& batch) const;
  void select_shape(std::int64_t batch_size);
  void upload(Slot& s, const Batch& batch);
  void compute(Slot& s, const Batch& batch);
  void download(Slot& s);
  void write_result(const Slot& s, Result& result);
  void quiesce() const noexcept;

  std::size_t result_bytes_per_image() const;

  std::shared_ptr<const Engine> engine_;
  EngineModel model_;
  PipelineOptions options_;
  ResultPath path_ = ResultPath::kFullOutput;
  int device_ = 0;
  cuda::Stream copy_, compute_, download_;
  cuda::Event input_consumed_{false};
  cuda::DeviceBuffer input_, output_;  // bound to the context once (see the top)
  std::vector<Slot> slots_;
  std::vector<std::int64_t> input_dims_;  // [batch, image dims...]
  std::vector<float> row_;                // one image's scores, for kHostTopK
  int profile_ = -1;                      // the context's profile and batch, -1 / 0 when unset
  std::int64_t batch_ = 0;
  // Last, so it goes first: it holds the buffers' and the event's addresses.
  std::unique_ptr<ExecutionContext> context_;
};

EngineExecutor::EngineExecutor(std::shared_ptr<const Engine> engine, EngineModel model,
                               const PipelineOptions& options)
    : engine_(std::move(engine)), model_(std::move(model)), options_(options) {
  if (options_.batches_in_flight_per_worker < 1)
    fail(ErrorKind::kInvalidArgument, "batches in flight per worker must be at least 1, got ",
         options_.batches_in_flight_per_worker);
  switch (options_.output) {
    case OutputMode::kTopK:
      if (options_.top_k < 1 || options_.top_k > model_.info.output_elements)
        fail(ErrorKind::kInvalidArgument, "top-k must be 1..", model_.info.output_elements,
             " (the model's classes), got ", options_.top_k);
      path_ =
          options_.top_k <= cuda::kernels::kMaxTopK ? ResultPath::kGpuTopK : ResultPath::kHostTopK;
      break;
    case OutputMode::kFullOutput:
      path_ = ResultPath::kFullOutput;
      break;
  }
  ANVIL_GPU_CHECK(cudaGetDevice(&device_));
  const auto max_batch = static_cast<std::size_t>(model_.info.max_batch);
  const std::size_t input_bytes = max_batch * model_.image_elements * sizeof(float);
  const std::size_t output_floats =
      max_batch * static_cast<std::size_t>(model_.info.output_elements);
  input_ = cuda::DeviceBuffer(input_bytes);
  output_ = cuda::DeviceBuffer(output_floats * sizeof(float));
  slots_.resize(static_cast<std::size_t>(options_.batches_in_flight_per_worker));
  for (Slot& s : slots_) {
    s.host_input = cuda::PinnedBuffer(input_bytes);
    s.host_result = cuda::PinnedBuffer(max_batch * result_bytes_per_image());
    s.device_result = cuda::DeviceBuffer(max_batch * result_bytes_per_image());
    if (model_.takes_rgb) s.device_bytes = cuda::DeviceBuffer(max_batch * model_.image_elements);
  }
  input_dims_.push_back(0);
  input_dims_.insert(input_dims_.end(), model_.info.image_dims.begin(),
                     model_.info.image_dims.end());
  if (path_ == ResultPath::kHostTopK)
    row_.resize(static_cast<std::size_t>(model_.info.output_elements));

  context_ = engine_->create_context();
  context_->set_tensor_address(model_.input, input_.data());
  context_->set_tensor_address(model_.output, output_.data());
  context_->set_input_consumed_event(input_consumed_.get());
  context_->set_cuda_graph(options_.cuda_graphs);
}

EngineExecutor::~EngineExecutor() {
  quiesce();
}

// Waits for every stream, swallowing errors: a destructor, or an error path
// that is already throwing the error that matters.
void EngineExecutor::quiesce() const noexcept {
  cudaSetDevice(device_);
  cudaStreamSynchronize(copy_.get());
  cudaStreamSynchronize(compute_.get());
  cudaStreamSynchronize(download_.get());
  cudaGetLastError();  // a non-sticky error must not fail the next launch's check
}

std::size_t EngineExecutor::result_bytes_per_image() const {
  switch (path_) {
    case ResultPath::kGpuTopK:
      return static_cast<std::size_t>(options_.top_k) * (sizeof(std::int32_t) + sizeof(float));
    case ResultPath::kHostTopK:
    case ResultPath::kFullOutput:
      return static_cast<std::size_t>(model_.info.output_elements) * sizeof(float);
  }
  return 0;
}

Slot& EngineExecutor::slot_at(int slot, const char* call) {
  if (slot < 0 || slot >= slots())
    fail(ErrorKind::kInvalidArgument, "GPU executor ", call, ": slot ", slot,
         " does not exist (it has ", slots(), ")");
  return slots_[static_cast<std::size_t>(slot)];
}

void EngineExecutor::check_batch(const Batch& batch) const {
  const std::int64_t n = batch.batch_size;
  if (n < model_.info.min_batch || n > model_.info.max_batch)
    fail(ErrorKind::kInvalidArgument, "batch size ", n, " is outside the engine's ",
         model_.info.min_batch, "..", model_.info.max_batch);
  const std::size_t expected = static_cast<std::size_t>(n) * model_.image_elements;
  switch (batch.format) {
    case InputFormat::kFloat32Nchw:
      if (batch.float_pixels().size() != expected)
        fail(ErrorKind::kInvalidArgument, "a batch of ", n, " FP32 images needs ", expected,
             " floats, got ", batch.float_pixels().size());
      return;
    case InputFormat::kUint8Nhwc:
      if (!model_.takes_rgb)
        fail(ErrorKind::kUnsupported, "uint8 images need an engine input of 3 x H x W");
      if (batch.byte_pixels().size() != expected)
        fail(ErrorKind::kInvalidArgument, "a batch of ", n, " RGB images needs ", expected,
             " bytes, got ", batch.byte_pixels().size());
      return;
  }
  fail(ErrorKind::kInvalidArgument, "unknown input format ", static_cast<int>(batch.format));
}

// Host-side only, and skipped for a repeated batch size: set_input_shape
// rebinds every layer.
void EngineExecutor::select_shape(std::int64_t batch_size) {
  const int profile = engine_->best_profile(batch_size);
  if (profile < 0)
    fail(ErrorKind::kInvalidArgument, "batch ", batch_size,
         " is in no optimization profile of the engine");
  if (profile == profile_ && batch_size == batch_) return;
  profile_ = -1;  // unknown until both calls succeed
  batch_ = 0;
  context_->set_optimization_profile(profile);
  input_dims_[0] = batch_size;
  context_->set_input_shape(model_.input, input_dims_);
  profile_ = profile;
  batch_ = batch_size;
}

void EngineExecutor::upload(Slot& s, const Batch& batch) {
  const bool rgb = batch.format == InputFormat::kUint8Nhwc;
  const std::span<const std::byte> pixels =
      rgb ? std::as_bytes(batch.byte_pixels()) : std::as_bytes(batch.float_pixels());
  // Page-locked memory uploads from where it is; the rest through the slot's
  // pinned staging (a DMA from pageable memory would stage it anyway, and
  // synchronously).
  const void* src = pixels.data();
  if (!cuda::is_page_locked(pixels.data(), pixels.size())) {
    std::memcpy(s.host_input.data(), pixels.data(), pixels.size());
    src = s.host_input.data();
  }
  const std::size_t bytes = pixels.size();
  // FP32 goes straight into the context's input: only once the previous
  // network has read it. Bytes go to the slot's own buffer, free since its
  // last finish(); the normalization on the compute stream writes the input.
  if (!rgb) ANVIL_GPU_CHECK(cudaStreamWaitEvent(copy_.get(), input_consumed_.get(), 0));
  void* dst = rgb ? s.device_bytes.data() : input_.data();
  ANVIL_GPU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, copy_.get()));
  s.uploaded.record(copy_.get());
}

void EngineExecutor::compute(Slot& s, const Batch& batch) {
  const std::int64_t n = batch.batch_size;
  ANVIL_GPU_CHECK(cudaStreamWaitEvent(compute_.get(), s.uploaded.get(), 0));
  if (batch.format == InputFormat::kUint8Nhwc) {
    cuda::kernels::Normalization norm;
    std::copy(std::begin(options_.mean), std::end(options_.mean), norm.mean);
    std::copy(std::begin(options_.stddev), std::end(options_.stddev), norm.std);
    const cuda::kernels::ImageBatchShape shape{n, model_.info.image_dims[1],
                                               model_.info.image_dims[2]};
    cuda::kernels::images_to_nchw(s.device_bytes.as<std::uint8_t>(), input_.as<float>(), shape,
                                  norm, compute_.get());
  }
  context_->enqueue(compute_.get());
  const std::int64_t classes = model_.info.output_elements;
  if (path_ == ResultPath::kGpuTopK) {
    // Indices then scores, each n * k long: one contiguous download.
    auto* indices = s.device_result.as<std::int32_t>();
    auto* scores = reinterpret_cast<float*>(indices + n * options_.top_k);
    cuda::kernels::top_k_rows(output_.as<float>(), n, classes, options_.top_k, options_.softmax,
                              indices, scores, compute_.get());
  } else {
    ANVIL_GPU_CHECK(cudaMemcpyAsync(s.device_result.data(), output_.data(),
                                    static_cast<std::size_t>(n * classes) * sizeof(float),
                                    cudaMemcpyDeviceToDevice, compute_.get()));
  }
  s.computed.record(compute_.get());
}

void EngineExecutor::download(Slot& s) {
  ANVIL_GPU_CHECK(cudaStreamWaitEvent(download_.get(), s.computed.get(), 0));
  const std::size_t bytes = static_cast<std::size_t>(s.batch_size) * result_bytes_per_image();
  ANVIL_GPU_CHECK(cudaMemcpyAsync(s.host_result.data(), s.device_result.data(), bytes,
                                  cudaMemcpyDeviceToHost, download_.get()));
  s.done.record(download_.get());
}

void EngineExecutor::start(int slot, const Batch& batch) {
  Slot& s = slot_at(slot, "start");
  if (s.busy)
    fail(ErrorKind::kInvalidArgument, "GPU executor start: slot ", slot,
         " is still in flight (finish it first)");
  check_batch(batch);
  ANVIL_GPU_CHECK(cudaSetDevice(device_));
  select_shape(batch.batch_size);
  s.batch_size = batch.batch_size;
  try {
    upload(s, batch);
    compute(s, batch);
    download(s);
  } catch (...) {
    // Nothing of this batch may still use the slot's buffers when the next
    // batch takes the slot.
    quiesce();
    throw;
  }
  s.busy = true;
}

void EngineExecutor::finish(int slot, Result& result) {
  Slot& s = slot_at(slot, "finish");
  if (!s.busy)
    fail(ErrorKind::kInvalidArgument, "GPU executor finish: slot ", slot, " was not started");
  s.busy = false;
  ANVIL_GPU_CHECK(cudaSetDevice(device_));
  s.done.synchronize();
  write_result(s, result);
}

// The same fields and layout as the CPU executor's results.
void EngineExecutor::write_result(const Slot& s, Result& result) {
  const auto images = static_cast<std::size_t>(s.batch_size);
  const auto classes = static_cast<std::size_t>(model_.info.output_elements);
  const auto k = static_cast<std::size_t>(options_.top_k);
  switch (path_) {
    case ResultPath::kFullOutput: {
      const float* out = s.host_result.as<float>();
      result.output_elements = model_.info.output_elements;
      result.output.assign(out, out + images * classes);
      return;
    }
    case ResultPath::kGpuTopK: {
      const std::int32_t* indices = s.host_result.as<std::int32_t>();
      const auto* scores = reinterpret_cast<const float*>(indices + images * k);
      result.k = options_.top_k;
      result.top_k.resize(images * k);
      for (std::size_t i = 0; i < images * k; ++i)
        result.top_k[i] = Classification{indices[i], scores[i]};
      return;
    }
    case ResultPath::kHostTopK: {
      const float* out = s.host_result.as<float>();
      result.k = options_.top_k;
      result.top_k.resize(images * k);
      for (std::size_t i = 0; i < images; ++i) {
        std::copy(out + i * classes, out + (i + 1) * classes, row_.begin());
        if (options_.softmax) pipeline::softmax_in_place(row_);
        pipeline::top_k(row_, std::span(result.top_k).subspan(i * k, k));
      }
      return;
    }
  }
}

}  // namespace

ExecutorFactory engine_executor_factory(std::shared_ptr<const Engine> engine) {
  if (!engine) fail(ErrorKind::kInvalidArgument, "engine_executor_factory: no engine");
  auto model = std::make_shared<const EngineModel>(describe(*engine));
  return [engine = std::move(engine), model = std::move(model)](int /*worker*/,
                                                                const PipelineOptions& options) {
    return std::make_unique<EngineExecutor>(engine, *model, options);
  };
}

}  // namespace anvil
