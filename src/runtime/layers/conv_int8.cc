// "conv_int8": y = sat(rint(act(acc * scale[k] + bias[k] [+ residual]))) on
// INT8 NHWC tensors, one fused cuDNN graph (cuda::QuantizedConv); with params
// element "float8e4m3fn" the same on FP8 E4M3 tensors (y = e4m3(...)). The plan's
// weights are used as they lie on the device: the INT8 KRSC filter and the
// FP32 scale and bias vectors are already what cuDNN reads, and what our own
// kernels for 64-channel 3x3 convs read (tactics kConv3x3Int8Identities,
// cuda/kernels/conv3x3_int8.h).
//
// cuDNN compiles INT8 kernels at run time (engines noted runtime_compiled), in
// every execution plan it builds: 0.4-0.9 s per layer for the runtime-fusion
// engine (eng4) that wins most ResNet convs on an H100 (cuDNN 9.14), and
// 0.03-0.05 s again for the same plan in the same process. Two ways around:
//  - the plan file keeps each layer's plan as compiled at the profile's opt
//    batch (plan::CompiledTactic); at that shape the runner restores it
//    (about 1 ms, cuda::QuantizedConv::from_serialized) instead of compiling;
//  - a cuDNN kernel cache (cuda/cudnn_kernel_cache.h) lets plans of later
//    batch sizes and contexts bind a compiled kernel (0.001 s a plan,
//    CudnnKernelCache test, 2026-11-26), but only for engines that accept
//    dynamic-shape graphs: eng4 refuses them (NOT_SUPPORTED_GRAPH_PATTERN),
//    so another batch size compiles (docs/INT8.md, start-up);
//  - so a plan compiled at another batch size is compiled once per engine,
//    not once per context: the runner keeps what it compiled, serialized,
//    and the next context preparing the layer at that shape restores it.
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "cuda/cudnn_kernel_cache.h"
#include "cuda/cudnn_quantized_conv.h"
#include "cuda/kernels/conv3x3_int8.h"
#include "plan/profiles.h"
#include "runtime/layer_runner.h"
#include "runtime/layers/layer_shapes.h"
#include "runtime/layers/layer_util.h"
#include "runtime/layers/tactic.h"

namespace anvil::runtime {

namespace {

struct Int8ConvWeights {
  const void* filter = nullptr;
  const float* scale = nullptr;
  const float* bias = nullptr;  // null when the layer has no bias
};

class PreparedInt8Conv final : public PreparedLayer {
 public:
  PreparedInt8Conv(cuda::QuantizedConv conv, Int8ConvWeights weights)
      : conv_(std::move(conv)), weights_(weights) {}

  std::size_t workspace_bytes() const override { return conv_.workspace_bytes(); }

  void bind(const LaunchArgs& a) override {
    const void* residual = conv_.shape().has_residual ? a.inputs.at(1) : nullptr;
    binding_ = conv_.bind(a.inputs[0], weights_.filter, weights_.scale, weights_.bias, residual,
                          a.outputs[0], a.workspace);
  }

  void enqueue(const LaunchArgs& a) const override {
    conv_.execute(a.handles.cudnn, a.stream, binding_);
  }

 private:
  cuda::QuantizedConv conv_;
  cuda::QuantizedConv::Binding binding_;
  Int8ConvWeights weights_;
};

// One of our kernels (kConv3x3Int8Identities): nothing to compile or bind.
class PreparedConv3x3Int8 final : public PreparedLayer {
 public:
  PreparedConv3x3Int8(const cuda::kernels::Conv3x3Int8Shape& shape, Int8ConvWeights weights)
      : conv_(shape), weights_(weights) {}

  void enqueue(const LaunchArgs& a) const override {
    const void* residual = conv_.shape().has_residual ? a.inputs.at(1) : nullptr;
    conv_.run(a.inputs[0], weights_.filter, weights_.scale, weights_.bias, residual, a.outputs[0],
              a.stream);
  }

 private:
  cuda::kernels::Conv3x3Int8 conv_;
  Int8ConvWeights weights_;
};

class Int8ConvRunner final : public LayerRunner {
 public:
  explicit Int8ConvRunner(const LayerSetup& s)
      : name_(s.layer.name),
        identity_(runtime::tactic_identity(s.layer, s.profile)),
        compiled_(plan::tactic_compiled(s.layer, s.profile)) {
    if (!s.fp16)
      fail(ErrorKind::kInvalidArgument, "plan layer '", name_,
           "': kind 'conv_int8' needs an FP16 plan (INT8 and FP8 layers are built only with "
           "FP16 storage)");
    shape_ = int8_conv_layer_shape(s.params, name_);
    check_layer(s);
    weights_.filter = s.weights[0];
    weights_.scale = static_cast<const float*>(s.weights[1]);
    if (shape_.has_bias) weights_.bias = static_cast<const float*>(s.weights[2]);
    try {
      cache_ = std::make_unique<cuda::CudnnKernelCache>();
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kGpu) throw;  // a cuDNN without kernel caches: compile each time
    }
  }

