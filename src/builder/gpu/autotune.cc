#include "builder/gpu/autotune.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string_view>

#include "anvil/error.h"
#include "builder/gpu/verify_tactic.h"
#include "cuda/check.h"
#include "cuda/cudnn_quantized_conv.h"
#include "cuda/device.h"
#include "cuda/handles.h"
#include "cuda/kernels/activation.h"
#include "cuda/kernels/conv3x3_int8.h"
#include "cuda/kernels/conv_epilogue.h"
#include "plan/profiles.h"
#include "runtime/layers/layer_shapes.h"
#include "runtime/layers/layer_util.h"
#include "runtime/layers/tactic.h"
#include "runtime/prepare_layers.h"

namespace anvil::builder {

namespace {

using runtime::ConvAsGemm;
using runtime::ConvLayerShape;
using runtime::UnfusedConv;

constexpr std::size_t kGemmWorkspaceLimit = std::size_t{32} << 20;
constexpr int kMaxCandidates = 8;

cuda::DeviceBuffer upload(const plan::Plan& p, const plan::WeightRef& ref) {
  cuda::DeviceBuffer buffer(static_cast<std::size_t>(ref.bytes));
  cuda::copy_to_device(buffer.data(), p.weights.data() + ref.offset, buffer.bytes());
  return buffer;
}

// conv_int8 layers' candidates compiled ahead (compile_int8_candidates), by
// their shape's describe().
using Int8Compiled = std::map<std::string, std::vector<cuda::QuantizedConv>>;

struct Libraries {
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t lt = nullptr;
  cudaStream_t stream = nullptr;
  const Int8Compiled* int8_compiled = nullptr;  // null: compile each layer's when tuned
};

// One conv, conv_int8 or gemm layer's problem on the device: its real
// weights, random activations (kept on the host too, for the numerical
// check), the output and a workspace for every candidate. Candidates keep
// pointers into it.
struct Bench {
  HostDeviceValues x, residual;    // residual: empty where the layer has none
  HostDeviceInt8 x_q, residual_q;  // conv_int8's, instead of x and residual
  cuda::DeviceBuffer w, bias, y, workspace;
  cuda::DeviceBuffer scale;  // conv_int8's folded requantization scale

  const void* residual_or_null() const { return residual.device.data(); }
};

// A candidate timed on a Bench; `run` enqueues it once more on the same buffers.
struct Timed {
  std::string identity;
  float ms = 0.0f;
  std::function<void(cudaStream_t)> run;
};

// Average milliseconds of `run` over `iterations` after one warm-up, with
// CUDA events, so that every library's candidate is timed the same way
// (its unfused activation kernel included).
float time_run(const std::function<void(cudaStream_t)>& run, cudaStream_t stream, int iterations) {
  run(stream);
  const cuda::Event start, end;
  start.record(stream);
  for (int i = 0; i < iterations; ++i)
    run(stream);
  end.record(stream);
  end.synchronize();
  return cuda::Event::elapsed_ms(start, end) / static_cast<float>(iterations);
}

// cuBLASLt's algorithms for `shape`, none where it has no algorithm.
std::vector<cuda::Gemm> gemm_candidates(cublasLtHandle_t lt, const cuda::GemmShape& shape) {
  try {
    return cuda::Gemm::candidates(lt, shape, kGemmWorkspaceLimit, kMaxCandidates);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported) throw;
    return {};
  }
}

std::size_t largest_workspace(const std::vector<cuda::FusedConv>& convs,
                              const std::vector<cuda::Gemm>& gemms) {
  std::size_t bytes = 0;
  for (const auto& c : convs)
    bytes = std::max(bytes, c.workspace_bytes());
  for (const auto& g : gemms)
    bytes = std::max(bytes, g.workspace_bytes());
  return bytes;
}

// The unfused activation, in place on y (nothing for kNone).
std::function<void(cudaStream_t)> with_post_activation(std::function<void(cudaStream_t)> run,
                                                       const ConvLayerShape& conv,
                                                       cuda::kernels::Activation act, void* y,
                                                       std::int64_t elements) {
  if (act == cuda::kernels::Activation::kNone) return run;
  const auto type = runtime::storage_type(conv.shape.fp16);
  const auto params = conv.activation_params;
  return [run = std::move(run), type, act, params, y, elements](cudaStream_t stream) {
    run(stream);
    cuda::kernels::add_activation(y, nullptr, y, elements, type, act, params, stream);
  };
}

// cuDNN's engine configs for `shape`; none where it cannot build the graph.
std::vector<cuda::FusedConv> cudnn_candidates(cudnnHandle_t cudnn, const cuda::ConvShape& shape) {
  try {
    return cuda::FusedConv::candidates(cudnn, shape, kMaxCandidates);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported) throw;
    return {};
  }
}

