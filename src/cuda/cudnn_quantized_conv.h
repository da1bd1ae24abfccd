// One quantized convolution layer as a cuDNN 9 backend operation graph, NHWC.
// The element type (QuantizedConvShape::element) is INT8 or, on Hopper, FP8 E4M3
// (--fp8): the graph, padding rules and epilogue are shared, and what differs
// is said where it does. The plan's layer kind stays "conv_int8" for both
// (params "element" says which), so that older plans load. For INT8:
//
//   y = cvt( act( conv_int32(x, w) * scale[k] + bias[k] [+ residual_scale * residual] ) )
//
// x and w are INT8, the convolution accumulates in INT32 (compute type
// CUDNN_DATA_INT32), the epilogue runs in FP32 and cvt converts to the output
// type: INT8 (cuDNN rounds and saturates; the GPU test measures how) or
// FP16/FP32. act is ReLU or none. Requantization is folded into the two
// per-output-channel FP32 device vectors the caller passes (see
// quant::fold_requantization): for an INT8 output, scale[k] = x_scale * w_scale[k] /
// y_scale and bias[k] = b[k] / y_scale (ReLU commutes with a positive scale);
// for a float output y_scale is 1.
//
// Layouts: x [N,H,W,C], w [K,R,S,C] (KRSC), scale and bias [K] FP32,
// residual and y [N,P,Q,K] in the output type, all dense, base pointers
// 16-byte aligned. Plain INT8 (vector count 1): the INT8x4/INT8x32 data types
// are deprecated in cuDNN 9 and INT8x32 engines need reordered filters.
//
// Channel padding: C and K must be multiples of 4 (kInt8ChannelMultiple), the
// INT8 requirement PyTorch's cuDNN backend pads for. Pad real channels with
// round_up_channels: padded x channels, w rows and columns, scale, bias and
// residual entries hold zeros, so padded y channels come out as zeros.
// docs/INT8.md has the sources and what is still unknown.
//
// FP8 E4M3: x, w (and an FP8 residual and y) are CUDNN_DATA_FP8_E4M3, the
// compute type and the convolution's virtual output FP32 (there is no INT32
// variant), the epilogue the same; cuDNN converts y to E4M3 rounding to
// nearest and saturating (tests/gpu/cudnn_fp8_conv_test.cc checks every
// candidate against such a reference). C and K must be multiples of 16
// (kFp8ChannelMultiple): 16 bytes, the alignment tensor-core engines want;
// the probe measured 64 only.
#pragma once

#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "anvil/types.h"
#include "cuda/cudnn_descriptors.h"

namespace anvil::cuda {

class CudnnKernelCache;

// The channel multiple cuDNN's INT8 convolutions need for C and K.
inline constexpr std::int64_t kInt8ChannelMultiple = 4;
// The channel multiple used for FP8 E4M3 convolutions (16 bytes).
inline constexpr std::int64_t kFp8ChannelMultiple = 16;

// kInt8ChannelMultiple or kFp8ChannelMultiple for `element` (kInt8 or
// kFloat8E4M3); kInvalidArgument for another dtype.
std::int64_t channel_multiple(DType element);

// `real` rounded up to a multiple of `multiple` (>= 1).
std::int64_t round_up_channels(std::int64_t real, std::int64_t multiple = kInt8ChannelMultiple);

// kQuantized: the shape's element type (INT8, or E4M3 for an FP8 shape).
enum class QuantizedConvOutput { kQuantized, kHalf, kFloat };

const char* to_string(QuantizedConvOutput output);

struct QuantizedConvShape {
  std::int64_t n = 1, h = 1, w = 1;
  std::int64_t c = 4, k = 4;  // padded channel counts, multiples of channel_multiple(element)
  std::int64_t r = 1, s = 1;
  std::int64_t pad_h = 0, pad_w = 0;  // symmetric
  std::int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  std::int64_t groups = 1;  // only 1 is supported
  bool has_bias = false, has_residual = false, relu = false;
  QuantizedConvOutput output = QuantizedConvOutput::kQuantized;
  // Multiplies the residual before the add (cuDNN pointwise alpha2): for an
  // INT8 residual, residual_scale / y_scale. 1 leaves alpha2 unset.
  float residual_scale = 1.0f;
  // x's and w's element type: kInt8 or kFloat8E4M3.
  DType element = DType::kInt8;