  // Restoring the plan's compiled tactic takes about a millisecond; any
  // other plan, cuDNN's runtime-fusion engines compile (0.5-0.9 s).
  bool compiles(std::int64_t batch) const override {
    if (identity_ && is_conv3x3_int8_identity(*identity_)) return false;
    cuda::QuantizedConvShape shape = shape_;
    shape.n = batch;
    if (compiled_ && compiled_->shape == shape.describe()) return false;
    return !identity_ || !compiled_here(shape, *identity_);
  }

  std::unique_ptr<PreparedLayer> prepare(std::int64_t batch, const Handles& h) const override {
    cuda::QuantizedConvShape shape = shape_;
    shape.n = batch;
    return choose_tactic<std::unique_ptr<PreparedLayer>>(
        identity_,
        [&](const std::string& id) -> std::unique_ptr<PreparedLayer> {
          try {
            if (is_conv3x3_int8_identity(id)) return prepare_own(shape, id);
            return std::make_unique<PreparedInt8Conv>(from_identity(shape, id, h), weights_);
          } catch (const Error& e) {
            note_fallback(batch, e);
            throw;
          }
        },
        [&]() -> std::unique_ptr<PreparedLayer> {
          std::vector<cuda::QuantizedConv> found =
              cuda::QuantizedConv::candidates(h.cudnn, shape, 1);
          if (found.empty())
            fail(ErrorKind::kUnsupported, "no cuDNN ", to_string(shape.element),
                 " engine runs layer '", name_, "' at batch ", batch, " on this GPU (",
                 shape.describe(), "); rebuild it in FP16 with --layer-precision ", name_, ":fp16");
          return std::make_unique<PreparedInt8Conv>(std::move(found.front()), weights_);
        });
  }

 private:
  // The tactic as the plan keeps it compiled, at the shape it was compiled
  // for; else as another context of this engine compiled it; else through
  // the kernel cache; where cuDNN cannot build it as a dynamic-shape graph,
  // as it was tuned (compiled for this batch, and kept for the next context).
  cuda::QuantizedConv from_identity(const cuda::QuantizedConvShape& shape, const std::string& id,
                                    const Handles& h) const {
    if (compiled_ && identity_ == id && compiled_->shape == shape.describe()) {
      if (std::optional<cuda::QuantizedConv> conv = restore(h, shape, id, compiled_->cudnn))
        return std::move(*conv);
    }
    if (const std::shared_ptr<const std::string> text = compiled_here(shape, id)) {
      if (std::optional<cuda::QuantizedConv> conv = restore(h, shape, id, *text))
        return std::move(*conv);
    }
    if (cache_) {
      try {
        return cuda::QuantizedConv::from_identity(h.cudnn, shape, id, cache_.get());
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kIncompatible && e.kind() != ErrorKind::kUnsupported) throw;
      }
    }
    cuda::QuantizedConv conv = cuda::QuantizedConv::from_identity(h.cudnn, shape, id);
    if (std::string text = conv.serialize(); !text.empty()) {
      const std::lock_guard<std::mutex> lock(compiled_here_mutex_);
      compiled_here_.emplace(compiled_key(shape, id),
                             std::make_shared<const std::string>(std::move(text)));
    }
    return conv;
  }

  // A serialized plan restored (about a millisecond); nothing where cuDNN
  // refuses the text, which only costs the compile it would have saved.
  static std::optional<cuda::QuantizedConv> restore(const Handles& h,
                                                    const cuda::QuantizedConvShape& shape,
                                                    const std::string& id,
                                                    const std::string& text) {
    try {
      return cuda::QuantizedConv::from_serialized(h.cudnn, shape, id, text);
    } catch (const Error&) {
      return std::nullopt;
    }
  }

  static std::string compiled_key(const cuda::QuantizedConvShape& shape, const std::string& id) {
    return shape.describe() + " " + id;
  }

  // The text another context kept, shared rather than copied (64-72 KB);
  // null when none was.
  std::shared_ptr<const std::string> compiled_here(const cuda::QuantizedConvShape& shape,
                                                   const std::string& id) const {
    const std::lock_guard<std::mutex> lock(compiled_here_mutex_);
    const auto it = compiled_here_.find(compiled_key(shape, id));
    return it == compiled_here_.end() ? nullptr : it->second;
  }

