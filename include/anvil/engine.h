// The GPU engine's runtime API: the concepts TensorRT users know.
//
//   auto engine = anvil::Engine::load("model.plan");      // weights on the GPU, immutable
//   auto context = engine->create_context();               // one per thread
//   context->set_input_shape("input", {32, 3, 224, 224});
//   context->set_tensor_address("input", d_input);          // caller's device memory
//   context->set_tensor_address("output", d_output);
//   context->enqueue(stream);                               // asynchronous
//
// Memory: create_context() owns its activation memory; a context from
// create_context_without_memory() borrows a block of context_memory_bytes()
// that the caller gives it with set_device_memory() (e.g. one block shared by
// contexts that never run at the same time).
//
// Thread safety: an Engine may be shared by any number of threads and
// contexts. Its plan and weights are immutable; the one thing it adds to
// after loading is its cache of layer runners per input height and width
// (plans whose profiles let them vary), built under a lock the first time any
// context sets such a shape. An ExecutionContext is used by one thread at a time.
//
// Spatial profiles: a plan built with ranges for an image input's height and
// width (e.g. 1x3x160x160 .. 16x3x288x288) runs any shape inside a profile,
// with tactics tuned at its opt shape; a tactic that does not run at another
// shape falls back to cuDNN's heuristics there (said once on stderr).
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "anvil/types.h"

namespace anvil {

namespace plan {
struct Plan;
}

// A user-facing input or output of an engine: NCHW (or NC) FP32.
struct IoTensorInfo {
  std::string name;
  bool is_input = true;
  DType dtype = DType::kFloat32;
  // -1 for the dynamic batch and for every dim a profile lets vary (an
  // image's height and width, and the output dims that follow them).
  std::vector<std::int64_t> dims;
};

class ExecutionContext;

// How uint8 images become a network's input: (v / 255 - mean[c]) / stddev[c]
// per RGB channel c (ImageNet's by default).
struct ImageNormalization {
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> stddev{0.229f, 0.224f, 0.225f};
};

// Where and how an engine keeps an input inside a context
// (ExecutionContext::input_storage): what its first layer, "reformat_in",
// makes of the user's NCHW FP32 tensor, for callers that write it directly.
struct InputStorage {
  void* address = nullptr;        // in the context's device memory, 256-byte aligned
  DType dtype = DType::kFloat16;  // kFloat16 or kFloat32 (the plan's precision)
  // "NHWC" for an image input, dims [N, H, W, c_pad]; "NC" for a rank-2
  // one, dims [N, c_pad].
  std::string layout;
  std::vector<std::int64_t> dims;
  std::int64_t channels = 0;  // the model's; channels .. c_pad - 1 must hold zeros
  std::int64_t c_pad = 0;     // stored channels: `channels` rounded up (RGB: 4)
  std::size_t bytes = 0;
};

// Receives per-layer GPU times from a profiled enqueue (TensorRT's IProfiler).
class Profiler {
 public:
  virtual ~Profiler() = default;
  // Called once per layer, in execution order, after the enqueue's work has
  // finished: `layer` is the plan layer's name (the fused layer), `kind` its
  // kind ("conv", "pool", ...), `ms` its GPU time.
  virtual void report_layer_time(std::string_view layer, std::string_view kind, float ms) = 0;
};

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  // Loads a plan file: checks that it was built for this GPU and these library
  // versions (kIncompatible otherwise, naming each mismatch), then uploads the
  // weights once. Corrupt or truncated files are kInvalidArgument errors.
  static std::shared_ptr<const Engine> load(const std::filesystem::path& path);
  // The same from a plan held in memory; `label` names it in errors.
  static std::shared_ptr<const Engine> deserialize(std::span<const std::byte> bytes,
                                                   std::string_view label);
  ~Engine();

