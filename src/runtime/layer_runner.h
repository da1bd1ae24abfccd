// How the runtime executes one plan layer. Each layer kind ("conv", "pool",
// ...) has a runner in src/runtime/layers/, registered by one line:
//
//   ANVIL_REGISTER_LAYER("pool", make_pool_runner);
//
// A LayerRunner belongs to an Engine: it is built once per optimization
// profile and input geometry (height and width, for plans whose profiles let
// them vary: the engine builds one geometry's runners on first use) from the
// layer's description at that geometry, that profile's tactic and the device
// weights, and is immutable. prepare() makes, per context and batch size, a
// PreparedLayer holding what depends on the batch (cuDNN execution plans,
// cuBLASLt algorithms); enqueue() only launches.
#pragma once

#include <cublasLt.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "cuda/kernels/preprocess.h"
#include "plan/plan.h"

namespace anvil::runtime {

// Library handles of the context that runs the layer.
struct Handles {
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
};

// uint8 RGB NHWC images that a layer reading an engine input itself takes
// instead of that input (ExecutionContext::set_input_images, LayerRunner::
// reads_images), and their normalization.
struct ImagesInput {
  const void* pixels = nullptr;  // null: the layer reads its inputs as usual
  cuda::kernels::ImageAffine affine{};
};

struct LaunchArgs {
  std::vector<const void*> inputs;  // device pointers, as LayerDesc::inputs
  std::vector<void*> outputs;       // as LayerDesc::outputs
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  Handles handles;
  cudaStream_t stream = nullptr;
  ImagesInput images;
};

class PreparedLayer {
 public:
  virtual ~PreparedLayer() = default;
  virtual std::size_t workspace_bytes() const { return 0; }
  // Called whenever the buffers of `args` change (never from enqueue): layers
  // whose library wants its pointers bound ahead (cuDNN variant packs) do it here.
  virtual void bind(const LaunchArgs& /*args*/) {}
  // Enqueues the layer with the buffers last bound: no allocation, no
  // synchronization.
  virtual void enqueue(const LaunchArgs& args) const = 0;
};

// What a runner is built from.
struct LayerSetup {
  // The plan at the runner's input geometry: for another height and width
  // than the stored plan's, a builder::respecialize() copy without weights.
  const plan::Plan& plan;
  const plan::LayerDesc& layer;
  nlohmann::json params;
  std::vector<const void*> weights;  // device copies of layer.weights, in order
  bool fp16 = false;                 // the plan's storage type
  int profile = 0;                   // the optimization profile whose tactics to run
  // The weights blob on the host (WeightRef offsets index it); null: plan.weights.
  const std::byte* host_weights = nullptr;

  const std::byte* host_weights_blob() const {
    return host_weights ? host_weights : plan.weights.data();
  }
};

class LayerRunner {
 public:
  virtual ~LayerRunner() = default;
  // Must be callable from several threads at once, each with its own
  // handles (runtime/prepare_layers.h).
  virtual std::unique_ptr<PreparedLayer> prepare(std::int64_t batch,
                                                 const Handles& handles) const = 0;
  // Whether prepare(batch) compiles kernels (seconds, not milliseconds):
  // such layers are prepared on worker threads, in parallel.
  virtual bool compiles(std::int64_t /*batch*/) const { return false; }
  // Whether the layer can read uint8 images in place of the engine input
  // it reads (LaunchArgs::images) on the current device.
  virtual bool reads_images() const { return false; }
};

using RunnerFactory = std::unique_ptr<LayerRunner> (*)(const LayerSetup& setup);

// The factory for a layer kind, or null.
RunnerFactory find_runner(std::string_view kind);

namespace detail {
struct RunnerRegistrar {
  RunnerRegistrar(std::string_view kind, RunnerFactory factory);
};
}  // namespace detail

}  // namespace anvil::runtime

#define ANVIL_REGISTER_LAYER(kind, factory) \
  static const ::anvil::runtime::detail::RunnerRegistrar kRunnerRegistrar_##factory(kind, factory)
