#include "builder/fuse_conv_max_pool.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace anvil::builder {

namespace {

using json = nlohmann::json;

bool all_equal(const json& p, std::initializer_list<const char*> keys, int value) {
  for (const char* key : keys)
    if (!p.contains(key) || p[key] != value) return false;
  return true;
}

bool is_stem_conv(const plan::LayerDesc& layer) {
  if (layer.kind != "conv") return false;
  const json p = json::parse(layer.params);
  const std::string act = p.value("activation", "");
  return all_equal(p, {"c_pad"}, 4) && all_equal(p, {"k_pad"}, 64) && all_equal(p, {"r", "s"}, 7) &&
         all_equal(p, {"stride_h", "stride_w"}, 2) &&
         all_equal(p, {"pad_top", "pad_left", "pad_bottom", "pad_right"}, 3) &&
         all_equal(p, {"dil_h", "dil_w", "groups"}, 1) && p.value("has_residual", true) == false &&
         (act == "relu" || act == "none");
}

bool is_stem_pool(const plan::LayerDesc& layer) {
  if (layer.kind != "pool") return false;
  const json p = json::parse(layer.params);
  return p.value("mode", "") == "max" && all_equal(p, {"kernel_h", "kernel_w"}, 3) &&
         all_equal(p, {"stride_h", "stride_w"}, 2) &&
         all_equal(p, {"pad_top", "pad_left", "pad_bottom", "pad_right"}, 1) &&
         all_equal(p, {"dil_h", "dil_w"}, 1) && p.value("ceil_mode", true) == false;
}

// How many layers read tensor `id`, and whether it is an IO tensor.
int readers(const plan::Plan& plan, int id) {
  int count = 0;
  for (const plan::IoBinding& io : plan.io)
    if (io.tensor_id == id) return -1;
  for (const plan::LayerDesc& layer : plan.layers)
    for (int input : layer.inputs)
      count += input == id;
  return count;
}

// The layer reading tensor `id`, given that exactly one does.
std::size_t reader_of(const plan::Plan& plan, int id) {
  std::size_t j = 0;
  while (j < plan.layers.size() &&
         std::find(plan.layers[j].inputs.begin(), plan.layers[j].inputs.end(), id) ==
             plan.layers[j].inputs.end())
    ++j;
  return j;
}

DType dtype_of(const plan::Plan& plan, int id) {
  return plan.tensors.at(static_cast<std::size_t>(id)).dtype;
}

// A "quantize" of the stem's pooled FP16 tensor [N, out_h, out_w, 64] to INT8
// that the stem kernel can do itself (a usable scale, the same geometry).
bool is_stem_quantize(const plan::Plan& plan, const plan::LayerDesc& quantize,
                      const json& stem_params, int pooled) {
  if (quantize.kind != "quantize" || quantize.inputs != std::vector<int>{pooled} ||
      quantize.outputs.size() != 1)
    return false;
  if (dtype_of(plan, pooled) != DType::kFloat16 ||
      dtype_of(plan, quantize.outputs[0]) != DType::kInt8)
    return false;
  const json p = json::parse(quantize.params);
  const json pool = stem_params.value("pool", json::object());
  const json scale = p.value("scale", json());
  return scale.is_number() && std::isfinite(scale.get<float>()) && scale.get<float>() > 0.0f &&
         p.value("layout", "") == "NHWC" && all_equal(p, {"c_pad"}, 64) &&
         p.value("h", json()) == pool.value("out_h", json()) &&
         p.value("w", json()) == pool.value("out_w", json());
}

}  // namespace

int fold_stem_quantize(plan::Plan& plan) {
  int folded = 0;
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    plan::LayerDesc& stem = plan.layers[i];
    if (stem.kind != "conv_max_pool" || stem.outputs.size() != 1) continue;
    json params = json::parse(stem.params);
    const int pooled = stem.outputs[0];
    if (readers(plan, pooled) != 1) continue;
    const std::size_t j = reader_of(plan, pooled);
    if (j <= i || j == plan.layers.size()) continue;  // not in execution order: leave it be
    const plan::LayerDesc& quantize = plan.layers[j];
    if (quantize.stream != stem.stream || !is_stem_quantize(plan, quantize, params, pooled))
      continue;
    params["out_scale"] = json::parse(quantize.params)["scale"];
    stem.kind = "conv_max_pool_int8";
    stem.name += " + " + quantize.name;
    stem.params = params.dump();
    // The INT8 tensor is now written before the quantize layer's place, and
    // read only after it: no reader moves ahead of its producer.
    stem.outputs = quantize.outputs;
    plan.layers.erase(plan.layers.begin() + static_cast<std::ptrdiff_t>(j));
    ++folded;
  }
  return folded;
}

int fold_stem_input(plan::Plan& plan) {
  int folded = 0;
  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    plan::LayerDesc& stem = plan.layers[i];
    if ((stem.kind != "conv_max_pool" && stem.kind != "conv_max_pool_int8") ||
        stem.inputs.size() != 1)
      continue;
    const int stored = stem.inputs[0];
    if (readers(plan, stored) != 1) continue;  // also: not an engine tensor
    std::size_t j = 0;
    while (j < i && plan.layers[j].outputs != std::vector<int>{stored})
      ++j;
    if (j == i) continue;
    const plan::LayerDesc& reformat = plan.layers[j];
    if (reformat.kind != "reformat_in" || reformat.inputs.size() != 1 ||
        reformat.stream != stem.stream)
      continue;
    const int input = reformat.inputs[0];
    const bool engine_input = std::any_of(
        plan.io.begin(), plan.io.end(),
        [&](const plan::IoBinding& io) { return io.is_input && io.tensor_id == input; });
    const plan::TensorDesc& in = plan.tensors.at(static_cast<std::size_t>(input));
    const plan::TensorDesc& out = plan.tensors.at(static_cast<std::size_t>(stored));
    if (!engine_input || in.dtype != DType::kFloat32 || in.layout != "NCHW" ||
        in.dims.size() != 4 || in.dims[1] != 3 || out.dtype != DType::kFloat16 ||
        out.layout != "NHWC" || out.channel_padding_to.value_or(0) != 4)
      continue;
    stem.inputs = {input, stored};
    plan.layers.erase(plan.layers.begin() + static_cast<std::ptrdiff_t>(j));
    --i;  // the stem moved up one
    ++folded;
  }
  return folded;
}

int fuse_conv_max_pool(plan::Plan& plan) {
  int fused = 0;
  for (std::size_t i = 0; i + 1 < plan.layers.size(); ++i) {
    plan::LayerDesc& conv = plan.layers[i];
    if (!is_stem_conv(conv) || conv.outputs.size() != 1) continue;
    const int between = conv.outputs[0];
    if (readers(plan, between) != 1) continue;
    std::size_t j = i + 1;
    while (j < plan.layers.size() && plan.layers[j].inputs != std::vector<int>{between})
      ++j;
    if (j == plan.layers.size() || !is_stem_pool(plan.layers[j])) continue;
    plan::LayerDesc& pool = plan.layers[j];
    json params = json::parse(conv.params);
    params["pool"] = json::parse(pool.params);
    conv.name += " + " + pool.name;
    conv.kind = "conv_max_pool";
    conv.params = params.dump();
    conv.outputs = pool.outputs;
    plan.layers.erase(plan.layers.begin() + static_cast<std::ptrdiff_t>(j));
    ++fused;
  }
  fold_stem_quantize(plan);
  fold_stem_input(plan);
  return fused;
}

}  // namespace anvil::builder