// `c` bound once to the bench's buffers, as the runtime does: a variant pack
// per run would time the host. An unfused conv writes y without bias or residual.
std::function<void(cudaStream_t)> cudnn_run(const cuda::FusedConv& c, const Bench& b,
                                            cudnnHandle_t cudnn, bool unfused) {
  auto binding = std::make_shared<const cuda::FusedConv::Binding>(
      c.bind(b.x.device.data(), b.w.data(), unfused ? nullptr : b.bias.data(),
             unfused ? nullptr : b.residual_or_null(), b.y.data(), b.workspace.data()));
  return [c, binding, cudnn](cudaStream_t stream) { c.execute(cudnn, stream, *binding); };
}

// cuDNN's engine configs for the fused conv; for a 1x1 stride-1 conv,
// cuBLASLt's algorithms for its GEMM form ("cublaslt:..."); and when no fused
// engine keeps the layer's numerics (FP32 without TF32), the conv alone with
// our epilogue kernel ("unfused:..."). Each timed on `b`.
std::vector<Timed> time_conv(const ConvLayerShape& conv, Bench& b, const Libraries& libs,
                             int iterations) {
  const cuda::ConvShape& shape = conv.shape;
  const std::int64_t out = shape.n * shape.out_h() * shape.out_w() * shape.k;
  const std::vector<cuda::FusedConv> convs = cudnn_candidates(libs.cudnn, shape);
  const UnfusedConv unfused = runtime::unfused_conv(conv);
  std::vector<cuda::FusedConv> unfused_convs;
  // Only as a fallback: the extra pass over memory rarely beats a fused engine.
  // Not caught: where cuDNN cannot build even the conv alone, its reason is the error.
  if (convs.empty())
    unfused_convs = cuda::FusedConv::candidates(libs.cudnn, unfused.conv, kMaxCandidates);
  const std::optional<ConvAsGemm> as_gemm = runtime::conv_as_gemm(conv);
  std::vector<cuda::Gemm> gemms;
  if (as_gemm) gemms = gemm_candidates(libs.lt, as_gemm->gemm);
  b.workspace = cuda::DeviceBuffer(
      std::max(largest_workspace(convs, gemms), largest_workspace(unfused_convs, {})));

  std::vector<Timed> timed;
  for (const cuda::FusedConv& c : convs)
    timed.push_back({c.identity(), 0.0f,
                     with_post_activation(cudnn_run(c, b, libs.cudnn, false), conv,
                                          conv.post_activation, b.y.data(), out)});
  for (const cuda::FusedConv& c : unfused_convs) {
    const auto type = runtime::storage_type(shape.fp16);
    const auto params = conv.activation_params;
    const void* bias = shape.has_bias ? b.bias.data() : nullptr;  // as the runtime's
    auto run = [conv_run = cudnn_run(c, b, libs.cudnn, true), &b, bias, out, k = shape.k, type,
                act = unfused.act, params](cudaStream_t stream) {
      conv_run(stream);
      cuda::kernels::conv_epilogue(b.y.data(), bias, b.residual_or_null(), out, k, type, act,
                                   params, stream);
    };
    timed.push_back({runtime::unfused_conv_identity(c.identity()), 0.0f, run});
  }
  for (const cuda::Gemm& g : gemms) {
    auto run = [g, &b, lt = libs.lt](cudaStream_t stream) {
      g.execute(lt, stream, b.x.device.data(), b.w.data(), b.bias.data(), b.residual_or_null(),
                b.y.data(), b.workspace.data(), b.workspace.bytes());
    };
    timed.push_back({runtime::cublaslt_conv_identity(g.identity()), 0.0f,
                     with_post_activation(run, conv, as_gemm->post_activation, b.y.data(), out)});
  }
  for (Timed& t : timed)
    t.ms = time_run(t.run, libs.stream, iterations);
  return timed;
}