  const std::vector<IoTensorInfo>& io_tensors() const;
  // Batch sizes the plan's optimization profiles accept, all together.
  std::int64_t min_batch() const;
  std::int64_t max_batch() const;
  // The plan's optimization profiles (at least one): each has its own batch
  // range and tactics tuned at its opt batch. A context runs one at a time.
  int profile_count() const;
  // kInvalidArgument for a profile that does not exist.
  BatchRange profile_batch_range(int profile) const;
  // The profile whose range holds `batch` with the opt batch nearest to it
  // (the lower index on a tie), or -1 when no profile holds it.
  int best_profile(std::int64_t batch) const;
  // The same for a whole input shape: the profile whose ranges hold `dims` for
  // `input` with its opt nearest (the batch first, then the other dims), or -1.
  int best_profile(std::string_view input, std::span<const std::int64_t> dims) const;
  // Device bytes of the weights (shared by every context).
  std::size_t weight_bytes() const;
  // Device bytes one context needs at every profile's max shape: its
  // activations plus the largest workspace any layer needs, once per stream
  // the plan uses (its auxiliary streams too: 256-byte aligned, one block). A
  // context given this much (set_device_memory) runs every batch (and height
  // and width) of every profile, unless a tactic's fallback at a smaller
  // shape needs more workspace (ExecutionContext::device_memory_needed).
  std::size_t context_memory_bytes() const;
  // The plan this engine runs (layers, tactics), for inspection.
  const plan::Plan& plan() const;
  // The workspace each layer's tactic needs at `profile`'s max batch, in
  // plan order. Prepares every layer's library plan (milliseconds): for
  // inspection, not the serving path. kInvalidArgument for a bad profile.
  std::vector<std::size_t> layer_workspace_bytes(int profile) const;

  // A context owning its activation memory (context_memory_bytes()).
  std::unique_ptr<ExecutionContext> create_context() const;
  // A context with no device memory: give it a block of at least
  // context_memory_bytes() with ExecutionContext::set_device_memory() before
  // its first enqueue().
  std::unique_ptr<ExecutionContext> create_context_without_memory() const;

  // Internal: the runtime's own view of the engine (src/runtime/engine_impl.h).
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  static std::shared_ptr<const Engine> from_plan(plan::Plan loaded, std::string_view label);
  std::unique_ptr<Impl> impl_;
};

class ExecutionContext {
 public:
  ~ExecutionContext();

  // Selects the optimization profile whose tactics and batch range the next
  // shapes use (profile 0 until called); input shapes must be set again.
  // kInvalidArgument for a profile the engine does not have.
  void set_optimization_profile(int profile);
  int optimization_profile() const;
  // Sets an input's shape; dims must match the engine's except the batch
  // (and, where the profiles give ranges, the height and width), which must
  // lie in the selected profile's ranges (kInvalidArgument names the input and
  // lists every profile's ranges). Prepares shape-specific library plans here
  // (a new height and width: milliseconds, once per engine and context), so
  // enqueue() stays cheap.
  void set_input_shape(std::string_view name, std::span<const std::int64_t> dims);
  // The current shape of an input or output (after set_input_shape; before
  // it, io_tensors()'s dims with -1 where they vary).
  std::vector<std::int64_t> tensor_shape(std::string_view name) const;
  // Binds a user tensor to the caller's device memory (no copy). Null or
  // misaligned (not 16-byte) pointers are kInvalidArgument.
  void set_tensor_address(std::string_view name, void* device_pointer);
  // Enqueues the whole network on `stream`: no host synchronization and no
  // allocation. Every input shape and IO address must be set, and the context
  // must have device memory. kInvalidArgument names what is missing.
  // Every enqueue is an NVTX range ("anvil", one per call, with one per layer
  // inside, named after the plan's layers) for Nsight Systems. The enqueue is
  // capturable into the caller's own CUDA graph.
  void enqueue(cudaStream_t stream);

  // Lends the context `bytes` of the caller's device memory for activations
  // and workspace, replacing any it had (an owned block is freed). `memory`
  // must be 256-byte aligned and hold Engine::context_memory_bytes() (and
  // device_memory_needed() to run the current shape); it must
  // stay valid, and unused by anything else while this context's work runs,
  // until the context is destroyed or given another block. kInvalidArgument
  // for null, misaligned or too-small memory, naming the size needed.
  void set_device_memory(void* memory, std::size_t bytes);
  // The device memory this context uses for activations and workspace, and
  // whether it owns it (create_context) or borrows it (set_device_memory).
  std::size_t device_memory_bytes() const;
  // What the current shape needs of it: at most context_memory_bytes(),
  // except where a tactic that fails at a shape below the profile's maximum
  // falls back to one with a larger workspace. An owned block grows to it in
  // set_input_shape; a borrowed one smaller than this leaves the context
  // unable to enqueue (kInvalidArgument naming both sizes) until
  // set_device_memory gives it one this large.
  std::size_t device_memory_needed() const;
  bool owns_device_memory() const;

