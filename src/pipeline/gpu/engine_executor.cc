// The pipeline's GPU executor: per worker, one ExecutionContext per slot
// and chunk, batches overlapped across slots and, with
// PipelineOptions::chunk_images, copy and compute overlapped within a batch.
//
// Streams (per worker):
//  - copy: host-to-device uploads, a chunk at a time, each chunk's event
//    recorded as it lands;
//  - compute: per chunk, uint8 normalization, the network and top-k (each
//    waiting only for its own chunk's upload);
//  - download: device-to-host copies of each slot's results. Its own stream
//    (not the copy stream reused) so that a download never queues behind the
//    next batch's upload, and so both PCIe directions work at once.
//
// Each slot owns its device input and output (a region per chunk, 256-byte
// aligned), and each chunk of a slot a context bound to its regions once:
// the context keeps one CUDA graph per batch size and address set, so
// binding other buffers in turns would throw the graphs away at every batch.
// The contexts of a worker run one at a time on its compute stream, so they
// share one activation block (create_context_without_memory): a chunk costs
// a context's handles, not another arena.
//
// Why a device input per slot (not one per worker, read by every batch): an
// upload into a shared input must wait until the previous batch's network
// has read it (its input-consumed event), i.e. until that batch's upload
// has ended and its first layer run, so consecutive uploads never ran back
// to back and PCIe idled for a first layer per batch. With an input per
// slot, a slot's next upload needs only its finish(), which the pipeline
// calls before reusing the slot.
//
// Per batch, with slot s (in[s], out[s]: its pinned buffers) and chunks c:
//   copy:     H2D in[s] chunk c -> input[s] chunk c (uint8: -> bytes[s] chunk c);
//             record uploaded[s][c]
//   compute:  per chunk: wait uploaded[s][c]; [uint8: nothing where the
//             engine's stem reads bytes[s] chunk c itself (NHWC images,
//             ExecutionContext::set_input_images), else
//             images_to_engine_storage chunk c -> context[s][c]'s input
//             storage, its reformat_in skipped (images_to_nchw -> input[s]
//             chunk c where the engine's input has no such storage)];
//             enqueue context[s][c];
//             [top-k: top_k_rows chunk c -> result[s]]; then record computed[s]
//   download: wait computed[s]; D2H result[s] (or each chunk's output) -> out[s];
//             record done[s]
// finish(s) waits for done[s], which follows every use of slot s's buffers.
//
// The input storage of a preformatted context lies in the shared activation
// block: safe because the kernel writing it runs on the compute stream right
// before its context's enqueue, like any of that context's layers.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "anvil/engine.h"
#include "anvil/pipeline.h"
#include "builder/preformat_input.h"
#include "cuda/check.h"
#include "cuda/handles.h"
#include "cuda/kernels/preprocess.h"
#include "cuda/kernels/topk.h"
#include "pipeline/gpu/gpu_timeline.h"
#include "pipeline/host_postprocess.h"

