#include "builder/gpu/autotune.h"

#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "anvil/error.h"
#include "builder/weights.h"
#include "cuda/check.h"
#include "cuda/device.h"
#include "cuda/handles.h"
#include "runtime/layers/layer_shapes.h"
#include "runtime/layers/layer_util.h"

namespace anvil::builder {

namespace {

constexpr std::size_t kGemmWorkspaceLimit = std::size_t{32} << 20;
constexpr int kMaxCandidates = 8;

// Device memory of `elements` values drawn from N(0, 1) in the storage type:
// timing on random data, never on zeros.
cuda::DeviceBuffer random_buffer(std::int64_t elements, bool fp16, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  cuda::DeviceBuffer buffer(static_cast<std::size_t>(elements) * (fp16 ? 2 : 4));
  if (fp16) {
    std::vector<std::uint16_t> host(static_cast<std::size_t>(elements));
    for (auto& h : host)
      h = float_to_half(normal(rng));
    ANVIL_GPU_CHECK(cudaMemcpy(buffer.data(), host.data(), buffer.bytes(), cudaMemcpyHostToDevice));
  } else {
    std::vector<float> host(static_cast<std::size_t>(elements));
    for (auto& f : host)
      f = normal(rng);
    ANVIL_GPU_CHECK(cudaMemcpy(buffer.data(), host.data(), buffer.bytes(), cudaMemcpyHostToDevice));
  }
  return buffer;
}

cuda::DeviceBuffer upload(const plan::Plan& p, const plan::WeightRef& ref) {
  cuda::DeviceBuffer buffer(static_cast<std::size_t>(ref.bytes));
  ANVIL_GPU_CHECK(cudaMemcpy(buffer.data(), p.weights.data() + ref.offset, buffer.bytes(),
                             cudaMemcpyHostToDevice));
  return buffer;
}

struct Winner {
  std::string identity;
  float ms = std::numeric_limits<float>::infinity();
  int candidates = 0;
};

Winner tune_conv(const plan::Plan& p, const plan::LayerDesc& layer, std::int64_t batch,
                 int iterations, cudnnHandle_t cudnn, cudaStream_t stream, std::mt19937& rng) {
  const bool fp16 = p.options.fp16;
  cuda::ConvShape shape = runtime::conv_layer_shape(nlohmann::json::parse(layer.params), layer.name,
                                                    fp16, p.options.tf32)
                              .shape;
  shape.n = batch;
  const std::int64_t out = shape.n * shape.out_h() * shape.out_w() * shape.k;
  cuda::DeviceBuffer x = random_buffer(shape.n * shape.h * shape.w * shape.c, fp16, rng);
  cuda::DeviceBuffer w = upload(p, layer.weights.at(0));
  cuda::DeviceBuffer bias =
      runtime::upload_bias(p.weights.data() + layer.weights.at(1).offset, shape.k, fp16);
  cuda::DeviceBuffer residual =
      shape.has_residual ? random_buffer(out, fp16, rng) : cuda::DeviceBuffer();
  cuda::DeviceBuffer y(static_cast<std::size_t>(out) * (fp16 ? 2 : 4));
  Winner best;
  for (const cuda::FusedConv& conv : cuda::FusedConv::candidates(cudnn, shape, kMaxCandidates)) {
    cuda::DeviceBuffer workspace(conv.workspace_bytes());
    const float ms = cuda::time_ms(cudnn, stream, conv, x.data(), w.data(), bias.data(),
                                   residual.data(), y.data(), workspace.data(), iterations);
    ++best.candidates;
    if (ms < best.ms) best = {conv.identity(), ms, best.candidates};
  }
  if (best.identity.empty())
    fail(ErrorKind::kUnsupported, "layer '", layer.name,
         "': no cuDNN engine runs this convolution");
  return best;
}

Winner tune_gemm(const plan::Plan& p, const plan::LayerDesc& layer, std::int64_t batch,
                 int iterations, cublasLtHandle_t lt, cudaStream_t stream, std::mt19937& rng) {
  const bool fp16 = p.options.fp16;
  cuda::GemmShape shape = runtime::gemm_layer_shape(nlohmann::json::parse(layer.params), layer.name,
                                                    fp16, p.options.tf32);
  shape.m = batch;
  cuda::DeviceBuffer x = random_buffer(shape.m * shape.k, fp16, rng);
  cuda::DeviceBuffer w = upload(p, layer.weights.at(0));
  cuda::DeviceBuffer bias =
      runtime::upload_bias(p.weights.data() + layer.weights.at(1).offset, shape.n, fp16);
  cuda::DeviceBuffer y(static_cast<std::size_t>(shape.m * shape.n) * (fp16 ? 2 : 4));
  cuda::DeviceBuffer workspace(kGemmWorkspaceLimit);
  Winner best;
  for (const cuda::Gemm& gemm :
       cuda::Gemm::candidates(lt, shape, kGemmWorkspaceLimit, kMaxCandidates)) {
    const float ms = gemm.time_ms(lt, stream, x.data(), w.data(), bias.data(), nullptr, y.data(),
                                  workspace.data(), workspace.bytes(), iterations);
    ++best.candidates;
    if (ms < best.ms) best = {gemm.identity(), ms, best.candidates};
  }
  return best;
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

}  // namespace

plan::TargetInfo current_target() {
  const auto info = cuda::device_info(0);
  if (!info)
    fail(ErrorKind::kGpu, "no CUDA GPU found: building a plan needs the GPU it will run on");
  const cuda::LibraryVersions v = cuda::library_versions();
  return plan::TargetInfo{info->cc_major, info->cc_minor, info->name,
                          v.cuda_runtime, v.cudnn,        v.cublaslt};
}

std::vector<LayerTactic> autotune(plan::Plan& p, const AutotuneOptions& options) {
  cuda::CudnnHandle cudnn;
  cuda::CublasLtHandle lt;
  cuda::Stream stream;
  std::mt19937 rng(2024);
  TimingCache cache(options.timing_cache, p.target);
  int total = 0, done = 0;
  for (const plan::LayerDesc& layer : p.layers)
    total += layer.kind == "conv" || layer.kind == "gemm";

  std::vector<LayerTactic> chosen;
  for (plan::LayerDesc& layer : p.layers) {
    if (layer.kind != "conv" && layer.kind != "gemm") continue;
    // Same problem, same winner: the key is everything the timing depends on.
    const std::string key = cat(layer.kind, "|", layer.params, "|fp16=", p.options.fp16,
                                "|tf32=", p.options.tf32, "|batch=", options.batch);
    Winner w;
    if (const nlohmann::json* hit = cache.find(key)) {
      w = {hit->value("identity", ""), hit->value("ms", 0.0f), 0};
    } else {
      w = layer.kind == "conv"
              ? tune_conv(p, layer, options.batch, options.iterations, cudnn.get(), stream.get(),
                          rng)
              : tune_gemm(p, layer, options.batch, options.iterations, lt.get(), stream.get(), rng);
      cache.put(key, w);
    }
    layer.tactic = nlohmann::json{{"identity", w.identity}, {"ms", w.ms}}.dump();
    chosen.push_back({layer.name, layer.kind, w.identity, w.ms, w.candidates});
    if (options.progress) options.progress(++done, total);
  }
  cache.save();
  return chosen;
}

}  // namespace anvil::builder