// cuDNN's INT8 engine configs for `shape`; none where it has no engine.
std::vector<cuda::QuantizedConv> int8_candidates(cudnnHandle_t cudnn,
                                                 const cuda::QuantizedConvShape& shape) {
  try {
    return cuda::QuantizedConv::candidates(cudnn, shape, kMaxCandidates);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported) throw;
    return {};
  }
}

// Our INT8 3x3 kernel `identity` (one of runtime::kConv3x3Int8Identities) on
// `b`, timed; nothing where it does not compute this shape or cannot run on
// this GPU.
std::optional<Timed> time_conv3x3_int8(std::string_view identity,
                                       const cuda::QuantizedConvShape& shape, Bench& b,
                                       const Libraries& libs, int iterations) {
  const std::optional<cuda::kernels::Conv3x3Int8Shape> own =
      runtime::conv3x3_int8_shape(shape, identity);
  if (!own) return std::nullopt;
  std::shared_ptr<const cuda::kernels::Conv3x3Int8> conv;
  try {
    conv = std::make_shared<const cuda::kernels::Conv3x3Int8>(*own);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported) throw;
    return std::nullopt;
  }
  auto run = [conv, &b](cudaStream_t stream) {
    conv->run(b.x_q.device.data(), b.w.data(), b.scale.as<float>(),
              conv->shape().has_bias ? b.bias.as<float>() : nullptr,
              conv->shape().has_residual ? b.residual_q.device.data() : nullptr, b.y.data(),
              stream);
  };
  return Timed{std::string(identity), time_run(run, libs.stream, iterations), run};
}

// Every INT8 engine config, bound once to `b` as the runtime's conv_int8
// runner binds it (identities as QuantizedConv::identity() gives them), timed.
std::vector<Timed> time_int8_conv(const cuda::QuantizedConvShape& shape, Bench& b,
                                  const Libraries& libs, int iterations) {
  const auto compiled = libs.int8_compiled ? libs.int8_compiled->find(shape.describe())
                                           : Int8Compiled::const_iterator{};
  const std::vector<cuda::QuantizedConv> convs =
      libs.int8_compiled && compiled != libs.int8_compiled->end()
          ? compiled->second
          : int8_candidates(libs.cudnn, shape);
  std::size_t workspace = 0;
  for (const cuda::QuantizedConv& c : convs)
    workspace = std::max(workspace, c.workspace_bytes());
  b.workspace = cuda::DeviceBuffer(workspace);
  std::vector<Timed> timed;
  for (const cuda::QuantizedConv& c : convs) {
    auto binding = std::make_shared<const cuda::QuantizedConv::Binding>(
        c.bind(b.x_q.device.data(), b.w.data(), b.scale.as<float>(), b.bias.as<float>(),
               b.residual_q.device.data(), b.y.data(), b.workspace.data()));
    auto run = [c, binding, cudnn = libs.cudnn](cudaStream_t stream) {
      c.execute(cudnn, stream, *binding);
    };
    timed.push_back({c.identity(), time_run(run, libs.stream, iterations), run});
  }
  for (const std::string_view identity : runtime::kConv3x3Int8Identities)
    if (std::optional<Timed> own = time_conv3x3_int8(identity, shape, b, libs, iterations))
      timed.push_back(std::move(*own));
  return timed;
}