namespace anvil {

namespace {

// What the executors need to know of the engine's one input and output.
struct EngineModel {
  ExecutorModelInfo info;
  std::string input, output;
  std::size_t image_elements = 0;  // floats (or bytes, for uint8) per image
  bool takes_rgb = false;          // a 3 x H x W input: uint8 images are accepted
  // uint8 images go straight into the engine's input storage (one kernel,
  // skipping reformat_in): the input is an RGB image read by one reformat_in.
  bool preformat_rgb = false;
};

// Whether `input` of `engine` can be written preformatted: its one reader is
// a reformat_in to an NHWC storage of 4 or 8 channels, the layouts
// images_to_engine_storage writes.
bool can_preformat(const Engine& engine, const std::string& input) {
  const plan::Plan& plan = engine.plan();
  builder::PreformatSite site;
  try {
    site = builder::preformat_site(plan, input);
  } catch (const Error&) {
    return false;  // another layer reads the input: it stays FP32 NCHW
  }
  const plan::TensorDesc& t = plan.tensors.at(static_cast<std::size_t>(site.storage));
  const std::int64_t c_pad = t.channel_padding_to.value_or(0);
  return t.layout == "NHWC" && (c_pad == 4 || c_pad == 8) &&
         (t.dtype == DType::kFloat16 || t.dtype == DType::kFloat32);
}

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
  m.preformat_rgb = m.takes_rgb && can_preformat(engine, m.input);
  return m;
}

// How a worker's results come back.
enum class ResultPath {
  kGpuTopK,     // k (index, score) pairs per image from top_k_rows
  kHostTopK,    // the whole output, top-k on the host: k above kMaxTopK
  kFullOutput,  // the whole output, as the engine gives it
};

std::size_t round_up(std::size_t bytes, std::size_t to) {
  return (bytes + to - 1) / to * to;
}

// How a chunk context gets its input: the FP32 tensor at its input region,
// the storage images_to_engine_storage writes, or the uint8 images its stem
// reads itself.
enum class InputMode { kTensor, kPreformatted, kImages };

// One chunk's context, bound to its slot's regions for good, and the shape
// and input mode it was last given (set_input_shape rebinds every layer:
// skipped when the same).
struct ChunkContext {
  std::unique_ptr<ExecutionContext> context;
  const std::uint8_t* pixels = nullptr;  // its chunk of the slot's uint8 images
  int profile = -1;
  std::int64_t batch = 0;
  InputMode mode = InputMode::kTensor;
};

struct Slot {
  cuda::PinnedBuffer host_input;    // max_batch images: FP32 or their bytes
  cuda::PinnedBuffer host_result;   // max_batch images' pairs or outputs
  cuda::DeviceBuffer device_input;  // a region of chunk images per chunk
  cuda::DeviceBuffer device_output;
  cuda::DeviceBuffer device_bytes;    // max_batch uint8 images (3-channel inputs only)
  cuda::DeviceBuffer device_result;   // top-k pairs (kGpuTopK only)
  std::vector<cuda::Event> uploaded;  // per chunk
  cuda::Event computed{false}, done{false};
  std::vector<ChunkContext> contexts;  // per chunk
  pipeline::GpuTimeline timeline;      // PipelineOptions::gpu_timeline
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
  void select_shape(ChunkContext& c, std::int64_t images, InputMode mode);
  InputMode input_mode(const Batch& batch) const;
  void fit_activations();
  void normalize(const Slot& s, ChunkContext& c, const Batch& batch, std::int64_t chunk,
                 float* input);
  void upload(Slot& s, const Batch& batch);
  void compute(Slot& s, const Batch& batch);
  void download(Slot& s);
  // GPU spans with PipelineOptions::gpu_timeline; no-ops without it.
  std::size_t begin_span(Slot& s, const cuda::Stream& stream, const char* lane, std::string what);
  void end_span(Slot& s, std::size_t span, const cuda::Stream& stream);
  std::string chunk_name(std::int64_t chunk, std::int64_t chunks) const;
  void write_result(const Slot& s, Result& result);
  void quiesce() const noexcept;

  std::size_t result_bytes_per_image() const;
  std::int64_t chunks_of(std::int64_t batch) const { return (batch + chunk_ - 1) / chunk_; }
  std::int64_t chunk_images(std::int64_t batch, std::int64_t c) const {
    return std::min(chunk_, batch - c * chunk_);
  }
  bool rgb(const Batch& batch) const { return batch.format != InputFormat::kFloat32Nchw; }