  std::int64_t out_h() const;  // P
  std::int64_t out_w() const;  // Q
  std::string describe() const;
};

// kInvalidArgument for nonsense sizes or an element type other than kInt8
// and kFloat8E4M3, kUnsupported for groups != 1 or channel counts that are
// not multiples of channel_multiple(element).
void check_quantized_conv_shape(const QuantizedConvShape& shape);

class QuantizedConv {
 public:
  // Everything the candidate search saw, for diagnosis: per graph variant the
  // operation graph's cuDNN status, per heuristics mode how many configs it
  // proposed, and why each rejected engine config was rejected.
  struct Search {
    std::vector<QuantizedConv> candidates;
    std::vector<std::string> log;
  };

  // Executable engine configs of the graph (heuristics modes A and B, then
  // the fallback list, de-duplicated, in that order), over two graph
  // variants: the convolution's virtual output INT32 (NVIDIA's sample) or
  // FP32 (PyTorch's); FP8 shapes only the FP32 one. Engines that need INT8x32-reordered filters are
  // skipped. Empty when cuDNN has no engine for this layer on this GPU.
  //
  // With a `cache` (opt-in; see cuda/cudnn_kernel_cache.h) the operation
  // graphs are built dynamic-shape enabled and every execution plan is
  // finalized through the cache, so a kernel compiled for one batch size is
  // reused for the next. Identities are the same with or without a cache.
  // cuDNN binds a cache to the topology of the first graph it serves, and
  // search() builds two (i32 and f32 accumulators): plans of the other one
  // may miss the cache or be refused (the log says which).
  static Search search(cudnnHandle_t handle, const QuantizedConvShape& shape,
                       int max_candidates = 16, const CudnnKernelCache* cache = nullptr);
  static std::vector<QuantizedConv> candidates(cudnnHandle_t handle,
                                               const QuantizedConvShape& shape,
                                               int max_candidates = 16,
                                               const CudnnKernelCache* cache = nullptr);

  // Rebuilds the config named by identity(); kIncompatible if this cuDNN/GPU
  // cannot build it, kInvalidArgument if the identity is malformed. `cache`
  // as for search().
  static QuantizedConv from_identity(cudnnHandle_t handle, const QuantizedConvShape& shape,
                                     const std::string& identity,
                                     const CudnnKernelCache* cache = nullptr);

  // The plan as compiled, for a later process (runtime/layers/conv_int8.cc
  // keeps it in the plan file): cuDNN's serialization of the execution plan,
  // valid for this shape, GPU and cuDNN version only; "" where cuDNN does
  // not serialize it. cuDNN's runtime-fusion INT8 engines compile each plan
  // (0.4-0.9 s on an H100) and refuse the dynamic-shape graphs a kernel
  // cache needs, so this is what spares a loaded plan those compiles.
  std::string serialize() const;

  // The config `identity` for `shape` from serialize()'s text: no
  // compilation (about 1 ms). kIncompatible when cuDNN refuses the text.
  // The text must come from the same shape: cuDNN's serialization holds the
  // shape it was compiled for, so the caller keys it by describe().
  static QuantizedConv from_serialized(cudnnHandle_t handle, const QuantizedConvShape& shape,
                                       const std::string& identity, const std::string& text);

  // "<i32|f32>:eng<global index>:<knob type>=<value>,..." (knobs sorted).
  const std::string& identity() const { return identity_; }
  // cuDNN's numerical and behaviour notes of the engine, e.g. "tensor_core,runtime_compiled".
  const std::string& notes() const;
  std::size_t workspace_bytes() const { return workspace_bytes_; }
  const QuantizedConvShape& shape() const;
  // What the kernel cache said when this plan was built ("hit ...",
  // "stored ...", "not stored ..."; CudnnKernelCache::finalize_plan),
  // "restored" for from_serialized(), "" when built without a cache.
  const std::string& kernel_cache_report() const;

  // A variant pack built once (allocates on the host); execute() does not.
  class Binding {
   public:
    Binding() = default;
    explicit operator bool() const { return pack_.get() != nullptr; }

   private:
    friend class QuantizedConv;
    BackendDescriptor pack_;
  };
  // scale is required; bias and residual only when the shape has them;
  // workspace must hold workspace_bytes() (null if 0). kInvalidArgument for a
  // missing pointer.
  Binding bind(const void* x, const void* w, const float* scale, const float* bias,
               const void* residual, void* y, void* workspace) const;

  // Enqueues the layer on `stream` (sets the handle's stream).
  void execute(cudnnHandle_t handle, cudaStream_t stream, const Binding& binding) const;

  struct Graph;
  struct Plan;

 private:
  QuantizedConv(std::shared_ptr<const Graph> graph, std::shared_ptr<const Plan> plan);

  std::shared_ptr<const Graph> graph_;
  std::shared_ptr<const Plan> plan_;
  std::string identity_;
  std::size_t workspace_bytes_ = 0;
};

}  // namespace anvil::cuda