  // Our kernel; kUnsupported where it cannot run this shape on this GPU (a
  // plan tuned elsewhere), which sends prepare() to cuDNN's heuristics.
  std::unique_ptr<PreparedLayer> prepare_own(const cuda::QuantizedConvShape& shape,
                                             const std::string& identity) const {
    const std::optional<cuda::kernels::Conv3x3Int8Shape> own = conv3x3_int8_shape(shape, identity);
    if (!own)
      fail(ErrorKind::kUnsupported, "tactic ", identity, " does not compute ", shape.describe());
    return std::make_unique<PreparedConv3x3Int8>(*own, weights_);
  }

  // A tactic tuned at the profile's opt batch may not run at another: the
  // heuristics then take over (and cuDNN compiles what they pick), which the
  // user hears once per runner, as it may cost speed and start-up time.
  void note_fallback(std::int64_t batch, const Error& e) const {
    if (e.kind() != ErrorKind::kIncompatible && e.kind() != ErrorKind::kUnsupported) return;
    if (warned_.exchange(true)) return;
    std::fprintf(stderr,
                 "anvil: layer '%s': its tuned tactic does not run at batch %lld (%s); using "
                 "cuDNN's heuristics there\n",
                 name_.c_str(), static_cast<long long>(batch), e.what());
  }

  // The tensors and weights the contract in builder/lower.h promises; a plan
  // breaking it is corrupt, and cuDNN would read the wrong bytes.
  void check_layer(const LayerSetup& s) const {
    const plan::LayerDesc& l = s.layer;
    const std::size_t inputs = shape_.has_residual ? 2 : 1;
    if (l.inputs.size() != inputs || l.outputs.size() != 1)
      fail(ErrorKind::kInvalidArgument, "plan layer '", name_, "': a conv_int8 with",
           shape_.has_residual ? "" : "out", " a residual takes ", inputs,
           " input(s) and one output, not ", l.inputs.size(), " and ", l.outputs.size());
    for (const int id : l.inputs)
      check_int8_tensor(s.plan.tensors.at(static_cast<std::size_t>(id)));
    check_int8_tensor(s.plan.tensors.at(static_cast<std::size_t>(l.outputs[0])));
    if (l.weights.size() != 3 || s.weights.size() != 3)
      fail(ErrorKind::kInvalidArgument, "plan layer '", name_,
           "': a conv_int8 has 3 weights (filter, scale, bias), not ", l.weights.size());
    check_weight(l.weights[0], shape_.element, shape_.k * shape_.r * shape_.s * shape_.c, "filter");
    check_weight(l.weights[1], DType::kFloat32, shape_.k, "scale");
    check_weight(l.weights[2], DType::kFloat32, shape_.k, "bias");
  }

  void check_int8_tensor(const plan::TensorDesc& t) const {
    if (t.dtype != shape_.element)
      fail(ErrorKind::kInvalidArgument, "plan layer '", name_, "': tensor '", t.name, "' is ",
           to_string(t.dtype), "; this conv_int8 reads and writes ", to_string(shape_.element),
           " tensors (its params' element)");
  }

  void check_weight(const plan::WeightRef& w, DType dtype, std::int64_t count,
                    const char* what) const {
    if (w.dtype != dtype || w.bytes != count * static_cast<std::int64_t>(size_of(dtype)))
      fail(ErrorKind::kInvalidArgument, "plan layer '", name_, "': the ", what, " weight is ",
           w.bytes, " bytes of ", to_string(w.dtype), "; the layer's shape needs ", count, " ",
           to_string(dtype), " values");
  }

  std::string name_;
  std::optional<std::string> identity_;
  std::optional<plan::CompiledTactic> compiled_;  // the plan's, at its profile's opt shape
  cuda::QuantizedConvShape shape_;
  Int8ConvWeights weights_;
  std::unique_ptr<cuda::CudnnKernelCache> cache_;  // null: none in this cuDNN
  // Plans this runner compiled, as cuDNN serialized them (64-72 KB of text
  // each), by shape and tactic. Compiling the same plan again in one process
  // still takes 0.03-0.05 s a layer; a pipeline whose four chunk contexts
  // first met a new batch size in one request stalled it 3.2 s (H200,
  // fourteenth session, docs/PERFORMANCE.md). Restoring takes about 1 ms.
  // Like each context's prepared layers, it grows with the batch sizes seen.
  mutable std::mutex compiled_here_mutex_;
  mutable std::map<std::string, std::shared_ptr<const std::string>> compiled_here_;
  mutable std::atomic<bool> warned_{false};
};

std::unique_ptr<LayerRunner> make_conv_int8(const LayerSetup& s) {
  return std::make_unique<Int8ConvRunner>(s);
}

}  // namespace

ANVIL_REGISTER_LAYER("conv_int8", make_conv_int8);

}  // namespace anvil::runtime