  std::shared_ptr<const Engine> engine_;
  EngineModel model_;
  PipelineOptions options_;
  ImageNormalization norm_;    // options_.mean and stddev
  bool reads_images_ = false;  // the contexts take uint8 NHWC images as they are
  ResultPath path_ = ResultPath::kFullOutput;
  int device_ = 0;
  std::int64_t chunk_ = 1;  // images per chunk: max_batch unless chunk_images
  std::size_t input_stride_ = 0, output_stride_ = 0;  // bytes per chunk region
  cuda::Stream copy_, compute_, download_;
  // PipelineOptions::gpu_timeline: a stream that runs nothing but the
  // timelines' anchors.
  std::optional<cuda::Stream> anchor_;
  cuda::DeviceBuffer activations_;        // shared by every context of this worker
  std::vector<std::int64_t> input_dims_;  // [batch, image dims...]
  std::vector<float> row_;                // one image's scores, for kHostTopK
  // Last, so they go first: their contexts hold the buffers' addresses.
  std::vector<Slot> slots_;
};

EngineExecutor::EngineExecutor(std::shared_ptr<const Engine> engine, EngineModel model,
                               const PipelineOptions& options)
    : engine_(std::move(engine)), model_(std::move(model)), options_(options) {
  if (options_.batches_in_flight_per_worker < 1)
    fail(ErrorKind::kInvalidArgument, "batches in flight per worker must be at least 1, got ",
         options_.batches_in_flight_per_worker);
  const std::int64_t max_batch = model_.info.max_batch;
  if (options_.chunk_images < 0 || options_.chunk_images > max_batch)
    fail(ErrorKind::kInvalidArgument, "chunk_images must be 0 (whole batches) or 1..", max_batch,
         " (the engine's max batch), got ", options_.chunk_images);
  chunk_ = options_.chunk_images > 0 ? options_.chunk_images : max_batch;
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
  const auto max_images = static_cast<std::size_t>(max_batch);
  const auto chunk = static_cast<std::size_t>(chunk_);
  const auto chunks = static_cast<std::size_t>(chunks_of(max_batch));
  const auto classes = static_cast<std::size_t>(model_.info.output_elements);
  // 256-byte regions: a context wants 16-byte aligned IO, a kernel likes more.
  input_stride_ = round_up(chunk * model_.image_elements * sizeof(float), 256);
  output_stride_ = round_up(chunk * classes * sizeof(float), 256);
  activations_ = cuda::DeviceBuffer(engine_->context_memory_bytes());
  input_dims_.push_back(0);
  input_dims_.insert(input_dims_.end(), model_.info.image_dims.begin(),
                     model_.info.image_dims.end());
  if (path_ == ResultPath::kHostTopK) row_.resize(classes);
  if (options_.gpu_timeline) anchor_.emplace();
  std::copy(std::begin(options_.mean), std::end(options_.mean), norm_.mean.begin());
  std::copy(std::begin(options_.stddev), std::end(options_.stddev), norm_.stddev.begin());

  slots_.resize(static_cast<std::size_t>(options_.batches_in_flight_per_worker));
  for (Slot& s : slots_) {
    s.host_input = cuda::PinnedBuffer(max_images * model_.image_elements * sizeof(float));
    s.host_result = cuda::PinnedBuffer(max_images * result_bytes_per_image());
    s.device_input = cuda::DeviceBuffer(chunks * input_stride_);
    s.device_output = cuda::DeviceBuffer(chunks * output_stride_);
    if (path_ == ResultPath::kGpuTopK)
      s.device_result = cuda::DeviceBuffer(max_images * result_bytes_per_image());
    if (model_.takes_rgb) s.device_bytes = cuda::DeviceBuffer(max_images * model_.image_elements);
    for (std::size_t c = 0; c < chunks; ++c) {
      s.uploaded.emplace_back(false);
      ChunkContext& cc = s.contexts.emplace_back();
      cc.context = engine_->create_context_without_memory();
      if (model_.takes_rgb)
        cc.pixels = s.device_bytes.as<std::uint8_t>() + c * chunk * model_.image_elements;
      cc.context->set_device_memory(activations_.data(), activations_.bytes());
      cc.context->set_tensor_address(model_.input,
                                     s.device_input.as<std::byte>() + c * input_stride_);
      cc.context->set_tensor_address(model_.output,
                                     s.device_output.as<std::byte>() + c * output_stride_);
      cc.context->set_cuda_graph(options_.cuda_graphs);
    }
  }
  // (Every chunk's images start 16-byte aligned, as set_input_images wants.)
  reads_images_ = model_.takes_rgb && chunk * model_.image_elements % 16 == 0 &&
                  slots_.front().contexts.front().context->input_reads_images(model_.input);
  // Chunk contexts run at the chunk size (all but a request's short last
  // chunk): bound here, so that no request pays for a context's first shape
  // (every layer prepared, and an INT8 plan's convs compiled at a batch size
  // the plan does not keep: a request stalled 0.2-3.2 s on an H200,
  // docs/PERFORMANCE.md, fourteenth session), and a chunk size in no
  // profile is refused now rather than at the first request. Whole-request
  // contexts take their first request's size, which is not known here.
  if (options_.chunk_images > 0) {
    for (Slot& s : slots_)
      for (ChunkContext& c : s.contexts)
        select_shape(c, chunk_, c.mode);
    fit_activations();
  }
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
    case InputFormat::kUint8Nchw:
      if (!model_.takes_rgb)
        fail(ErrorKind::kUnsupported, "uint8 images need an engine input of 3 x H x W");
      if (batch.byte_pixels().size() != expected)
        fail(ErrorKind::kInvalidArgument, "a batch of ", n, " RGB images needs ", expected,
             " bytes, got ", batch.byte_pixels().size());
      return;
  }
  fail(ErrorKind::kInvalidArgument, "unknown input format ", static_cast<int>(batch.format));
}

InputMode EngineExecutor::input_mode(const Batch& batch) const {
  if (!rgb(batch)) return InputMode::kTensor;
  if (batch.format == InputFormat::kUint8Nhwc && reads_images_) return InputMode::kImages;
  return model_.preformat_rgb ? InputMode::kPreformatted : InputMode::kTensor;
}

// Host-side only, and skipped for a repeated chunk size: set_input_shape
// rebinds every layer.
void EngineExecutor::select_shape(ChunkContext& c, std::int64_t images, InputMode mode) {
  const int profile = engine_->best_profile(images);
  if (profile < 0)
    fail(ErrorKind::kInvalidArgument, "batch ", images, images == chunk_ ? "" : " (a chunk)",
         " is in no optimization profile of the engine");
  if (profile != c.profile || images != c.batch) {
    c.profile = -1;  // unknown until both calls succeed
    c.batch = 0;
    c.context->set_optimization_profile(profile);
    input_dims_[0] = images;
    c.context->set_input_shape(model_.input, input_dims_);
    c.profile = profile;
    c.batch = images;
  }
  if (mode != c.mode) {
    // Off first: a context refuses images and preformatting at once.
    if (c.mode == InputMode::kPreformatted) c.context->set_input_preformatted(model_.input, false);
    if (c.mode == InputMode::kImages) c.context->set_input_images(model_.input, nullptr);
    c.mode = InputMode::kTensor;
    if (mode == InputMode::kPreformatted) c.context->set_input_preformatted(model_.input, true);
    if (mode == InputMode::kImages) c.context->set_input_images(model_.input, c.pixels, norm_);
    c.mode = mode;
  }
}

// A tactic that fails at a chunk's size falls back to one that may need more
// workspace than context_memory_bytes() counted: the worker's block grows to
// the largest need of its contexts (rare: a handful of times in a
// pipeline's life, each waiting for the work that uses the old block).
void EngineExecutor::fit_activations() {
  std::size_t needed = activations_.bytes();
  for (const Slot& s : slots_)
    for (const ChunkContext& c : s.contexts)
      needed = std::max(needed, c.context->device_memory_needed());
  if (needed == activations_.bytes()) return;
  ANVIL_GPU_CHECK(cudaStreamSynchronize(compute_.get()));
  activations_ = cuda::DeviceBuffer();
  activations_ = cuda::DeviceBuffer(needed);
  for (Slot& s : slots_)
    for (ChunkContext& c : s.contexts)
      c.context->set_device_memory(activations_.data(), activations_.bytes());
}