std::vector<Timed> time_gemm(const cuda::GemmShape& shape, Bench& b, const Libraries& libs,
                             int iterations) {
  std::vector<cuda::Gemm> gemms =
      cuda::Gemm::candidates(libs.lt, shape, kGemmWorkspaceLimit, kMaxCandidates);
  b.workspace = cuda::DeviceBuffer(largest_workspace({}, gemms));
  std::vector<Timed> timed;
  for (const cuda::Gemm& g : gemms) {
    auto run = [g, &b, lt = libs.lt](cudaStream_t stream) {
      g.execute(lt, stream, b.x.device.data(), b.w.data(), b.bias.data(), nullptr, b.y.data(),
                b.workspace.data(), b.workspace.bytes());
    };
    timed.push_back({g.identity(), time_run(run, libs.stream, iterations), run});
  }
  return timed;
}

// One layer, benched and timed: its candidates fastest first, and the check of
// whatever a candidate's run left in the bench's output.
class LayerTuning {
 public:
  LayerTuning(const plan::Plan& p, const plan::LayerDesc& layer, std::int64_t batch, int iterations,
              const Libraries& libs, std::mt19937& rng)
      : plan_(p), layer_(layer), bench_(std::make_unique<Bench>()) {
    const bool fp16 = p.options.fp16;
    const auto params = nlohmann::json::parse(layer.params);
    Bench& b = *bench_;
    if (layer.kind == "conv_int8") {
      bench_int8_conv(params, batch, rng);
      candidates_ = time_int8_conv(*int8_, b, libs, iterations);
      sort_candidates();
      return;
    }
    b.w = upload(p, layer.weights.at(0));
    if (layer.kind == "conv") {
      conv_ = runtime::conv_layer_shape(params, layer.name, fp16, p.options.tf32);
      const cuda::ConvShape& s = conv_->shape;
      conv_->shape.n = batch;
      const std::int64_t out = batch * s.out_h() * s.out_w() * s.k;
      b.x = random_values(batch * s.h * s.w * s.c, fp16, rng);
      if (s.has_residual) b.residual = random_values(out, fp16, rng);
      b.bias = runtime::upload_bias(p.weights.data() + layer.weights.at(1).offset, s.k, fp16);
      b.y = cuda::DeviceBuffer(static_cast<std::size_t>(out) * (fp16 ? 2 : 4));
      candidates_ = time_conv(*conv_, b, libs, iterations);
    } else {
      gemm_ = runtime::gemm_layer_shape(params, layer.name, layer.kind, fp16, p.options.tf32);
      gemm_->m = batch;
      const bool fp16_y = cuda::half_output(*gemm_);  // Y's and the bias's type
      b.x = random_values(batch * gemm_->k, fp16, rng);
      b.bias =
          runtime::upload_bias(p.weights.data() + layer.weights.at(1).offset, gemm_->n, fp16_y);
      b.y = cuda::DeviceBuffer(static_cast<std::size_t>(batch * gemm_->n) * (fp16_y ? 2 : 4));
      candidates_ = time_gemm(*gemm_, b, libs, iterations);
    }
    sort_candidates();
  }

  const std::vector<Timed>& candidates() const { return candidates_; }

  // Runs the candidate once and checks its output: nothing when right, else why.
  std::optional<std::string> check(const Timed& candidate, cudaStream_t stream) const {
    const Bench& b = *bench_;
    if (int8_) return check_int8(candidate, stream);
    ANVIL_GPU_CHECK(cudaMemsetAsync(b.y.data(), 0xff, b.y.bytes(), stream));  // NaNs
    candidate.run(stream);
    ANVIL_GPU_CHECK(cudaStreamSynchronize(stream));
    if (conv_)
      return check_conv_output(plan_, layer_, *conv_, b.x,
                               conv_->shape.has_residual ? &b.residual : nullptr, b.y.data());
    return check_gemm_output(plan_, layer_, *gemm_, b.x, b.y.data());
  }

 private:
  void sort_candidates() {
    std::stable_sort(candidates_.begin(), candidates_.end(),
                     [](const Timed& a, const Timed& c) { return a.ms < c.ms; });
  }

  // The plan's INT8 filter, scale and bias; random INT8 x (and residual) in
  // the real channels, zeros in the padded ones, as the engine guarantees.
  void bench_int8_conv(const nlohmann::json& params, std::int64_t batch, std::mt19937& rng) {
    if (layer_.weights.size() != 3)
      fail(ErrorKind::kInvalidArgument, "plan layer '", layer_.name, "': a conv_int8 layer has 3 ",
           "weights (INT8 filter, FP32 scale, FP32 bias), this one ", layer_.weights.size());
    int8_ = runtime::int8_conv_layer_shape(params, layer_.name);
    cuda::QuantizedConvShape& s = *int8_;
    s.n = batch;
    const auto c_real = runtime::param<std::int64_t>(params, "c", layer_.name);
    const auto k_real = runtime::param<std::int64_t>(params, "k", layer_.name);
    if (c_real < 1 || c_real > s.c || k_real < 1 || k_real > s.k)
      fail(ErrorKind::kInvalidArgument, "plan layer '", layer_.name, "': channels c ", c_real,
           " of c_pad ", s.c, ", k ", k_real, " of k_pad ", s.k);
    const std::int64_t out = batch * s.out_h() * s.out_w() * s.k;
    // cuDNN reads this many bytes of each: a shorter slice would read past it.
    const std::int64_t need[3] = {s.k * s.r * s.s * s.c, s.k * 4, s.k * 4};
    for (std::size_t i = 0; i < 3; ++i)
      if (layer_.weights[i].bytes < need[i])
        fail(ErrorKind::kInvalidArgument, "plan layer '", layer_.name, "': weights[", i, "] has ",
             layer_.weights[i].bytes, " bytes, its conv_int8 shape needs ", need[i]);
    Bench& b = *bench_;
    b.x_q = random_quantized_values(batch * s.h * s.w * s.c, s.c, c_real, s.element, rng);
    if (s.has_residual) b.residual_q = random_quantized_values(out, s.k, k_real, s.element, rng);
    b.w = upload(plan_, layer_.weights[0]);
    b.scale = upload(plan_, layer_.weights[1]);
    b.bias = upload(plan_, layer_.weights[2]);
    b.y = cuda::DeviceBuffer(static_cast<std::size_t>(out));
  }

  // An INT8 output has no NaN to poison it with: the candidate runs twice,
  // over outputs filled with 91 and then -91, and both runs must agree (an
  // element left unwritten would not), in every image; then the last image is
  // checked against the CPU reference once.
  std::optional<std::string> check_int8(const Timed& candidate, cudaStream_t stream) const {
    const Bench& b = *bench_;
    std::vector<std::int8_t> runs[2];
    const int poisons[2] = {0x5b, 0xa5};
    for (int i = 0; i < 2; ++i) {
      runs[i].resize(b.y.bytes());
      ANVIL_GPU_CHECK(cudaMemsetAsync(b.y.data(), poisons[i], b.y.bytes(), stream));
      candidate.run(stream);
      ANVIL_GPU_CHECK(
          cudaMemcpyAsync(runs[i].data(), b.y.data(), b.y.bytes(), cudaMemcpyDeviceToHost, stream));
      ANVIL_GPU_CHECK(cudaStreamSynchronize(stream));
    }
    const auto [first, second] = std::mismatch(runs[0].begin(), runs[0].end(), runs[1].begin());
    if (first != runs[0].end())
      return cat("conv_int8 '", layer_.name, "' (", int8_->describe(), "): output element ",
                 first - runs[0].begin(), " of ", runs[0].size(), " is ", int{*first}, " after ",
                 "a run over 91s but ", int{*second}, " after a run over -91s: left unwritten ",
                 "or not deterministic");
    return check_int8_conv_output(plan_, layer_, *int8_, b.x_q.host,
                                  int8_->has_residual ? &b.residual_q.host : nullptr, b.y.data());
  }

  const plan::Plan& plan_;
  const plan::LayerDesc& layer_;
  std::unique_ptr<Bench> bench_;  // stable: candidates point into it
  std::optional<ConvLayerShape> conv_;
  std::optional<cuda::GemmShape> gemm_;
  std::optional<cuda::QuantizedConvShape> int8_;
  std::vector<Timed> candidates_;
};

struct Winner {
  std::string identity;
  float ms = std::numeric_limits<float>::infinity();
  int candidates = 0;
  std::vector<std::string> rejected;
};

// The fastest candidate that matches the CPU reference.
Winner tune_layer(const plan::Plan& p, const plan::LayerDesc& layer, std::int64_t batch,
                  int iterations, const Libraries& libs, std::mt19937& rng,
                  const std::function<void(const std::string&)>& log) {
  const LayerTuning tuning(p, layer, batch, iterations, libs, rng);
  Winner w;
  w.candidates = static_cast<int>(tuning.candidates().size());
  const bool int8 = layer.kind == "conv_int8";
  // An INT8 layer can always fall back to FP16; the user chooses that.
  const std::string instead =
      int8 ? cat("; build it in FP16 with --layer-precision ", layer.name, ":fp16") : "";
  const bool fp8 = int8 && nlohmann::json::parse(layer.params).value("element", "int8") ==
                               to_string(DType::kFloat8E4M3);
  if (tuning.candidates().empty())
    fail(ErrorKind::kUnsupported, "layer '", layer.name, "': no ",
         fp8                    ? "cuDNN FP8 engine"
         : int8                 ? "cuDNN INT8 engine"
         : layer.kind == "conv" ? "cuDNN engine (fused or unfused) or cuBLASLt algorithm"
                                : "cuBLASLt algorithm",
         " runs this ", layer.kind, " on this GPU", instead);
  for (const Timed& t : tuning.candidates()) {
    const std::optional<std::string> wrong = tuning.check(t, libs.stream);
    if (!wrong) {
      w.identity = t.identity;
      w.ms = t.ms;
      return w;
    }
    w.rejected.push_back(cat(t.identity, ": ", *wrong));
    log(cat("autotune: layer '", layer.name, "': dropped ", t.identity, " (", t.ms,
            " ms), it fails the CPU reference check: ", *wrong));
  }
  fail(ErrorKind::kUnsupported, "layer '", layer.name, "': none of the ", w.candidates, " ",
       fp8                    ? "cuDNN FP8"
       : int8                 ? "cuDNN INT8"
       : layer.kind == "conv" ? "cuDNN/cuBLASLt"
                              : "cuBLASLt",
       " candidates runs it correctly on this GPU",
       w.rejected.empty() ? std::string() : cat(" (fastest: ", w.rejected.front(), ")"), instead);
}