  // Records `event` on the enqueue stream right after the last layer that
  // reads a user input, so the caller may overwrite the inputs once it has
  // completed (cudaStreamWaitEvent / cudaEventSynchronize) while the rest of
  // the network still runs. Null turns it off. The event must outlive its use
  // by this context. kInvalidArgument for an event CUDA does not know.
  void set_input_consumed_event(cudaEvent_t event);

  // Preformatted inputs: the caller writes an input in the engine's own
  // storage (e.g. uint8 images normalized straight to FP16 NHWC by one
  // kernel) instead of binding an NCHW FP32 tensor that the engine's
  // reformat_in layer converts. With set_input_preformatted(name, true),
  // enqueue() skips that layer and reads what the caller left at
  // input_storage(name).address; the input needs no set_tensor_address.
  // Write the storage on the enqueue stream before enqueue() (or finish it
  // before): the context's memory is not the caller's while its work runs.
  // The input-consumed event then follows the last layer that reads the
  // storage. CUDA graphs capture either way, one graph per setting.
  //
  // The storage at the current shape: valid after set_input_shape, until the
  // next set_input_shape, set_optimization_profile or set_device_memory.
  // kInvalidArgument for an unknown input, before set_input_shape or without
  // device memory; kUnsupported where a layer other than one reformat_in
  // reads the input.
  InputStorage input_storage(std::string_view input) const;
  // kInvalidArgument for an unknown input; kUnsupported (naming the input)
  // where input_storage is, or when at the current shape a layer that runs
  // before the reformat layer would share the storage's memory (plans with
  // several inputs; the next set_input_shape checks again).
  void set_input_preformatted(std::string_view input, bool preformatted);
  bool input_preformatted(std::string_view input) const;

  // uint8 images read by the engine itself: where the one layer that reads
  // `input` is a stem that reads the engine's input (a ResNet stem,
  // builder/fuse_conv_max_pool.h) and can read packed uint8 RGB pixels
  // ([N, H, W, 3] at the input's shape) on this device (Hopper, 224-wide
  // images), set_input_images has it normalize them as it loads them: the
  // bits that preformatting the input with images_to_engine_storage gives,
  // with no preprocessing pass and no FP16 copy of the images. The input
  // then needs no set_tensor_address; null pixels turn it off. The pixels
  // must be 16-byte aligned and stay unchanged until the input-consumed
  // event (or the enqueue's work) completes; a CUDA graph bakes the pointer
  // and the normalization in (another pointer or normalization captures
  // again). kInvalidArgument for an unknown input, misaligned pixels, a
  // normalization that is not finite or has a stddev <= 0, or a
  // preformatted input (turn that off first); kUnsupported where
  // input_reads_images is false. A later shape at which the stem cannot
  // read images makes enqueue() fail with kUnsupported, naming the input.
  bool input_reads_images(std::string_view input) const;
  void set_input_images(std::string_view input, const void* device_pixels,
                        const ImageNormalization& norm = {});

  // With CUDA graphs on, enqueue() replays a graph of the whole network per
  // batch size and set of preformatted inputs: the first enqueue of a batch
  // and address set (shapes, IO addresses, device memory, input-consumed
  // event) runs plainly as a warm-up,
  // the next captures and instantiates the graph (host allocation, that once),
  // later ones only launch it. A changed address re-captures. If capture or
  // instantiation fails the context falls back to plain launches for good
  // (until set_cuda_graph(true) again) and keeps the reason (logged once to
  // stderr). A profiler wins: profiled enqueues always launch plainly. An
  // enqueue on a stream the caller is capturing also launches plainly.
  void set_cuda_graph(bool enabled);
  // Whether graphs are on and have not failed.
  bool cuda_graph_active() const;
  // Why graphs are not in use: "" while they are (or are off by choice),
  // else the failed capture's reason.
  const std::string& cuda_graph_failure() const;
  // Whether the last enqueue() launched a graph (false for warm-up, capture
  // fallback, profiled and plain enqueues).
  bool last_enqueue_used_graph() const;

  // With a profiler, enqueue() records a CUDA event around every layer, waits
  // for the stream and reports each layer's time to `profiler`: synchronous
  // and a little slower, for profiling only (never a CUDA graph). Null turns
  // profiling off. The profiler must outlive its use by this context.
  void set_profiler(Profiler* profiler);

  struct Impl;

 private:
  friend class Engine;
  explicit ExecutionContext(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil
