// anvil inspect model.plan: the engine's layers after fusion, with their
// precision, shapes and tactics, and the target the plan was built for.
#include "inspect_plan.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "anvil/engine.h"
#include "anvil/error.h"
#include "plan/plan.h"

namespace anvil::cli {

namespace {

// "8x3x224x224"
std::string shape_text(const std::vector<std::int64_t>& dims) {
  std::string out;
  for (std::size_t d = 0; d < dims.size(); ++d)
    out += (d ? "x" : "") + std::to_string(dims[d]);
  return out;
}

std::string shape_of(const plan::TensorDesc& t) {
  std::string out = t.layout + "[";
  for (std::size_t i = 0; i < t.dims.size(); ++i)
    out += (i ? "," : "") + (t.dims[i] < 0 ? std::string("N") : std::to_string(t.dims[i]));
  out += "]";
  if (t.channel_padding_to) out += cat("/", *t.channel_padding_to);
  return out;
}

std::string tensors_of(const plan::Plan& p, const std::vector<int>& ids) {
  std::string out;
  for (int id : ids)
    out += (out.empty() ? "" : " ") + shape_of(p.tensors.at(static_cast<std::size_t>(id)));
  return out;
}

// Each layer's workspace at profile 0's max batch, or why there is none:
// asking the libraries needs the GPU the plan was built for.
std::vector<std::size_t> workspaces(const std::string& path, std::string& why) {
#if ANVIL_HAVE_CUDA
  try {
    return Engine::load(path)->layer_workspace_bytes(0);
  } catch (const Error& e) {
    why = e.what();
    return {};
  }
#else
  (void)path;
  why = "this Anvil was built without CUDA";
  return {};
#endif
}

// A conv_int8 layer of an FP8 plan (params element "float8e4m3fn") shows as
// conv_fp8: the same plan kind, another element type.
std::string shown_kind(const plan::LayerDesc& layer) {
  if (layer.kind != "conv_int8") return layer.kind;
  const auto params = nlohmann::json::parse(layer.params, nullptr, false);
  const bool fp8 = params.is_object() && params.contains("element") &&
                   params["element"] == to_string(DType::kFloat8E4M3);
  return fp8 ? "conv_fp8" : layer.kind;
}

}  // namespace

void inspect_plan(const std::string& path) {
  const plan::Plan p = plan::read_plan_file(path);
  const plan::TargetInfo& t = p.target;
  std::printf(
      "Plan %s (anvil %s) for %s, compute capability %d.%d, CUDA runtime %d, cuDNN %d, "
      "cuBLASLt %d\n",
      path.c_str(), p.anvil_version.c_str(), t.gpu_name.c_str(), t.cc_major, t.cc_minor,
      t.cuda_runtime_version, t.cudnn_version, t.cublaslt_version);
  std::printf("Precision %s, TF32 %s, weights %.1f MB\n", p.options.fp16 ? "FP16" : "FP32",
              p.options.tf32 ? "allowed" : "off", static_cast<double>(p.weights.size()) / 1e6);
  for (std::size_t i = 0; i < p.profiles.size(); ++i)
    for (const auto& [name, dim] : p.profiles[i].inputs) {
      std::printf("Profile %zu: %s batch %lld..%lld, tuned at %lld", i, name.c_str(),
                  static_cast<long long>(dim.min.at(0)), static_cast<long long>(dim.max.at(0)),
                  static_cast<long long>(dim.opt.at(0)));
      // Height and width ranges (spatial profiles): the whole shapes.
      if (dim.min != dim.max && std::vector(dim.min.begin() + 1, dim.min.end()) !=
                                    std::vector(dim.max.begin() + 1, dim.max.end()))
        std::printf("; shapes %s .. %s, tuned at %s", shape_text(dim.min).c_str(),
                    shape_text(dim.max).c_str(), shape_text(dim.opt).c_str());
      std::printf("\n");
    }
  std::printf("%zu layers (the channel count after '/' is the stored, padded one; '%s' storage):\n",
              p.layers.size(), p.options.fp16 ? "float16" : "float32");
  std::string why;
  const std::vector<std::size_t> workspace = workspaces(path, why);
  if (workspace.empty()) std::printf("(workspace per layer not shown: %s)\n", why.c_str());
  for (const plan::LayerDesc& layer : p.layers) {
    const auto tactic = nlohmann::json::parse(layer.tactic, nullptr, false);
    std::string chosen;
    if (tactic.is_object() && tactic.contains("identity"))
      chosen = cat(tactic["identity"].get<std::string>().substr(0, 40), " (",
                   tactic.value("ms", 0.0), " ms)");
    if (tactic.is_object() && tactic.contains("compiled")) chosen += " compiled";
    if (tactic.is_object() && tactic.contains("profiles"))
      chosen += cat(" [profile 0 of ", tactic["profiles"].size(), "]");
    if (layer.stream != 0) chosen += cat(" [aux stream ", layer.stream, "]");
    const auto index = static_cast<std::size_t>(&layer - p.layers.data());
    if (index < workspace.size() && workspace[index] > 0)
      chosen += cat(" workspace ", workspace[index], " B");
    std::printf("  %-14s %-40s %s -> %s %s\n", shown_kind(layer).c_str(),
                layer.name.substr(0, 40).c_str(), tensors_of(p, layer.inputs).c_str(),
                tensors_of(p, layer.outputs).c_str(), chosen.c_str());
  }
}

}  // namespace anvil::cli