// The timing cache: layer signature -> winner, valid for one GPU and one set
// of library versions (a cache from elsewhere is ignored, not trusted).
class TimingCache {
 public:
  TimingCache(std::filesystem::path path, const plan::TargetInfo& target)
      : path_(std::move(path)),
        target_key_(cat(target.gpu_name, "|", target.cc_major, ".", target.cc_minor, "|cudnn",
                        target.cudnn_version, "|cublaslt", target.cublaslt_version)) {
    if (path_.empty() || !std::filesystem::exists(path_)) return;
    std::ifstream in(path_);
    auto doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object() && doc.value("target", "") == target_key_ && doc.contains("entries") &&
        doc["entries"].is_object())
      entries_ = doc["entries"];
  }

  const nlohmann::json* find(const std::string& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &*it;
  }
  void put(const std::string& key, const Winner& w) {
    entries_[key] = {{"identity", w.identity}, {"ms", w.ms}};
  }
  void save() const {
    if (path_.empty()) return;
    std::ofstream out(path_);
    out << nlohmann::json{{"target", target_key_}, {"entries", entries_}}.dump(1);
    if (!out) fail(ErrorKind::kIo, path_.string(), ": cannot write the timing cache");
  }

 private:
  std::filesystem::path path_;
  std::string target_key_;
  nlohmann::json entries_ = nlohmann::json::object();
};

// A conv_int8 winner as cuDNN compiled it at the tuned batch, kept in the
// plan (plan::CompiledTactic): cuDNN's runtime-fusion INT8 engines compile
// every plan they build, 0.4-0.9 s a layer on an H100, and refuse the
// dynamic-shape graphs a kernel cache needs, so without it every process
// loading the plan paid that per layer. Building the winner again here is
// cheap where it was just tuned (cuDNN reuses its in-process compile) and a
// compile where the timing cache had it. It only saves time: where cuDNN does
// not serialize the plan, or anything here fails, the plan keeps the
// identity alone and the runtime compiles, as before.
void keep_compiled(plan::LayerDesc& layer, int profile, std::int64_t batch, cudnnHandle_t cudnn) {
  try {
    cuda::QuantizedConvShape shape =
        runtime::int8_conv_layer_shape(nlohmann::json::parse(layer.params), layer.name);
    shape.n = batch;
    const std::optional<std::string> identity = plan::tactic_identity(layer, profile);
    if (!identity || runtime::is_conv3x3_int8_identity(*identity)) return;  // nothing compiled
    const std::string text =
        cuda::QuantizedConv::from_identity(cudnn, shape, *identity).serialize();
    if (!text.empty()) plan::set_tactic_compiled(layer, profile, {shape.describe(), text});
  } catch (const Error&) {
    // The identity alone (see above); the winner itself was checked when tuned.
  }
}

// The layers the autotuner chooses a library configuration for.
bool is_tuned(const std::string& kind) {
  return kind == "conv" || kind == "conv_int8" || kind == "gemm" || kind == "gemm_output";
}

// Same problem, same winner: the timing cache's key is everything the timing
// depends on.
std::string tuning_key(const plan::Plan& p, const plan::LayerDesc& layer,
                       const AutotuneOptions& options) {
  return cat(layer.kind, "|", layer.params, "|fp16=", p.options.fp16, "|tf32=", p.options.tf32,
             "|batch=", options.batch);
}

// cuDNN's runtime-fusion INT8 engines compile every candidate plan, 0.5-0.9 s
// each on an H100, which made most of an INT8 build: the candidates of the
// conv_int8 layers the timing cache does not hold are compiled here first,
// on worker threads with handles of their own (runtime::run_on_workers),
// and timed one layer after another as before. A shape whose compile fails
// here is left out: its layer compiles (and reports) it when tuned.
Int8Compiled compile_int8_candidates(const plan::Plan& p, const AutotuneOptions& options,
                                     const TimingCache& cache, runtime::WorkerHandles& workers) {
  std::vector<cuda::QuantizedConvShape> shapes;
  std::vector<std::string> keys;
  for (const plan::LayerDesc& layer : p.layers) {
    if (layer.kind != "conv_int8" || cache.find(tuning_key(p, layer, options))) continue;
    cuda::QuantizedConvShape shape =
        runtime::int8_conv_layer_shape(nlohmann::json::parse(layer.params), layer.name);
    shape.n = options.batch;
    if (std::find(keys.begin(), keys.end(), shape.describe()) != keys.end()) continue;
    keys.push_back(shape.describe());
    shapes.push_back(shape);
  }
  Int8Compiled compiled;
  if (runtime::worker_count(shapes.size()) < 2) return compiled;
  std::vector<std::vector<cuda::QuantizedConv>> found(shapes.size());
  const std::vector<std::exception_ptr> errors = runtime::run_on_workers(
      shapes.size(), workers, [&](std::size_t k, const runtime::Handles& h) {
        found[k] = int8_candidates(h.cudnn, shapes[k]);
      });
  for (std::size_t k = 0; k < shapes.size(); ++k)
    if (!errors[k]) compiled.emplace(keys[k], std::move(found[k]));
  return compiled;
}

}  // namespace

