// One fused convolution layer, y = act(conv(x, w) + bias [+ residual]), as a
// cuDNN 9 backend operation graph (convolution forward + pointwise epilogue)
// in NHWC, FP32 or FP16 storage with FP32 compute and FP32 intermediates.
//
// Layouts: x [N,H,W,C], w [K,R,S,C/groups] (KRSC), bias [K], residual and
// y [N,P,Q,K], all dense, in the storage dtype, base pointers 16-byte aligned.
// Grouped and depthwise convolutions are expressed, as the backend API wants,
// through the filter's channel dimension C/groups.
//
// The activation is one cuDNN pointwise op: ReLU, Clip (ReLU with lower and
// upper clip), LeakyRelu (ReLU with a lower-clip slope) and Sigmoid. cuDNN has
// no HardSigmoid or HardSwish pointwise mode: those are kUnsupported here and
// the caller must run the activation separately.
#pragma once

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cuda/cudnn_descriptors.h"
#include "cuda/kernels/activation.h"

namespace anvil::cuda {

// The activation a fused convolution ends with: the engine's own enum.
using ConvActivation = kernels::Activation;

// Whether cuDNN has a pointwise mode for `act` (HardSigmoid and HardSwish
// have none: the caller runs them after the convolution).
bool cudnn_fuses(ConvActivation act);

struct ConvShape {
  std::int64_t n = 1, c = 1, h = 1, w = 1;  // input
  std::int64_t k = 1, r = 1, s = 1;         // output channels, kernel height and width
  std::int64_t pad_h = 0, pad_w = 0;        // padding at the start of each axis
  // Padding at the end; -1 means "as at the start". Asymmetric is kUnsupported.
  std::int64_t pad_h_end = -1, pad_w_end = -1;
  std::int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  std::int64_t groups = 1;
  bool fp16 = false;        // storage dtype of x, w, bias, residual, y
  bool allow_tf32 = false;  // FP32 only: allow engines that round inputs to TF32
  bool has_bias = false, has_residual = false;
  ConvActivation act = ConvActivation::kNone;
  float act_alpha = 0.01f;  // LeakyRelu slope
  float clip_min = 0.0f, clip_max = 6.0f;

  std::int64_t out_h() const;  // P
  std::int64_t out_w() const;  // Q
};

// Throws anvil::Error kUnsupported (or kInvalidArgument for nonsense sizes)
// where this shape cannot become a fused cuDNN graph.
void check_fused_conv_shape(const ConvShape& shape);

class FusedConv {
 public:
  // Executable configurations of the graph, from heuristics modes A and B and
  // the fallback list, de-duplicated by identity, in heuristic order; only
  // those whose plan finalizes (and, for FP32 without allow_tf32, that use no
  // TF32 or down-converted inputs; never reduced-precision accumulation).
  // Empty when no cuDNN engine runs this graph on this GPU: FP32 fused graphs
  // without allow_tf32 often have only TF32 runtime-fusion engines; then the
  // conv alone (no bias, residual or activation) is built instead and the
  // epilogue runs as kernels::conv_epilogue (runtime::unfused_conv).
  static std::vector<FusedConv> candidates(cudnnHandle_t handle, const ConvShape& shape,
                                           int max_candidates = 8);

  // Rebuilds the exact engine config named by identity() (stored in a plan);
  // kIncompatible if this cuDNN/GPU cannot build it, kInvalidArgument if malformed.
  static FusedConv from_identity(cudnnHandle_t handle, const ConvShape& shape,
                                 const std::string& identity);

  // "eng<global index>:<knob type>=<value>,..." (knobs sorted by type), e.g. "eng12:3=1,5=0".
  const std::string& identity() const { return identity_; }
  std::size_t workspace_bytes() const { return workspace_bytes_; }
  const ConvShape& shape() const;

  // The buffers of an execution, bound once: building the binding (a cuDNN
  // variant pack) allocates on the host, executing it does not. residual and
  // bias may be null when the shape has none; workspace must hold
  // workspace_bytes() (null if 0). kInvalidArgument for a missing pointer.
  class Binding {
   public:
    Binding() = default;
    explicit operator bool() const { return pack_.get() != nullptr; }

   private:
    friend class FusedConv;
    BackendDescriptor pack_;
  };
  Binding bind(const void* x, const void* w, const void* bias, const void* residual, void* y,
               void* workspace) const;

  // Enqueues the layer on `stream` (sets the handle's stream): no allocation,
  // no synchronization.
  void execute(cudnnHandle_t handle, cudaStream_t stream, const Binding& binding) const;

  // bind() then execute(): for one-off runs (tests, the autotuner).
  void execute(cudnnHandle_t handle, cudaStream_t stream, const void* x, const void* w,
               const void* bias, const void* residual, void* y, void* workspace) const;

  struct Graph;  // the operation graph and its tensors (shared by candidates)
  struct Plan;   // engine, knob choices, engine config, execution plan

 private:
  FusedConv(std::shared_ptr<const Graph> graph, std::shared_ptr<const Plan> plan);

  std::shared_ptr<const Graph> graph_;
  std::shared_ptr<const Plan> plan_;
  std::string identity_;
  std::size_t workspace_bytes_ = 0;
};

// Average milliseconds of one execute() over `iterations` runs (after one
// warm-up), timed with CUDA events on `stream`; synchronizes the stream.
float time_ms(cudnnHandle_t handle, cudaStream_t stream, const FusedConv& conv, const void* x,
              const void* w, const void* bias, const void* residual, void* y, void* workspace,
              int iterations);

}  // namespace anvil::cuda