// uint8 images of chunk `chunk` into the engine's input: nothing where its
// stem reads them itself; straight into the context's input storage where
// the engine allows (one kernel instead of two, and no FP32 tensor), else
// as the FP32 NCHW `input`.
void EngineExecutor::normalize(const Slot& s, ChunkContext& c, const Batch& batch,
                               std::int64_t chunk, float* input) {
  if (c.mode == InputMode::kImages) return;
  cuda::kernels::Normalization norm;
  std::copy(std::begin(options_.mean), std::end(options_.mean), norm.mean);
  std::copy(std::begin(options_.stddev), std::end(options_.stddev), norm.std);
  const cuda::kernels::ImageBatchShape shape{
      chunk_images(batch.batch_size, chunk), model_.info.image_dims[1], model_.info.image_dims[2],
      cuda::kernels::ChannelOrder::kRgb,
      batch.format == InputFormat::kUint8Nchw ? cuda::kernels::PixelLayout::kNchw
                                              : cuda::kernels::PixelLayout::kNhwc};
  const std::uint8_t* bytes = s.device_bytes.as<std::uint8_t>() +
                              static_cast<std::size_t>(chunk * chunk_) * model_.image_elements;
  if (c.mode == InputMode::kTensor) {
    cuda::kernels::images_to_nchw(bytes, input, shape, norm, compute_.get());
    return;
  }
  const InputStorage storage = c.context->input_storage(model_.input);
  cuda::kernels::images_to_engine_storage(bytes, storage.address,
                                          storage.dtype == DType::kFloat16
                                              ? cuda::kernels::StorageType::kFloat16
                                              : cuda::kernels::StorageType::kFloat32,
                                          storage.c_pad, shape, norm, compute_.get());
}

void EngineExecutor::upload(Slot& s, const Batch& batch) {
  const std::span<const std::byte> pixels =
      rgb(batch) ? std::as_bytes(batch.byte_pixels()) : std::as_bytes(batch.float_pixels());
  // Page-locked memory uploads from where it is; the rest through the slot's
  // pinned staging (a DMA from pageable memory would stage it anyway, and
  // synchronously).
  const std::byte* src = pixels.data();
  if (!cuda::is_page_locked(pixels.data(), pixels.size())) {
    std::memcpy(s.host_input.data(), pixels.data(), pixels.size());
    src = s.host_input.as<const std::byte>();
  }
  // The slot's device buffers are free: the pipeline finished the slot's
  // previous batch before starting this one.
  const std::size_t image_bytes =
      model_.image_elements * (rgb(batch) ? sizeof(std::uint8_t) : sizeof(float));
  const std::int64_t chunks = chunks_of(batch.batch_size);
  for (std::int64_t c = 0; c < chunks; ++c) {
    const auto first = static_cast<std::size_t>(c * chunk_);
    const auto images = static_cast<std::size_t>(chunk_images(batch.batch_size, c));
    std::byte* dst =
        rgb(batch) ? s.device_bytes.as<std::byte>() + first * image_bytes
                   : s.device_input.as<std::byte>() + static_cast<std::size_t>(c) * input_stride_;
    const std::size_t span = begin_span(s, copy_, "upload", chunk_name(c, chunks));
    ANVIL_GPU_CHECK(cudaMemcpyAsync(dst, src + first * image_bytes, images * image_bytes,
                                    cudaMemcpyHostToDevice, copy_.get()));
    end_span(s, span, copy_);
    s.uploaded[static_cast<std::size_t>(c)].record(copy_.get());
  }
}