plan::TargetInfo current_target() {
  const auto info = cuda::device_info(0);
  if (!info)
    fail(ErrorKind::kGpu, "no CUDA GPU found: building a plan needs the GPU it will run on");
  const cuda::LibraryVersions v = cuda::library_versions();
  return plan::TargetInfo{info->cc_major, info->cc_minor, info->name,
                          v.cuda_runtime, v.cudnn,        v.cublaslt};
}

std::vector<CandidateTiming> time_candidates(const plan::Plan& p, const plan::LayerDesc& layer,
                                             std::int64_t batch, int iterations) {
  if (!is_tuned(layer.kind))
    fail(
        ErrorKind::kInvalidArgument, "layer '", layer.name, "' (", layer.kind,
        ") has no library candidates: only conv, conv_int8, gemm and gemm_output layers are tuned");
  cuda::CudnnHandle cudnn;
  cuda::CublasLtHandle lt;
  cuda::Stream stream;
  std::mt19937 rng(2024);
  const LayerTuning tuning(p, layer, batch, iterations, {cudnn.get(), lt.get(), stream.get()}, rng);
  std::vector<CandidateTiming> out;
  for (const Timed& t : tuning.candidates())
    out.push_back({t.identity, t.ms});
  return out;
}

std::vector<LayerTactic> autotune(plan::Plan& p, const AutotuneOptions& options) {
  cuda::CudnnHandle cudnn;
  cuda::CublasLtHandle lt;
  cuda::Stream stream;
  std::mt19937 rng(2024);
  TimingCache cache(options.timing_cache, p.target);
  // The workers' handles outlive the plans compiled with them.
  runtime::WorkerHandles workers;
  const Int8Compiled int8_compiled = compile_int8_candidates(p, options, cache, workers);
  const Libraries libs{cudnn.get(), lt.get(), stream.get(), &int8_compiled};
  const std::function<void(const std::string&)> log =
      options.log ? options.log
                  : [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  int total = 0, done = 0;
  for (const plan::LayerDesc& layer : p.layers)
    total += is_tuned(layer.kind);

  std::vector<LayerTactic> chosen;
  for (plan::LayerDesc& layer : p.layers) {
    if (!is_tuned(layer.kind)) continue;
    // A cached winner was checked when it was first tuned.
    const std::string key = tuning_key(p, layer, options);
    Winner w;
    if (const nlohmann::json* hit = cache.find(key)) {
      w.identity = hit->value("identity", "");
      w.ms = hit->value("ms", 0.0f);
    } else {
      w = tune_layer(p, layer, options.batch, options.iterations, libs, rng, log);
      cache.put(key, w);
    }
    plan::set_tactic(layer, options.profile, w.identity, w.ms);
    if (layer.kind == "conv_int8")
      keep_compiled(layer, options.profile, options.batch, cudnn.get());
    chosen.push_back({layer.name, layer.kind, w.identity, w.ms, w.candidates, w.rejected});
    if (options.progress) options.progress(++done, total);
  }
  cache.save();
  return chosen;
}

}  // namespace anvil::builder