void EngineExecutor::compute(Slot& s, const Batch& batch) {
  const std::int64_t n = batch.batch_size;
  const std::int64_t classes = model_.info.output_elements;
  const auto k = static_cast<std::size_t>(options_.top_k);
  auto* indices = s.device_result.as<std::int32_t>();  // indices then scores, n * k each
  auto* scores = reinterpret_cast<float*>(indices + static_cast<std::size_t>(n) * k);
  const std::int64_t chunks = chunks_of(n);
  for (std::int64_t c = 0; c < chunks; ++c) {
    const auto ci = static_cast<std::size_t>(c);
    const std::int64_t images = chunk_images(n, c);
    ChunkContext& context = s.contexts[ci];
    float* input = reinterpret_cast<float*>(s.device_input.as<std::byte>() + ci * input_stride_);
    const float* output =
        reinterpret_cast<const float*>(s.device_output.as<std::byte>() + ci * output_stride_);
    ANVIL_GPU_CHECK(cudaStreamWaitEvent(compute_.get(), s.uploaded[ci].get(), 0));
    const std::size_t span = begin_span(s, compute_, "compute", chunk_name(c, chunks));
    if (rgb(batch)) normalize(s, context, batch, c, input);
    context.context->enqueue(compute_.get());
    // Rows are independent: a chunk's top-k is its rows' part of the batch's.
    if (path_ == ResultPath::kGpuTopK) {
      const std::size_t first = static_cast<std::size_t>(c * chunk_) * k;
      cuda::kernels::top_k_rows(output, images, classes, options_.top_k, options_.softmax,
                                indices + first, scores + first, compute_.get());
    }
    end_span(s, span, compute_);
  }
  s.computed.record(compute_.get());
}

void EngineExecutor::download(Slot& s) {
  ANVIL_GPU_CHECK(cudaStreamWaitEvent(download_.get(), s.computed.get(), 0));
  const std::size_t span = begin_span(s, download_, "download", "results");
  const std::size_t per_image = result_bytes_per_image();
  if (path_ == ResultPath::kGpuTopK) {
    ANVIL_GPU_CHECK(cudaMemcpyAsync(s.host_result.data(), s.device_result.data(),
                                    static_cast<std::size_t>(s.batch_size) * per_image,
                                    cudaMemcpyDeviceToHost, download_.get()));
  } else {
    for (std::int64_t c = 0; c < chunks_of(s.batch_size); ++c) {
      const auto first = static_cast<std::size_t>(c * chunk_);
      ANVIL_GPU_CHECK(cudaMemcpyAsync(
          s.host_result.as<std::byte>() + first * per_image,
          s.device_output.as<std::byte>() + static_cast<std::size_t>(c) * output_stride_,
          static_cast<std::size_t>(chunk_images(s.batch_size, c)) * per_image,
          cudaMemcpyDeviceToHost, download_.get()));
    }
  }
  end_span(s, span, download_);
  s.done.record(download_.get());
}

std::size_t EngineExecutor::begin_span(Slot& s, const cuda::Stream& stream, const char* lane,
                                       std::string what) {
  return anchor_ ? s.timeline.begin(stream.get(), lane, std::move(what)) : 0;
}

void EngineExecutor::end_span(Slot& s, std::size_t span, const cuda::Stream& stream) {
  if (anchor_) s.timeline.end(span, stream.get());
}

std::string EngineExecutor::chunk_name(std::int64_t chunk, std::int64_t chunks) const {
  if (!anchor_) return {};
  return chunks == 1 ? "batch"
                     : "chunk " + std::to_string(chunk + 1) + "/" + std::to_string(chunks);
}

void EngineExecutor::start(int slot, const Batch& batch) {
  Slot& s = slot_at(slot, "start");
  if (s.busy)
    fail(ErrorKind::kInvalidArgument, "GPU executor start: slot ", slot,
         " is still in flight (finish it first)");
  check_batch(batch);
  ANVIL_GPU_CHECK(cudaSetDevice(device_));
  // Every chunk's shape (and the block it needs) before anything is queued:
  // a chunk in no profile fails the request with nothing to undo.
  const InputMode mode = input_mode(batch);
  for (std::int64_t c = 0; c < chunks_of(batch.batch_size); ++c)
    select_shape(s.contexts[static_cast<std::size_t>(c)], chunk_images(batch.batch_size, c), mode);
  fit_activations();
  s.batch_size = batch.batch_size;
  s.timeline.clear();
  try {
    upload(s, batch);
    compute(s, batch);
    download(s);
    if (anchor_) s.timeline.anchor(anchor_->get());
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
  if (anchor_) result.timing.gpu = s.timeline.read();
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
